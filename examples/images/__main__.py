"""Search by example image on scikit-learn's handwritten digits; draws a PNG of the
results and prints precision@k of same-digit neighbours for two embeddings.

    python -m examples.images                   # writes digits_search.png
    python -m examples.images --sample          # the first 600 images
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import vecpg

from . import digits


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m examples.images", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dsn", help="Postgres DSN (default: $VECPG_DSN, else the embedded server)")
    ap.add_argument("--sample", action="store_true", help="only the first 600 images")
    ap.add_argument("--collection", default="digits",
                    help="name prefix: collections <name>_pca24 and <name>_raw")
    ap.add_argument("--dims", type=int, default=24, help="PCA components (0: raw pixels)")
    ap.add_argument("-k", type=int, default=10)
    ap.add_argument("--png", default="digits_search.png")
    args = ap.parse_args(argv)

    data = digits.load(600 if args.sample else None)
    n = len(data.labels)
    rng = np.random.default_rng(0)
    order = rng.permutation(n)
    n_q = n // 5
    q_idx, s_idx = order[:n_q], order[n_q:]      # held-out queries, stored images
    stored = digits.Digits(data.images[s_idx], data.labels[s_idx])
    print(f"{n} images (scikit-learn load_digits, 8x8): {len(s_idx)} stored, {n_q} held out "
          "as queries")
    client = vecpg.connect(args.dsn)

    first: tuple[str, digits.Embedder] | None = None
    for dims in ([args.dims, 0] if args.dims else [0]):
        name = f"{args.collection}_{f'pca{dims}' if dims else 'raw'}"
        emb = digits.Embedder(stored.images, dims)
        first = first or (name, emb)
        t0 = time.perf_counter()
        digits.create(client, name, s_idx, stored, emb(stored.images))
        t_load = time.perf_counter() - t0
        t0 = time.perf_counter()
        p = digits.precision_at_k(client, name, emb(data.images[q_idx]), data.labels[q_idx],
                                  args.k)
        t_q = time.perf_counter() - t0
        what = f"PCA {dims}-d" if dims else "raw pixels 64-d"
        print(f"  {what:<16} precision@{args.k} of same-digit neighbours: {p:.3f} "
              f"(collection {name!r}, stored + HNSW in {t_load:.1f} s; {n_q} searches in "
              f"{1000 * t_q:.0f} ms)")

    # the picture, from the first embedding: one held-out query per digit
    assert first is not None  # the loop runs at least once
    name, emb = first
    picks = [q_idx[np.flatnonzero(data.labels[q_idx] == d)[0]] for d in range(10)
             if (data.labels[q_idx] == d).any()]
    queries = [(data.images[i], int(data.labels[i])) for i in picks]
    results = [digits.search_by_image(client, name, emb(img[None])[0], 8)
               for img, _ in queries]
    digits.draw(queries, results, args.png)
    wrong = sum(nb.label != lab for (_, lab), r in zip(queries, results) for nb in r)
    print(f"\nwrote {args.png}: {len(queries)} query images x 8 neighbours (joined with the "
          f"images table), {wrong} of {8 * len(queries)} show another digit")
    client.close()


if __name__ == "__main__":
    main()
