"""DNA classification: k-mer count vectors of GENERATED gene-family sequences in vecpg,
nearest-neighbour vote joined with the families table, accuracy on a held-out split.

    python -m examples.dna              # 8 families x 150 sequences, k = 5
    python -m examples.dna --sample     # 8 x 40
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import vecpg

from . import classify
from .sequences import generate, kmer_counts


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m examples.dna", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dsn", help="Postgres DSN (default: $VECPG_DSN, else the embedded server)")
    ap.add_argument("--sample", action="store_true", help="40 sequences per family")
    ap.add_argument("--families", type=int, default=8)
    ap.add_argument("--per-family", type=int, default=150)
    ap.add_argument("-k", type=int, default=5, help="k-mer length (4**k dimensions)")
    ap.add_argument("--test-fraction", type=float, default=0.2)
    ap.add_argument("--collection", default="dna_sequences")
    args = ap.parse_args(argv)
    per = 40 if args.sample else args.per_family

    seqs = generate(args.families, per)
    n_test = int(len(seqs) * args.test_fraction)
    test, train = seqs[:n_test], seqs[n_test:]   # generate() returns them shuffled
    names = {f: f"family {chr(65 + f)} ({15 + 20 * f / max(args.families - 1, 1):.0f}% "
                f"substitutions{', shares a domain with A' if f == 1 else ''})"
             for f in range(args.families)}
    print(f"GENERATED data: {len(seqs)} sequences of {args.families} simulated gene families "
          f"({min(len(s.seq) for s in seqs)}-{max(len(s.seq) for s in seqs)} bp); "
          f"{len(train)} stored, {len(test)} held out")
    client = vecpg.connect(args.dsn)
    t0 = time.perf_counter()
    classify.create(client, args.collection, train, args.k, names)
    print(f"{args.k}-mer count vectors ({4 ** args.k} dims) stored with an HNSW index (cosine) "
          f"in {time.perf_counter() - t0:.1f} s\n")

    vecs = kmer_counts([s.seq for s in test], args.k)
    truth = np.array([s.family for s in test])
    for nn in (1, 5, 15):
        t0 = time.perf_counter()
        pred = np.array([p[0] for p in classify.classify(client, args.collection, vecs, nn)])
        dt = time.perf_counter() - t0
        print(f"{nn:>2}-NN vote: accuracy {np.mean(pred == truth):.3f} "
              f"({int(np.sum(pred == truth))}/{len(test)}), {1000 * dt / len(test):.1f} ms/query")
        if nn == 5:
            per_family = pred, truth
    pred, truth = per_family
    print("\nper family (5-NN):")
    for f in range(args.families):
        m = truth == f
        print(f"  {names[f]:<52} {np.mean(pred[m] == f):.3f} of {int(m.sum())}")
    client.close()


if __name__ == "__main__":
    main()
