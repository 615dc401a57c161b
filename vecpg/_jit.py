"""Compiled scans of companion codes (numba), used by :mod:`vecpg.quantize` when numba is
installed; quantize falls back to numpy otherwise (same results to float rounding).

numpy scores a probed list by first converting its codes to float32 (SQ8) or gathering
table entries into a temporary (PQ), then gathers keys and per-row terms for every probed
row and selects the best with argpartition: several passes over memory and a dozen numpy
calls per query. :func:`ivf_top` does the whole scan of one query in one pass: it reads
each code once, straight from the sorted code array (a memory map when shared between
processes), scores it, and keeps the best ``n`` in a heap; it releases the GIL, so client
threads scan in parallel. Measured on the dev set (55k x 384, nprobe 32, one query a call):
see docs/benchmarks.md.

A row's score is ``a[list] + aux[row] + b * part(row)`` (``aux`` empty: no per-row term),
where ``part`` is the dot product of the uint8 code with the scaled query (SQ8) or the sum
of lookup-table entries (PQ); ``a`` carries the per-list and per-query constants (see the
models' ``finish``). Smaller keys are better: ``key = sign * score``.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _sift_down(hk: np.ndarray, hi: np.ndarray, size: int) -> None:  # pragma: no cover
    """Restore the max-heap (by key) after its root was replaced."""
    p = 0
    while True:
        c = 2 * p + 1
        if c >= size:
            return
        if c + 1 < size and hk[c + 1] > hk[c]:
            c += 1
        if hk[c] <= hk[p]:
            return
        hk[p], hk[c] = hk[c], hk[p]
        hi[p], hi[c] = hi[c], hi[p]
        p = c


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _push(hk: np.ndarray, hi: np.ndarray, size: int, n: int, key: np.float32,
          row: int) -> int:  # pragma: no cover - compiled
    """Offer (key, row) to the best-``n`` max-heap of ``size`` entries; the new size."""
    if size < n:
        # sift up
        c = size
        hk[c] = key
        hi[c] = row
        while c > 0:
            p = (c - 1) // 2
            if hk[p] >= hk[c]:
                break
            hk[p], hk[c] = hk[c], hk[p]
            hi[p], hi[c] = hi[c], hi[p]
            c = p
        return size + 1
    if key < hk[0]:
        hk[0] = key
        hi[0] = row
        _sift_down(hk, hi, size)
    return size


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _sorted(hk: np.ndarray, hi: np.ndarray, size: int
            ) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    order = np.argsort(hk[:size], kind="mergesort")
    return hi[:size][order], hk[:size][order]


@numba.njit(cache=True, nogil=True, fastmath=True, boundscheck=False)
def _sq8_block(codes: np.ndarray, lo: int, hi: int, q: np.ndarray,
               out: np.ndarray) -> None:  # pragma: no cover - compiled
    """``out[r - lo] = codes[r] . q`` for rows lo..hi (a loop LLVM vectorizes; scoring and
    the heap in the same loop made it 2x slower)."""
    d = codes.shape[1]
    for r in range(lo, hi):
        acc = np.float32(0.0)
        for j in range(d):
            acc += np.float32(codes[r, j]) * q[j]
        out[r - lo] = acc


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _offer(hk: np.ndarray, hi: np.ndarray, size: int, n: int, part: np.ndarray, lo: int,
           hi_row: int, a: np.float32, aux: np.ndarray, b: np.float32,
           sign: np.float32) -> int:  # pragma: no cover - compiled
    """Score rows lo..hi_row from their ``part`` and offer them to the heap."""
    has_aux = aux.shape[0] > 0
    worst = hk[0] if size == n else np.float32(np.inf)
    for r in range(lo, hi_row):
        s = a + b * part[r - lo]
        if has_aux:
            s += aux[r]
        key = sign * s
        if key < worst:  # most rows lose to the heap's worst: no call for them
            size = _push(hk, hi, size, n, key, r)
            if size == n:
                worst = hk[0]
    return size


@numba.njit(cache=True, nogil=True, fastmath=True, boundscheck=False)
def _pq_block(codes: np.ndarray, lo: int, hi: int, lut: np.ndarray,
              out: np.ndarray) -> None:  # pragma: no cover - compiled
    """``out[r - lo] = sum_j lut[j * 256 + codes[r, j]]`` for rows lo..hi."""
    m = codes.shape[1]
    for r in range(lo, hi):
        acc = np.float32(0.0)
        for j in range(m):
            acc += lut[j * 256 + codes[r, j]]
        out[r - lo] = acc



@numba.njit(cache=True, nogil=True, boundscheck=False)
def ivf_top(codes: np.ndarray, offsets: np.ndarray, lists: np.ndarray, a: np.ndarray,
            aux: np.ndarray, b: float, sign: float, q: np.ndarray, n: int,
            pq: bool) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """The best ``n`` rows of the probed ``lists`` (row numbers, keys; best first) by
    ``sign * (a[t] + aux[row] + b * part(row))``: ``part`` is ``codes[row] . q`` (SQ8), or
    with ``pq`` the sum of ``q[j * 256 + codes[row, j]]`` (``q`` is then the lookup table)."""
    hk = np.empty(n, dtype=np.float32)
    hi = np.empty(n, dtype=np.int64)
    longest = 0
    for t in range(lists.shape[0]):
        longest = max(longest, offsets[lists[t] + 1] - offsets[lists[t]])
    part = np.empty(longest, dtype=np.float32)
    size = 0
    for t in range(lists.shape[0]):
        lo, hi_row = offsets[lists[t]], offsets[lists[t] + 1]
        if pq:
            _pq_block(codes, lo, hi_row, q, part)
        else:
            _sq8_block(codes, lo, hi_row, q, part)
        size = _offer(hk, hi, size, n, part, lo, hi_row, np.float32(a[t]), aux,
                      np.float32(b), np.float32(sign))
    return _sorted(hk, hi, size)
