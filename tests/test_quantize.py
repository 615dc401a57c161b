"""The numeric core of the quantized companion indexes (vecpg.quantize): pure numpy, no database."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from vecpg import quantize as qz

DIM = 32


def clustered(n: int, n_centers: int = 40, seed: int = 0, dim: int = DIM,
              spread: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = np.random.default_rng(1234).normal(size=(n_centers, dim)) * 4.0
    x = centers[rng.integers(n_centers, size=n)] + rng.normal(scale=spread, size=(n, dim))
    return x.astype(np.float32)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    return clustered(4000, seed=1), clustered(50, seed=2)


def exact_top(x: np.ndarray, q: np.ndarray, metric: str, k: int) -> np.ndarray:
    if metric == "COSINE":
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
    if metric == "L2":
        score = -((q[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    else:
        score = q @ x.T
    return np.argsort(-score, axis=1, kind="stable")[:, :k]


def candidate_recall(keys: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(keys[i].tolist()) & set(truth[i].tolist())) / truth.shape[1]
                          for i in range(len(truth))]))


PARAMS = {
    "IVF_SQ8": {"nlist": 32},
    "IVF_PQ": {"nlist": 32, "m": 8},
    "ANNOY": {"n_trees": 10},
}
SEARCH = {"IVF_SQ8": {"nprobe": 16}, "IVF_PQ": {"nprobe": 16}, "ANNOY": {"search_k": 20000}}


_BUILT: dict[tuple[str, str], tuple[qz.Model, qz.Searcher | qz.AnnoyModel]] = {}


def build(kind: str, x: np.ndarray, metric: str) -> tuple[qz.Model, qz.Searcher | qz.AnnoyModel]:
    """Model and searcher over the ``data`` fixture, trained once per (kind, metric)."""
    if (kind, metric) not in _BUILT:
        keys = np.arange(len(x), dtype=np.int64) + 1000  # keys are not positions
        model = qz.train(kind, x, metric, PARAMS[kind], keys=keys if kind == "ANNOY" else None)
        if isinstance(model, qz.AnnoyModel):
            _BUILT[kind, metric] = (model, model)
        else:
            _BUILT[kind, metric] = (model, qz.Searcher(model, *model.encode(x), keys))
    return _BUILT[kind, metric]


def test_kmeans_finds_well_separated_clusters() -> None:
    rng = np.random.default_rng(5)
    centers = np.eye(8, DIM, dtype=np.float32) * 50.0
    x = (centers[rng.integers(8, size=4000)] + rng.normal(size=(4000, DIM))).astype(np.float32)
    found = qz.kmeans(x, 8, seed=3)
    assert found.shape == (8, DIM) and found.dtype == np.float32
    # Every true center has exactly one centroid close to it.
    d = np.linalg.norm(centers[:, None, :] - found[None, :, :], axis=-1)
    assert sorted(d.argmin(axis=1).tolist()) == list(range(8))
    assert d.min(axis=1).max() < 1.0


def test_kmeans_deterministic_and_handles_duplicates() -> None:
    x = clustered(3000)
    a = qz.kmeans(x, 20, seed=7)
    assert np.array_equal(a, qz.kmeans(x, 20, seed=7))
    assert not np.array_equal(a, qz.kmeans(x, 20, seed=8))
    # Fewer distinct points than k: no NaN, every centroid is one of the points.
    dup = np.repeat(np.eye(3, DIM, dtype=np.float32), 10, axis=0)
    c = qz.kmeans(dup, 5, seed=0)
    assert np.isfinite(c).all()
    assert (np.abs(c[:, None, :] - dup[None, :3 * 10:10, :]).sum(-1).min(axis=1) < 1e-6).all()
    calls: list[tuple[int, int]] = []
    qz.kmeans(x, 4, iters=5, progress=lambda d, t: calls.append((d, t)))
    assert calls and calls[-1] == (5, 5)


@pytest.mark.parametrize("kind", ["IVF_SQ8", "IVF_PQ"])
def test_training_is_deterministic(kind: str, data: tuple[np.ndarray, np.ndarray]) -> None:
    x = data[0][:1000]
    a = qz.train(kind, x, "L2", PARAMS[kind], seed=3)
    b = qz.train(kind, x, "L2", PARAMS[kind], seed=3)
    assert a.to_bytes() == b.to_bytes()
    assert np.array_equal(a.encode(x)[1], b.encode(x)[1])


def test_sq8_roundtrip_error_is_within_half_a_step(data: tuple[np.ndarray, np.ndarray]) -> None:
    x, _ = data
    model = qz.train("IVF_SQ8", x, "L2", {"nlist": 8})
    assert isinstance(model, qz.IvfSq8Model)
    list_no, codes = model.encode(x)
    assert codes.shape == (len(x), DIM) and codes.dtype == np.uint8 and model.code_size == DIM
    assert list_no.dtype == np.int32 and list_no.max() < 8
    err = np.abs(model.decode(codes) - x)
    assert (err <= model.scale / 2 + 1e-5).all()
    # Out-of-range values clip to the end codes instead of wrapping around.
    far = np.full((1, DIM), 1e6, dtype=np.float32)
    assert (model.encode(far)[1] == 255).all()


@pytest.mark.parametrize("metric", ["L2", "IP", "COSINE"])
@pytest.mark.parametrize("kind,params", [("IVF_PQ", {"nlist": 16, "m": 8}),
                                         ("IVF_PQ", {"nlist": 16, "m": 8, "by_residual": False}),
                                         ("IVF_SQ8", {"nlist": 16})])
def test_adc_equals_distance_to_reconstruction(kind: str, params: dict, metric: str,
                                               data: tuple[np.ndarray, np.ndarray]) -> None:
    x, q = data
    x = x[:1000]
    model = qz.train(kind, x, metric, params)
    list_no, codes = model.encode(x)
    searcher = qz.Searcher(model, list_no, codes, np.arange(len(x)))
    keys, approx = searcher.search(q[:5], 50, {"nprobe": 16})  # all lists: every row scored
    assert keys.shape == approx.shape == (5, 50)
    if isinstance(model, qz.IvfPqModel):
        rec = model.decode(codes, list_no)
    else:
        assert isinstance(model, qz.IvfSq8Model)
        rec = model.decode(codes)
    qq = model.prepare(q[:5])
    for i in range(5):
        r = rec[keys[i]]
        want = ((qq[i] - r) ** 2).sum(1) if metric == "L2" else r @ qq[i]
        if metric == "COSINE":  # scored as L2 between unit query and reconstruction
            want = 1.0 - 0.5 * ((qq[i] - r) ** 2).sum(1)
        np.testing.assert_allclose(approx[i], want, rtol=1e-4, atol=1e-4)
        # ... and they come best first, and are the best 50 of all rows.
        full = ((qq[i] - rec) ** 2).sum(1) if metric != "IP" else -(rec @ qq[i])
        assert set(keys[i].tolist()) == set(np.argsort(full, kind="stable")[:50].tolist()) or \
            np.isclose(np.sort(full)[49], np.sort(full)[50], rtol=1e-5)
    step = np.diff(approx, axis=1)
    assert (step >= -1e-6).all() if metric == "L2" else (step <= 1e-6).all()


@pytest.mark.parametrize("metric", ["L2", "IP", "COSINE"])
@pytest.mark.parametrize("kind", ["IVF_SQ8", "IVF_PQ", "ANNOY"])
def test_candidate_recall_at_high_nprobe(kind: str, metric: str,
                                         data: tuple[np.ndarray, np.ndarray]) -> None:
    x, q = data
    _, searcher = build(kind, x, metric)
    keys, approx = searcher.search(q, 100, SEARCH[kind])
    assert keys.shape == (len(q), 100) and keys.dtype == np.int64
    assert approx.dtype == np.float32
    truth = exact_top(x, q, metric, 10) + 1000
    assert candidate_recall(keys, truth) >= 0.95


def test_pq_residual_encoding_helps(data: tuple[np.ndarray, np.ndarray]) -> None:
    x, q = data
    truth = exact_top(x, q, "L2", 10)
    recall = {}
    for residual in (True, False):
        model = qz.train("IVF_PQ", x, "L2", {"nlist": 32, "m": 4, "by_residual": residual})
        searcher = qz.Searcher(model, *model.encode(x), np.arange(len(x)))
        recall[residual] = candidate_recall(searcher.search(q, 20, {"nprobe": 8})[0], truth)
    assert recall[True] > recall[False]


@pytest.mark.parametrize("kind", ["IVF_SQ8", "IVF_PQ"])
@pytest.mark.parametrize("merge_min_rows", [4096, 600])
def test_add_makes_new_rows_findable(kind: str, merge_min_rows: int,
                                     data: tuple[np.ndarray, np.ndarray]) -> None:
    x, q = data
    model, fresh = build(kind, x, "L2")  # all rows at construction, keys offset by 1000
    searcher = qz.Searcher(model, *model.encode(x[:1000]), np.arange(1000) + 1000)
    searcher.merge_min_rows = merge_min_rows  # 4096: all adds stay buffered; 600: merges
    before = searcher.nbytes()
    for s in range(1000, len(x), 500):
        searcher.add(*model.encode(x[s:s + 500]), np.arange(s, s + 500) + 1000)
    assert (searcher._pend_rows == 3000) == (merge_min_rows == 4096)
    assert len(searcher) == len(x) and searcher.nbytes() > before
    keys, _ = searcher.search(q, 100, {"nprobe": 16})
    assert candidate_recall(keys, exact_top(x, q, "L2", 10) + 1000) >= 0.95
    # A query equal to an added row finds it first.
    keys, _ = searcher.search(x[[1100, 3999]], 1, {"nprobe": 4})
    assert keys[:, 0].tolist() == [2100, 4999]
    # Same results as a searcher built with every row at once.
    k1, d1 = fresh.search(q, 30, {"nprobe": 8})
    k2, d2 = searcher.search(q, 30, {"nprobe": 8})
    np.testing.assert_allclose(d1, d2, rtol=1e-5)
    assert candidate_recall(k2, k1) > 0.99


def test_fewer_rows_than_candidates_pads_with_minus_one() -> None:
    x = clustered(300)
    model = qz.train("IVF_SQ8", x, "L2", {"nlist": 4})
    list_no, codes = model.encode(x)
    searcher = qz.Searcher(model, list_no, codes, np.arange(300))
    keys, dist = searcher.search(x[:3], 1000, {"nprobe": 1})
    per_row = (keys >= 0).sum(axis=1)
    assert keys.shape[1] == per_row.max() < 300
    assert np.isinf(dist[keys < 0]).all()
    # A 1-d query is one query: the result is still 2-d.
    assert searcher.search(x[0], 5, {"nprobe": 4})[0].shape == (1, 5)
    # An empty searcher answers with zero columns, then finds rows once they are added.
    empty = qz.Searcher(model, np.empty(0, np.int32), np.empty((0, DIM), np.uint8),
                        np.empty(0, np.int64))
    assert empty.search(x[:2], 5, {"nprobe": 4})[0].shape == (2, 0)
    empty.add(list_no[:10], codes[:10], np.arange(10))
    assert empty.search(x[:1], 1, {"nprobe": 4})[0].tolist() == [[0]]


@pytest.mark.parametrize("kind", ["IVF_SQ8", "IVF_PQ", "ANNOY"])
def test_bytes_roundtrip_gives_identical_results(kind: str,
                                                 data: tuple[np.ndarray, np.ndarray]) -> None:
    x, q = data
    model, searcher = build(kind, x, "COSINE")
    blob = model.to_bytes()
    again = qz.model_from_bytes(blob)
    assert type(again) is type(model) and again.metric == "COSINE" and again.dim == DIM
    assert again.to_bytes() == blob and again.model_bytes() == model.model_bytes()
    if isinstance(again, qz.AnnoyModel):
        other: qz.Searcher | qz.AnnoyModel = again
    else:
        list_no, codes = model.encode(x)
        assert np.array_equal(again.encode(x)[1], codes)
        other = qz.Searcher(again, list_no, codes, np.arange(len(x)) + 1000)
    k1, d1 = searcher.search(q, 50, SEARCH[kind])
    k2, d2 = other.search(q, 50, SEARCH[kind])
    assert np.array_equal(k1, k2) and np.array_equal(d1, d2)


def test_annoy_is_deterministic_and_immutable(data: tuple[np.ndarray, np.ndarray]) -> None:
    x = data[0]
    a = qz.build_annoy(x, np.arange(len(x)), "L2", 5, seed=4)
    b = qz.build_annoy(x, np.arange(len(x)), "L2", 5, seed=4)
    assert a.to_bytes() == b.to_bytes()
    assert not a.can_encode
    with pytest.raises(NotImplementedError):
        a.encode(x[:1])
    keys, dist = a.search(x[:3], 5, {"search_k": 5000})
    assert keys[:, 0].tolist() == [0, 1, 2]
    np.testing.assert_allclose(dist[:, 0], 0.0, atol=1e-4)  # squared L2 to itself


@pytest.mark.parametrize("kind,params,message", [
    ("IVF_PQ", {"nlist": 8, "m": 7}, "divide"),
    ("IVF_PQ", {"nlist": 8, "m": 8, "nbits": 4}, "nbits"),
    ("IVF_PQ", {"nlist": 8}, "'m' is required"),
    ("IVF_SQ8", {"nlist": 100_000}, "nlist"),
    ("IVF_SQ8", {"nlist": 0}, "nlist"),
    ("IVF_SQ8", {"nlist": "8"}, "integer"),
    ("IVF_SQ8", {"nlists": 8}, "unknown"),
    ("ANNOY", {"n_trees": 0}, "n_trees"),
    ("HNSW", {}, "index type"),
])
def test_bad_params_raise_value_error(kind: str, params: dict, message: str) -> None:
    x = clustered(1000)
    with pytest.raises(ValueError, match=message):
        qz.train(kind, x, "L2", params)


def test_bad_inputs_raise_value_error() -> None:
    x = clustered(1000)
    with pytest.raises(ValueError, match="metric"):
        qz.train("IVF_SQ8", x, "HAMMING", {"nlist": 4})
    with pytest.raises(ValueError, match="256 training rows"):
        qz.train("IVF_PQ", x[:100], "L2", {"nlist": 4, "m": 8})
    with pytest.raises(ValueError, match="NaN"):
        qz.train("IVF_SQ8", np.full((10, 4), np.nan), "L2", {"nlist": 2})
    model = qz.train("IVF_SQ8", x, "L2", {"nlist": 4})
    searcher = qz.Searcher(model, *model.encode(x), np.arange(len(x)))
    with pytest.raises(ValueError, match="dimension"):
        searcher.search(np.zeros((1, DIM + 1)), 5, {"nprobe": 1})
    with pytest.raises(ValueError, match="nprobe"):
        searcher.search(x[:1], 5, {"nprobe": 0})
    with pytest.raises(ValueError, match="n_candidates"):
        searcher.search(x[:1], 0, {})
    with pytest.raises(ValueError, match="list numbers"):
        searcher.add(np.array([9]), np.zeros((1, DIM), np.uint8), np.array([1]))
    with pytest.raises(ValueError, match="k must be"):
        qz.kmeans(x, 0)


def test_progress_reaches_total(data: tuple[np.ndarray, np.ndarray]) -> None:
    x, _ = data
    calls: list[tuple[int, int]] = []
    qz.train("IVF_PQ", x[:1000], "L2", {"nlist": 8, "m": 4},
             progress=lambda d, t: calls.append((d, t)))
    assert calls[-1][0] == calls[-1][1] > 4
    assert all(a[0] <= b[0] for a, b in itertools.pairwise(calls))


@pytest.mark.parametrize("metric", ["L2", "IP", "COSINE"])
@pytest.mark.parametrize("kind,params", [("IVF_SQ8", {"nlist": 16}),
                                         ("IVF_PQ", {"nlist": 16, "m": 8}),
                                         ("IVF_PQ", {"nlist": 16, "m": 8, "by_residual": False})])
def test_compiled_scan_equals_numpy(kind: str, params: dict, metric: str,
                                    data: tuple[np.ndarray, np.ndarray]) -> None:
    """The numba kernels (vecpg._jit) score exactly what numpy scores, one query a call
    (the no-BLAS path) and batched, with rows in the append buffer too."""
    pytest.importorskip("numba")
    assert qz.kernels() is not None
    x, q = data
    model = qz.train(kind, x[:1500], metric, params)
    searcher = qz.Searcher(model, *model.encode(x[:1500]), np.arange(1500))
    searcher.add(*model.encode(x[1500:1700]), np.arange(1500, 1700))  # stays buffered
    assert searcher._pend_rows == 200
    for batch in (q[:1], q[1:2], q[:20]):
        got = {}
        for jit in (True, False):
            searcher.use_kernels = jit
            got[jit] = searcher.search(batch, 40, {"nprobe": 6})
        np.testing.assert_allclose(got[True][1], got[False][1], rtol=1e-4, atol=1e-4)
        assert candidate_recall(got[True][0], got[False][0][:, :30]) >= 0.99
    # more candidates asked for than the probed lists hold: the kernels' heap never fills,
    # and every row of the probed lists comes back, best first, as numpy has them
    for jit in (True, False):
        searcher.use_kernels = jit
        got[jit] = searcher.search(q[:3], 5000, {"nprobe": 2})
    assert got[True][0].shape == got[False][0].shape and got[True][0].shape[1] < 1700
    assert (np.sort(got[True][0], axis=1) == np.sort(got[False][0], axis=1)).all()
    np.testing.assert_allclose(got[True][1], got[False][1], rtol=1e-4, atol=1e-4)
