"""Benchmark datasets: the ann-benchmarks HDF5 format, exact ground truth and recall.

Three things live here because benchmarks, tests and ``vecpg demo`` all need them and none
of them needs a database:

* :func:`load_hdf5` reads a file in the ann-benchmarks convention (``train``, ``test``,
  ``neighbors``, ``distances``, root attr ``distance``) plus the extensions of vecpg's dev
  dataset (per-row attributes ``train_<x>``/``test_<x>`` and filtered ground truth
  ``neighbors_<filter>``/``distances_<filter>``) into an :class:`AnnDataset`;
* :func:`exact_knn` is the numpy brute force that produces ground truth, blocked so that
  memory stays bounded whatever the sizes, with ties broken by the smaller row number so
  that ground truth is deterministic;
* :func:`recall_at_k` scores search results against that ground truth, including filtered
  queries that have fewer than k true neighbours.

:func:`load_demo_sample` loads the small WordNet/MiniLM sample packaged in ``vecpg.data``
(see ``vecpg/data/README.md`` for what it is and its credits).

Distances follow pgvector's operators so that ground truth can be compared with what the
database returns: angular = cosine distance ``1 - cos`` (``<=>``), euclidean = L2, not
squared (``<->``), dot = negative inner product (``<#>``), hamming = number of differing
bits (``<~>``), jaccard = ``1 - |a & b| / |a | b|`` (``<%>``, 1 for two empty sets).
These are distances (smaller = closer) for every metric; vecpg's search returns COSINE and
IP as similarities (``1 - distance`` and ``-distance``, see :mod:`vecpg.metrics`).
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InvalidArgument

__all__ = [
    "DEMO_SAMPLE_FILE",
    "AnnDataset",
    "FilterTruth",
    "exact_knn",
    "load_demo_sample",
    "load_hdf5",
    "recall_at_k",
]

#: ann-benchmarks metric name -> vecpg metric name.
ANN_TO_VECPG_METRIC: dict[str, str] = {
    "angular": "COSINE",
    "euclidean": "L2",
    "dot": "IP",
    "jaccard": "JACCARD",
    "hamming": "HAMMING",
}
_VECPG_TO_ANN_METRIC = {v: k for k, v in ANN_TO_VECPG_METRIC.items()}
_BINARY_METRICS = frozenset({"hamming", "jaccard"})

#: File name of the packaged demo sample inside ``vecpg.data``.
DEMO_SAMPLE_FILE = "wordnet_sample.npz"

# Filter names in the dev dataset are "<attr>_<integer>" meaning train_<attr> == integer.
_FILTER_NAME_RE = re.compile(r"^(?P<attr>[A-Za-z_][A-Za-z0-9_]*?)_(?P<value>-?\d+)$")

# Elements of one (query block x train block) distance matrix. argpartition allocates an
# int64 index array of the same shape, so the peak is ~12 bytes per element: ~50 MB.
_BLOCK_ELEMENTS = 1 << 22
_QUERY_BLOCK = 256

# Suffixes under which the packaged sample stores a string array without pickle: the
# concatenated utf-8 bytes and the n+1 byte offsets of the strings.
_UTF8_SUFFIX = "__utf8"
_OFFSETS_SUFFIX = "__offsets"


@dataclass
class FilterTruth:
    """Exact ground truth of the queries restricted to the train rows matching one filter.

    ``neighbors`` are -1 padded and ``distances`` +inf padded where fewer than k train
    rows match (the padding sorts last and cannot be mistaken for a real distance).
    ``attr``/``value`` are set when the condition is the equality ``train_<attr> == value``,
    which is what lets :func:`load_hdf5` recompute the truth on a subset of the rows.
    """

    name: str
    neighbors: np.ndarray
    distances: np.ndarray
    attr: str | None = None
    value: int | None = None
    condition: str | None = None
    selectivity: float | None = None
    description: str | None = None


@dataclass
class AnnDataset:
    """A dataset in the ann-benchmarks shape, with the per-row attributes around it.

    ``train``/``test`` are float32 for the float metrics and bool (one column per bit) for
    hamming/jaccard. ``neighbors`` (int32) and ``distances`` (float32) are the exact top-K
    of each test row among the train rows. ``attrs`` holds every other array of the source,
    keyed by its name there: per-row ones named ``train_<x>``/``test_<x>`` (aligned with
    ``train``/``test``), and others such as ``lexnames``. String arrays are object arrays
    of ``str``. ``info`` holds the file's root attributes (provenance, notes).
    """

    name: str
    metric: str
    train: np.ndarray
    test: np.ndarray
    neighbors: np.ndarray
    distances: np.ndarray
    attrs: dict[str, np.ndarray] = field(default_factory=dict)
    filters: dict[str, FilterTruth] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def vecpg_metric(self) -> str:
        """The vecpg metric name (COSINE, L2, IP, JACCARD, HAMMING) of ``metric``."""
        return ANN_TO_VECPG_METRIC[self.metric]

    @property
    def dim(self) -> int:
        """Vector dimension."""
        return int(self.train.shape[1])

    @property
    def k(self) -> int:
        """Depth of the stored ground truth (columns of ``neighbors``)."""
        return int(self.neighbors.shape[1])

    def filter_mask(self, name: str) -> np.ndarray:
        """Boolean mask over the train rows that match filter ``name``."""
        truth = self.filters[name]
        if truth.attr is None or truth.value is None:
            raise InvalidArgument(f"filter {name!r} has no condition that can be evaluated")
        return np.asarray(self.attrs[f"train_{truth.attr}"] == truth.value)


# --------------------------------------------------------------------------- metrics


def _canonical_metric(metric: str) -> str:
    """ann-benchmarks name for ``metric``, given in either naming (case-insensitive)."""
    m = metric.strip()
    if m.lower() in ANN_TO_VECPG_METRIC:
        return m.lower()
    if m.upper() in _VECPG_TO_ANN_METRIC:
        return _VECPG_TO_ANN_METRIC[m.upper()]
    known = sorted(ANN_TO_VECPG_METRIC) + sorted(_VECPG_TO_ANN_METRIC)
    raise InvalidArgument(f"unknown metric {metric!r}; expected one of {', '.join(known)}")


def _row_stats(x: np.ndarray, metric: str) -> np.ndarray | None:
    """Per-row quantity the block distance needs besides the dot product, computed once.

    angular: inverse norms (0 for zero vectors, whose distance is then 1, not NaN);
    euclidean: squared norms; hamming/jaccard: bit counts; dot: nothing.
    """
    if metric == "dot":
        return None
    if metric == "angular":
        norms = np.linalg.norm(x, axis=1)
        with np.errstate(divide="ignore"):
            inv = np.where(norms > 0, 1.0 / norms, 0.0)
        return inv.astype(np.float32)
    # euclidean: |x|^2; binary metrics: popcount of a 0/1 row, which is also sum(x*x).
    return np.einsum("ij,ij->i", x, x, dtype=np.float32)


def _block_distances(
    q: np.ndarray,
    q_stat: np.ndarray | None,
    t: np.ndarray,
    t_stat: np.ndarray | None,
    metric: str,
) -> np.ndarray:
    """Distances between a query block and a train block (float32, one GEMM each)."""
    dots = q @ t.T
    if metric == "dot":
        return np.negative(dots, out=dots)
    assert q_stat is not None and t_stat is not None
    if metric == "angular":
        dots *= q_stat[:, None]
        dots *= t_stat[None, :]
        return np.subtract(1.0, dots, out=dots)
    if metric == "euclidean":
        # |q - t|^2 = |q|^2 + |t|^2 - 2 q.t; rounding can make it slightly negative.
        d2 = q_stat[:, None] + t_stat[None, :] - 2.0 * dots
        np.maximum(d2, 0.0, out=d2)
        return np.sqrt(d2, out=d2)
    if metric == "hamming":
        return q_stat[:, None] + t_stat[None, :] - 2.0 * dots
    # jaccard: 1 - inter / union; two empty sets give 1, as pgvector and vecpg.metrics do.
    union = q_stat[:, None] + t_stat[None, :] - dots
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.where(union > 0, 1.0 - dots / union, 1.0)
    return d.astype(np.float32, copy=False)


def _block_topk(d: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k column numbers of each row of ``d`` sorted by (distance, column).

    argpartition is O(n) but picks arbitrarily among values tied at the k-th place; rows
    where that happens (common with integer hamming distances, rare with floats) are
    redone with a stable sort so the smaller column always wins a tie.
    """
    n = d.shape[1]
    if n <= k:
        idx = np.broadcast_to(np.arange(n), d.shape).copy()
    else:
        idx = np.argpartition(d, k - 1, axis=1)[:, :k]
        kth = np.take_along_axis(d, idx, axis=1).max(axis=1)
        tied = np.flatnonzero((d <= kth[:, None]).sum(axis=1) > k)
        if tied.size:
            idx[tied] = np.argsort(d[tied], axis=1, kind="stable")[:, :k]
    vals = np.take_along_axis(d, idx, axis=1)
    order = np.lexsort((idx, vals), axis=1)
    return np.take_along_axis(idx, order, axis=1), np.take_along_axis(vals, order, axis=1)


