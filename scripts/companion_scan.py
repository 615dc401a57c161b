"""The companion candidate scan alone, no database: vecpg.quantize's Searcher with the
compiled kernels (vecpg._jit), with numpy only, and FAISS' IVF index over the same rows, one
query a call, in one run (dev set, nlist 235, nprobe 16 and 32, 200 candidates).

    python scripts/companion_scan.py [--data PATH] [--queries 200]
"""

from __future__ import annotations

import argparse
import time

import faiss
import numpy as np

from vecpg import quantize as qz
from vecpg.datasets import load_hdf5

DATA = "/work/shared/datasets/wordnet-minilm-384-angular.hdf5"


def main() -> None:
    """Print ms per query for each side and whether both vecpg paths agree."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--queries", type=int, default=200)
    args = ap.parse_args()
    ds = load_hdf5(args.data)
    x = ds.train.astype(np.float32)
    q = ds.test[:args.queries].astype(np.float32)
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    faiss.omp_set_num_threads(1)
    qz.kernels()
    for kind, params in (("IVF_SQ8", {"nlist": 235}), ("IVF_PQ", {"nlist": 235, "m": 48})):
        model = qz.train(kind, x, "COSINE", params)
        s = qz.Searcher(model, *model.encode(x), np.arange(len(x)))
        quant = faiss.IndexFlatL2(x.shape[1])
        base = faiss.IndexIVFScalarQuantizer(quant, x.shape[1], 235,
                                             faiss.ScalarQuantizer.QT_8bit) \
            if kind == "IVF_SQ8" else faiss.IndexIVFPQ(quant, x.shape[1], 235, 48, 8)
        base.train(xn)
        base.add(xn)
        for nprobe in (16, 32):
            ms = {}
            for side in ("compiled", "numpy", "faiss"):
                if side == "faiss":
                    base.nprobe = nprobe

                    def f(i: int, base: object = base) -> object:
                        return base.search(qn[i:i + 1], 20)  # type: ignore[attr-defined]
                else:
                    s.use_kernels = side == "compiled"

                    def f(i: int, s: qz.Searcher = s, nprobe: int = nprobe) -> object:
                        return s.search(q[i:i + 1], 20, {"nprobe": nprobe})
                f(0)
                t = time.perf_counter()
                for i in range(len(q)):
                    f(i)
                ms[side] = round((time.perf_counter() - t) * 1000 / len(q), 3)
            print(f"{kind} nprobe={nprobe} ms/query {ms}", flush=True)


if __name__ == "__main__":
    main()
