"""Timing helpers shared by the benchmarks: per-query latencies, interleaved pairs, summaries.

A benchmark "side" is a function taking one query vector and returning the ids it found.
Two sides (vecpg and the raw SQL) are timed *interleaved*: query i runs on both, one right
after the other, and the side that goes first alternates from query to query, so machine
noise and cache warmth hit both equally. The ratio of their QPS is then a fair measure of
the layer's overhead even on a loaded machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

Side = Callable[[np.ndarray], list[int]]


@dataclass
class Timed:
    """What one side found for each query, and how long each query took (seconds)."""

    found: list[list[int]]
    seconds: list[float]

    @property
    def qps(self) -> float:
        """Queries per second over the timed queries (inf if none took measurable time)."""
        total = float(sum(self.seconds))
        return len(self.seconds) / total if total > 0 else float("inf")

    def percentile_ms(self, p: float) -> float:
        """The ``p``-th percentile of the per-query latency, in milliseconds."""
        return float(np.percentile(np.asarray(self.seconds), p) * 1000.0)

    def summary(self) -> dict[str, float]:
        """``qps``, ``p50_ms``, ``p99_ms`` and ``mean_results`` (rows returned per query)."""
        return {"qps": round(self.qps, 2), "p50_ms": round(self.percentile_ms(50), 3),
                "p99_ms": round(self.percentile_ms(99), 3),
                "mean_results": round(float(np.mean([len(f) for f in self.found])), 3)}


def time_sides(queries: np.ndarray, sides: Sequence[Side], *, warmup: int = 10,
               budget_s: float | None = None, min_queries: int = 50) -> list[Timed]:
    """Run every query on every side, interleaved (see the module doc), after ``warmup``
    untimed queries per side; returns one :class:`Timed` per side.

    With ``budget_s``, stop after the query during which that many seconds have passed,
    but not before ``min_queries`` queries: a slow setting then costs bounded time, and
    its recall is measured on the first queries only (``len(found)`` says how many).
    """
    for q in queries[:warmup]:
        for side in sides:
            side(q)
    out = [Timed([], []) for _ in sides]
    n = len(sides)
    start = time.perf_counter()
    for i, q in enumerate(queries):
        for j in range(n):
            s = (i + j) % n  # rotate who goes first
            t0 = time.perf_counter()
            ids = sides[s](q)
            out[s].seconds.append(time.perf_counter() - t0)
            out[s].found.append(ids)
        if budget_s is not None and i + 1 >= min_queries and \
                time.perf_counter() - start > budget_s:
            break
    return out


def same_ids(a: Timed, b: Timed) -> float:
    """Fraction of queries for which both sides returned the same ids in the same order."""
    if not a.found:
        return 1.0
    return sum(x == y for x, y in zip(a.found, b.found)) / len(a.found)
