"""The executor: runs a :class:`~vecpg.query.SearchPlan` for a batch of query vectors.

One statement per query vector, all sent in one pipeline (``Db.run_many``), so a batch of
queries costs one round trip, not one per query. A companion plan first takes candidates
from the codes in memory (:mod:`vecpg.companion`) and binds them into its exact re-rank
statement. An approximate plan that returned fewer rows than asked for is re-run exactly
for those queries: the exact plan says whether that many rows match (a filter can starve
an index scan), so a search gets k results whenever k rows match.

The executor measures; it does not decide. What a run cost goes back to the planner through
one call (``Planner.observe``), made by the caller.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg

from . import distributed
from .companion import Companions
from .query import SearchPlan
from .results import SearchResult
from .session import Db


@dataclass(frozen=True)
class Run:
    """The rows each query got, and the milliseconds per query the run took."""

    rows: list[list[tuple[Any, ...]]]
    ms_per_query: float
    stale: bool = False  # the plan named objects that are gone: make it again

    def hits(self, plan: SearchPlan) -> SearchResult:
        """The rows as hits, one list per query, closest first."""
        return SearchResult(plan.to_hits(r) for r in self.rows)


def run(db: Db, plan: SearchPlan, vectors: list[Any], companions: Companions) -> Run:
    """Run ``plan`` for ``vectors`` (validated by :func:`vecpg.query.query_vectors`)."""
    dist = distributed.of(plan.query.info)
    if dist is not None:
        # on Citus a session setting stays on the coordinator: SET LOCAL reaches the shards
        db.apply(distributed.coordinator_settings(dist))
        with distributed.worker_settings(db, plan.settings):
            return _run(db, plan, vectors, companions)
    db.apply(plan.settings)
    return _run(db, plan, vectors, companions)


def _run(db: Db, plan: SearchPlan, vectors: list[Any], companions: Companions) -> Run:
    started = time.perf_counter()
    fallback = plan.fallback
    stale = False
    if plan.companion is not None:
        try:
            queries = np.stack([v.to_numpy() for v in vectors])
            results = db.run_many(plan.text, plan.companion.bind(db, companions, queries,
                                                                 vectors))
        except psycopg.errors.UndefinedTable:
            # Another process rebuilt (or dropped) the companion index since this plan was
            # made: the version it names is gone. The exact plan answers (an index may make
            # a search slower, never wrong or failed); if the collection itself is gone,
            # the exact plan says so.
            if fallback is None:
                raise
            results, stale = db.run_many(fallback.text, fallback.bind(vectors)), True
    else:
        results = db.run_many(plan.text, plan.bind(vectors))
    if fallback is not None:
        short = [i for i, rows in enumerate(results) if len(rows) < plan.k]
        if short:
            redo = db.run_many(fallback.text, fallback.bind([vectors[i] for i in short]))
            for i, rows in zip(short, redo):
                results[i] = rows
    return Run(results, (time.perf_counter() - started) * 1000 / len(vectors), stale)


Sample = tuple[float | None, float | None]  # (recall, k-th distance of the approximate answer)


def exact_answers(db: Db, plan: SearchPlan, vectors: list[Any], companions: Companions
                  ) -> list[list[tuple[Any, ...]]]:
    """What exact ``plan`` (an approximate plan's fallback) answers for ``vectors``, as
    rows of primary key first and distance last: several vectors share one scan
    (:meth:`vecpg.query.Query.exact_batch`), unless a condition of the metric binds the
    query vector or the collection is distributed (Citus would ship every matching row to
    the coordinator); then one statement each."""
    q = plan.query
    if len(vectors) < 2 or not q.batchable or distributed.of(q.info) is not None:
        return run(db, plan, vectors, companions).rows
    db.apply(plan.settings)
    (rows,) = db.run_many(q.exact_batch(len(vectors)).as_string(None),
                          [[*vectors, *q.where_params]])
    out: list[list[tuple[Any, ...]]] = [[] for _ in vectors]
    for i, pk, d in rows:
        out[i].append((pk, d))
    return out


def shadow(db: Db, plan: SearchPlan, vectors: list[Any], rows: list[list[tuple[Any, ...]]],
           exact: list[list[tuple[Any, ...]]], companions: Companions
           ) -> tuple[list[Sample], list[Sample]]:
    """The recall@k that ``rows`` (what approximate ``plan`` returned for ``vectors``) got
    against ``exact`` (their exact answers, :func:`exact_answers`), with each answer's k-th
    distance (:func:`kth`); and, when the plan carries a probe (a cheaper setting), the
    probe's samples against the same exact answers (:func:`probe`). The planner's shadow
    query (:func:`vecpg.shadow.shadow`)."""
    got = [(recall_of(got, want, plan.k), kth(got, plan.k)) for got, want in zip(rows, exact)]
    return got, probe(db, plan, vectors, exact, companions)


def probe(db: Db, plan: SearchPlan, vectors: list[Any], rows: list[list[tuple[Any, ...]]],
          companions: Companions) -> list[Sample]:
    """The recall@k ``plan.probe`` (an approximate plan) gets for ``vectors``, whose exact
    answers are ``rows`` (what exact ``plan`` returned), with the exact answers' k-th
    distances: those of all the exact plan's searches are noted beside them (see
    vecpg.shadow), so the samples are read at all searches' distance as an approximate
    plan's are. A query the probe leaves with fewer than k rows counts as found: its exact
    fallback would have answered it."""
    if plan.probe is None:
        return []
    got = run(db, plan.probe, vectors, companions).rows
    k = plan.k
    return [(1.0 if len(g) < min(k, len(w)) else recall_of(g, w, k), kth(w, k))
            for g, w in zip(got, rows)]


def kth(rows: list[tuple[Any, ...]], k: int) -> float | None:
    """The distance of an answer's k-th row (None when it has fewer)."""
    return float(rows[k - 1][-1]) if len(rows) >= k else None


def recall_of(got: list[tuple[Any, ...]], want: list[tuple[Any, ...]], k: int) -> float | None:
    """The share of the exact top ``k`` (``want``, rows of primary key first and distance
    last) that ``got`` found; a row at the k-th distance counts as found (ties: two rows at
    one distance are equally right). None when no row matches."""
    if not want:
        return None
    ids = {r[0] for r in want}
    full = len(want) >= k
    kth = float(want[k - 1][-1]) if full else math.inf
    tol = 1e-6 * max(1.0, abs(kth)) if full else 0.0
    hit = sum(1 for r in got[:k] if r[0] in ids or (full and float(r[-1]) <= kth + tol))
    return min(1.0, hit / min(len(want), k))
