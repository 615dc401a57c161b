"""examples/recommender on a small generated set: ALS beats predicting the mean, and the
one-statement recommendation equals a numpy top-k over unseen items, never returning an
item the user has rated."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import numpy as np

import vecpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the examples package

from examples.recommender import als, store
from examples.recommender.ratings import GENRES, generate, split


def test_als_and_recommendations(dsn: str) -> None:
    r = generate(80, 60, per_user=(10, 30))
    assert generate(80, 60, per_user=(10, 30)).values.tolist() == r.values.tolist()  # seeded
    assert set(np.unique(r.values)) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    train, test = split(r)
    f = als.fit(train, factors=6, iterations=8)
    base = float(np.sqrt(np.mean((test.values - train.values.mean()) ** 2)))
    assert als.rmse(f, train) < als.rmse(f, test) < base
    u_vec, i_vec = f.user_vectors(), f.item_vectors()
    users = np.arange(r.n_users)
    items = np.arange(r.n_items)
    # the inner product ranks items as the model's predicted rating does
    pred = f.predict(np.repeat(users[:3], r.n_items), np.tile(items, 3)).reshape(3, -1)
    assert np.allclose(pred - pred.mean(1, keepdims=True),
                       (u_vec[:3] @ i_vec.T) - (u_vec[:3] @ i_vec.T).mean(1, keepdims=True),
                       atol=1e-4)

    name = "rec_" + uuid.uuid4().hex[:10]
    with vecpg.connect(dsn) as client:
        store.create(client, name, train, f)
        try:
            for u in range(0, r.n_users, 9):
                seen = set(train.items[train.users == u].tolist())
                got = store.recommend(client, name, u, k=8)
                assert not seen & {g.item for g in got}
                scores = (u_vec[u] @ i_vec.T).astype(np.float64)
                unseen = [i for i in np.argsort(-scores, kind="stable") if i not in seen][:8]
                assert np.allclose([g.score for g in got], scores[unseen], atol=1e-4)
                assert [g.item for g in got][:3] == unseen[:3] or \
                    np.allclose(scores[[g.item for g in got][:3]], scores[unseen[:3]], atol=1e-5)
                drama = store.recommend(client, name, u, k=5, genre="drama")
                assert drama and all(g.genre == "drama" for g in drama)
                assert not seen & {g.item for g in drama}
                pop = store.popular(client, name, u, k=5)
                assert len(pop) == 5 and not seen & set(pop)
        finally:
            store.drop(client, name)
    assert "drama" in GENRES
