"""Shadow queries: what recall filtered searches actually got.

How well a filtered index scan finds the filtered neighbours depends on how the filter
correlates with the vectors, which no statistic tells (a filter keeping the 12% of rows at
one end of the space: HNSW delivered 0.91 where the planner's model promised 0.95, 50k x
128). So for a filtered approximate plan the planner chose, :func:`shadow` sometimes runs
a query vector exactly as well, inline after the answer is computed, and keeps the recall
the answer got with the recall the model predicted (:class:`vecpg.stats.RecallRecord`); the
planner corrects that strategy's recall under that filter from the samples
(:meth:`vecpg.planner.PlanContext.correct`). When the correction moved a search to an exact
plan, the plan's probe (the approximate setting the mean shortfall alone allows) is run
instead, so the search can move back. An approximate plan's probe (a cheaper setting whose
measured headroom could bring it to the target) runs beside its shadow, against the same
exact answer, so a search can also move to a narrower beam. Shadows wait until
SHADOW_BATCH query vectors need one, then one scan answers them all exactly. A shadow that
fails is skipped, never the search.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg

from . import executor
from .catalog import CollectionInfo
from .companion import Companions
from .errors import VecpgError
from .query import SearchPlan
from .session import Db
from .stats import REGRESS_SAMPLES, RecallRecord, StatsCache, sample_key

# The first SHADOW_FIRST query vectors of a filtered search the planner chose are also
# run exactly, so a broken recall promise is corrected within a few searches; after them
# one more whenever that filter's later shadows have cost under SHADOW_SHARE of its
# searches' time. One query's recall is mostly 1.0 with rare deep misses, so a few samples
# say little (50k x 128, correlated filters, 2026-12-02): five samples at 30% showed no
# shortfall where 0.929 was delivered against 0.95 modelled, and sixteen at 20% held one
# query at 0.5 where 0.90 was delivered. A shadow runs inline, after the answer is
# computed: on a 2-core machine a background thread takes the same CPU from the searches,
# and inline its cost is measured and budgeted per filter. First shadows of all filters
# together stay under SHADOW_GLOBAL_SHARE of all searches' time (after the first
# SHADOW_FLOOR_MS): searches whose filter values all differ would otherwise all be shadowed.
SHADOW_FIRST, SHADOW_SHARE = 16, 0.03
# ... but on HNSW a filter keeping at least SHADOW_BROAD of the rows gets one batch of first
# shadows (SHADOW_BATCH): it costs a filtered scan little recall (the model's loss at 50%: 0.006),
# too little for sixteen samples to measure, while its exact shadows cost the most (dev
# set, 70%: sixteen were 21.5% of auto's time over 810 searches, 10 ms each against a 1 ms
# search). One batch still catches a broken promise; the budget's shadows follow.
SHADOW_BROAD = 0.5
# ... but the first ones stop after SHADOW_CLEAR when the samples already say the model
# holds (the shortfall's bound, less its error, above 0): at 30% selectivity without
# correlation each exact shadow cost 7x the HNSW search, and sixteen were 14% of auto's time
# over 810 searches
SHADOW_CLEAR = 8
SHADOW_PROPERTY = "vecpg.shadow_queries"  # a collection property: false turns them off
SHADOW_GLOBAL_SHARE, SHADOW_FLOOR_MS = 0.1, 2000.0
# Shadows wait until SHADOW_BATCH query vectors of a filter need one; one scan of the
# matching rows then answers them all (vecpg.query.Query.exact_batch): on 55k x 384 under a
# 30% filter an exact shadow cost 13.3 ms alone and 6.0 ms each four at a time, and the
# first shadows were 6-12% of auto's time over 810 searches. Four, not more: the first
# correction of a broken promise comes after four searches instead of three.
SHADOW_BATCH = 4
_QUEUE = threading.Lock()  # (two threads must not both take one batch)


@dataclass(frozen=True)
class _Waiting:
    """A query vector whose shadow waits for a batch: the plan that answered it, and how."""

    plan: SearchPlan
    vector: Any
    rows: list[tuple[Any, ...]]
    first: bool  # one of the first shadows (outside the budget)


def shadow(stats: StatsCache, db: Db, plan: SearchPlan, vectors: list[Any],
           rows: list[list[tuple[Any, ...]]], ms: float, companions: Companions) -> bool:
    """Maybe run some of ``vectors`` exactly too (a shadow query) and keep the recall
    ``rows`` (what ``plan`` returned, in ``ms`` milliseconds) got, with the recall the
    model predicted, as samples in ``stats`` for ``plan``'s strategy under its filter (see
    :meth:`~vecpg.stats.RecallRecord.shift`). Only filtered approximate plans the planner
    chose are shadowed (forced ones and their settings are the caller's; unfiltered
    recall is what calibration measures); a shadow that fails is skipped, never the
    search. An exact plan with a ``probe`` (:func:`vecpg.planner.probe_plan`) runs the probe
    instead, compared with its own exact answer; an approximate one runs its probe beside
    the shadow. Returns False when the plan should be made again: the corrected recall of
    ``plan`` misses its target, or its probe's meets it."""
    est = plan.estimate
    q = plan.query
    if not est.learns or (plan.fallback is None and plan.probe is None) or not vectors \
            or not shadows_enabled(q.info):
        return True
    table = q.table.as_string(None)
    rec = stats.recall_record(table, q.filter_key, est.fingerprint, create=True)
    assert rec is not None
    rec.searches += 1
    rec.search_ms += ms
    # how far the answers lie (see RecallRecord.shift): an exact plan's under its probe's
    # key. Without them a probe's samples were read at their raw mean, and the first
    # queries of a run can be harder than the rest (50k x 128, 12%: ef 64 found 0.973 of
    # the first 40 and 0.988 of all 200)
    noted = plan if plan.fallback is not None else plan.probe
    if noted is not None:
        key = sample_key(noted.strategy, noted.params)
        keys = [key]
        if noted is plan and plan.probe is not None:  # (an approximate plan's answers lie
            keys.append(sample_key(plan.probe.strategy, plan.probe.params))  # near exact)
        for answer in rows:
            kth = executor.kth(answer, plan.k)
            if kth is not None:
                for key in keys:
                    rec.note(key, kth)
    totals = stats.shadow_totals
    totals[1] += ms
    n, first = _shadows_due(rec, totals, len(vectors), noted or plan)
    if not n:
        return True
    if plan.fallback is None:  # an exact plan: run its probe against its own answer
        return _probe_exact(stats, db, rec, plan, vectors, rows, first, companions)
    assert plan.fallback is not None
    with _QUEUE:
        if rec.pending and rec.pending[0].plan.fallback.text != plan.fallback.text:
            rec.pending.clear()  # (the same filter with another k or output: one scan each)
        rec.pending.extend(_Waiting(plan, v, r, first) for v, r in zip(vectors[:n], rows[:n]))
        if len(rec.pending) < SHADOW_BATCH:
            return True
        batch, rec.pending = rec.pending, []
    probes: list[tuple[SearchPlan, list[executor.Sample]]] = []
    try:
        with _charged(stats, rec, len(batch), sum(w.first for w in batch) / len(batch)):
            exact = executor.exact_answers(db, plan.fallback, [w.vector for w in batch],
                                           companions)
            for p, group in _by_plan(batch, exact):
                got, probed = executor.shadow(db, p, [w.vector for w, _ in group],
                                              [w.rows for w, _ in group],
                                              [e for _, e in group], companions)
                rec.probes += len(probed)
                _record(stats, rec, p, got)
                if probed and p.probe is not None:
                    probes.append((p.probe, probed))
    except (VecpgError, psycopg.Error) as e:
        _failed(rec, plan, e)
        return True
    for p, probed in probes:
        _record(stats, rec, p, probed)
    if plan.probe is not None and any(p is plan.probe for p, _ in probes) \
            and _meets(rec, plan.probe):
        return False  # the cheaper setting earned its credit: plan again
    return _meets(rec, plan) is not False


