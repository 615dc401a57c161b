"""A recommender: matrix factorization in numpy, recommendations by inner product in vecpg,
already-seen items excluded in the same SQL query. ``python -m examples.recommender``."""
