"""Matrix factorization by alternating least squares, in numpy.

Model: rating(u, i) ~ mu + b_u + b_i + p_u . q_i, ridge-regularized. For recommending,
only the per-user ranking matters, so mu + b_u drop out and the score is
p_u . q_i + b_i = [p_u, 1] . [q_i, b_i]: one inner product of a user vector and an item
vector (``user_vectors`` / ``item_vectors``), which vecpg ranks with metric IP.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .ratings import Ratings


@dataclass
class Factors:
    mu: float
    user_bias: np.ndarray
    item_bias: np.ndarray
    p: np.ndarray          # (users, f)
    q: np.ndarray          # (items, f)

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return (self.mu + self.user_bias[users] + self.item_bias[items]
                + np.einsum("ij,ij->i", self.p[users], self.q[items]))

    def user_vectors(self) -> np.ndarray:
        """[p_u, 1]: inner product with ``item_vectors`` = p_u . q_i + b_i."""
        return np.hstack([self.p, np.ones((len(self.p), 1))]).astype(np.float32)

    def item_vectors(self) -> np.ndarray:
        return np.hstack([self.q, self.item_bias[:, None]]).astype(np.float32)


def fit(r: Ratings, factors: int = 16, reg: float = 5.0, iterations: int = 12,
        seed: int = 0) -> Factors:
    """ALS on explicit ratings: each step solves one ridge regression per user (items
    fixed), then one per item (users fixed), biases included as a constant feature.
    Item biases are shrunk like the factors, so rarely rated items are not over-trusted."""
    rng = np.random.default_rng(seed)
    mu = float(r.values.mean())
    p = rng.normal(0, 0.1, (r.n_users, factors))
    q = rng.normal(0, 0.1, (r.n_items, factors))
    bu = np.zeros(r.n_users)
    bi = np.zeros(r.n_items)
    by_user = _groups(r.users, r.n_users)
    by_item = _groups(r.items, r.n_items)
    shrink_items = reg * np.eye(factors + 1)
    shrink_users = shrink_items.copy()
    shrink_users[-1, -1] = 1e-6  # a user's bias only shifts their scale: barely shrunk
    for _ in range(iterations):
        for u, idx in enumerate(by_user):          # [p_u, b_u] from items' [q_i, 1]
            x = np.hstack([q[r.items[idx]], np.ones((len(idx), 1))])
            y = r.values[idx] - mu - bi[r.items[idx]]
            sol = np.linalg.solve(x.T @ x + shrink_users, x.T @ y)
            p[u], bu[u] = sol[:-1], sol[-1]
        for i, idx in enumerate(by_item):          # [q_i, b_i] from users' [p_u, 1]
            if len(idx) == 0:
                q[i], bi[i] = 0.0, 0.0
                continue
            x = np.hstack([p[r.users[idx]], np.ones((len(idx), 1))])
            y = r.values[idx] - mu - bu[r.users[idx]]
            sol = np.linalg.solve(x.T @ x + shrink_items, x.T @ y)
            q[i], bi[i] = sol[:-1], sol[-1]
    return Factors(mu, bu, bi, p, q)


def _groups(keys: np.ndarray, n: int) -> list[np.ndarray]:
    order = np.argsort(keys, kind="stable")
    bounds = np.searchsorted(keys[order], np.arange(n + 1))
    return [order[bounds[k]:bounds[k + 1]] for k in range(n)]


def rmse(f: Factors, r: Ratings) -> float:
    return float(np.sqrt(np.mean((f.predict(r.users, r.items) - r.values) ** 2)))
