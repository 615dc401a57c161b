"""Measure the quantized companion indexes (vecpg.quantize) on the dev dataset, no database.

For each index: training time, bytes per vector, candidate recall@10 when keeping the top
10 x R candidates (R = 1, 4, 10) -- which equals recall@10 after an exact re-rank of those
candidates -- and search time per query (batched over all queries, and one query at a time).

    python scripts/bench_quantize.py [--data PATH] [--queries 1000] [--big]
"""

from __future__ import annotations

import argparse
import time

import h5py
import numpy as np

from vecpg import quantize as qz

DATA = "/work/shared/datasets/wordnet-minilm-384-angular.hdf5"


def recall_at_10(keys: np.ndarray, truth: np.ndarray, r: int) -> float:
    hits = [len(set(keys[i, :10 * r].tolist()) & set(truth[i, :10].tolist()))
            for i in range(len(truth))]
    return float(np.mean(hits)) / 10.0


def bench(label: str, searcher: qz.Searcher | qz.AnnoyModel, q: np.ndarray, truth: np.ndarray,
          settings: list[dict[str, int]]) -> None:
    for sp in settings:
        t = time.perf_counter()
        keys, _ = searcher.search(q, 100, sp)
        batch_ms = (time.perf_counter() - t) * 1000 / len(q)
        n1 = min(100, len(q))
        t = time.perf_counter()
        for i in range(n1):
            searcher.search(q[i:i + 1], 100, sp)
        single_ms = (time.perf_counter() - t) * 1000 / n1
        recalls = " ".join(f"{recall_at_10(keys, truth, r):.3f}" for r in (1, 4, 10))
        print(f"| {label} | {sp} | {recalls} | {batch_ms:.2f} | {single_ms:.2f} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--big", action="store_true", help="also time training on 100k x 384")
    ap.add_argument("--only", default="", help="comma-separated labels to run")
    args = ap.parse_args()
    with h5py.File(args.data) as f:
        x = np.asarray(f["train"], dtype=np.float32)
        q = np.asarray(f["test"], dtype=np.float32)[:args.queries]
        truth = np.asarray(f["neighbors"])[:args.queries]
    print(f"train {x.shape}, queries {q.shape}; metric COSINE")
    keys = np.arange(len(x), dtype=np.int64)
    configs = [
        ("IVF_SQ8 nlist=256", "IVF_SQ8", {"nlist": 256}),
        ("IVF_PQ nlist=256 m=48", "IVF_PQ", {"nlist": 256, "m": 48}),
        ("IVF_PQ nlist=256 m=48 no-residual", "IVF_PQ",
         {"nlist": 256, "m": 48, "by_residual": False}),
        ("IVF_PQ nlist=256 m=24", "IVF_PQ", {"nlist": 256, "m": 24}),
        ("ANNOY n_trees=50", "ANNOY", {"n_trees": 50}),
    ]
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    print("| index | search params | cand. recall@10 R=1 4 10 | ms/q batch | ms/q single |")
    print("|---|---|---|---|---|")
    for label, kind, params in configs:
        if only and not any(o in label for o in only):
            continue
        t = time.perf_counter()
        cpu = time.process_time()
        model = qz.train(kind, x, "COSINE", params, seed=0)
        train_s = time.perf_counter() - t
        train_cpu = time.process_time() - cpu
        searcher: qz.Searcher | qz.AnnoyModel
        if isinstance(model, qz.AnnoyModel):
            searcher = model
            settings = [{"search_k": 5000}, {"search_k": 20000}, {"search_k": 80000}]
            encode_s = 0.0
        else:
            t = time.perf_counter()
            list_no, codes = model.encode(x)
            encode_s = time.perf_counter() - t
            searcher = qz.Searcher(model, list_no, codes, keys)
            settings = [{"nprobe": 16}, {"nprobe": 32}, {"nprobe": 64}]
        per_vec = searcher.nbytes() / len(x)
        print(f"| {label}: train {train_s:.1f}s (cpu {train_cpu:.1f}s), encode {encode_s:.1f}s, "
              f"{model.code_size} code bytes/vector, {per_vec:.1f} bytes/vector in memory "
              f"(with key), model {model.model_bytes() / 1e6:.2f} MB | | | | |", flush=True)
        bench(label, searcher, q, truth, settings)
    if args.big:
        rng = np.random.default_rng(0)
        extra = x[rng.integers(len(x), size=100_000 - len(x))]
        big = np.concatenate([x, extra + rng.normal(scale=0.01, size=extra.shape)
                              .astype(np.float32)])
        for kind, params in [("IVF_SQ8", {"nlist": 1000}), ("IVF_PQ", {"nlist": 1000, "m": 48})]:
            t = time.perf_counter()
            cpu = time.process_time()
            qz.train(kind, big, "COSINE", params)
            print(f"train {kind} {params} on {big.shape}: {time.perf_counter() - t:.1f}s "
                  f"(cpu {time.process_time() - cpu:.1f}s)", flush=True)


if __name__ == "__main__":
    main()
