"""Compiled scans of companion codes (numba), used by :mod:`vecpg.quantize` when numba is
installed; quantize falls back to numpy otherwise (same results to float rounding).

numpy scores a probed list by first converting its codes to float32 (SQ8) or gathering
table entries into a temporary (PQ): three passes over memory per query. These loops read
each code once, straight from the sorted code array (a memory map when shared between
processes), and release the GIL, so client threads scan in parallel.
Measured on the dev set (55k x 384, nprobe 32, one query a call): see docs/benchmarks.md.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True, fastmath=True, boundscheck=False)
def sq8_dots(codes: np.ndarray, starts: np.ndarray, lens: np.ndarray,
             q: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """``codes[r] . q`` for the rows of each range (starts[t], lens[t]), in order."""
    d = codes.shape[1]
    out = np.empty(lens.sum(), dtype=np.float32)
    o = 0
    for t in range(starts.shape[0]):
        s = starts[t]
        for r in range(s, s + lens[t]):
            acc = np.float32(0.0)
            for j in range(d):
                acc += np.float32(codes[r, j]) * q[j]
            out[o] = acc
            o += 1
    return out


@numba.njit(cache=True, nogil=True, fastmath=True, boundscheck=False)
def pq_sums(codes: np.ndarray, starts: np.ndarray, lens: np.ndarray,
            lut: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """``sum_j lut[j * 256 + codes[r, j]]`` for the rows of each range, in order."""
    m = codes.shape[1]
    out = np.empty(lens.sum(), dtype=np.float32)
    o = 0
    for t in range(starts.shape[0]):
        s = starts[t]
        for r in range(s, s + lens[t]):
            acc = np.float32(0.0)
            for j in range(m):
                acc += lut[j * 256 + codes[r, j]]
            out[o] = acc
            o += 1
    return out
