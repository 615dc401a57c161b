"""The ratings (GENERATED, not real: see README.md) and a per-user train/test split.

No registry package we found ships a real ratings set for offline use: scikit-surprise's
built-in sets (MovieLens 100k/1M, Jester) are downloaded on first use, and MovieLens'
licence does not allow redistribution without permission. So this module simulates one,
seeded: items belong to genres; each user likes a few genres; a user rates the items they
are likely to have seen (popular items and their genres more often), and the rating
follows their taste plus noise, on a 1-5 scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GENRES = ["action", "comedy", "drama", "horror", "romance", "sci-fi", "documentary",
          "animation"]


@dataclass
class Ratings:
    users: np.ndarray      # (n,) user id per rating
    items: np.ndarray      # (n,) item id per rating
    values: np.ndarray     # (n,) float rating 1..5
    n_users: int
    item_genre: np.ndarray  # (n_items,) index into GENRES
    item_title: list[str]

    @property
    def n_items(self) -> int:
        return len(self.item_genre)

    def subset(self, mask: np.ndarray) -> Ratings:
        return Ratings(self.users[mask], self.items[mask], self.values[mask], self.n_users,
                       self.item_genre, self.item_title)


def generate(n_users: int = 1000, n_items: int = 500, per_user: tuple[int, int] = (20, 80),
             seed: int = 20261125) -> Ratings:
    """Simulated ratings; every user rates between ``per_user`` items."""
    rng = np.random.default_rng(seed)
    g = len(GENRES)
    genre = rng.integers(0, g, n_items)
    quality = rng.normal(0, 0.5, n_items)                       # some items are just better
    popularity = rng.pareto(1.5, n_items) + 0.1                  # long tail of exposure
    titles = [f"{GENRES[genre[i]]} title #{i}" for i in range(n_items)]
    users, items, values = [], [], []
    for u in range(n_users):
        taste = rng.normal(-0.6, 0.4, g)
        taste[rng.choice(g, int(rng.integers(1, 4)), replace=False)] += rng.uniform(1.2, 2.0)
        seen_weight = popularity * np.exp(0.8 * taste[genre])
        n = int(rng.integers(per_user[0], per_user[1] + 1))
        its = rng.choice(n_items, n, replace=False, p=seen_weight / seen_weight.sum())
        score = 3.2 + taste[genre[its]] + quality[its] + rng.normal(0, 0.6, n)
        users.append(np.full(n, u))
        items.append(its)
        values.append(np.clip(np.rint(score), 1, 5))
    return Ratings(np.concatenate(users), np.concatenate(items), np.concatenate(values),
                   n_users, genre, titles)


def split(r: Ratings, test_fraction: float = 0.2, seed: int = 0) -> tuple[Ratings, Ratings]:
    """Hide a random ``test_fraction`` of each user's ratings (train, test)."""
    rng = np.random.default_rng(seed)
    test = rng.random(len(r.values)) < test_fraction
    return r.subset(~test), r.subset(test)
