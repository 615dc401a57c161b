"""Where the scale curve bends: HNSW build time against maintenance_work_mem, and search QPS
against shared_buffers, on the collections ``vecpg bench --scale --keep`` left behind.

    python scripts/scale_knees.py mwm --rows 100000      # rebuild at 64MB .. sized
    python scripts/scale_knees.py sb --rows 1000000 --ef 160
    # then ALTER SYSTEM SET shared_buffers, restart the server, and run ``sb`` again

``mwm`` rebuilds the HNSW index of ``bench_scale_<rows>_<dim>d_float32`` with each budget
and records the build time and pgvector's "graph no longer fits" notice; ``sb`` runs the
same queries twice (the second pass warm) and records QPS and the index blocks read from
outside shared_buffers. One JSON line per measurement on stdout.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import psycopg

import vecpg
import vecpg.server
from vecpg.bench.scale import clustered_data, collection_name
from vecpg.ddl import hnsw_graph_mb
from vecpg.schema import DataType


def _index(conn: psycopg.Connection, table: str) -> tuple[str, str]:
    row = conn.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s"
                       " AND indexdef LIKE '%%hnsw%%'", (table,)).fetchone()
    assert row, f"no HNSW index on {table}"
    return row[0], row[1]


def mwm(dsn: str, rows: int, dim: int, budgets: list[str]) -> None:
    table = collection_name(rows, dim)
    with psycopg.connect(dsn, autocommit=True) as conn:
        name, ddl = _index(conn, table)
        notices: list[str] = []
        conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
        sized = hnsw_graph_mb(rows, dim, DataType.FLOAT_VECTOR, 16)
        for b in [*budgets, f"{sized}MB"]:
            notices.clear()
            conn.execute(f'DROP INDEX "{name}"')
            conn.execute("SELECT set_config('maintenance_work_mem', %s, false)", (b,))
            t0 = time.perf_counter()
            conn.execute(ddl)
            print(json.dumps({"kind": "mwm", "rows": rows, "maintenance_work_mem": b,
                              "build_s": round(time.perf_counter() - t0, 1),
                              "notice": [n for n in notices if "maintenance_work_mem" in n]}),
                  flush=True)


def sb(dsn: str, rows: int, dim: int, ef: int, queries: int) -> None:
    table = collection_name(rows, dim)
    qs = clustered_data(queries, dim, seed=987654321)
    with vecpg.connect(dsn) as client, psycopg.connect(dsn, autocommit=True) as conn:
        name, _ = _index(conn, table)
        shared = conn.execute("SHOW shared_buffers").fetchone()
        size = conn.execute("SELECT pg_relation_size(%s)", (name,)).fetchone()
        for rnd in ("first", "second"):
            before = conn.execute("SELECT idx_blks_read, idx_blks_hit FROM"
                                  " pg_statio_user_indexes WHERE indexrelname = %s",
                                  (name,)).fetchone()
            t0 = time.perf_counter()
            for q in qs:
                client.search(table, q.reshape(1, -1), limit=10,
                              search_params={"params": {"ef": ef}})
            took = time.perf_counter() - t0
            after = conn.execute("SELECT idx_blks_read, idx_blks_hit FROM"
                                 " pg_statio_user_indexes WHERE indexrelname = %s",
                                 (name,)).fetchone()
            assert before and after and shared and size
            print(json.dumps({"kind": "sb", "rows": rows, "ef": ef, "pass": rnd,
                              "shared_buffers": shared[0], "index_mb": round(size[0] / 2**20),
                              "qps": round(len(qs) / took, 1),
                              "blocks_read_per_query": round((after[0] - before[0]) / len(qs), 1),
                              "blocks_hit_per_query": round((after[1] - before[1]) / len(qs), 1)}),
                  flush=True)


def main() -> None:
    """Command line (see the module doc)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=("mwm", "sb"))
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--ef", type=int, default=160)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--budgets", default="64MB,128MB")
    ap.add_argument("--dsn")
    args = ap.parse_args()
    dsn = args.dsn or vecpg.server.resolve_dsn()
    np.seterr(all="ignore")
    if args.what == "mwm":
        mwm(dsn, args.rows, args.dim, args.budgets.split(","))
    else:
        sb(dsn, args.rows, args.dim, args.ef, args.queries)


if __name__ == "__main__":
    main()