def exact_knn(
    train: np.ndarray,
    queries: np.ndarray,
    k: int,
    metric: str,
    mask: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest train rows of each query: ``(ids, distances)``, each n_queries x k.

    ``metric`` is an ann-benchmarks name (angular, euclidean, dot, hamming, jaccard) or a
    vecpg one (COSINE, L2, IP, HAMMING, JACCARD); distances are pgvector's (module doc).
    Hamming/jaccard take 0/1 (or bool) vectors, one column per bit. ``mask`` (bool, one per
    train row) restricts the search to the rows where it is true. Rows are ordered by
    distance, ties by smaller row number; when fewer than k rows qualify, ids are padded
    with -1 and distances with +inf. ids are int32 (int64 past 2**31 rows).

    Work is split into blocks of at most ~4M distances with a running top-k, so memory is
    bounded by the block size, not by n_queries x n_train.
    """
    metric = _canonical_metric(metric)
    if k < 1:
        raise InvalidArgument(f"k must be >= 1, got {k}")
    train = np.asarray(train)
    queries = np.asarray(queries)
    if queries.ndim == 1:
        queries = queries[None, :]
    if train.ndim != 2 or queries.ndim != 2 or train.shape[1] != queries.shape[1]:
        raise InvalidArgument(
            f"train and queries must be 2-d with the same dimension, got {train.shape} "
            f"and {queries.shape}"
        )
    id_dtype = np.int32 if train.shape[0] < 2**31 else np.int64
    row_ids: np.ndarray | None = None
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (train.shape[0],):
            raise InvalidArgument(f"mask must have shape ({train.shape[0]},), got {mask.shape}")
        # Gathering the matching rows once beats computing and discarding the others.
        row_ids = np.flatnonzero(mask)
        train = train[row_ids]

    # GEMM in float32: exact for 0/1 counts below 2**24 and what the database computes in.
    train = train.astype(np.float32, copy=False)
    queries = queries.astype(np.float32, copy=False)
    n_q, n_t = queries.shape[0], train.shape[0]
    t_stat = _row_stats(train, metric)
    q_stat = _row_stats(queries, metric)

    ids = np.full((n_q, k), -1, dtype=np.int64)
    dists = np.full((n_q, k), np.inf, dtype=np.float32)
    q_block = min(_QUERY_BLOCK, max(n_q, 1))
    t_block = max(k, _BLOCK_ELEMENTS // q_block)
    for q0 in range(0, n_q, q_block):
        qs = slice(q0, q0 + q_block)
        best_i, best_d = ids[qs], dists[qs]
        for t0 in range(0, n_t, t_block):
            ts = slice(t0, t0 + t_block)
            d = _block_distances(
                queries[qs],
                None if q_stat is None else q_stat[qs],
                train[ts],
                None if t_stat is None else t_stat[ts],
                metric,
            )
            blk_i, blk_d = _block_topk(d, k)
            # Running top-k first: its ids are all smaller than this block's, and the stable
            # sort keeps it first among equal distances, so ties still go to smaller ids.
            cand_i = np.concatenate([best_i, blk_i + t0], axis=1)
            cand_d = np.concatenate([best_d, blk_d], axis=1)
            order = np.argsort(cand_d, axis=1, kind="stable")[:, :k]
            best_i = np.take_along_axis(cand_i, order, axis=1)
            best_d = np.take_along_axis(cand_d, order, axis=1)
        ids[qs], dists[qs] = best_i, best_d

    if row_ids is not None:
        valid = ids >= 0
        ids[valid] = row_ids[ids[valid]]
    return ids.astype(id_dtype), dists


# ---------------------------------------------------------------------------- recall


def _as_id_matrix(ids: np.ndarray | Sequence[Sequence[int]], k: int) -> np.ndarray:
    """First k ids per query as an int64 matrix, -1 padded (rows may be ragged lists)."""
    if isinstance(ids, np.ndarray) and ids.ndim == 2:
        out = ids[:, :k].astype(np.int64, copy=False)
        if out.shape[1] < k:
            pad = np.full((out.shape[0], k - out.shape[1]), -1, dtype=np.int64)
            out = np.concatenate([out, pad], axis=1)
        return out
    out = np.full((len(ids), k), -1, dtype=np.int64)
    for i, row in enumerate(ids):
        row = list(row)[:k]
        out[i, : len(row)] = row
    return out


def recall_at_k(
    found_ids: np.ndarray | Sequence[Sequence[int]],
    true_ids: np.ndarray | Sequence[Sequence[int]],
    k: int,
) -> float:
    """Mean over queries of |found top-k ∩ true top-k| / (number of valid true ids in top k).

    -1 entries are padding on both sides. A filtered query whose filter matches fewer than
    k rows is scored against the true ids it has, so returning all of them is recall 1;
    queries with no true neighbour at all are left out of the mean (there was nothing to
    find), and if no query has any, recall is 1.0. Duplicate found ids count once.
    """
    if k < 1:
        raise InvalidArgument(f"k must be >= 1, got {k}")
    found = _as_id_matrix(found_ids, k)
    true = _as_id_matrix(true_ids, k)
    if found.shape[0] != true.shape[0]:
        raise InvalidArgument(
            f"found_ids has {found.shape[0]} queries but true_ids has {true.shape[0]}"
        )
    true_valid = true >= 0
    found = np.where(found >= 0, found, -2)  # padding on the found side never matches -1
    hits = np.empty(found.shape[0], dtype=np.int64)
    # hit[q, j]: true id j of query q occurs among the found ids. The comparison cube is
    # rows x k x k, so go a slice of queries at a time to keep it small for large k.
    step = max(1, _BLOCK_ELEMENTS // (k * k))
    for r in range(0, found.shape[0], step):
        rows = slice(r, r + step)
        hit = (found[rows, :, None] == true[rows, None, :]).any(axis=1)
        hits[rows] = (hit & true_valid[rows]).sum(axis=1)
    denom = true_valid.sum(axis=1)
    scored = denom > 0
    if not scored.any():
        return 1.0
    return float(np.mean(hits[scored] / denom[scored]))


# ------------------------------------------------------------------------- HDF5 files


def _parse_filter_name(name: str, attrs: Mapping[str, np.ndarray]) -> tuple[str, int] | None:
    """``(attr, value)`` if ``name`` is ``<attr>_<int>`` and ``train_<attr>`` exists."""
    m = _FILTER_NAME_RE.match(name)
    if m is None or f"train_{m['attr']}" not in attrs:
        return None
    return m["attr"], int(m["value"])


def _parse_selectivities(raw: Any) -> dict[str, float]:
    """Root attr ``filters`` ("lexfile_19:0.0052 pos_0:0.6977") as a dict."""
    if raw is None:
        return {}
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    out: dict[str, float] = {}
    for item in text.split():
        name, _, sel = item.partition(":")
        try:
            out[name] = float(sel)
        except ValueError:
            continue  # a name without a number: selectivity unknown, not an error
    return out


def _attr_value(v: Any) -> Any:
    """HDF5 root attribute as a plain Python value (bytes decoded, numpy scalars unwrapped)."""
    if isinstance(v, bytes):
        return v.decode("utf-8")
    if isinstance(v, np.generic):
        return v.item()
    return v


def _describe(
    attr: str, value: int, attrs: Mapping[str, np.ndarray], info: Mapping[str, Any]
) -> str:
    """Human label of a filter, e.g. 'train_lexfile == 19 (noun.phenomenon)'.

    Value names come from the ``lexnames`` array (lexfile numbers) or from a root attr
    ``<attr>_codes`` such as ``"n=0 v=1 a=2 s=3 (adjective satellite) r=4"`` (pos codes).
    """
    cond = f"train_{attr} == {value}"
    names = attrs.get("lexnames") if attr == "lexfile" else None
    if names is not None and 0 <= value < len(names):
        return f"{cond} ({names[value]})"
    codes = re.findall(r"(\S+)=(-?\d+)", str(info.get(f"{attr}_codes", "")))
    labels = [label for label, code in codes if int(code) == value]
    if labels:
        return f"{cond} ({labels[0]})"
    return cond


def _filter_truth(
    name: str,
    neighbors: np.ndarray,
    distances: np.ndarray,
    attrs: Mapping[str, np.ndarray],
    selectivity: float | None,
    info: Mapping[str, Any],
) -> FilterTruth:
    """A :class:`FilterTruth` with its condition parsed from the name when possible."""
    parsed = _parse_filter_name(name, attrs)
    if parsed is None:
        return FilterTruth(name, neighbors, distances, selectivity=selectivity)
    attr, value = parsed
    return FilterTruth(
        name=name,
        neighbors=neighbors,
        distances=distances,
        attr=attr,
        value=value,
        condition=f"train_{attr} == {value}",
        selectivity=selectivity,
        description=_describe(attr, value, attrs, info),
    )


def _check_limit(name: str, limit: int | None) -> None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise InvalidArgument(f"{name} must be a positive int or None, got {limit!r}")


def _import_h5py() -> Any:
    """The h5py module, or an ImportError saying which vecpg extra installs it."""
    try:
        import h5py  # optional: only benchmarks and tests read HDF5
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "load_hdf5 needs h5py, an optional dependency of vecpg: "
            "pip install 'vecpg[bench]' (or 'vecpg[test]')"
        ) from e
    return h5py


@dataclass(frozen=True)
class _RowCounts:
    """Rows of ``train``/``test`` in the file and how many of them the limits keep.

    The file counts are what tell a dataset aligned with train or test (to be cut) from
    any other array; the kept counts are where it is cut.
    """

    train_file: int
    test_file: int
    train: int
    test: int


@dataclass
class _FileArrays:
    """What :func:`load_hdf5` reads from the file, before any ground truth is recomputed.

    ``raw_filters`` maps a filter name to its stored ``(neighbors, distances)``; they only
    become :class:`FilterTruth` once the attributes they refer to are known.
    """

    train: np.ndarray
    test: np.ndarray
    neighbors: np.ndarray
    distances: np.ndarray
    attrs: dict[str, np.ndarray]
    raw_filters: dict[str, tuple[np.ndarray, np.ndarray]]


def _read_header(f: Any, path: Path) -> tuple[dict[str, Any], str]:
    """Root attributes and canonical metric of an open file, rejecting what cannot be read.

    Checked before any array is read, so a wrong file fails fast with the reason.
    """
    info = {k: _attr_value(v) for k, v in f.attrs.items()}
    if "distance" not in info:
        raise InvalidArgument(f"{path}: root attribute 'distance' (the metric) is missing")
    metric = _canonical_metric(str(info["distance"]))
    if "size_train" in f or "size_test" in f:
        # ann-benchmarks stores jaccard sets sparsely (flat item lists + sizes).
        raise InvalidArgument(f"{path}: the sparse set format is not supported")
    for required in ("train", "test", "neighbors", "distances"):
        if required not in f:
            raise InvalidArgument(f"{path}: dataset {required!r} is missing")
    return info, metric


def _row_counts(f: Any, limit_train: int | None, limit_test: int | None) -> _RowCounts:
    """Rows in the file and rows kept; a limit past the end keeps everything."""
    n_train_file = int(f["train"].shape[0])
    n_test_file = int(f["test"].shape[0])
    return _RowCounts(
        train_file=n_train_file,
        test_file=n_test_file,
        train=n_train_file if limit_train is None else min(limit_train, n_train_file),
        test=n_test_file if limit_test is None else min(limit_test, n_test_file),
    )


def _read_dataset(f: Any, name: str, rows: _RowCounts) -> np.ndarray:
    """A dataset, first rows only where it is aligned with train or test."""
    import h5py  # load_hdf5 has checked that it is installed

    ds = f[name]
    n_rows: int | None = None
    if ds.ndim >= 1 and name.startswith("train") and ds.shape[0] == rows.train_file:
        n_rows = rows.train
    elif ds.ndim >= 1 and ds.shape[0] == rows.test_file and (
        name.startswith(("test", "neighbors", "distances"))
    ):
        n_rows = rows.test
    if h5py.check_string_dtype(ds.dtype) is not None:
        ds = ds.asstr()
    data = ds[:n_rows] if n_rows is not None else ds[()]
    return np.asarray(data)


def _filter_names(f: Any) -> list[str]:
    """Names ``<filter>`` that have both ``neighbors_<filter>`` and ``distances_<filter>``."""
    return sorted(
        name[len("neighbors_") :]
        for name in f
        if name.startswith("neighbors_") and f"distances_{name[len('neighbors_'):]}" in f
    )


def _read_arrays(f: Any, metric: str, rows: _RowCounts) -> _FileArrays:
    """Every dataset of the open file, cut to the kept rows and in vecpg's dtypes.

    Whatever is not a vector set or a ground truth is an attribute, so datasets vecpg does
    not know about are passed through rather than lost.
    """
    import h5py  # load_hdf5 has checked that it is installed

    def read(name: str) -> np.ndarray:
        return _read_dataset(f, name, rows)

    vec_dtype = bool if metric in _BINARY_METRICS else np.float32
    train = read("train").astype(vec_dtype, copy=False)
    test = read("test").astype(vec_dtype, copy=False)
    neighbors = read("neighbors").astype(np.int32, copy=False)
    distances = read("distances").astype(np.float32, copy=False)

    filter_names = _filter_names(f)
    core = {"train", "test", "neighbors", "distances"}
    core |= {f"neighbors_{n}" for n in filter_names}
    core |= {f"distances_{n}" for n in filter_names}
    attrs = {
        name: read(name)
        for name in f
        if name not in core and isinstance(f[name], h5py.Dataset)
    }
    raw_filters = {
        n: (
            read(f"neighbors_{n}").astype(np.int32, copy=False),
            read(f"distances_{n}").astype(np.float32, copy=False),
        )
        for n in filter_names
    }
    return _FileArrays(train, test, neighbors, distances, attrs, raw_filters)


def _load_filters(
    path: Path,
    arrays: _FileArrays,
    metric: str,
    info: Mapping[str, Any],
    limit_train: int | None,
    recompute: bool,
) -> dict[str, FilterTruth]:
    """The filters' ground truth: as stored, or recomputed on the kept train rows.

    A filter whose condition cannot be evaluated cannot be recomputed; it is dropped with a
    warning, since stored truth over rows that are no longer there would be wrong.
    """
    selectivities = _parse_selectivities(info.get("filters"))
    attrs = arrays.attrs
    filters: dict[str, FilterTruth] = {}
    for name, (f_nb, f_d) in arrays.raw_filters.items():
        truth = _filter_truth(name, f_nb, f_d, attrs, selectivities.get(name), info)
        if recompute:
            if truth.attr is None or truth.value is None:
                warnings.warn(
                    f"{path.name}: dropping filter {name!r}: its condition is unknown, so its "
                    f"ground truth cannot be recomputed for limit_train={limit_train}",
                    stacklevel=3,  # the caller of load_hdf5, which calls this function
                )
                continue
            mask = attrs[f"train_{truth.attr}"] == truth.value
            truth.neighbors, truth.distances = exact_knn(
                arrays.train, arrays.test, int(f_nb.shape[1]), metric, mask=mask
            )
            truth.selectivity = float(mask.mean()) if mask.size else 0.0
        filters[name] = truth
    return filters


def load_hdf5(
    path: str | Path,
    *,
    limit_train: int | None = None,
    limit_test: int | None = None,
) -> AnnDataset:
    """Read an ann-benchmarks HDF5 file (with vecpg's extensions) into an :class:`AnnDataset`.

    ``limit_train`` keeps the first rows of ``train`` (and of every ``train_<x>``);
    ``limit_test`` the first test rows and their ground truth. The dev dataset is shuffled,
    so first rows are a random sample. Ground truth in the file is for all train rows: when
    ``limit_train`` drops rows it is recomputed exactly with :func:`exact_knn`, at the
    file's depth, for the plain queries and for every filter whose condition can be
    evaluated (names ``<attr>_<n>`` meaning ``train_<attr> == n``); filters that cannot
    are dropped with a warning rather than returned with wrong truth.

    Needs h5py (optional dependency: ``pip install 'vecpg[bench]'``).
    """
    h5py = _import_h5py()
    _check_limit("limit_train", limit_train)
    _check_limit("limit_test", limit_test)
    path = Path(path)
    with h5py.File(path, "r") as f:
        info, metric = _read_header(f, path)
        rows = _row_counts(f, limit_train, limit_test)
        arrays = _read_arrays(f, metric, rows)

    recompute = rows.train < rows.train_file
    neighbors, distances = arrays.neighbors, arrays.distances
    if recompute:
        k = int(neighbors.shape[1])
        neighbors, distances = exact_knn(arrays.train, arrays.test, k, metric)
    filters = _load_filters(path, arrays, metric, info, limit_train, recompute)

    return AnnDataset(
        name=path.stem,
        metric=metric,
        train=arrays.train,
        test=arrays.test,
        neighbors=neighbors,
        distances=distances,
        attrs=arrays.attrs,
        filters=filters,
        info=info,
    )


# ------------------------------------------------------------------ packaged demo sample


def encode_strings(values: Sequence[str] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Strings as (utf-8 bytes, n+1 offsets): storable in .npz without pickle, compact."""
    encoded = [str(v).encode("utf-8") for v in values]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    return np.frombuffer(b"".join(encoded), dtype=np.uint8).copy(), offsets


def decode_strings(data: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Inverse of :func:`encode_strings`: an object array of ``str``."""
    raw = data.tobytes()
    out = np.empty(len(offsets) - 1, dtype=object)
    for i in range(len(out)):
        out[i] = raw[offsets[i] : offsets[i + 1]].decode("utf-8")
    return out


def restore_unit_float32(x16: np.ndarray) -> np.ndarray:
    """float16 stored unit vectors -> float32, re-normalized to unit length.

    Rounding to float16 moves norms off 1 by ~1e-3; re-normalizing keeps ``1 - dot`` a
    true cosine distance. The sample's generator computes its ground truth from the output
    of this very function, so loader and stored truth agree exactly.
    """
    x = x16.astype(np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def load_demo_sample() -> AnnDataset:
    """The WordNet/all-MiniLM-L6-v2 sample packaged with vecpg (``vecpg/data/README.md``).

    About 5,000 train rows with ``train_text``/``train_pos``/``train_lexfile``/
    ``train_offset``, 100 queries with the same ``test_*`` attributes, ``lexnames``, the
    exact top-10 of each query (metric angular), and filtered top-10 for ``pos_0`` (nouns)
    and ``lexfile_26`` (noun.state). Vectors are stored as float16 and returned as unit
    float32. Needs only numpy.
    """
    resource = files("vecpg.data").joinpath(DEMO_SAMPLE_FILE)
    with resource.open("rb") as fh, np.load(fh, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}

    meta = json.loads(arrays.pop("meta").item())
    # Strings were stored as utf-8 bytes + offsets (no pickle); put them back together.
    for name in [n for n in arrays if n.endswith(_UTF8_SUFFIX)]:
        base = name[: -len(_UTF8_SUFFIX)]
        arrays[base] = decode_strings(arrays.pop(name), arrays.pop(base + _OFFSETS_SUFFIX))

    metric = _canonical_metric(meta["distance"])
    train = restore_unit_float32(arrays.pop("train"))
    test = restore_unit_float32(arrays.pop("test"))
    neighbors = arrays.pop("neighbors")
    distances = arrays.pop("distances")
    filter_names = [n[len("neighbors_") :] for n in list(arrays) if n.startswith("neighbors_")]
    raw_filters = {
        n: (arrays.pop(f"neighbors_{n}"), arrays.pop(f"distances_{n}")) for n in filter_names
    }
    attrs = arrays  # what is left: train_*/test_* per-row attributes and lexnames
    filters: dict[str, FilterTruth] = {}
    for name, (f_nb, f_d) in raw_filters.items():
        selectivity = meta.get("filters", {}).get(name)
        filters[name] = _filter_truth(name, f_nb, f_d, attrs, selectivity, meta)
    return AnnDataset(
        name=meta.get("name", Path(DEMO_SAMPLE_FILE).stem),
        metric=metric,
        train=train,
        test=test,
        neighbors=neighbors,
        distances=distances,
        attrs=attrs,
        filters=filters,
        info=meta,
    )
