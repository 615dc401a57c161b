"""vecpg.datasets: exact ground truth, recall, the ann-benchmarks HDF5 reader, the demo sample.

Pure numpy (and h5py for the HDF5 tests); no database is needed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vecpg.datasets import (
    AnnDataset,
    decode_strings,
    encode_strings,
    exact_knn,
    load_demo_sample,
    load_hdf5,
    recall_at_k,
)
from vecpg.errors import InvalidArgument

DEV_DATASET = Path(__file__).resolve().parents[1].parent / (
    "shared/datasets/wordnet-minilm-384-angular.hdf5"
)
needs_dev_dataset = pytest.mark.skipif(
    not DEV_DATASET.exists(), reason=f"dev dataset not present at {DEV_DATASET}"
)


# ------------------------------------------------------------------------ brute force


def _brute(train: np.ndarray, queries: np.ndarray, metric: str) -> np.ndarray:
    """All pairwise distances, written the obvious way in float64 (independent of the
    GEMM formulation under test)."""
    t = train.astype(np.float64)
    q = queries.astype(np.float64)
    if metric == "angular":
        cos = (q @ t.T) / np.outer(np.linalg.norm(q, axis=1), np.linalg.norm(t, axis=1))
        return 1.0 - cos
    if metric == "euclidean":
        return np.sqrt(((q[:, None, :] - t[None, :, :]) ** 2).sum(-1))
    if metric == "dot":
        return -(q @ t.T)
    qb, tb = q[:, None, :] > 0, t[None, :, :] > 0
    if metric == "hamming":
        return (qb != tb).sum(-1).astype(np.float64)
    inter = (qb & tb).sum(-1)
    union = (qb | tb).sum(-1)
    return np.where(union > 0, 1.0 - inter / np.maximum(union, 1), 1.0)


def _data(metric: str, n: int, nq: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    if metric in ("hamming", "jaccard"):
        return rng.random((n, dim)) < 0.3, rng.random((nq, dim)) < 0.3
    return (rng.standard_normal((n, dim)).astype(np.float32),
            rng.standard_normal((nq, dim)).astype(np.float32))


METRICS = ["angular", "euclidean", "dot", "hamming", "jaccard"]


@pytest.mark.parametrize("metric", METRICS)
def test_exact_knn_matches_brute_force(metric: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Tiny blocks force several query and train blocks, so the running top-k merge is used.
    monkeypatch.setattr("vecpg.datasets._BLOCK_ELEMENTS", 7 * 37)
    monkeypatch.setattr("vecpg.datasets._QUERY_BLOCK", 7)
    train, queries = _data(metric, n=300, nq=20, dim=24, seed=1)
    k = 10
    ids, dist = exact_knn(train, queries, k, metric)
    assert ids.shape == dist.shape == (20, k)
    assert ids.dtype == np.int32 and dist.dtype == np.float32

    full = _brute(train, queries, metric)
    # Reference order: by distance, ties by smaller row number (the documented tie rule).
    ref_ids = np.lexsort((np.broadcast_to(np.arange(300), full.shape), full), axis=1)[:, :k]
    ref_d = np.take_along_axis(full, ref_ids, axis=1)
    np.testing.assert_allclose(dist, ref_d, rtol=1e-5, atol=1e-5)
    if metric in ("hamming", "jaccard"):
        # Integer-valued distances are computed exactly, so ties resolve identically.
        np.testing.assert_array_equal(ids, ref_ids)
    else:
        # Float rounding may swap true near-ties; the chosen rows must be equally close.
        np.testing.assert_allclose(np.take_along_axis(full, ids.astype(np.int64), axis=1),
                                   ref_d, rtol=1e-5, atol=1e-5)
        assert (ids == ref_ids).mean() > 0.99


def test_exact_knn_vecpg_metric_names_and_one_query() -> None:
    train, queries = _data("euclidean", n=50, nq=3, dim=8, seed=2)
    for ann, ours in [("angular", "COSINE"), ("euclidean", "l2"), ("dot", "IP")]:
        a = exact_knn(train, queries, 5, ann)
        b = exact_knn(train, queries, 5, ours)
        np.testing.assert_array_equal(a[0], b[0])
    one_ids, _ = exact_knn(train, queries[0], 5, "L2")  # a single 1-d query is one row
    np.testing.assert_array_equal(one_ids, exact_knn(train, queries[:1], 5, "L2")[0])
    with pytest.raises(InvalidArgument, match="unknown metric"):
        exact_knn(train, queries, 5, "manhattan")
    with pytest.raises(InvalidArgument):
        exact_knn(train, queries[:, :4], 5, "L2")
    with pytest.raises(InvalidArgument):
        exact_knn(train, queries, 0, "L2")


def test_exact_knn_mask_and_padding() -> None:
    train, queries = _data("euclidean", n=200, nq=5, dim=6, seed=3)
    mask = np.zeros(200, dtype=bool)
    mask[[3, 50, 77, 150]] = True  # fewer matching rows than k
    ids, dist = exact_knn(train, queries, 10, "euclidean", mask=mask)
    assert set(ids[:, :4].ravel()) <= {3, 50, 77, 150}
    assert (ids[:, 4:] == -1).all() and np.isinf(dist[:, 4:]).all()
    full = _brute(train, queries, "euclidean")
    expected = np.argsort(np.where(mask, full, np.inf), axis=1)[:, :4]
    np.testing.assert_array_equal(ids[:, :4], expected)

    # A broad mask: the answer is the unmasked answer among the matching rows.
    mask = np.arange(200) % 3 != 0
    ids, _ = exact_knn(train, queries, 10, "euclidean", mask=mask)
    assert mask[ids].all()
    np.testing.assert_array_equal(ids, np.argsort(np.where(mask, full, np.inf), axis=1)[:, :10])

    empty_ids, empty_d = exact_knn(train, queries, 3, "L2", mask=np.zeros(200, bool))
    assert (empty_ids == -1).all() and np.isinf(empty_d).all()
    with pytest.raises(InvalidArgument, match="mask"):
        exact_knn(train, queries, 3, "L2", mask=np.ones(10, bool))


def test_exact_knn_ties_go_to_smaller_ids() -> None:
    train = np.zeros((40, 4), dtype=bool)  # every row identical: all distances tie
    ids, dist = exact_knn(train, np.zeros((2, 4), bool), 5, "hamming")
    np.testing.assert_array_equal(ids, [[0, 1, 2, 3, 4]] * 2)
    assert (dist == 0).all()


def test_zero_vectors_do_not_produce_nan() -> None:
    train = np.array([[0.0, 0.0], [1.0, 0.0]], dtype=np.float32)
    _, dist = exact_knn(train, np.array([[1.0, 0.0]], np.float32), 2, "angular")
    np.testing.assert_allclose(dist, [[0.0, 1.0]], atol=1e-6)
    _, dist = exact_knn(np.zeros((2, 3), bool), np.zeros((1, 3), bool), 2, "jaccard")
    np.testing.assert_array_equal(dist, [[1.0, 1.0]])  # 0/0 -> 1, as pgvector


# ----------------------------------------------------------------------------- recall


def test_recall_at_k() -> None:
    true = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    assert recall_at_k(true, true, 4) == 1.0
    assert recall_at_k(np.array([[1, 2, 9, 9], [8, 7, 6, 5]]), true, 4) == pytest.approx(0.75)
    # Only the first k of either side count.
    assert recall_at_k(np.array([[4, 3, 2, 1], [5, 6, 0, 0]]), true, 2) == pytest.approx(0.5)
    # Found lists may be short, ragged, padded or contain duplicates.
    assert recall_at_k([[1, 1, 1], [5]], true, 4) == pytest.approx((1 / 4 + 1 / 4) / 2)
    assert recall_at_k(np.array([[1, -1, -1, -1], [-1, -1, -1, -1]]), true, 4) == 0.125


def test_recall_at_k_with_padded_truth() -> None:
    # A filtered query with only 2 matching rows: finding both is perfect recall.
    true = np.array([[10, 20, -1, -1], [1, 2, 3, 4]])
    found = np.array([[20, 10, -1, -1], [1, 2, 3, 4]])
    assert recall_at_k(found, true, 4) == 1.0
    assert recall_at_k(np.array([[20, -1, -1, -1], [1, 2, 3, 4]]), true, 4) == 0.75
    # -1 in found never matches -1 padding in truth.
    assert recall_at_k(np.array([[-1, -1, -1, -1], [1, 2, 3, 4]]), true, 4) == 0.5
    # Queries with no true neighbour are left out of the mean.
    assert recall_at_k(np.array([[7, 8], [1, 9]]), np.array([[-1, -1], [1, 2]]), 2) == 0.5
    assert recall_at_k(np.array([[7, 8]]), np.array([[-1, -1]]), 2) == 1.0
    with pytest.raises(InvalidArgument):
        recall_at_k(np.array([[1]]), np.array([[1], [2]]), 1)


def test_string_codec_roundtrip() -> None:
    values = ["café: a small restaurant", "", "naïve — ok", "x"]
    data, offsets = encode_strings(values)
    assert data.dtype == np.uint8 and len(offsets) == len(values) + 1
    assert list(decode_strings(data, offsets)) == values


# ------------------------------------------------------------------------------- HDF5


def _write_tiny_hdf5(path: Path, *, n: int = 120, nq: int = 9, dim: int = 8, k: int = 15) -> None:
    """A small file in the ann-benchmarks layout with vecpg's extensions: per-row attributes,
    utf-8 strings, filtered ground truth and the root ``filters`` attribute."""
    h5py = pytest.importorskip("h5py")
    rng = np.random.default_rng(7)
    train = rng.standard_normal((n, dim)).astype(np.float32)
    train /= np.linalg.norm(train, axis=1, keepdims=True)
    test = rng.standard_normal((nq, dim)).astype(np.float32)
    test /= np.linalg.norm(test, axis=1, keepdims=True)
    color = (np.arange(n) % 4).astype(np.uint8)  # filter color_2 selects 25% of rows
    nb, d = exact_knn(train, test, k, "angular")
    fnb, fd = exact_knn(train, test, k, "angular", mask=color == 2)
    strings = h5py.string_dtype("utf-8")
    with h5py.File(path, "w") as f:
        f.attrs["distance"] = "angular"
        f.attrs["dimension"] = dim
        f.attrs["filters"] = "color_2:0.2500 mystery:0.5"
        f.attrs["color_codes"] = "red=0 green=1 blue=2 white=3"
        f["train"], f["test"], f["neighbors"], f["distances"] = train, test, nb, d
        f["neighbors_color_2"], f["distances_color_2"] = fnb, fd
        # A filter whose condition cannot be derived from its name.
        f["neighbors_mystery"], f["distances_mystery"] = fnb, fd
        f["train_color"] = color
        f.create_dataset("train_text", data=[f"row {i} é" for i in range(n)], dtype=strings)
        f.create_dataset("test_text", data=[f"query {i}" for i in range(nq)], dtype=strings)
        f.create_dataset("colornames", data=["red", "green", "blue", "white"], dtype=strings)


def test_load_hdf5_reads_the_format(tmp_path: Path) -> None:
    path = tmp_path / "tiny-8-angular.hdf5"
    _write_tiny_hdf5(path)
    ds = load_hdf5(path)
    assert isinstance(ds, AnnDataset)
    assert ds.name == "tiny-8-angular" and ds.metric == "angular" and ds.vecpg_metric == "COSINE"
    assert ds.train.shape == (120, 8) and ds.train.dtype == np.float32
    assert ds.test.shape == (9, 8) and ds.dim == 8 and ds.k == 15
    assert ds.neighbors.dtype == np.int32 and ds.distances.dtype == np.float32
    assert ds.attrs["train_text"][5] == "row 5 é"  # utf-8 decoded to str
    assert isinstance(ds.attrs["test_text"][0], str)
    assert list(ds.attrs["colornames"]) == ["red", "green", "blue", "white"]
    assert ds.info["dimension"] == 8

    flt = ds.filters["color_2"]
    assert (flt.attr, flt.value, flt.condition) == ("color", 2, "train_color == 2")
    assert flt.selectivity == pytest.approx(0.25)
    assert flt.description == "train_color == 2 (blue)"
    assert ds.filter_mask("color_2").sum() == 30
    assert ds.filters["mystery"].attr is None and ds.filters["mystery"].selectivity == 0.5
    with pytest.raises(InvalidArgument):
        ds.filter_mask("mystery")


def test_load_hdf5_limits_recompute_truth(tmp_path: Path) -> None:
    path = tmp_path / "tiny.hdf5"
    _write_tiny_hdf5(path)
    full = load_hdf5(path)
    with pytest.warns(UserWarning, match="mystery"):
        ds = load_hdf5(path, limit_train=50, limit_test=4)
    assert ds.train.shape == (50, 8) and ds.test.shape == (4, 8)
    assert ds.attrs["train_color"].shape == (50,) and ds.attrs["test_text"].shape == (4,)
    assert ds.neighbors.shape == (4, 15) and ds.neighbors.max() < 50
    ref_ids, ref_d = exact_knn(full.train[:50], full.test[:4], 15, "angular")
    np.testing.assert_array_equal(ds.neighbors, ref_ids)
    np.testing.assert_allclose(ds.distances, ref_d)
    # The file's truth restricted to the kept rows is a prefix of the recomputed truth.
    for q in range(4):
        kept = full.neighbors[q][full.neighbors[q] < 50]
        np.testing.assert_array_equal(ds.neighbors[q, : len(kept)], kept)

    assert set(ds.filters) == {"color_2"}  # mystery cannot be recomputed: dropped
    mask = full.attrs["train_color"][:50] == 2
    f_ids, _ = exact_knn(full.train[:50], full.test[:4], 15, "angular", mask=mask)
    np.testing.assert_array_equal(ds.filters["color_2"].neighbors, f_ids)
    assert mask.sum() < 15 and (f_ids[:, mask.sum():] == -1).all()  # padded
    assert ds.filters["color_2"].selectivity == pytest.approx(mask.mean())

    # limit_test alone keeps the file's truth (rows sliced), limits past the end are no-ops.
    only_test = load_hdf5(path, limit_test=3, limit_train=10_000)
    np.testing.assert_array_equal(only_test.neighbors, full.neighbors[:3])
    assert set(only_test.filters) == {"color_2", "mystery"}
    with pytest.raises(InvalidArgument):
        load_hdf5(path, limit_train=0)


def test_load_hdf5_rejects_files_without_metric(tmp_path: Path) -> None:
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "bad.hdf5"
    with h5py.File(path, "w") as f:
        f["train"] = np.zeros((2, 2), np.float32)
    with pytest.raises(InvalidArgument, match="distance"):
        load_hdf5(path)


# -------------------------------------------------------------------------- demo sample


def test_demo_sample_loads_with_expected_shapes() -> None:
    ds = load_demo_sample()
    assert ds.metric == "angular" and ds.vecpg_metric == "COSINE"
    n, nq = ds.train.shape[0], ds.test.shape[0]
    assert 4000 <= n <= 6000 and 50 <= nq <= 200
    assert ds.train.dtype == ds.test.dtype == np.float32 and ds.dim == 384
    np.testing.assert_allclose(np.linalg.norm(ds.train, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(ds.test, axis=1), 1.0, atol=1e-5)
    assert ds.neighbors.shape == ds.distances.shape == (nq, 10)
    for name in ("train_text", "train_pos", "train_lexfile"):
        assert ds.attrs[name].shape == (n,)
    assert ds.attrs["test_text"].shape == (nq,)
    assert isinstance(ds.attrs["train_text"][0], str) and ": " in ds.attrs["train_text"][0]
    assert len(ds.attrs["lexnames"]) == 45 and ds.attrs["lexnames"][26] == "noun.state"
    assert set(ds.filters) == {"pos_0", "lexfile_26"}
    nouns = ds.filters["pos_0"]
    assert nouns.condition == "train_pos == 0" and 0.5 < (nouns.selectivity or 0) < 0.9
    state = ds.filters["lexfile_26"]
    assert state.description == "train_lexfile == 26 (noun.state)"
    assert (state.selectivity or 1) < 0.1 and ds.filter_mask("lexfile_26").sum() >= 10
    assert "Princeton" in ds.info["credits"]


def test_demo_sample_truth_is_exact() -> None:
    ds = load_demo_sample()
    ids, dist = exact_knn(ds.train, ds.test, 10, ds.metric)
    np.testing.assert_array_equal(ds.neighbors, ids)
    np.testing.assert_allclose(ds.distances, dist, atol=1e-6)
    for name, truth in ds.filters.items():
        mask = ds.filter_mask(name)
        f_ids, f_d = exact_knn(ds.train, ds.test, 10, ds.metric, mask=mask)
        np.testing.assert_array_equal(truth.neighbors, f_ids)
        np.testing.assert_allclose(truth.distances, f_d, atol=1e-6)
        assert mask[truth.neighbors].all()
        assert truth.selectivity == pytest.approx(mask.mean(), abs=1e-4)


# ----------------------------------------------------------------- the real dev dataset


@pytest.mark.slow
@needs_dev_dataset
def test_dev_dataset_truth_matches_exact_knn() -> None:
    ds = load_hdf5(DEV_DATASET, limit_test=50)
    assert ds.train.shape == (55_000, 384) and ds.k == 100
    assert set(ds.filters) == {"lexfile_19", "lexfile_26", "lexfile_0", "pos_0"}
    ids, dist = exact_knn(ds.train, ds.test, 100, ds.metric)
    np.testing.assert_allclose(dist, ds.distances, atol=1e-5)
    assert recall_at_k(ids, ds.neighbors, 100) > 0.999  # only float near-ties may swap
    np.testing.assert_array_equal(ids[:, 0], ds.neighbors[:, 0])
    truth = ds.filters["lexfile_19"]
    f_ids, _ = exact_knn(ds.train, ds.test, 100, ds.metric, mask=ds.filter_mask("lexfile_19"))
    assert recall_at_k(f_ids, truth.neighbors, 100) > 0.999
    assert truth.selectivity == pytest.approx(ds.filter_mask("lexfile_19").mean(), abs=1e-4)


@pytest.mark.slow
@needs_dev_dataset
def test_dev_dataset_limit_train_recomputes_consistent_truth() -> None:
    full = load_hdf5(DEV_DATASET, limit_test=100)
    limit = 20_000
    ds = load_hdf5(DEV_DATASET, limit_train=limit, limit_test=100)
    assert ds.train.shape == (limit, 384) and ds.attrs["train_text"].shape == (limit,)
    np.testing.assert_array_equal(ds.train, full.train[:limit])

    def agreement(recomputed: np.ndarray, file_truth: np.ndarray) -> float:
        """Share of the file's truth among the kept rows that the recomputed truth lists at
        the same rank: every kept row in the file's top-100 is also a top-100 row of the
        subset, and they come first, in the same order."""
        same = total = 0
        for q in range(len(file_truth)):
            kept = file_truth[q][(file_truth[q] >= 0) & (file_truth[q] < limit)]
            same += int((recomputed[q, : len(kept)] == kept).sum())
            total += len(kept)
        assert total > 0
        return same / total

    assert agreement(ds.neighbors, full.neighbors) > 0.999
    np.testing.assert_array_equal(ds.neighbors[:, 0][full.neighbors[:, 0] < limit],
                                  full.neighbors[:, 0][full.neighbors[:, 0] < limit])
    assert set(ds.filters) == set(full.filters)
    for name, truth in ds.filters.items():
        assert agreement(truth.neighbors, full.filters[name].neighbors) > 0.999
        mask = ds.attrs[f"train_{truth.attr}"] == truth.value
        assert truth.selectivity == pytest.approx(mask.mean())
        valid = truth.neighbors >= 0
        assert mask[truth.neighbors[valid]].all()
        # Where fewer than 100 rows match, the rest is -1 padding.
        assert (truth.neighbors[:, mask.sum():] == -1).all()
