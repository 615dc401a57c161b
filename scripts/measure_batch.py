"""Batch search: many query vectors in one ``search`` call (one pipelined round trip) against
the set-based SQL form (``unnest`` of the vectors, ``CROSS JOIN LATERAL`` an ordered index
scan) and against one call per query, in one run on one server.

    python scripts/measure_batch.py [--dataset PATH] [--queries 200] [--ef 40,200]

Loads the dev dataset into a temporary embedded Postgres (or ``--dsn``), builds HNSW
(M=16, efConstruction=64), then times the three forms in turns (median of 6 rounds) at each
ef and checks they return the same ids.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import psycopg
from pgvector.psycopg import register_vector

import vecpg
from vecpg.datasets import load_hdf5
from vecpg.server import embedded_dsn

DEFAULT = Path(__file__).resolve().parents[2] / "shared/datasets/wordnet-minilm-384-angular.hdf5"
LATERAL = ("SELECT q.i, t.id FROM unnest(%s::vector[]) WITH ORDINALITY AS q(v, i) "
           "CROSS JOIN LATERAL (SELECT id FROM batch.wn ORDER BY vector <=> q.v LIMIT 10) t")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default=str(DEFAULT))
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--ef", default="40,200")
    ap.add_argument("--dsn", default=None, help="default: a temporary embedded Postgres")
    args = ap.parse_args()
    ds = load_hdf5(args.dataset)
    queries = ds.test[:args.queries]
    dsn = args.dsn or embedded_dsn(tempfile.mkdtemp(prefix="vecpg-batch-"), temporary=True)
    with vecpg.connect(dsn, schema="batch") as client, \
            psycopg.connect(dsn, autocommit=True) as raw:
        client.drop_collection("wn")
        client.create_collection("wn", dimension=ds.dim, metric_type="COSINE")
        client.insert("wn", {"id": np.arange(len(ds.train)), "vector": ds.train})
        client.create_index("wn", field_name="vector", index_type="HNSW",
                            params={"M": 16, "efConstruction": 64})
        register_vector(raw)
        for ef in (int(e) for e in args.ef.split(",")):
            sp = {"params": {"ef": ef}}
            raw.execute("SELECT set_config('hnsw.ef_search', %s, false)", [str(ef)])
            client.search("wn", queries[:20], limit=10, search_params=sp)  # warm
            raw.execute(LATERAL, [list(queries[:20])]).fetchall()
            spent: dict[str, list[float]] = {"one call (pipelined)": [], "LATERAL statement": [],
                                             "a call per query": []}
            for _ in range(6):
                t0 = time.perf_counter()
                got = client.search("wn", queries, limit=10, search_params=sp)
                spent["one call (pipelined)"].append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                rows = raw.execute(LATERAL, [list(queries)]).fetchall()
                spent["LATERAL statement"].append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                for q in queries:
                    client.search("wn", q, limit=10, search_params=sp)
                spent["a call per query"].append(time.perf_counter() - t0)
            by_query: dict[int, list[int]] = {}
            for i, pk in rows:
                by_query.setdefault(i, []).append(pk)
            same = np.mean([[h.id for h in got[i]] == by_query.get(i + 1)
                            for i in range(len(queries))])
            print(f"ef={ef}, {len(queries)} queries (same ids in both set forms: {same:.2f})")
            for name, ts in spent.items():
                print(f"  {name:22s} {statistics.median(ts) * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
