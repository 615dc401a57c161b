"""Recommendations by inner product of ALS user and item vectors, excluding already-rated
items in the same SQL query, on a GENERATED ratings set.

    python -m examples.recommender             # 1,000 users x 500 items, ~50k ratings
    python -m examples.recommender --sample    # 300 users x 200 items
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import vecpg

from . import als, store
from .ratings import GENRES, generate, split


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m examples.recommender", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dsn", help="Postgres DSN (default: $VECPG_DSN, else the embedded server)")
    ap.add_argument("--sample", action="store_true", help="300 users x 200 items")
    ap.add_argument("--factors", type=int, default=16)
    ap.add_argument("-k", type=int, default=10)
    ap.add_argument("--user", type=int, default=7, help="the user whose list is printed")
    ap.add_argument("--collection", default="rec_items")
    args = ap.parse_args(argv)

    r = generate(300, 200) if args.sample else generate()
    train, test = split(r)
    print(f"GENERATED ratings: {len(r.values)} from {r.n_users} users on {r.n_items} items "
          f"({len(GENRES)} genres); {len(test.values)} held out")
    t0 = time.perf_counter()
    f = als.fit(train, factors=args.factors)
    base = float(np.sqrt(np.mean((test.values - train.values.mean()) ** 2)))
    print(f"ALS, {args.factors} factors + biases, in {time.perf_counter() - t0:.1f} s: "
          f"held-out RMSE {als.rmse(f, test):.3f} (predicting the mean: {base:.3f})")

    client = vecpg.connect(args.dsn)
    store.create(client, args.collection, train, f)
    u = args.user
    mine = train.users == u
    liked = np.bincount(train.item_genre[train.items[mine]], weights=train.values[mine] - 3,
                        minlength=len(GENRES))
    print(f"\nuser {u} rated {int(mine.sum())} items; genres they rate highest: "
          f"{', '.join(GENRES[g] for g in np.argsort(-liked)[:3])}")
    t0 = time.perf_counter()
    recs = store.recommend(client, args.collection, u, args.k)
    dt = time.perf_counter() - t0
    print(f"top {args.k} unseen items (one SQL statement, {1000 * dt:.1f} ms):")
    for rec in recs:
        print(f"  {rec.score:6.3f}  {rec.title}")

    # held-out evaluation: do the lists contain the items the user rated >= 4 but we hid?
    hits = {"ALS (inner product)": 0, "most rated (baseline)": 0}
    relevant = 0
    users_eval = [v for v in range(r.n_users) if ((test.users == v) & (test.values >= 4)).any()]
    t0 = time.perf_counter()
    for v in users_eval:
        good = set(test.items[(test.users == v) & (test.values >= 4)].tolist())
        relevant += len(good)
        hits["ALS (inner product)"] += len(good & {x.item for x in
                                                   store.recommend(client, args.collection, v,
                                                                   args.k)})
        hits["most rated (baseline)"] += len(good & set(store.popular(client, args.collection,
                                                                      v, args.k)))
    dt = time.perf_counter() - t0
    print(f"\nheld-out items rated >= 4, {len(users_eval)} users, {relevant} items "
          f"({dt:.1f} s for {2 * len(users_eval)} queries):")
    for label, h in hits.items():
        print(f"  {label:<22} precision@{args.k} {h / (args.k * len(users_eval)):.3f}  "
              f"recall@{args.k} {h / relevant:.3f}")
    client.close()


if __name__ == "__main__":
    main()
