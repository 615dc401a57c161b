"""Measure vecpg's layer overhead side by side with raw psycopg, in one run on one server.

    python scripts/measure_overhead.py [--dataset PATH] [--rows N] [--queries Q]

1. Ingest: ``client.insert`` of a columnar numpy batch (binary COPY) vs a raw psycopg
   ``COPY ... FROM STDIN (FORMAT BINARY)`` with ``write_row`` into an identical table.
2. Search: HNSW queries through ``client.search`` vs the very SQL vecpg emits (taken from
   its tracer) executed directly with psycopg, rounds interleaved to share the noise.
Prints rows/s and QPS for both and their ratios.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from psycopg import sql

import vecpg
from vecpg import DataType
from vecpg.datasets import load_hdf5, recall_at_k

DEFAULT = Path(__file__).resolve().parents[2] / "shared/datasets/wordnet-minilm-384-angular.hdf5"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default=str(DEFAULT))
    ap.add_argument("--rows", type=int, default=55000)
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--ef", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    ds = load_hdf5(args.dataset, limit_train=args.rows if args.rows < 55000 else None)
    X, Q = ds.train, ds.test[:args.queries]
    ids = np.arange(len(X))
    statements: list[tuple[str, list]] = []
    with vecpg.connect(schema="overhead") as client:
        for name in ("api", "raw"):
            client.drop_collection(name)
            schema = client.create_schema()
            schema.add_field("id", DataType.INT64, is_primary=True)
            schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=ds.dim)
            client.create_collection(name, schema=schema, metric_type="COSINE")
        # -- ingest, alternating to share machine noise
        t_api = t_raw = 0.0
        with psycopg.connect(client.dsn, autocommit=True) as conn:
            register_vector(conn)
            for _ in range(args.rounds):
                for name in ("api", "raw"):
                    conn.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier("overhead", name)))
                t0 = time.perf_counter()
                client.insert("api", {"id": ids, "embedding": X})
                t_api += time.perf_counter() - t0
                t0 = time.perf_counter()
                with conn.transaction(), conn.cursor() as cur, cur.copy(sql.SQL(
                        "COPY {} (id, embedding) FROM STDIN (FORMAT BINARY)").format(
                        sql.Identifier("overhead", "raw"))) as cp:
                    cp.set_types(["bigint", "vector"])
                    for i in range(len(X)):
                        cp.write_row((int(ids[i]), X[i]))
                t_raw += time.perf_counter() - t0
        n = len(X) * args.rounds
        print(f"ingest {len(X)} x {ds.dim}: vecpg insert {n / t_api:,.0f} rows/s, raw psycopg "
              f"COPY {n / t_raw:,.0f} rows/s, ratio {t_raw / t_api:.2f}")

        # -- search
        t0 = time.perf_counter()
        client.create_index("api", field_name="embedding", index_type="HNSW",
                            metric_type="COSINE", params={"M": 16, "efConstruction": 64})
        print(f"HNSW build {time.perf_counter() - t0:.1f}s")
        sp = {"params": {"ef": args.ef}}
        client.tracer = lambda q, p: statements.append((q, p))
        client.search("api", Q[:1], limit=10, search_params=sp)
        client.tracer = None
        text = statements[-1][0]
        settings = [p for q, p in statements if "set_config" in q]
        print("SQL:", text)
        # one query through each path in turn, so both see the same machine noise
        t_api = t_raw = 0.0
        found: list[list[int]] = []
        with psycopg.connect(client.dsn, autocommit=True) as conn:
            register_vector(conn)
            for s in settings:
                calls = ", ".join(["set_config(%s, %s, false)"] * (len(s) // 2))
                conn.execute("SELECT " + calls, s)
            for _ in range(args.rounds):
                found = []
                for q in Q:
                    t0 = time.perf_counter()
                    client.search("api", [q], limit=10, search_params=sp)
                    t1 = time.perf_counter()
                    found.append([row[0] for row in conn.execute(text, [q]).fetchall()])
                    t2 = time.perf_counter()
                    t_api += t1 - t0
                    t_raw += t2 - t1
        nq = len(Q) * args.rounds
        rec = recall_at_k(found, ds.neighbors[:len(Q), :10], 10)
        print(f"HNSW ef={args.ef} search, one query per call: vecpg {nq / t_api:,.0f} QPS, raw "
              f"psycopg {nq / t_raw:,.0f} QPS, ratio {t_raw / t_api:.2f}; recall@10 {rec:.3f}")
        t0 = time.perf_counter()
        for _ in range(args.rounds):
            client.search("api", Q, limit=10, search_params=sp)
        t_batch = time.perf_counter() - t0
        print(f"batched search ({len(Q)} vectors per call, pipelined): {nq / t_batch:,.0f} QPS")
        for name in ("api", "raw"):
            client.drop_collection(name)


if __name__ == "__main__":
    main()
