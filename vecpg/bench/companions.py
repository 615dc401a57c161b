"""Companion indexes (IVF_SQ8, IVF_PQ) next to FAISS' in-process IVF-SQ8 / IVF-PQ with an
exact refine, on one dataset in one run (``python -m vecpg.bench.companions FILE``).

Both sides get the same train rows, nlist, PQ m, queries and k; both sweep nprobe and the
re-rank factor (vecpg's ``rerank``, FAISS' ``IndexRefineFlat.k_factor``) and report the best
QPS at recall >= the target. vecpg goes through ``Client.search`` (candidates from the codes
in memory, exact re-rank in SQL); FAISS searches on one thread, one query per call. The two
sides' settings are timed interleaved query by query (:func:`.timing.time_sides`), so
machine noise hits both alike.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..datasets import AnnDataset, load_hdf5, recall_at_k
from .harness import _pq_m
from .timing import Side, time_sides

NPROBES = (8, 16, 24, 32, 48, 64)
RERANKS = (2, 3, 5, 10)


def _faiss_index(kind: str, x: np.ndarray, nlist: int, m: int, ip: bool) -> Any:
    import faiss

    dim = x.shape[1]
    mt = faiss.METRIC_INNER_PRODUCT if ip else faiss.METRIC_L2
    quant = faiss.IndexFlatIP(dim) if ip else faiss.IndexFlatL2(dim)
    if kind == "IVF_SQ8":
        base: Any = faiss.IndexIVFScalarQuantizer(quant, dim, nlist, faiss.ScalarQuantizer.QT_8bit,
                                             mt)
    else:
        base = faiss.IndexIVFPQ(quant, dim, nlist, m, 8, mt)
    index = faiss.IndexRefineFlat(base)
    index.train(x)
    index.add(x)
    return index, (base, quant)  # the wrappers must outlive the index that points at them


def run(ds: AnnDataset, *, kinds: Sequence[str] = ("IVF_SQ8", "IVF_PQ"), queries: int = 300,
        k: int = 10, target: float = 0.95, dsn: str | None = None,
        data_dir: str | None = None, out: Any = sys.stdout,
        nprobes: Sequence[int] = NPROBES, reranks: Sequence[int] = RERANKS
        ) -> list[dict[str, Any]]:
    """Load ``ds`` into a collection, build each companion kind and its FAISS twin, sweep
    both; one JSON record per point on ``out``; returns the summary per kind."""
    import faiss

    from ..client import connect
    from ..schema import CollectionSchema, DataType

    metric = {"angular": "COSINE", "euclidean": "L2", "dot": "IP"}[ds.metric]
    ip = metric != "L2"
    x = np.ascontiguousarray(ds.train, dtype=np.float32)
    xf = x / np.linalg.norm(x, axis=1, keepdims=True) if metric == "COSINE" else x
    qs = np.ascontiguousarray(ds.test[:queries], dtype=np.float32)
    qf = qs / np.linalg.norm(qs, axis=1, keepdims=True) if metric == "COSINE" else qs
    truth = ds.neighbors[:queries, :k]
    nlist = int(min(4096, max(4, round(math.sqrt(len(x))))))
    m = _pq_m(x.shape[1])
    summary = []
    coll = "bench_companions"
    faiss.omp_set_num_threads(1)
    with connect(dsn, data_dir=data_dir) as client:
        client.drop_collection(coll)
        schema = CollectionSchema(enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=x.shape[1])
        client.create_collection(coll, schema=schema, metric_type=metric)
        try:
            for lo in range(0, len(x), 20_000):
                client.insert(coll, {"id": np.arange(lo, min(len(x), lo + 20_000)),
                                     "vector": x[lo:lo + 20_000]})
            for kind in kinds:
                params = {"nlist": nlist} if kind == "IVF_SQ8" else {"nlist": nlist, "m": m}
                t0 = time.perf_counter()
                client.create_index(coll, field_name="vector", index_type=kind,
                                    metric_type=metric, params=params)
                vb = time.perf_counter() - t0
                t0 = time.perf_counter()
                findex, _base = _faiss_index(kind, xf, nlist, m, ip)
                fb = time.perf_counter() - t0
                print(json.dumps({"kind": "build", "index": kind, "params": params,
                                  "vecpg_s": round(vb, 2), "faiss_s": round(fb, 2)}),
                      file=out, flush=True)
                best: dict[str, Any] = {"index": kind, "params": params}
                for nprobe in nprobes:
                    for rr in reranks:
                        sides = [_vecpg_side(client, coll, k, nprobe, rr),
                                 _faiss_side(findex, k, nprobe, rr)]
                        # faiss gets the prepared (unit) queries, vecpg the raw ones
                        tv, tf = _time_pair(qs, qf, sides)
                        for system, t in (("vecpg", tv), ("faiss", tf)):
                            rec = {"kind": "point", "system": system, "index": kind,
                                   "nprobe": nprobe, "rerank": rr,
                                   "recall": round(recall_at_k(t.found, truth, k), 4),
                                   **t.summary()}
                            print(json.dumps(rec), file=out, flush=True)
                            if rec["recall"] >= target and rec["qps"] > best.get(
                                    system, {}).get("qps", 0):
                                best[system] = rec
                if "vecpg" in best and "faiss" in best:
                    best["ratio"] = round(best["vecpg"]["qps"] / best["faiss"]["qps"], 3)
                print(json.dumps({"kind": "best", **best}), file=out, flush=True)
                summary.append(best)
                client.drop_index(coll, "vector")
        finally:
            client.drop_collection(coll)
    return summary


def _vecpg_side(client: Any, coll: str, k: int, nprobe: int, rerank: int) -> Side:
    sp = {"params": {"nprobe": nprobe, "rerank": rerank}}

    def run(q: np.ndarray) -> list[int]:
        return [h.id for h in client.search(coll, q.reshape(1, -1), limit=k,
                                            search_params=sp)[0]]
    return run


def _faiss_side(index: Any, k: int, nprobe: int, rerank: int) -> Side:
    import faiss

    params = faiss.IndexRefineSearchParameters()
    params.k_factor = rerank
    ivf = faiss.SearchParametersIVF()
    ivf.nprobe = nprobe
    params.base_index_params = ivf

    def run(q: np.ndarray) -> list[int]:
        _, lab = index.search(q.reshape(1, -1), k, params=params)
        return [int(i) for i in lab[0] if i >= 0]
    return run


def _time_pair(qs: np.ndarray, qf: np.ndarray, sides: list[Side]) -> Any:
    """Time vecpg on raw queries and FAISS on prepared ones, interleaved."""
    idx = np.arange(len(qs))
    both = [lambda i: sides[0](qs[int(i[0])]), lambda i: sides[1](qf[int(i[0])])]
    return time_sides(idx.reshape(-1, 1), both, warmup=10)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: run and print the best points and ratios."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dataset")
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--indexes", default="IVF_SQ8,IVF_PQ")
    ap.add_argument("--target-recall", type=float, default=0.95)
    ap.add_argument("--nprobes", default=",".join(map(str, NPROBES)))
    ap.add_argument("--reranks", default=",".join(map(str, RERANKS)))
    ap.add_argument("--dsn")
    args = ap.parse_args(argv)
    ds = load_hdf5(args.dataset)
    res = run(ds, kinds=args.indexes.split(","), queries=args.queries,
              target=args.target_recall, dsn=args.dsn,
              nprobes=[int(v) for v in args.nprobes.split(",")],
              reranks=[int(v) for v in args.reranks.split(",")])
    for r in res:
        v, f = r.get("vecpg"), r.get("faiss")
        print(f"{r['index']}: vecpg {v and (v['qps'], v['nprobe'], v['rerank'], v['recall'])}"
              f" faiss {f and (f['qps'], f['nprobe'], f['rerank'], f['recall'])}"
              f" ratio {r.get('ratio')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
