"""Throughput of vecpg's ingest (prepare_batch + copy_batch) against a raw psycopg COPY.

All paths load the same 50,000 x 384 float32 vectors, bigint ids and a short varchar into a
fresh collection table, in one process, taking turns, and report the median rows/s: "vecpg"
(one dict of numpy columns), "vecpg_rows" (a list of row dicts holding numpy vectors) and
"raw" (``Copy.write_row`` with pgvector's dumper), and the ratio vecpg / raw::

    python scripts/bench_ingest.py            # embedded Postgres 18, or $VECPG_DSN
    python scripts/bench_ingest.py --rows 20000 --dim 128 --repeat 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from psycopg import sql

from vecpg.ingest import copy_batch, prepare_batch
from vecpg.schema import CollectionSchema, DataType
from vecpg.server import embedded_dsn


def _schema(dim: int) -> CollectionSchema:
    cs = CollectionSchema()
    cs.add_field("id", DataType.INT64, is_primary=True)
    cs.add_field("v", DataType.FLOAT_VECTOR, dim=dim)
    cs.add_field("s", DataType.VARCHAR, max_length=32)
    return cs


def bench_ingest(dsn: str, rows: int = 50_000, dim: int = 384, repeat: int = 3) -> dict[str, Any]:
    """Median rows/s of each path (see the module docstring) and the ratio vecpg / raw."""
    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((rows, dim), dtype=np.float32)
    ids = np.arange(rows, dtype=np.int64)
    strs = [f"item-{i}" for i in range(rows)]
    cs = _schema(dim)
    table = sql.Identifier("bench_ingest", "t")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        register_vector(conn)
        conn.execute("DROP SCHEMA IF EXISTS bench_ingest CASCADE; CREATE SCHEMA bench_ingest")

        def ours(cur: psycopg.Cursor[Any]) -> None:
            batch = prepare_batch(cs, {"id": ids, "v": vecs, "s": strs})
            copy_batch(cur, table, batch)

        def ours_rows(cur: psycopg.Cursor[Any]) -> None:
            batch = prepare_batch(cs, [{"id": i, "v": vecs[i], "s": strs[i]} for i in range(rows)])
            copy_batch(cur, table, batch)

        def raw(cur: psycopg.Cursor[Any]) -> None:
            stmt = sql.SQL("COPY {} (id, v, s) FROM STDIN (FORMAT BINARY)").format(table)
            with cur.copy(stmt) as cp:
                cp.set_types(["bigint", "vector", "varchar"])
                for i in range(rows):
                    cp.write_row((int(ids[i]), vecs[i], strs[i]))

        def run(load: Callable[[psycopg.Cursor[Any]], None]) -> float:
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
            conn.execute(cs.create_table_sql(table))
            conn.execute("CHECKPOINT")  # start each run from the same WAL state
            t0 = time.perf_counter()
            with conn.transaction(), conn.cursor() as cur:
                load(cur)
            elapsed = time.perf_counter() - t0
            n = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(table)).fetchone()
            assert n is not None and n[0] == rows
            return rows / elapsed

        times: dict[str, list[float]] = {"vecpg": [], "vecpg_rows": [], "raw": []}
        for _ in range(repeat):  # take turns so drift on the machine hits all alike
            times["raw"].append(run(raw))
            times["vecpg"].append(run(ours))
            times["vecpg_rows"].append(run(ours_rows))
        conn.execute("DROP SCHEMA bench_ingest CASCADE")
    out: dict[str, Any] = {k: statistics.median(v) for k, v in times.items()}
    out["ratio"] = out["vecpg"] / out["raw"]
    out["runs"] = times
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=50_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    dsn = os.environ.get("VECPG_DSN") or embedded_dsn(tempfile.mkdtemp(prefix="vecpg-bench-"),
                                                      temporary=True)
    r = bench_ingest(dsn, args.rows, args.dim, args.repeat)
    print(f"{args.rows} x {args.dim}: vecpg {r['vecpg']:,.0f} rows/s, raw {r['raw']:,.0f} rows/s, "
          f"ratio {r['ratio']:.2f}; vecpg from row dicts {r['vecpg_rows']:,.0f} rows/s")
    for k, runs in r["runs"].items():
        print(f"  {k:10s}", " ".join(f"{x:,.0f}" for x in runs))


if __name__ == "__main__":
    main()
