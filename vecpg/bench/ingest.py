"""Ingest benchmark: rows/s through ``client.insert`` (a dict of numpy columns, vecpg's
binary COPY path) against a raw psycopg binary ``COPY`` with ``write_row`` into an
identical table, taking turns so that drift on the machine hits both alike (the method of
``scripts/bench_ingest.py``, here through the public API and on the benchmark's data).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from psycopg import sql

from ..schema import CollectionSchema, DataType

_COLL = "bench_ingest"


def ingest_bench(client: Any, vectors: np.ndarray, *, repeat: int = 2,
                 metric: str = "COSINE") -> list[dict[str, Any]]:
    """Load ``vectors`` (float32, with int64 ids) ``repeat`` times through each path, into an
    empty table each time; one record per path with its median rows/s."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n, dim = vectors.shape
    ids = np.arange(n, dtype=np.int64)
    table = sql.Identifier(client.schema, _COLL)
    schema = CollectionSchema(enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    client.drop_collection(_COLL)
    client.create_collection(_COLL, schema=schema, metric_type=metric)
    runs: dict[str, list[float]] = {"vecpg insert (numpy columns)": [], "raw COPY BINARY": []}
    with psycopg.connect(client.dsn, autocommit=True) as conn:
        register_vector(conn)

        def empty() -> None:
            conn.execute(sql.SQL("TRUNCATE {}").format(table))
            conn.execute("CHECKPOINT")  # each run starts from the same WAL state

        def ours() -> None:
            client.insert(_COLL, {"id": ids, "vector": vectors})

        def raw() -> None:
            stmt = sql.SQL("COPY {} (id, vector) FROM STDIN (FORMAT BINARY)").format(table)
            with conn.transaction(), conn.cursor() as cur, cur.copy(stmt) as cp:
                cp.set_types(["bigint", "vector"])
                for i in range(n):
                    cp.write_row((int(ids[i]), vectors[i]))

        try:
            for _ in range(max(1, repeat)):
                for path, load in (("raw COPY BINARY", raw),
                                   ("vecpg insert (numpy columns)", ours)):
                    empty()
                    t0 = time.perf_counter()
                    load()
                    runs[path].append(n / (time.perf_counter() - t0))
                    got = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(table)).fetchone()
                    if got is None or got[0] != n:  # a benchmark of a failed load means nothing
                        raise RuntimeError(f"{path} loaded {got} rows, expected {n}")
        finally:
            client.drop_collection(_COLL)
    raw_rate = statistics.median(runs["raw COPY BINARY"])
    return [{"kind": "ingest", "path": path, "rows": n, "dim": dim,
             "rows_per_s": statistics.median(r), "runs": r,
             "ratio_to_raw": statistics.median(r) / raw_rate} for path, r in runs.items()]
