"""examples/images on 400 digits: search returns the exact neighbours with their pixels
(one join), precision@k equals a numpy reference, and the PNG is drawn."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import numpy as np

import vecpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the examples package

from examples.images import digits


def test_search_by_image_and_precision(dsn: str, tmp_path: Path) -> None:
    data = digits.load(400)
    ids = np.arange(100, 400)
    stored = digits.Digits(data.images[100:], data.labels[100:])
    emb = digits.Embedder(stored.images, 16)
    x = emb(stored.images)
    q = emb(data.images[:100])
    name = "img_" + uuid.uuid4().hex[:10]
    with vecpg.connect(dsn) as client:
        digits.create(client, name, ids, stored, x, hnsw=False)  # exact, to compare
        try:
            p = digits.precision_at_k(client, name, q, data.labels[:100], k=5)
            nbrs = [digits.search_by_image(client, name, v, 4) for v in q[:10]]
        finally:
            digits.drop(client, name)
    d = np.linalg.norm(q[:, None, :] - x[None, :, :], axis=2)
    nn = np.argsort(d, axis=1, kind="stable")[:, :5]
    ref = np.mean(stored.labels[nn] == data.labels[:100, None])
    assert abs(p - ref) <= 0.01  # a float near-tie may swap a 5th neighbour
    assert p > 0.85
    for i, row in enumerate(nbrs):
        assert np.allclose([n.distance for n in row], np.sort(d[i])[:4], atol=1e-4)
        for n in row:
            j = n.id - 100
            assert n.label == stored.labels[j]
            assert np.array_equal(n.image, stored.images[j])  # pixels came from the join
    png = tmp_path / "grid.png"
    digits.draw([(data.images[i], int(data.labels[i])) for i in range(10)], nbrs, str(png))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 10_000


def test_raw_pixel_embedding() -> None:
    data = digits.load(20)
    emb = digits.Embedder(data.images, 0)
    v = emb(data.images)
    assert emb.dim == 64 and v.shape == (20, 64) and v.dtype == np.float32
    assert v.min() >= 0 and v.max() <= 1 and np.allclose(v[3] * 16, data.images[3].ravel())