def _probe_exact(stats: StatsCache, db: Db, rec: RecallRecord, plan: SearchPlan,
                 vectors: list[Any], rows: list[list[tuple[Any, ...]]], first: bool,
                 companions: Companions) -> bool:
    """An exact plan's shadow: its probe runs for the first query vector, compared with the
    exact answer the search got; False when the probe now meets the target."""
    assert plan.probe is not None
    rec.probes += 1
    try:
        with _charged(stats, rec, 1, 1.0 if first else 0.0):
            got = executor.probe(db, plan, vectors[:1], rows[:1], companions)
    except (VecpgError, psycopg.Error) as e:
        _failed(rec, plan, e)
        return True
    _record(stats, rec, plan.probe, got)
    return not _meets(rec, plan.probe)


@contextlib.contextmanager
def _charged(stats: StatsCache, rec: RecallRecord, n: int, first: float) -> Iterator[None]:
    """Charge what the block takes to ``n`` shadows of ``rec`` (the share ``first`` of it
    to the first shadows, outside the budget), failed or not: it spent the budget."""
    started = time.perf_counter()
    try:
        yield
    finally:
        spent = (time.perf_counter() - started) * 1000
        rec.shadow_ms += spent
        rec.first_ms += spent * first
        stats.shadow_totals[0] += spent
        rec.shadows += n


