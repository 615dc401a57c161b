"""Numeric core of the quantized companion indexes: k-means, IVF_SQ8, IVF_PQ and ANNOY.

Everything here is numpy (plus the ``annoy`` library for ANNOY) and never touches the
database. A model is trained on a sample of the collection, encodes vectors into small byte
codes, and a :class:`Searcher` holds the codes in memory grouped by inverted list and returns
*candidate* keys with approximate distances; the caller re-ranks candidates exactly in SQL.

    model = train("IVF_PQ", x, "COSINE", {"nlist": 256, "m": 48})
    list_no, codes = model.encode(x)
    searcher = Searcher(model, list_no, codes, np.arange(len(x)))
    keys, approx = searcher.search(queries, 100, {"nprobe": 16})

Distances follow Milvus: "L2" is the squared euclidean distance (smaller first), "IP" the
inner product and "COSINE" the cosine similarity (larger first). COSINE normalizes vectors and
queries, then scores as IP.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

METRICS = ("L2", "IP", "COSINE")
KINDS = ("IVF_SQ8", "IVF_PQ", "ANNOY")

Progress = Callable[[int, int], None]

# Sample sizes and iteration counts, so 100k x 384 with nlist=1000 and m=48 trains in tens
# of seconds on two cores. Measured on the dev set (55k MiniLM, nlist 256): 64 points per
# centroid and 10 iterations cost 1/5 of the CPU of 256 and 20, with candidate recall@10
# 0.847 vs 0.866 at nprobe 8 and equal (0.959) at nprobe 32 (12 iterations used here).
# PQ codebooks: 32k points and 10 iterations gave the same recall as 55k and 15 (0.956 vs
# 0.957 at nprobe 32, R=10).
IVF_POINTS_PER_CENTROID = 64
PQ_MAX_TRAIN = 256 * 128
IVF_ITERS = 12
PQ_ITERS = 10
# Query batches up to this size compute their products without BLAS (see Searcher.search).
SMALL_BATCH = 4
# Elements of a (rows x k) distance block computed at once (~4 MB, cache friendly).
_BLOCK_ELEMS = 1 << 20


_blas_controller: Any = None
_blas_lock = threading.Lock()
_blas_users = 0
_blas_limit: Any = None


@contextlib.contextmanager
def _one_blas_thread() -> Iterator[None]:
    """Run small matrix products on one BLAS thread.

    OpenBLAS splits even thin products (65k x 9 by 9 x 256) across threads; on a busy 2-core
    machine the thread hand-offs cost 2-6x the work (measured). Uses threadpoolctl when it is
    installed, else does nothing. The limit is process-wide, so it is reference counted: the
    first user sets it and the last one restores it.
    """
    global _blas_controller, _blas_users, _blas_limit
    with _blas_lock:
        if _blas_controller is None:
            try:
                from threadpoolctl import ThreadpoolController
            except ImportError:
                _blas_controller = False
            else:
                _blas_controller = ThreadpoolController()
        if _blas_controller is not False:
            if _blas_users == 0:
                _blas_limit = _blas_controller.limit(limits=1, user_api="blas")
            _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            if _blas_controller is not False:
                _blas_users -= 1
                if _blas_users == 0:
                    _blas_limit.restore_original_limits()
                    _blas_limit = None


def _as_matrix(x: Any, name: str = "x", dim: int | None = None) -> np.ndarray:
    """Return ``x`` as a C-contiguous float32 (n, d) array, or raise ValueError."""
    a = np.asarray(x, dtype=np.float32)
    if a.ndim == 1:
        a = a.reshape(1, -1)
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array of vectors, got shape {a.shape}")
    if dim is not None and a.shape[1] != dim:
        raise ValueError(f"{name} has dimension {a.shape[1]}, expected {dim}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return np.ascontiguousarray(a)


def _normalize(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    # Zero vectors stay zero (their cosine is undefined; they never rank first).
    norms[norms == 0] = 1.0
    return (x / norms).astype(np.float32, copy=False)


def _check_metric(metric: str) -> str:
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
    return metric


def _int_param(params: Mapping[str, Any], name: str, default: int | None, lo: int,
               hi: int | None = None) -> int:
    value = params.get(name, default)
    if value is None:
        raise ValueError(f"parameter {name!r} is required")
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        # ValueError, not TypeError: one type for every bad parameter (see train())
        raise ValueError(f"parameter {name!r} must be an integer, got {value!r}")  # noqa: TRY004
    value = int(value)
    if value < lo or (hi is not None and value > hi):
        bound = f"between {lo} and {hi}" if hi is not None else f">= {lo}"
        raise ValueError(f"parameter {name!r} must be {bound}, got {value}")
    return value


def _check_keys(params: Mapping[str, Any], allowed: tuple[str, ...], what: str) -> None:
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValueError(f"unknown {what} parameter(s) {', '.join(map(repr, unknown))}; "
                         f"expected {', '.join(allowed)}")


# ---------------------------------------------------------------------------------- k-means

def _sq_norms(x: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", x, x)


def nearest_centroids(x: np.ndarray, centroids: np.ndarray,
                      c_norms: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centroid by L2 for each row: ``(index int32 (n,), squared distance float32)``.

    Computes ||c||^2 - 2 x.c as one matrix product of [x, 1] and [-2c, ||c||^2] in blocks
    small enough to stay in cache, then adds ||x||^2 to the winners only.
    """
    n, d = x.shape
    k = len(centroids)
    if c_norms is None:
        c_norms = _sq_norms(centroids)
    ca = np.empty((k, d + 1), dtype=np.float32)
    ca[:, :d] = centroids
    ca[:, :d] *= -2.0
    ca[:, d] = c_norms
    cat = np.ascontiguousarray(ca.T)
    idx = np.empty(n, dtype=np.int32)
    dist = np.empty(n, dtype=np.float32)
    step = max(256, _BLOCK_ELEMS // max(k, 1))
    xa = np.empty((min(step, n), d + 1), dtype=np.float32)
    xa[:, d] = 1.0
    for s in range(0, n, step):
        xb = x[s:s + step]
        b = len(xb)
        xa[:b, :d] = xb
        dm = xa[:b] @ cat
        i = np.argmin(dm, axis=1)
        idx[s:s + b] = i
        dist[s:s + b] = dm[np.arange(b), i] + _sq_norms(xb)
    np.maximum(dist, 0.0, out=dist)
    return idx, dist


def _kmeanspp(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding on ``x`` (callers pass a small subsample)."""
    n = len(x)
    centers = np.empty((k, x.shape[1]), dtype=np.float32)
    first = int(rng.integers(n))
    centers[0] = x[first]
    x_norms = _sq_norms(x)
    min_d2 = np.maximum(x_norms - 2.0 * (x @ x[first]) + x_norms[first], 0.0)
    for j in range(1, k):
        total = float(min_d2.sum())
        if total <= 0.0:  # fewer distinct points than k: duplicates are harmless here
            pick = int(rng.integers(n))
        else:
            cum = np.cumsum(min_d2, dtype=np.float64)
            pick = min(int(np.searchsorted(cum, rng.random() * cum[-1], side="right")), n - 1)
        centers[j] = x[pick]
        d2 = x_norms - 2.0 * (x @ x[pick]) + x_norms[pick]
        np.minimum(min_d2, np.maximum(d2, 0.0), out=min_d2)
    return centers


def kmeans(x: np.ndarray, k: int, *, iters: int = IVF_ITERS, seed: int = 0,
           max_sample: int | None = None, progress: Progress | None = None) -> np.ndarray:
    """Cluster the rows of ``x`` into ``k`` groups; return (k, d) float32 centroids.

    Trains on at most ``max_sample`` rows (default 64 per centroid), seeds with k-means++ on
    a smaller subsample, then runs Lloyd iterations with matrix products. Deterministic for a
    given ``seed``. Empty clusters are re-seeded with the points farthest from their centroid.
    ``progress(done, total)`` is called after each iteration.

        centroids = kmeans(x, 256, seed=1)
    """
    x = _as_matrix(x)
    n = len(x)
    if isinstance(k, bool) or not 1 <= int(k) <= n:
        raise ValueError(f"k must be between 1 and the number of rows ({n}), got {k}")
    k = int(k)
    if iters < 0:
        raise ValueError(f"iters must be >= 0, got {iters}")
    rng = np.random.default_rng(seed)
    cap = IVF_POINTS_PER_CENTROID * k if max_sample is None else max(int(max_sample), k)
    sample = x[np.sort(rng.choice(n, cap, replace=False))] if n > cap else x
    ns = len(sample)
    # k-means++ is sequential in k, so it runs on a subsample; Lloyd refines on the full one.
    n_seed = min(ns, 8 * k)
    seed_rows = sample[np.sort(rng.choice(ns, n_seed, replace=False))] if ns > n_seed else sample
    centroids = _kmeanspp(seed_rows, k, rng)
    prev: np.ndarray | None = None
    for it in range(iters):
        assign, dist = nearest_centroids(sample, centroids)
        counts = np.bincount(assign, minlength=k)
        nonempty = np.flatnonzero(counts)
        if sample.shape[1] <= 32:  # few dimensions: one weighted bincount per dimension
            sums = np.stack([np.bincount(assign, weights=sample[:, j], minlength=k)
                             for j in range(sample.shape[1])], axis=1)[nonempty]
        else:
            order = np.argsort(assign, kind="stable")
            starts = np.concatenate(([0], np.cumsum(counts)[:-1]))[nonempty]
            sums = np.add.reduceat(sample[order], starts, axis=0, dtype=np.float64)
        centroids[nonempty] = (sums / counts[nonempty, None]).astype(np.float32)
        empty = np.flatnonzero(counts == 0)
        if len(empty):
            far = np.argsort(-dist, kind="stable")[:len(empty)]
            centroids[empty[:len(far)]] = sample[far]
        if progress is not None:
            progress(it + 1, iters)
        if prev is not None and len(empty) == 0 and np.array_equal(prev, assign):
            if progress is not None and it + 1 < iters:
                progress(iters, iters)
            break
        prev = assign
    return centroids


# ----------------------------------------------------------------------------------- models

class Model:
    """A trained quantizer. Subclasses: :class:`IvfSq8Model`, :class:`IvfPqModel`,
    :class:`AnnoyModel`. ``can_encode`` is False for ANNOY (an immutable index)."""

    kind: str = ""
    metric: str = "L2"
    dim: int = 0
    code_size: int = 0
    can_encode: bool = True

    def encode(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Encode raw vectors: ``(list_no int32 (n,), codes uint8 (n, code_size))``."""
        raise NotImplementedError

    def to_bytes(self) -> bytes:
        """Serialize with ``np.savez`` (no pickle)."""
        buf = io.BytesIO()
        arrays = {"kind": np.array(self.kind), "metric": np.array(self.metric), **self._arrays()}
        np.savez(buf, **arrays)  # type: ignore[arg-type]
        return buf.getvalue()

    @staticmethod
    def from_bytes(b: bytes) -> Model:
        """Inverse of :meth:`to_bytes`, for any kind."""
        return model_from_bytes(b)

    def model_bytes(self) -> int:
        """Memory held by centroids / codebooks (or the ANNOY index)."""
        return sum(a.nbytes for a in self._arrays().values())

    def _arrays(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    # Metric helpers shared by the IVF models.
    @property
    def larger_is_better(self) -> bool:
        """True for IP and COSINE: the values searches return are similarities, so best
        first means largest first."""
        return self.metric != "L2"

    def prepare(self, x: np.ndarray, name: str = "x") -> np.ndarray:
        """Vectors as float32 (n, dim), normalized for COSINE."""
        a = _as_matrix(x, name, self.dim)
        return _normalize(a) if self.metric == "COSINE" else a


class _IvfModel(Model):
    """Coarse quantizer shared by IVF_SQ8 and IVF_PQ.

    Rows are assigned to the nearest centroid by L2 for every metric (k-means minimizes L2, so
    lists stay balanced and residuals small). Probing uses L2 for L2/COSINE and the largest
    ip(q, c) for IP: ip(q, x) = ip(q, c) + ip(q, x - c) and the residual term is small
    (measured on clustered data with norms varying 4x: candidate recall@10 1.00 probing by
    ip vs 0.93 probing by L2, nprobe 2 of 64).
    """

    centroids: np.ndarray

    @property
    def l2_scoring(self) -> bool:
        """Score by L2 on the reconstruction: for L2, and for COSINE where ranking by
        ||q - x||^2 = 2 - 2 cos equals ranking by cosine but also corrects the norm error
        of the reconstruction (measured: candidate recall@10 0.66 vs 0.25 with PQ m=8 on
        synthetic 32-d data). IP has no such identity and scores q . x_hat."""
        return self.metric != "IP"

    @property
    def nlist(self) -> int:
        """The number of coarse lists (trained centroids), which caps ``nprobe``."""
        return len(self.centroids)

    def assign(self, x: np.ndarray) -> np.ndarray:
        """The list of each prepared vector: its nearest centroid by L2 for every metric
        (see the class docstring), as an int array of shape (n,)."""
        return nearest_centroids(x, self.centroids, self._c_norms)[0]

    def probe(self, q: np.ndarray, nprobe: int) -> tuple[np.ndarray, np.ndarray]:
        """Lists to probe per query, best first, and ||q-c||^2 (L2, COSINE) or ip(q, c) (IP)."""
        ip = np.einsum("qd,cd->qc", q, self.centroids) if len(q) <= SMALL_BATCH \
            else q @ self.centroids.T
        if self.metric == "IP":
            key = -ip
        else:
            key = _sq_norms(q)[:, None] - 2.0 * ip + self._c_norms
        # Scores add the coarse term in the form they use: L2 distance or inner product.
        score = key if self.l2_scoring else ip
        nprobe = min(nprobe, self.nlist)
        if nprobe < self.nlist:
            part = np.argpartition(key, nprobe - 1, axis=1)[:, :nprobe]
        else:
            part = np.broadcast_to(np.arange(self.nlist), key.shape).copy()
        sub = np.take_along_axis(key, part, axis=1)
        order = np.argsort(sub, axis=1, kind="stable")
        lists = np.take_along_axis(part, order, axis=1)
        return lists.astype(np.int32), np.take_along_axis(score, lists, axis=1)

    @property
    def _c_norms(self) -> np.ndarray:
        cn = getattr(self, "_cn_cache", None)
        if cn is None:
            cn = _sq_norms(self.centroids)
            self._cn_cache = cn
        return cn

    # Implemented by subclasses: per-row constant and per-query scoring.
    def row_terms(self, list_no: np.ndarray, codes: np.ndarray) -> np.ndarray | None:
        """The part of each row's score that does not depend on the query (float32 (n,)),
        computed once when codes are loaded instead of on every search; None when the
        metric's score has none (IP)."""
        raise NotImplementedError

    def query_state(self, q: np.ndarray) -> Any:
        """What :meth:`score` needs of a batch of prepared queries (lookup tables, norms),
        computed once per batch rather than once per probed list."""
        raise NotImplementedError

    def score(self, state: Any, i: int, codes: np.ndarray, aux: np.ndarray | None,
              coarse: np.ndarray) -> np.ndarray:
        """Approximate scores of query ``i`` against rows ``codes`` (``aux``: their
        :meth:`row_terms`; ``coarse``: each row's probe score from :meth:`probe`): squared
        L2 when :attr:`l2_scoring` (smaller is closer), else inner products."""
        raise NotImplementedError

    def code_part(self, state: Any, i: int, codes: np.ndarray) -> np.ndarray:
        """The part of :meth:`score` read from the codes (numpy)."""
        raise NotImplementedError

    def finish(self, state: Any, i: int, part: np.ndarray, aux: np.ndarray | None,
               coarse: np.ndarray) -> np.ndarray:
        """:meth:`score` from the code-dependent part (:meth:`code_part`)."""
        raise NotImplementedError

    def top(self, kernels: Any, state: Any, i: int, codes: np.ndarray, offsets: np.ndarray,
            lists: np.ndarray, coarse: np.ndarray, aux: np.ndarray | None,
            n: int) -> tuple[np.ndarray, np.ndarray]:
        """The best ``n`` rows of query ``i``'s probed ``lists`` (``coarse``: their probe
        scores) by a compiled kernel in one pass: (row numbers, scores), best first."""
        raise NotImplementedError

    def _terms(self, lists: np.ndarray, base: np.ndarray | float, aux: np.ndarray | None
               ) -> tuple[np.ndarray, np.ndarray, float]:
        """The kernels' per-list constant ``a`` (from ``base``: a scalar or one value per
        probed list), ``aux`` (empty when none) and the key's sign (+1: smaller is better)."""
        a = np.broadcast_to(np.float32(base) if np.ndim(base) == 0 else base,
                            lists.shape).astype(np.float32)
        empty = np.empty(0, np.float32)
        return a, (empty if aux is None else aux), 1.0 if self.l2_scoring else -1.0


class IvfSq8Model(_IvfModel):
    """IVF coarse lists + per-dimension 8-bit scalar quantization of the vectors.

    Code value c in dimension j decodes to ``vmin[j] + (c + 0.5) * scale[j]``; values outside
    the training range are clipped.
    """

    kind = "IVF_SQ8"

    def __init__(self, metric: str, centroids: np.ndarray, vmin: np.ndarray,
                 scale: np.ndarray) -> None:
        self.metric = _check_metric(metric)
        self.centroids = np.ascontiguousarray(centroids, dtype=np.float32)
        self.vmin = np.asarray(vmin, dtype=np.float32)
        self.scale = np.asarray(scale, dtype=np.float32)
        self.dim = self.centroids.shape[1]
        self.code_size = self.dim

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"centroids": self.centroids, "vmin": self.vmin, "scale": self.scale}

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """Prepared (normalized if COSINE) vectors to uint8 codes."""
        c = np.floor((x - self.vmin) / self.scale)
        return np.clip(c, 0, 255).astype(np.uint8)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """Codes back to (prepared) vectors."""
        return (self.vmin + (codes.astype(np.float32) + 0.5) * self.scale).astype(np.float32)

    def encode(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw vectors to ``(list_no, codes)``: one byte per dimension of the vector itself
        (SQ8 codes are not residuals, so they decode without the list)."""
        x = self.prepare(x)
        return self.assign(x), self.quantize(x)

    def row_terms(self, list_no: np.ndarray, codes: np.ndarray) -> np.ndarray | None:
        """``||decode(code)||^2`` per row for L2 scoring, in blocks of 65,536 rows so the
        decoded floats never take more than a block's memory; None for IP."""
        if not self.l2_scoring:
            return None
        out = np.empty(len(codes), dtype=np.float32)
        for s in range(0, len(codes), 65536):
            out[s:s + 65536] = _sq_norms(self.decode(codes[s:s + 65536]))
        return out

    def query_state(self, q: np.ndarray) -> Any:
        """The queries scaled per dimension, so a score is one product with the raw uint8
        codes instead of decoding every probed row."""
        # q . decode(c) = q . (vmin + 0.5 scale) + (q * scale) . c
        return q, q * self.scale, q @ (self.vmin + 0.5 * self.scale), _sq_norms(q)

    def score(self, state: Any, i: int, codes: np.ndarray, aux: np.ndarray | None,
              coarse: np.ndarray) -> np.ndarray:
        """``||q||^2 - 2 q.x_hat + ||x_hat||^2`` (L2, COSINE) or ``q.x_hat`` (IP); the
        coarse term is not needed, as SQ8 codes encode the whole vector."""
        return self.finish(state, i, self.code_part(state, i, codes), aux, coarse)

    def code_part(self, state: Any, i: int, codes: np.ndarray) -> np.ndarray:
        """The part of :meth:`score` read from the codes: ``(q * scale) . c`` per row."""
        return codes.astype(np.float32) @ state[1][i]

    def finish(self, state: Any, i: int, part: np.ndarray, aux: np.ndarray | None,
               coarse: np.ndarray) -> np.ndarray:
        """:meth:`score` from :meth:`code_part`."""
        _, _, base, qn = state
        ip = part + base[i]
        if self.l2_scoring:
            assert aux is not None
            return qn[i] - 2.0 * ip + aux
        return ip

    def top(self, kernels: Any, state: Any, i: int, codes: np.ndarray, offsets: np.ndarray,
            lists: np.ndarray, coarse: np.ndarray, aux: np.ndarray | None,
            n: int) -> tuple[np.ndarray, np.ndarray]:
        """See :meth:`_IvfModel.top`: ``finish`` with the query's constants folded in."""
        _, qs, base, qn = state
        if self.l2_scoring:
            a, ax, sign = self._terms(lists, qn[i] - 2.0 * base[i], aux)
            b = -2.0
        else:
            a, ax, sign = self._terms(lists, base[i], aux)
            b = 1.0
        rows, keys = kernels.ivf_top(codes, offsets, lists, a, ax, b, sign, qs[i], n, False)
        return rows, keys * np.float32(sign)


class IvfPqModel(_IvfModel):
    """IVF coarse lists + product quantization (m sub-vectors, 256 centroids each).

    With ``by_residual`` the PQ encodes x - c(list). Scores use one lookup table of inner
    products q_j . codebook_j per query (asymmetric distance computation):
    L2 residual:  ||q - c||^2 + (||r||^2 + 2 c.r) - 2 q.r   (middle term stored per row)
    L2 plain:     ||q||^2 + ||x||^2 - 2 q.x
    IP / COSINE:  ip(q, c) + q.r   (or q.x)
    """

    kind = "IVF_PQ"

    def __init__(self, metric: str, centroids: np.ndarray, codebooks: np.ndarray,
                 by_residual: bool) -> None:
        self.metric = _check_metric(metric)
        self.centroids = np.ascontiguousarray(centroids, dtype=np.float32)
        self.codebooks = np.ascontiguousarray(codebooks, dtype=np.float32)  # (m, 256, dsub)
        self.by_residual = bool(by_residual)
        self.dim = self.centroids.shape[1]
        self.m = self.codebooks.shape[0]
        self.dsub = self.codebooks.shape[2]
        self.code_size = self.m

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"centroids": self.centroids, "codebooks": self.codebooks,
                "by_residual": np.array(self.by_residual)}

    def quantize(self, r: np.ndarray) -> np.ndarray:
        """Vectors (residuals if by_residual) to (n, m) uint8 codes."""
        codes = np.empty((len(r), self.m), dtype=np.uint8)
        with _one_blas_thread():
            for j in range(self.m):
                sub = np.ascontiguousarray(r[:, j * self.dsub:(j + 1) * self.dsub])
                codes[:, j] = nearest_centroids(sub, self.codebooks[j])[0]
        return codes

    def decode(self, codes: np.ndarray, list_no: np.ndarray | None = None) -> np.ndarray:
        """Codes back to vectors (adding the list centroid when by_residual)."""
        parts = [self.codebooks[j][codes[:, j]] for j in range(self.m)]
        out = np.concatenate(parts, axis=1) if parts else np.zeros((len(codes), 0), np.float32)
        if self.by_residual:
            if list_no is None:
                raise ValueError("decode of residual PQ codes needs list_no")
            out += self.centroids[list_no]
        return out

    def encode(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw vectors to ``(list_no, codes)``: m bytes per row, of the residual to the
        list's centroid when ``by_residual`` (a finer code for the same bytes)."""
        x = self.prepare(x)
        list_no = self.assign(x)
        r = x - self.centroids[list_no] if self.by_residual else x
        return list_no, self.quantize(r)

    def row_terms(self, list_no: np.ndarray, codes: np.ndarray) -> np.ndarray | None:
        """``||r||^2 + 2 c.r`` per row (``||x_hat||^2`` without residuals) for L2 scoring,
        the middle term of the class docstring's formula; None for IP."""
        if not self.l2_scoring:
            return None
        out = np.empty(len(codes), dtype=np.float32)
        for s in range(0, len(codes), 65536):
            c = codes[s:s + 65536]
            rec = np.concatenate([self.codebooks[j][c[:, j]] for j in range(self.m)], axis=1)
            t = _sq_norms(rec)
            if self.by_residual:
                t += 2.0 * np.einsum("ij,ij->i", self.centroids[list_no[s:s + 65536]], rec)
            out[s:s + 65536] = t
        return out

    def query_state(self, q: np.ndarray) -> Any:
        """Per query, the lookup table of ``q_j . codebook_j[k]`` for every sub-vector j and
        code k (flattened to m * 256) and ``||q||^2``: scoring is then table lookups."""
        qsub = q.reshape(len(q), self.m, self.dsub)
        lut = np.einsum("qjd,jkd->qjk", qsub, self.codebooks, optimize=len(q) > SMALL_BATCH)
        return lut.reshape(len(q), -1).astype(np.float32), _sq_norms(q)

    def score(self, state: Any, i: int, codes: np.ndarray, aux: np.ndarray | None,
              coarse: np.ndarray) -> np.ndarray:
        """Asymmetric distances from the lookup table, by the class docstring's formulas;
        ``coarse`` supplies ``||q - c||^2`` or ``ip(q, c)`` when codes are residuals."""
        return self.finish(state, i, self.code_part(state, i, codes), aux, coarse)

    def code_part(self, state: Any, i: int, codes: np.ndarray) -> np.ndarray:
        """The part of :meth:`score` read from the codes: the lookup-table sum per row."""
        # intp indices: np.take would otherwise convert them itself (measured 2-3x slower).
        idx = codes.astype(np.intp)
        idx += np.arange(self.m, dtype=np.intp) * 256
        return state[0][i].take(idx).sum(axis=1, dtype=np.float32)

    def finish(self, state: Any, i: int, s: np.ndarray, aux: np.ndarray | None,
               coarse: np.ndarray) -> np.ndarray:
        """:meth:`score` from :meth:`code_part`."""
        _, qn = state
        if self.l2_scoring:
            assert aux is not None
            base = coarse if self.by_residual else qn[i]
            return base + aux - 2.0 * s
        return coarse + s if self.by_residual else s

    def top(self, kernels: Any, state: Any, i: int, codes: np.ndarray, offsets: np.ndarray,
            lists: np.ndarray, coarse: np.ndarray, aux: np.ndarray | None,
            n: int) -> tuple[np.ndarray, np.ndarray]:
        """See :meth:`_IvfModel.top`: ``finish`` per probed list instead of per row."""
        lut, qn = state
        if self.by_residual:
            base: np.ndarray | float = coarse
        else:
            base = float(qn[i]) if self.l2_scoring else 0.0
        a, ax, sign = self._terms(lists, base, aux)
        b = -2.0 if self.l2_scoring else 1.0
        rows, keys = kernels.ivf_top(codes, offsets, lists, a, ax, b, sign, lut[i], n, True)
        return rows, keys * np.float32(sign)


# ------------------------------------------------------------------------------------ ANNOY

_ANNOY_METRIC: dict[str, Any] = {"L2": "euclidean", "IP": "dot", "COSINE": "angular"}


class AnnoyModel(Model):
    """An ``annoy`` forest over fixed rows, with the key of each item.

    Annoy indexes are immutable: ``encode`` raises NotImplementedError (``can_encode`` is
    False); rows added after the build must be searched another way (the caller's exact scan).
    """

    kind = "ANNOY"
    can_encode = False

    def __init__(self, metric: str, dim: int, index_bytes: bytes, keys: np.ndarray,
                 n_trees: int, share_dir: str | os.PathLike[str] | None = None) -> None:
        from annoy import AnnoyIndex

        self.metric = _check_metric(metric)
        self.dim = int(dim)
        self.code_size = 0
        self.n_trees = int(n_trees)
        self.keys = np.asarray(keys, dtype=np.int64)
        self._size = len(index_bytes)
        self._index_bytes: bytes | None = index_bytes
        self._path: str | None = None
        self.index = AnnoyIndex(self.dim, _ANNOY_METRIC[self.metric])
        # Annoy loads from a path and mmaps it. With ``share_dir`` the file is named by its
        # content, so every process of the machine maps the same one (one copy in the page
        # cache, none on the heap); otherwise a temp file, unlinked at once (the mapping
        # outlives it).
        if share_dir is not None:
            import hashlib

            name = hashlib.sha256(index_bytes).hexdigest()[:32] + ".annoy"
            path = os.path.join(os.fspath(share_dir), name)
            try:
                if not os.path.exists(path):
                    os.makedirs(os.fspath(share_dir), exist_ok=True)
                    fd, tmp = tempfile.mkstemp(suffix=".tmp", dir=os.fspath(share_dir))
                    with os.fdopen(fd, "wb") as f:
                        f.write(index_bytes)
                    os.replace(tmp, path)
                self.index.load(path)
                self._path, self._index_bytes = path, None
                return
            except OSError:
                pass  # not writable: a private copy as below
        fd, path = tempfile.mkstemp(suffix=".annoy")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(index_bytes)
            self.index.load(path)
        finally:
            os.unlink(path)

    @property
    def shared_path(self) -> str | None:
        """The shared file this process maps, if any."""
        return self._path

    def _bytes(self) -> bytes:
        if self._index_bytes is not None:
            return self._index_bytes
        assert self._path is not None
        with open(self._path, "rb") as f:
            return f.read()

    def encode(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Always raises NotImplementedError: an annoy forest cannot take new rows."""
        raise NotImplementedError("ANNOY indexes are immutable; rebuild to include new rows")

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"index": np.frombuffer(self._bytes(), dtype=np.uint8), "keys": self.keys,
                "dim": np.array(self.dim), "n_trees": np.array(self.n_trees)}

    def model_bytes(self) -> int:
        """The size of the saved annoy index (the forest is the whole model)."""
        return self._size

    def nbytes(self) -> int:
        """Memory of the index plus the key array."""
        return self._size + self.keys.nbytes

    def search(self, queries: np.ndarray, n_candidates: int,
               params: Mapping[str, Any] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Candidate keys and approximate distances, best first (see :meth:`Searcher.search`).

        ``search_k`` (default -1: n_trees * n_candidates) trades speed for recall.
        """
        params = dict(params or {})
        _check_keys(params, ("search_k",), "ANNOY search")
        search_k = params.get("search_k", -1)
        if search_k != -1:
            search_k = _int_param(params, "search_k", -1, 1)
        n = _check_n(n_candidates)
        q = self.prepare(queries, "queries")
        results = [self.index.get_nns_by_vector(v, n, search_k=int(search_k),
                                                include_distances=True) for v in q]
        width = max((len(r[0]) for r in results), default=0)
        keys = np.full((len(q), width), -1, dtype=np.int64)
        dist = np.full((len(q), width), _worst(self.metric), dtype=np.float32)
        for i, (ids, ds) in enumerate(results):
            if not ids:
                continue
            keys[i, :len(ids)] = self.keys[np.asarray(ids, dtype=np.int64)]
            d = np.asarray(ds, dtype=np.float32)
            if self.metric == "L2":
                d = d * d
            elif self.metric == "COSINE":
                d = 1.0 - 0.5 * d * d  # annoy's angular distance is sqrt(2 - 2 cos)
            dist[i, :len(ids)] = d
        return keys, dist


def build_annoy(x: np.ndarray, keys: np.ndarray, metric: str, n_trees: int, *, seed: int = 0,
                progress: Progress | None = None) -> AnnoyModel:
    """Build an ANNOY forest over ``x`` whose items map to ``keys`` (deterministic per seed)."""
    from annoy import AnnoyIndex

    _check_metric(metric)
    x = _as_matrix(x)
    keys = np.asarray(keys, dtype=np.int64)
    if keys.shape != (len(x),):
        raise ValueError(f"keys must have shape ({len(x)},), got {keys.shape}")
    if isinstance(n_trees, bool) or not isinstance(n_trees, (int, np.integer)) or n_trees < 1:
        raise ValueError(f"parameter 'n_trees' must be an integer >= 1, got {n_trees!r}")
    if len(x) == 0:
        raise ValueError("cannot build ANNOY on zero rows")
    if metric == "COSINE":
        x = _normalize(x)
    index = AnnoyIndex(x.shape[1], _ANNOY_METRIC[metric])
    index.set_seed(int(seed))
    for i, v in enumerate(x):
        index.add_item(i, v)
    if progress is not None:
        progress(0, 1)
    index.build(int(n_trees), n_jobs=1)  # one thread: multi-threaded builds vary run to run
    fd, path = tempfile.mkstemp(suffix=".annoy")
    os.close(fd)
    try:
        index.save(path)
        index.unload()
        with open(path, "rb") as f:
            data = f.read()
    finally:
        os.unlink(path)
    if progress is not None:
        progress(1, 1)
    return AnnoyModel(metric, x.shape[1], data, keys, int(n_trees))


# ----------------------------------------------------------------------------------- train

def train(kind: str, x: np.ndarray, metric: str, params: Mapping[str, Any], *, seed: int = 0,
          progress: Progress | None = None, keys: np.ndarray | None = None) -> Model:
    """Train a model of ``kind`` on the rows of ``x`` with Milvus-named ``params``.

    IVF_SQ8: ``nlist`` (default 128). IVF_PQ: ``nlist``, ``m`` (must divide the dimension),
    ``nbits`` (8 only), ``by_residual`` (default True). ANNOY: ``n_trees`` (default 8) and
    ``keys`` (default 0..n-1); ANNOY indexes exactly the rows of ``x``.
    Raises ValueError on bad parameters. ``progress(done, total)`` reports training steps.

        model = train("IVF_SQ8", x, "L2", {"nlist": 256})
    """
    if kind not in KINDS:
        raise ValueError(f"index type must be one of {', '.join(KINDS)}, got {kind!r}")
    _check_metric(metric)
    params = dict(params or {})
    x = _as_matrix(x)
    n, dim = x.shape
    if n == 0 or dim == 0:
        raise ValueError(f"training needs at least one vector of dimension >= 1, got {x.shape}")
    if kind == "ANNOY":
        _check_keys(params, ("n_trees",), "ANNOY")
        n_trees = _int_param(params, "n_trees", 8, 1, 1024)
        k = np.arange(n, dtype=np.int64) if keys is None else keys
        return build_annoy(x, k, metric, n_trees, seed=seed, progress=progress)
    if kind == "IVF_SQ8":
        _check_keys(params, ("nlist",), "IVF_SQ8")
    else:
        _check_keys(params, ("nlist", "m", "nbits", "by_residual"), "IVF_PQ")
    nlist = _int_param(params, "nlist", 128, 1, 65536)
    if nlist > n:
        raise ValueError(f"nlist ({nlist}) must not exceed the number of training rows ({n})")
    if metric == "COSINE":
        x = _normalize(x)
    m = 0
    if kind == "IVF_PQ":
        m = _int_param(params, "m", None, 1, dim)
        if dim % m:
            raise ValueError(f"m ({m}) must divide the dimension ({dim})")
        nbits = _int_param(params, "nbits", 8, 1, 16)
        if nbits != 8:
            raise ValueError(f"only nbits=8 is supported, got {nbits}")
        if n < 256:
            raise ValueError(f"IVF_PQ needs at least 256 training rows (2**nbits), got {n}")
        by_residual = params.get("by_residual", True)
        if not isinstance(by_residual, (bool, np.bool_)):
            raise ValueError(f"parameter 'by_residual' must be a boolean, got {by_residual!r}")
    total = IVF_ITERS + m + 1

    def ivf_progress(done: int, _total: int) -> None:
        if progress is not None:
            progress(done, total)

    centroids = kmeans(x, nlist, iters=IVF_ITERS, seed=seed, progress=ivf_progress)
    if kind == "IVF_SQ8":
        vmin = x.min(axis=0)
        vmax = x.max(axis=0)
        scale = np.maximum((vmax - vmin) / 256.0, np.float32(1e-12)).astype(np.float32)
        model: Model = IvfSq8Model(metric, centroids, vmin, scale)
    else:
        rng = np.random.default_rng(seed + 1)
        sample = x[np.sort(rng.choice(n, PQ_MAX_TRAIN, replace=False))] if n > PQ_MAX_TRAIN else x
        if by_residual:
            sample = sample - centroids[nearest_centroids(sample, centroids)[0]]
        dsub = dim // m
        books = np.empty((m, 256, dsub), dtype=np.float32)
        with _one_blas_thread():
            for j in range(m):
                sub = np.ascontiguousarray(sample[:, j * dsub:(j + 1) * dsub])
                books[j] = kmeans(sub, 256, iters=PQ_ITERS, seed=seed + 1000 + j,
                                  max_sample=PQ_MAX_TRAIN)
                if progress is not None:
                    progress(IVF_ITERS + j + 1, total)
        model = IvfPqModel(metric, centroids, books, bool(by_residual))
    if progress is not None:
        progress(total, total)
    return model


def model_from_bytes(b: bytes, share_dir: str | os.PathLike[str] | None = None) -> Model:
    """Rebuild any model from :meth:`Model.to_bytes` output (``allow_pickle=False``);
    ``share_dir``: where an ANNOY forest is saved once for every process to map."""
    with np.load(io.BytesIO(b), allow_pickle=False) as z:
        kind = str(z["kind"])
        metric = str(z["metric"])
        if kind == "IVF_SQ8":
            return IvfSq8Model(metric, z["centroids"], z["vmin"], z["scale"])
        if kind == "IVF_PQ":
            return IvfPqModel(metric, z["centroids"], z["codebooks"], bool(z["by_residual"]))
        if kind == "ANNOY":
            return AnnoyModel(metric, int(z["dim"]), z["index"].tobytes(), z["keys"],
                              int(z["n_trees"]), share_dir)
    raise ValueError(f"unknown model kind {kind!r}")


# -------------------------------------------------------------------------------- searcher

def _check_n(n_candidates: int) -> int:
    if isinstance(n_candidates, bool) or not isinstance(n_candidates, (int, np.integer)) \
            or n_candidates < 1:
        raise ValueError(f"n_candidates must be an integer >= 1, got {n_candidates!r}")
    return int(n_candidates)


def _worst(metric: str) -> float:
    return float("inf") if metric == "L2" else float("-inf")


_kernels: Any = None  # vecpg._jit once imported, False when numba is missing or disabled


def kernels() -> Any:
    """The compiled scans (:mod:`vecpg._jit`), or None: numba is not installed or
    ``$VECPG_NO_JIT`` is set. The first call compiles them (or loads numba's cache)."""
    global _kernels
    if _kernels is None:
        with _blas_lock:
            if _kernels is None:
                if os.environ.get("VECPG_NO_JIT"):
                    _kernels = False
                else:
                    try:
                        from . import _jit
                    except ImportError:
                        _kernels = False
                    else:
                        _kernels = _jit
    return _kernels or None


def _ranges(starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Concatenation of arange(s, s + l) for each (s, l), without a Python loop."""
    total = int(lens.sum())
    if total == 0:
        return np.empty(0, dtype=np.int64)
    ends = np.cumsum(lens)
    out = np.ones(total, dtype=np.int64)
    nz = lens > 0
    s, e, ln = starts[nz].astype(np.int64), ends[nz], lens[nz].astype(np.int64)
    out[0] = s[0]
    # At each range start, jump from the previous range's last element to the new start.
    out[e[:-1]] = s[1:] - (s[:-1] + ln[:-1] - 1)
    return np.cumsum(out)


class Searcher:
    """Codes of one IVF model grouped by inverted list, in memory, with a key per row.

    Rows live sorted by list with ``offsets`` (list l is rows offsets[l]:offsets[l+1]); rows
    from :meth:`add` go to an append buffer that is scanned directly and merged into the sorted
    arrays once it exceeds an eighth of them, so adds are amortized O(1) per row.

        searcher = Searcher(model, list_no, codes, keys)
        keys, approx = searcher.search(queries, 100, {"nprobe": 16})
    """

    merge_min_rows = 4096  # the append buffer merges past max(this, an eighth of the rows)
    use_kernels = True     # compiled scans (vecpg._jit) when numba is installed

    def __init__(self, model: Model, list_no: np.ndarray, codes: np.ndarray,
                 keys: np.ndarray) -> None:
        if not isinstance(model, _IvfModel):
            raise TypeError(f"Searcher needs an IVF model, got {model.kind}; "
                             "an AnnoyModel searches itself (model.search)")
        self.model: _IvfModel = model
        nl = model.nlist
        self._codes = np.empty((0, model.code_size), dtype=np.uint8)
        self._keys = np.empty(0, dtype=np.int64)
        self._aux: np.ndarray | None = None if model.row_terms(
            np.empty(0, np.int32), self._codes) is None else np.empty(0, np.float32)
        self._offsets = np.zeros(nl + 1, dtype=np.int64)
        self._pending: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]] = []
        self._pend_rows = 0
        self._buf: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None] | None = None
        # add() and search() may run on different threads: state changes and the snapshot a
        # search reads happen under this lock (arrays are replaced, never changed in place).
        self._lock = threading.Lock()
        self.add(list_no, codes, keys)
        with self._lock:
            self._merge()

    def __len__(self) -> int:
        return len(self._keys) + self._pend_rows

    ARRAYS = ("codes", "keys", "aux", "offsets")

    def arrays(self) -> dict[str, np.ndarray]:
        """The sorted arrays (pending rows merged first), to save and map back with
        :meth:`from_arrays`."""
        with self._lock:
            self._merge()
            out: dict[str, np.ndarray] = {"codes": self._codes, "keys": self._keys,
                                          "offsets": self._offsets}
            if self._aux is not None:
                out["aux"] = self._aux
            return out

    @classmethod
    def from_arrays(cls, model: Model, arrays: Mapping[str, np.ndarray]) -> Searcher:
        """A searcher over arrays from :meth:`arrays`, used as they are (e.g. read-only
        memory maps shared by processes: they are replaced, never written, by later adds)."""
        self = cls(model, np.empty(0, np.int32), np.empty((0, model.code_size), np.uint8),
                   np.empty(0, np.int64))
        nl = self.model.nlist
        codes, keys, offs = arrays["codes"], arrays["keys"], arrays["offsets"]
        if codes.shape[1:] != (model.code_size,) or keys.shape != (len(codes),) or \
                offs.shape != (nl + 1,) or int(offs[-1]) != len(codes):
            raise ValueError("saved searcher arrays do not fit the model")
        aux = arrays.get("aux")
        if (aux is None) != (self._aux is None):
            raise ValueError("saved searcher arrays do not fit the model's metric")
        self._codes, self._keys, self._offsets, self._aux = codes, keys, offs, aux
        return self

    def add(self, list_no: np.ndarray, codes: np.ndarray, keys: np.ndarray) -> None:
        """Append rows encoded by ``model.encode`` with their keys."""
        list_no = np.asarray(list_no, dtype=np.int32).reshape(-1)
        codes = np.asarray(codes, dtype=np.uint8)
        keys = np.asarray(keys, dtype=np.int64).reshape(-1)
        n = len(list_no)
        if codes.shape != (n, self.model.code_size) or keys.shape != (n,):
            raise ValueError(f"expected list_no (n,), codes (n, {self.model.code_size}) and "
                             f"keys (n,), got {list_no.shape}, {codes.shape}, {keys.shape}")
        if n == 0:
            return
        if list_no.min() < 0 or list_no.max() >= self.model.nlist:
            raise ValueError(f"list numbers must be in [0, {self.model.nlist})")
        aux = self.model.row_terms(list_no, codes)
        with self._lock:
            self._pending.append((list_no, codes, keys, aux))
            self._pend_rows += n
            self._buf = None
            if self._pend_rows > max(self.merge_min_rows, len(self._keys) // 8):
                self._merge()

    def _pending_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        if self._buf is None:
            p = self._pending
            aux = None if self._aux is None else np.concatenate([t[3] for t in p])
            self._buf = (np.concatenate([t[0] for t in p]), np.concatenate([t[1] for t in p]),
                         np.concatenate([t[2] for t in p]), aux)
        return self._buf

    def _merge(self) -> None:
        if not self._pending:
            return
        pl, pc, pk, pa = self._pending_arrays()
        counts = np.diff(self._offsets)
        old_list = np.repeat(np.arange(self.model.nlist, dtype=np.int32), counts)
        all_list = np.concatenate([old_list, pl])
        order = np.argsort(all_list, kind="stable")
        self._codes = np.concatenate([self._codes, pc])[order]
        self._keys = np.concatenate([self._keys, pk])[order]
        if self._aux is not None:
            assert pa is not None
            self._aux = np.concatenate([self._aux, pa])[order]
        counts = np.bincount(all_list, minlength=self.model.nlist)
        self._offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
        self._pending = []
        self._pend_rows = 0
        self._buf = None

    def nbytes(self) -> int:
        """Memory held for codes, keys and per-row terms (model excluded)."""
        total = self._codes.nbytes + self._keys.nbytes + self._offsets.nbytes
        if self._aux is not None:
            total += self._aux.nbytes
        for t in self._pending:
            total += t[1].nbytes + t[2].nbytes + t[0].nbytes + (0 if t[3] is None else t[3].nbytes)
        return total

    def search(self, queries: np.ndarray, n_candidates: int,
               params: Mapping[str, Any] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Approximate top ``n_candidates`` keys per query from the ``nprobe`` nearest lists.

        Returns ``(keys int64 (nq, n), approx float32 (nq, n))`` ordered best first (smallest
        L2, largest IP / cosine). ``n`` is the largest count any query got; shorter rows are
        padded with key -1 and distance +inf (L2) or -inf (IP, COSINE).
        ``params``: ``nprobe`` (default 8, clipped to nlist).
        """
        params = dict(params or {})
        _check_keys(params, ("nprobe",), "IVF search")
        nprobe = _int_param(params, "nprobe", 8, 1, 65536)
        n = _check_n(n_candidates)
        model = self.model
        q = model.prepare(queries, "queries")
        with self._lock:
            pend = self._pending_arrays() if self._pending else None
            all_codes, all_keys, all_aux, offs = self._codes, self._keys, self._aux, self._offsets
        # per-query products are small (see _one_blas_thread); with the compiled scans, a
        # few queries need no BLAS at all, and setting the thread limit costs more
        small = len(q) <= SMALL_BATCH and self.use_kernels and kernels() is not None
        with contextlib.nullcontext() if small else _one_blas_thread():
            return self._search(model, q, n, nprobe, pend, all_codes, all_keys, all_aux, offs)

    def _search(self, model: _IvfModel, q: np.ndarray, n: int, nprobe: int,
                pend: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None] | None,
                all_codes: np.ndarray, all_keys: np.ndarray, all_aux: np.ndarray | None,
                offs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        nq = len(q)
        lists, coarse = model.probe(q, nprobe)
        state = model.query_state(q)
        l2 = model.l2_scoring
        kern = kernels() if self.use_kernels else None
        out: list[tuple[np.ndarray, np.ndarray]] = []
        for i in range(nq):
            li = lists[i]
            if kern is not None:
                keys, s, ordered = self._scan_top(kern, model, state, i, li, coarse[i], n,
                                                  pend, all_codes, all_keys, all_aux, offs)
            else:
                keys, s = self._scan_numpy(model, state, i, li, coarse[i], pend, all_codes,
                                           all_keys, all_aux, offs)
                ordered = False
            if len(keys) == 0:
                out.append((keys, np.empty(0, np.float32)))
                continue
            s = s.astype(np.float32, copy=False)
            if not ordered:
                key = s if l2 else -s
                if len(key) > n:
                    top = np.argpartition(key, n - 1)[:n]
                    top = top[np.argsort(key[top], kind="stable")]
                else:
                    top = np.argsort(key, kind="stable")
                keys, s = keys[top], s[top]
            d = s
            if model.metric == "COSINE":  # unit vectors: cos = 1 - ||q - x||^2 / 2
                d = 1.0 - 0.5 * d
            out.append((keys, d))
        width = max((len(k) for k, _ in out), default=0)
        keys_out = np.full((nq, width), -1, dtype=np.int64)
        dist_out = np.full((nq, width), _worst(model.metric), dtype=np.float32)
        for i, (k, d) in enumerate(out):
            keys_out[i, :len(k)] = k
            dist_out[i, :len(d)] = d
        return keys_out, dist_out


    @staticmethod
    def _buffered(model: _IvfModel, li: np.ndarray,
                  pend: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None] | None
                  ) -> tuple[np.ndarray, np.ndarray]:
        """Rows of the append buffer in the probed lists ``li``, and each one's probe rank."""
        if pend is None:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        rank = np.full(model.nlist, -1, dtype=np.int64)
        rank[li] = np.arange(len(li))
        pr = rank[pend[0]]
        sel = np.flatnonzero(pr >= 0)
        return sel, pr[sel]

    def _scan_top(self, kern: Any, model: _IvfModel, state: Any, i: int, li: np.ndarray,
                  coarse: np.ndarray, n: int,
                  pend: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None] | None,
                  all_codes: np.ndarray, all_keys: np.ndarray, all_aux: np.ndarray | None,
                  offs: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
        """Query ``i``'s best ``n`` sorted rows by one compiled pass (keys, scores, whether
        they are in order), plus the append buffer's rows of the probed lists by numpy."""
        rows, s = model.top(kern, state, i, all_codes, offs, li, coarse, all_aux, n)
        keys = all_keys[rows]
        sel, pr = self._buffered(model, li, pend)
        if not len(sel):
            return keys, s, True
        assert pend is not None
        aux = None if pend[3] is None else pend[3][sel]
        extra = model.score(state, i, pend[1][sel], aux, coarse[pr].astype(np.float32))
        return (np.concatenate([keys, pend[2][sel]]),
                np.concatenate([s, extra.astype(np.float32, copy=False)]), False)

    def _scan_numpy(self, model: _IvfModel, state: Any, i: int, li: np.ndarray,
                    coarse: np.ndarray,
                    pend: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None] | None,
                    all_codes: np.ndarray, all_keys: np.ndarray, all_aux: np.ndarray | None,
                    offs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Query ``i``'s scores of every row of the probed lists and the append buffer's
        rows in them (keys, scores; unordered), by numpy."""
        starts = offs[li]
        lens = offs[li + 1] - starts
        rows = _ranges(starts, lens)
        keys = all_keys[rows]
        aux = None if all_aux is None else all_aux[rows]
        crow = np.repeat(coarse, lens).astype(np.float32)
        codes = all_codes[rows]
        sel, pr = self._buffered(model, li, pend)
        if len(sel):
            assert pend is not None
            codes = np.concatenate([codes, pend[1][sel]])
            keys = np.concatenate([keys, pend[2][sel]])
            if aux is not None:
                assert pend[3] is not None
                aux = np.concatenate([aux, pend[3][sel]])
            crow = np.concatenate([crow, coarse[pr].astype(np.float32)])
        if len(keys) == 0:
            return keys, np.empty(0, np.float32)
        return keys, model.score(state, i, codes, aux, crow)


def searcher_for(model: Model, list_no: np.ndarray | None = None,
                 codes: np.ndarray | None = None,
                 keys: np.ndarray | None = None) -> Searcher | AnnoyModel:
    """A searcher for any model: a :class:`Searcher` for IVF kinds, the model itself for ANNOY.

    Both have ``search(queries, n_candidates, params)`` and ``nbytes()``.
    """
    if isinstance(model, AnnoyModel):
        return model
    if list_no is None or codes is None or keys is None:
        raise ValueError("IVF searchers need list_no, codes and keys")
    return Searcher(model, list_no, codes, keys)
