"""What a filtered HNSW search and an exact scan cost on the embedded server at a given
``shared_buffers``, and what exact searches cost answered several to a scan
(``Query.exact_batch``, as shadow queries are), on the dev set (55k x 384, cosine).

    python scripts/scan_costs.py [--shared-buffers 128MB] [--queries 200]

Starts a fresh embedded server with ``$VECPG_SHARED_BUFFERS`` set to ``--shared-buffers``
(default: what vecpg chooses for this machine), loads the dev set with a uniform attribute
``u`` (0-999, btree) and an HNSW index (M 16, efConstruction 64), then runs ``--queries``
searches under ``u < 300`` (30%) at ef 40 with an exact search after every tenth, and exact
answers of 32 queries one at a time and 2, 4, 8 to a scan under 12%, 30% and 50% filters.
Prints ms per query (docs/benchmarks.md, "shadows in batches").
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import psycopg

import vecpg
from vecpg import DataType, executor
from vecpg.datasets import load_hdf5
from vecpg.query import SearchRequest, query_vectors
from vecpg.server import embedded_dsn

DEFAULT = Path(__file__).resolve().parents[2] / "shared/datasets/wordnet-minilm-384-angular.hdf5"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default=str(DEFAULT))
    ap.add_argument("--shared-buffers", default=None, help="e.g. 128MB, 2GB")
    ap.add_argument("--queries", type=int, default=200)
    args = ap.parse_args()
    if args.shared_buffers:
        os.environ["VECPG_SHARED_BUFFERS"] = args.shared_buffers
    ds = load_hdf5(args.dataset)
    train, test = ds.train, ds.test
    u = np.random.default_rng(5).integers(0, 1000, size=len(train)).astype(np.int64)
    dsn = embedded_dsn(tempfile.mkdtemp(prefix="vecpg-scan-"), temporary=True)
    with vecpg.connect(dsn, schema="scan_costs") as client:
        schema = client.create_schema()
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("u", DataType.INT64)
        schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=train.shape[1])
        client.create_collection("wn", schema=schema, metric_type="COSINE")
        client.insert("wn", {"id": np.arange(len(train)), "u": u, "embedding": train})
        client.create_index("wn", field_name="u", index_type="STL_SORT", index_name="u_idx")
        client.create_index("wn", field_name="embedding", index_type="HNSW",
                            params={"M": 16, "efConstruction": 64})
        with psycopg.connect(dsn) as conn:
            (buffers,) = conn.execute("SHOW shared_buffers").fetchone() or ("?",)
        print(f"{len(train)} x {train.shape[1]} loaded and indexed; shared_buffers {buffers}",
              flush=True)
        qs = test[:args.queries]
        hnsw = {"search_params": {"params": {"ef": 40}}}
        for q in qs[:20]:  # warm: the pages both plans touch
            client.search("wn", [q], limit=10, filter="u < 300", **hnsw)
            client.search("wn", [q], limit=10, filter="u < 300", strategy="exact")
        t_h = t_e = 0.0
        n_e = 0
        for i, q in enumerate(qs):
            t0 = time.perf_counter()
            client.search("wn", [q], limit=10, filter="u < 300", **hnsw)
            t_h += time.perf_counter() - t0
            if i % 10 == 9:
                t0 = time.perf_counter()
                client.search("wn", [q], limit=10, filter="u < 300", strategy="exact")
                t_e += time.perf_counter() - t0
                n_e += 1
        print(f"u < 300: HNSW ef 40 {t_h / len(qs) * 1000:.2f} ms, exact between them "
              f"{t_e / max(n_e, 1) * 1000:.2f} ms", flush=True)
        for expr in ("u < 120", "u < 300", "u < 500"):
            req = SearchRequest.of("wn", limit=10, filter=expr, strategy="exact")
            with client._lease() as db:
                plan = client._plan(db, client._info("wn"), req)
                vecs = query_vectors(plan.field, test[:32])
                executor.exact_answers(db, plan, vecs[:4], client._companions)  # warm
                out = []
                for b in (1, 2, 4, 8):
                    t0 = time.perf_counter()
                    for i in range(0, len(vecs), b):
                        executor.exact_answers(db, plan, vecs[i:i + b], client._companions)
                    out.append(f"{b} a scan {(time.perf_counter() - t0) / len(vecs) * 1000:.2f}")
            print(f"{expr}: exact ms per query, " + ", ".join(out), flush=True)


if __name__ == "__main__":
    main()