def _failed(rec: RecallRecord, plan: SearchPlan, e: Exception) -> None:
    """Count a shadow that failed (the search keeps its answer)."""
    rec.failures += 1
    logging.getLogger("vecpg").debug("shadow query of %s failed: %s",
                                     plan.query.table.as_string(None), e)


def _by_plan(batch: list[_Waiting], exact: list[list[tuple[Any, ...]]]
             ) -> list[tuple[SearchPlan, list[tuple[_Waiting, list[tuple[Any, ...]]]]]]:
    """The batch's query vectors with their exact answers, grouped by the plan that answered
    them (in order: a plan made again meanwhile starts a group)."""
    groups: list[tuple[SearchPlan, list[tuple[_Waiting, list[tuple[Any, ...]]]]]] = []
    for w, e in zip(batch, exact):
        if not groups or groups[-1][0] is not w.plan:
            groups.append((w.plan, []))
        groups[-1][1].append((w, e))
    return groups


def _record(stats: StatsCache, rec: RecallRecord, plan: SearchPlan,
            samples: list[executor.Sample]) -> None:
    """Keep ``samples`` of ``plan`` under its sample key, with the recall it was modelled at."""
    key = sample_key(plan.strategy, plan.params)
    for r, h in samples:
        if r is not None:
            stats.record_recall(rec, key, r, plan.estimate.model_recall, h)


def _meets(rec: RecallRecord, plan: SearchPlan) -> bool | None:
    """Whether ``plan``'s recall, corrected by the samples, meets its target (None: too
    few samples to say)."""
    est = plan.estimate
    shift = rec.shift_for(plan.strategy, plan.params, est.model_recall)
    if shift is None:
        return None
    return est.model_recall + shift.applied(est.headroom) >= est.target - 1e-9


def shadows_enabled(info: CollectionInfo) -> bool:
    """False when the collection's ``vecpg.shadow_queries`` property turns shadows off."""
    return info.switched_on(SHADOW_PROPERTY)


def _shadows_due(rec: RecallRecord, totals: list[float], nq: int, plan: SearchPlan
                 ) -> tuple[int, bool]:
    """How many of a search's ``nq`` query vectors (sampling ``plan``) to shadow now
    (see SHADOW_FIRST), and whether they are first shadows (outside the budget)."""
    shadow_ms, search_ms = totals
    waiting = len(rec.pending)
    # (HNSW's only: IVF_FLAT under a 70% filter at one end of the space delivered 0.946 on
    # one batch, 10k x 64, tests/test_shadow_recall.py)
    broad = plan.strategy == "hnsw" and plan.estimate.selectivity >= SHADOW_BROAD
    quota = SHADOW_BATCH if broad else SHADOW_FIRST
    # a width with fewer than REGRESS_SAMPLES samples of its own runs on a borrowed
    # correction, or on its model while its few samples leave it standing (see
    # RecallRecord.shift): its shadows are due whatever the filter's count. With one batch
    # of its own, ef 128 under a filter at one end of the space kept its model's 0.965 on
    # six samples (the first shadows were spent) and delivered 0.920 (50k x 128, 20%)
    # (a broad filter's quota, one batch, is enough: its scan loses little to the filter)
    own = min(REGRESS_SAMPLES, quota)
    fresh = rec.count(plan.strategy, plan.params) + waiting < own
    first = fresh or rec.shadows + waiting < quota
    if first and not fresh and rec.shadows >= SHADOW_CLEAR:
        # read again only when a shadow ran since: every search notes a k-th distance,
        # which makes RecallRecord.shift compute afresh (50k x 128, 12%, ef 40: auto ran
        # 0.93-0.94x the QPS of its own setting fixed, 0.95x with this)
        key = sample_key(plan.strategy, plan.params)
        if rec.first_check is not None and rec.first_check[:2] == (rec.shadows, key):
            first = rec.first_check[2]
        else:
            shift = rec.shift_for(plan.strategy, plan.params, plan.estimate.model_recall)
            first = shift is None or max(shift.margin, shift.floor) < 0
            rec.first_check = (rec.shadows, key, first)
    if first:
        if shadow_ms > max(SHADOW_GLOBAL_SHARE * search_ms, SHADOW_FLOOR_MS):
            return 0, True
        return min(nq, max(quota - rec.shadows, own) - waiting), True
    # the budget is for the shadows after the first ones: charged with those, a filter
    # whose exact plan costs 3x its search (50k x 128, 20%) took ~1,600 searches to earn
    # its next sample. Those waiting for a batch count at the mean cost so far.
    each = rec.shadow_ms / max(rec.shadows, 1)
    return (1 if rec.shadow_ms - rec.first_ms + each * (waiting + 1)
            <= SHADOW_SHARE * rec.search_ms else 0), False
