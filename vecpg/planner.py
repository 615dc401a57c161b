"""The query planner: for each search, the cheapest strategy that meets the recall asked for,
from measured facts, and the reasons (``Client.explain``).

Inputs, all measured (:mod:`vecpg.stats` measures and caches the first two):

- rows in the collection, and the filter's selectivity with how Postgres reaches the
  matching rows (a sample is counted when the choice would flip within 4x of Postgres'
  estimate, and always for a filter on JSON values, which Postgres only guesses);
- the vector index's calibration (:mod:`vecpg.calibrate`): recall and latency of each search
  setting, and the cost of exact scans, measured on the collection;
- what searches with this filter actually cost (filtered ANN costs depend on how the filter
  correlates with the vectors, which no statistic tells): the executor's measurement comes
  back through :meth:`Planner.observe`, and a plan whose cost moved well away from its
  estimate is made again;
- what recall filtered plans delivered (a filter that keeps one end of the vector space
  makes an iterative scan miss far more than the fitted model says: 0.91 where it promised
  0.95, 50k x 128 at 12%): :func:`vecpg.shadow.shadow` runs some of a search's query vectors
  exactly as well (:mod:`vecpg.shadow`: the first few searches of a filter, then within a
  time budget) and the shortfall it sees corrects the recall of that strategy's options
  under that filter.

The choice itself is pure: :func:`choose` and :func:`make_plan` take a :class:`PlanContext`
(the compiled query, the stats, the target) and touch no database, so tests state their
inputs (``tests/test_cost_model.py``). Strategies are small objects (:class:`Strategy`):
``options(ctx)`` lists the settings they could run, each an :class:`Option` with estimated
cost (ms per query) and recall; ``build(ctx, option)`` returns what runs it (a
:class:`Runnable`). :func:`register` adds one.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from psycopg import sql

from . import companion
from .errors import InvalidArgument
from .indexes import COMPANION_KINDS, Companion, int_param
from .query import Estimate, Query, SearchPlan
from .schema import DataType
from .session import Db
from .stats import (
    RESERVOIR,
    RecallShift,
    Stats,
    StatsCache,
    index_fingerprint,
    measure_filter,
    reads_json,
    sample_filter,
    sample_key,
)

DEFAULT_RECALL = 0.95
BEAM_COST = 0.1  # a filtered HNSW scan's extra cost per (ef / tuples visited); see HnswStrategy
# ... and a narrow beam's: an iterative scan with ef_search below ITER_EF restarts more often
# (+ITER_COST per ITER_EF / ef - 1); see HnswStrategy
ITER_EF, ITER_COST = 48, 0.1
MAX_SCAN_TUPLES = 20000  # pgvector's hnsw.max_scan_tuples default: an iterative scan stops there
ITERATIVE_SCANS = ("off", "strict_order", "relaxed_order")
EXACT_PREFERENCE = 1.2  # an exact plan within 20% of the cheapest wins: estimates are noisy
EXACT_SLACK_MS = 0.3   # ... or within 0.3 ms of it (tiny collections: no reason to approximate)
# At most this many rows, an unforced search is exact whatever the estimates say: scanning
# them takes well under a millisecond (2,000 x 384-d: 1.3 ms on the dev machine), and
# latencies measured on so small a table are mostly noise (a calibration on a loaded CI
# machine once put a 300-row exact scan above an HNSW search).
TINY_ROWS = 2000

# Used until an index has been calibrated; measured on the dev set (55k x 384 MiniLM,
# Postgres 18, 2 cores). base_ms: one round trip; ms_per_1k: exact scan per 1,000 rows;
# scan_ms_per_1k: a scan that only evaluates a filter; ff_ms_per_1k: exact distances on rows
# fetched through a btree (bitmap heap scan), per 1,000 rows.
DEFAULT_EXACT = {"base_ms": 0.15, "ms_per_1k": 0.67, "scan_ms_per_1k": 0.5, "ff_ms_per_1k": 1.95}
# An index without a calibration (a build killed while calibrating, an index made by plain
# SQL) is planned as if its data were the hardest kind there is, so a recall promise holds
# until it is calibrated: recall@10 of random Gaussian 256-d vectors (20k rows, held-out
# random queries, M=16, efConstruction=64; measured 2026-12-01). On the dev set (MiniLM)
# the same ef finds far more (0.87 at ef 10), and on random 64-d data more too (0.90 at
# ef 100, 0.956 at 200): uncalibrated plans are slow, never wrong.
# (ef, recall@10, ms; the ms of the dev set)
DEFAULT_HNSW = [(10, 0.31, 1.0), (20, 0.44, 1.2), (40, 0.58, 1.55), (64, 0.69, 2.0),
                (100, 0.77, 2.6), (200, 0.86, 4.1), (400, 0.94, 7.1), (800, 0.979, 13.5)]
# (nprobe / nlist, recall@10) of IVF_FLAT nlist=128 on the same random 256-d data
DEFAULT_IVF = [(0.0078, 0.05), (0.0156, 0.09), (0.031, 0.14), (0.0625, 0.24), (0.125, 0.43),
               (0.25, 0.70), (0.5, 0.954), (1.0, 1.0)]
# an uncalibrated companion index is not chosen for any target above this (knobs given by
# the caller still run it)
UNCALIBRATED_COMPANION_RECALL = 0.5


# -- options and strategies ---------------------------------------------------------------

@dataclass
class Option:
    """One way to run a search: a strategy with its settings, estimated cost and recall."""

    strategy: str                 # name of the Strategy that builds it
    label: str                    # what explain calls it: exact, filter_first, hnsw, ...
    params: dict[str, Any]        # the strategy's knobs, e.g. {"ef": 64}
    cost_ms: float                # estimated milliseconds per query
    recall: float                 # estimated recall@k
    approximate: bool = True      # may miss rows or return fewer than k (then: exact fallback)
    cost_source: str = "calibration"  # "calibration" | "default" | "model" (+ " x observed")
    note: str = ""
    rejected: str = ""            # filled in by the planner for the options it did not pick
    model_cost: float = 0.0       # the estimate before measured latencies corrected it
    ratio: float = 1.0            # the correction applied (measured / estimated)
    model_recall: float = -1.0    # the recall before shadow samples corrected it (-1: same)
    headroom: float = 0.0         # how far above the model samples may raise it (see
                                  # RecallShift.applied)
    recall_shift: RecallShift | None = None  # that correction

    @property
    def key(self) -> str:
        """The option's identity: its label and settings."""
        return self.label + repr(sorted(self.params.items()))

    def as_dict(self) -> dict[str, Any]:
        """The option as explain reports it."""
        d = {"strategy": self.label, "params": dict(self.params),
             "estimated_cost_ms": round(self.cost_ms, 4), "estimated_recall": round(self.recall, 4),
             "cost_source": self.cost_source}
        if self.ratio != 1.0:
            d["measured_over_estimated"] = round(self.ratio, 3)
        d.update(_recall_source(self))
        if self.note:
            d["note"] = self.note
        if self.rejected:
            d["rejected"] = self.rejected
        return d


@dataclass
class PlanContext:
    """What strategies see while the planner weighs them."""

    query: Query
    stats: Stats
    recall: float                 # the target
    forced: str | None            # the strategy the caller forced, if any
    cache: StatsCache
    table: str                    # the table's name as SQL text (a cache key)

    @property
    def fingerprint(self) -> str:
        """The index recall samples are valid for (see :func:`index_fingerprint`)."""
        return index_fingerprint(self.query.index)

    @property
    def calibration(self) -> dict[str, Any] | None:
        """The index's stored calibration, if it has a curve."""
        ix = self.query.index
        cal = getattr(ix, "calibration", None) if ix is not None else None
        return cal if isinstance(cal, dict) and cal.get("curve") else None

    def exact_costs(self) -> tuple[dict[str, float], str]:
        """The exact scan's cost model (calibrated, else the defaults) and its source."""
        cal = self.calibration
        if cal and isinstance(cal.get("exact"), dict):
            return {**DEFAULT_EXACT, "base_ms": float(cal.get("base_ms", 0.15)),
                    **cal["exact"]}, "calibration"
        return DEFAULT_EXACT, "default"

    def correct(self, option: Option) -> Option:
        """``option`` with its cost scaled by what searches with this filter measured for
        its strategy (filtered costs depend on how filter and vectors correlate)."""
        option.model_cost = option.cost_ms
        if self.query.filtered:
            r = self.cache.ratio(self.table, self.query.filter_key, option.label)
            source = " x observed"
            if r is None:
                # Not run under this filter yet: part of what slowed the strategies that ran
                # is the machine (load, round trips), not the strategy, so the unmeasured
                # one is charged the square root of the smallest ratio seen. Without this,
                # a loaded machine made every measured plan look worse than the unmeasured
                # ones and auto flipped between them (dev set, 12%, load 20 on 2 cores: 10
                # plans in 200 searches, hnsw -> filter_first, 13 QPS where hnsw ef 40 ran 23).
                seen = self.cache.ratios(self.table, self.query.filter_key)
                if seen:
                    r, source = math.sqrt(min(seen)), " x observed (other strategies)"
            if r is not None:
                option.cost_ms *= r
                option.ratio = r
                option.cost_source += source
            if option.approximate:
                # what shadow queries measured of this strategy's recall under this filter
                shift = self.cache.recall_shift(self.table, self.query.filter_key,
                                                option.label, option.params, self.fingerprint,
                                                option.recall)
                option.model_recall = option.recall
                if shift is not None:
                    option.recall = max(0.0, option.recall + shift.applied(option.headroom))
                    option.recall_shift = shift
        return option


class Strategy(Protocol):
    """A way to search. ``name`` is what ``search(strategy=...)`` forces; ``knobs`` are the
    search parameters that force it when given (``{"ef": 64}`` forces hnsw)."""

    name: str
    knobs: tuple[str, ...]

    def options(self, ctx: PlanContext) -> list[Option]:
        """The settings this strategy could run for ``ctx.query`` (none if it does not apply),
        each with estimated cost and recall."""
        ...

    def build(self, ctx: PlanContext, option: Option) -> Runnable:
        """What runs ``option``."""
        ...


def _interp(x: float, points: list[tuple[float, float]]) -> float:
    """Piecewise-linear in log(x) through ``points`` (sorted by x), clamped at the ends."""
    if x <= points[0][0]:
        return points[0][1]
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        if x <= x1:
            t = (math.log(x) - math.log(x0)) / (math.log(x1) - math.log(x0))
            return y0 + t * (y1 - y0)
    return points[-1][1]


def _line(points: list[tuple[float, float]]) -> Callable[[float], float]:
    """Latency as a line in the knob (``a + b x``, b >= 0), fitted robustly (Theil-Sen: the
    median of the pairwise slopes, then the median intercept). A search's cost grows with
    ef or nprobe, but calibrations measured on a loaded machine are not monotone (seen on a
    2-core machine at load 18: ef 10 at 9.0 ms, ef 20 at 4.0, ef 200 at 5.7, ef 64 at
    12.2), and the planner then chose ef 200 over ef 30 as "cheaper" (0.64x the best QPS).
    On a quiet machine the dev set's curve is close to a line (1.0 ms at ef 10, 2.6 at 100,
    7.1 at 400, 13.5 at 800)."""
    slopes = sorted((y1 - y0) / (x1 - x0) for (x0, y0), (x1, y1)
                    in itertools.combinations(points, 2) if x1 != x0)
    ys = sorted(y for _, y in points)
    # a slope of at least 0.5% of the median latency per unit: a wider beam never comes
    # free (noise can make the fitted slope 0 or less; the dev set's is 0.6% of its median)
    b = max(0.005 * ys[len(ys) // 2], slopes[len(slopes) // 2] if slopes else 0.0)
    inter = sorted(y - b * x for x, y in points)
    a = max(1e-3, inter[len(inter) // 2])
    return lambda x: a + b * x


def _recall_source(o: Option) -> dict[str, Any]:
    """How ``o``'s recall was corrected by shadow samples, as explain reports it."""
    s = o.recall_shift
    if s is None:
        return {}
    out = {"recall_source": "observed recall", "recall_samples": s.samples,
           "recall_shift": round(s.applied(o.headroom), 4),
           "model_recall": round(o.model_recall, 4), "observed_minus_model": round(s.mean, 4)}
    if o.headroom > 0:
        out["recall_headroom"] = round(o.headroom, 4)
    return out


def _low(point: dict[str, Any]) -> float:
    """A calibrated recall less one standard error: sampled recall is a noisy promise."""
    return float(point["recall"]) - float(point.get("se", 0.0))


def _filtered_loss(selectivity: float, per_unit: float) -> float:
    """Recall an iterative index scan loses to a filter, against the unfiltered recall of
    the graph explored. Fitted on the dev set's filters (which correlate with the vectors):
    HNSW lost 0.00 at 70% selectivity, 0.01-0.022 at 12% (ef 10-100) and 0.02 at 3%
    (2026-11-30; per_unit 0.045 gives 0.028 and 0.033, the margin for another build's
    graph); IVF_FLAT lost 0.00 at 70%, 0.07-0.15 at 12%, 0.25-0.4 at 3%. Conservative: a
    miss costs a slower plan, but too much margin costs a needlessly wide search (per_unit
    0.06 made auto pick ef 64 where ef 20-40 met 0.95 at 12%: 0.87x the best QPS)."""
    return per_unit * max(0.0, 0.5 - selectivity) + 0.012 * (1.0 - selectivity)


def _explored(ef_search: float, k: int, selectivity: float, filtered: bool) -> float:
    """How many candidates an HNSW search at ``ef_search`` is credited with exploring.
    An iterative scan visits about k / selectivity tuples before k of them match: a narrow
    beam finds less on its way (recall grew from 0.95 at ef 10 to 0.97 at ef 64 at 12% on
    the dev set), so it is credited the geometric mean of the two."""
    need = k / max(selectivity, 1e-9)
    return math.sqrt(ef_search * need) if filtered and need > ef_search else ef_search


FilterLoss = Callable[[float, float], float]
"""``(selectivity, ef at the calibration's k) -> recall`` a filter costs an HNSW search."""


def _measured_loss(cal: dict[str, Any] | None, rec: list[tuple[float, float]],
                   kcal: int) -> FilterLoss:
    """The recall a filter independent of the vectors costs HNSW, against the unfiltered
    recall of the graph explored, as calibration["filtered"] measured it (see
    :mod:`vecpg.calibrate`) at each ef, carried to other selectivities in
    :func:`_filtered_loss`'s shape; without one, that model's. A measured gain (the
    filtered search finding more than it is credited with exploring) shrinks toward 100%
    but is not grown toward smaller selectivities, where fewer rows match and the scan
    runs longer.

    HnswStrategy keeps the model's loss as the recall and takes what this finds beyond
    it as the headroom shadow samples may credit (RecallShift.applied): filters that
    correlate with the vectors lose more than an independent one. Measured on a
    generated 50k x 128 set (2026-12-02): at 12% uncorrelated, ef 40 modelled 0.937 and
    delivered 0.983-0.993; at 30% correlated (c_30), taken as the prior, the measured
    loss put ef 64 at 0.982 where it delivered 0.943, and auto missed the target (0.944)."""
    def model(selectivity: float, ef: float) -> float:
        return _filtered_loss(selectivity, 0.045)
    f = cal.get("filtered") if cal else None
    if not isinstance(f, dict) or not f.get("curve") or not f.get("selectivity"):
        return model
    s0 = float(f["selectivity"])
    k0 = int(f.get("k", kcal))
    base = _filtered_loss(s0, 0.045)
    # loss at s0 per ef: the unfiltered recall of what the model credits, less the measured
    pts = sorted((float(p["ef"]), _interp(_explored(max(float(p["ef"]), k0), k0, s0, True)
                                          * kcal / k0, rec) - _low(p)) for p in f["curve"])

    def loss(selectivity: float, ef: float) -> float:
        at_s0 = _interp(ef, pts)
        scale = _filtered_loss(selectivity, 0.045) / base
        return at_s0 * (scale if at_s0 >= 0 else min(1.0, scale))
    return loss


class ExactStrategy:
    """Exact distances: ``ORDER BY distance + 0`` (no ANN index matches it), so Postgres
    scans sequentially, or fetches the filter's rows through a btree/GIN index first when
    that is cheaper (reported as filter_first)."""

    name = "exact"
    knobs: tuple[str, ...] = ("exact",)

    def options(self, ctx: PlanContext) -> list[Option]:
        """See :meth:`Strategy.options`."""
        if ctx.query.bm25 is not None:
            return []  # ranked by Bm25Strategy
        c, src = ctx.exact_costs()
        s, n = ctx.stats, max(ctx.stats.rows, 0.0)
        m = min(s.matching, n) if n else s.matching
        label = "exact"
        if ctx.query.filtered and s.filter_access == "index":
            label = "filter_first"
            cost = c["base_ms"] + m / 1000 * c["ff_ms_per_1k"]
        elif ctx.query.filtered:
            dist = max(c["ms_per_1k"] - c["scan_ms_per_1k"], 0.1 * c["ms_per_1k"])
            cost = c["base_ms"] + n / 1000 * c["scan_ms_per_1k"] + m / 1000 * dist
        else:
            cost = c["base_ms"] + n / 1000 * c["ms_per_1k"]
        return [ctx.correct(Option(self.name, label, {}, cost, 1.0, approximate=False,
                                   cost_source=src))]

    def build(self, ctx: PlanContext, option: Option) -> Runnable:
        """See :meth:`Strategy.build`."""
        return Runnable(option.label, ctx.query.statement(exact=True), {})


def _growth(ctx: PlanContext, cal: dict[str, Any] | None) -> float:
    """How many times the collection grew since calibration (1 when it did not)."""
    if not cal or not cal.get("rows") or ctx.stats.rows <= 0:
        return 1.0
    return max(1.0, ctx.stats.rows / float(cal["rows"]))


class HnswStrategy:
    """pgvector HNSW with ``hnsw.ef_search`` per search; filtered searches use an iterative
    scan (relaxed order, re-sorted) so the filter does not starve the result."""

    name = "hnsw"
    knobs: tuple[str, ...] = ("ef",)

    def options(self, ctx: PlanContext) -> list[Option]:
        """See :meth:`Strategy.options`."""
        q = ctx.query
        ix = q.index
        if ix is None or ix.kind.family != "hnsw" or ix.pg_index is None:
            return []
        cal = ctx.calibration
        if cal and cal.get("knob") == "ef":
            curve = [(float(p["ef"]), _low(p), float(p["ms"])) for p in cal["curve"]]
            src, kcal = "calibration", int(cal.get("k", 10))
        else:
            curve = [(float(a), b, c) for a, b, c in DEFAULT_HNSW]
            src, kcal = "default (uncalibrated)", 10
        rec = [(e, r) for e, r, _ in curve]
        ms_at = _line([(e, ms) for e, _, ms in curve])
        grow = _growth(ctx, cal)
        if "ef" in q.knobs:
            efs = [int_param(q.knobs, ("ef",), 40, 1, 1000, what="search parameter")]
        else:
            grid = ix.kind.grid
            efs = sorted({e for e in grid if e >= q.k} | {max(q.k, grid[0])})
            efs = [e for e in efs if e <= max(1000, q.k)]
        sel = ctx.stats.selectivity
        loss = _measured_loss(cal if src == "calibration" else None, rec, kcal)

        def option(ef: int) -> Option:
            ef_search = max(ef, q.k)
            explored = _explored(ef_search, q.k, sel, q.filtered)
            note = ""
            need = q.k / max(sel, 1e-9)
            if q.filtered and need > ef_search:
                # An iterative scan visits about k / selectivity tuples before k of them
                # match: it costs about that much whatever ef is (see _explored for what
                # it finds). A wider beam still costs a little more (at 12% on the
                # dev set: +3% at ef 40, +7% at ef 64, over ef 20), so the smallest ef that
                # meets the target wins rather than any ef below k / selectivity.
                # A beam narrower than ITER_EF costs more again: measured on a generated
                # 50k x 128 set at 12% (2026-12-02, one run), ef 10 ran 0.79x the QPS of ef
                # 40-64, ef 20 0.95x; on the dev set at 12% auto's ef 25 ran slower than
                # ef 80 (issue 17).
                cost = ms_at(need) * (1 + BEAM_COST * ef_search / need) * (
                    1 + ITER_COST * max(0.0, min(need, ITER_EF) / ef_search - 1))
            else:
                cost = ms_at(explored) * (1 + BEAM_COST if q.filtered else 1)
            cost *= 1 + 0.15 * math.log2(grow)
            # recall@k exploring e candidates behaves like recall@kcal at ef = e * kcal / k
            recall = _interp(explored * kcal / q.k, rec) - 0.01 * math.log2(grow)
            headroom = 0.0
            if q.filtered:
                # the model is the prior; what the filtered calibration found beyond it is
                # headroom (a measured loss beyond it is left to the shadows: one build's
                # sweep put u_12 at 0.90 where HNSW delivered 0.98, and auto ran exact, 0.28x)
                modelled, measured = _filtered_loss(sel, 0.045), loss(sel, ef_search * kcal / q.k)
                recall -= modelled
                headroom = max(0.0, min(modelled - measured, 1.0 - recall))
                if need > MAX_SCAN_TUPLES * 0.8:
                    recall, headroom = min(recall, 0.5), 0.0
                    note = (f"k/selectivity = {need:.0f} tuples to visit is near "
                            f"hnsw.max_scan_tuples ({MAX_SCAN_TUPLES})")
            opt = Option(self.name, "hnsw", {"ef": ef}, cost, max(0.0, min(1.0, recall)),
                         cost_source=src if not q.filtered else "model", note=note,
                         headroom=headroom)
            return ctx.correct(opt)

        out = [option(ef) for ef in efs]
        if "ef" not in q.knobs:
            out += _between(out, "ef", ctx.recall, option)
        return out

    def build(self, ctx: PlanContext, option: Option) -> Runnable:
        """See :meth:`Strategy.build`."""
        q = ctx.query
        ef = int(option.params["ef"])
        scan = _iterative(q)
        settings = {"hnsw.ef_search": str(max(ef, q.k)),  # pgvector returns at most ef rows
                    "hnsw.iterative_scan": scan}
        return Runnable("hnsw", q.statement(exact=False, resort=scan == "relaxed_order"),
                        settings)


def _between(options: list[Option], knob: str, target: float,
             make: Callable[[int], Option]) -> list[Option]:
    """The smallest setting between two grid points that meets ``target`` (recall is
    interpolated between calibrated settings): the grid's next point may cost much more."""
    ordered = sorted(options, key=lambda o: o.params[knob])
    for lo, hi in itertools.pairwise(ordered):
        a, b = int(lo.params[knob]), int(hi.params[knob])
        if lo.recall < target <= hi.recall and b - a > 1:
            while b - a > 1:  # recall grows with the setting: bisect
                mid = (a + b) // 2
                if make(mid).recall >= target:
                    b = mid
                else:
                    a = mid
            return [make(b)] if b != int(hi.params[knob]) else []
    return []


def _iterative(q: Query) -> str:
    scan = q.knobs.get("iterative_scan", "relaxed_order" if q.filtered else "off")
    if scan not in ITERATIVE_SCANS:
        raise InvalidArgument(f"search parameter iterative_scan must be one of "
                              f"{', '.join(ITERATIVE_SCANS)}, got {scan!r}")
    return str(scan)


class IvfFlatStrategy:
    """pgvector IVF_FLAT with ``ivfflat.probes`` per search (iterative scan when filtered)."""

    name = "ivfflat"
    knobs: tuple[str, ...] = ("nprobe",)

    def options(self, ctx: PlanContext) -> list[Option]:
        """See :meth:`Strategy.options`."""
        q = ctx.query
        ix = q.index
        if ix is None or ix.kind.family != "ivfflat" or ix.pg_index is None:
            return []
        nlist = ix.kind.nlist(ix.params)
        cal = ctx.calibration
        c, _ = ctx.exact_costs()
        n = max(ctx.stats.rows, 1.0)
        if cal and cal.get("knob") == "nprobe":
            pts = [(float(p["nprobe"]), _low(p), float(p["ms"])) for p in cal["curve"]]
            rec = [(p, r) for p, r, _ in pts]
            lat = [(p, ms) for p, _, ms in pts]
            src = "calibration"
        else:
            rec = [(f * nlist, r) for f, r in DEFAULT_IVF]
            lat = [(p, c["base_ms"] + 0.3 + min(1.0, p / nlist) * n / 1000 * c["ms_per_1k"])
                   for p in (1.0, float(nlist))]
            src = "default (uncalibrated)"
        ms_at = _line(lat)
        grow = _growth(ctx, cal)
        if "nprobe" in q.knobs:
            probes = [min(int_param(q.knobs, ("nprobe",), 8, 1, 65536, what="search parameter"),
                          nlist)]
        else:
            probes = sorted({p for p in ix.kind.grid if p <= nlist} | {nlist})
        sel = ctx.stats.selectivity

        def option(p: int) -> Option:
            recall = _interp(float(p), rec) if q.k <= 10 else _interp(p * 10 / q.k, rec)
            base = c["base_ms"]
            cost = base + (ms_at(float(p)) - base) * grow  # lists grow with the table
            if q.filtered:
                # matching rows in the probed lists; the iterative scan probes more until k
                found = sel * p * n / nlist
                cost *= max(1.0, q.k / max(found, 1e-9))
                recall -= _filtered_loss(sel, 0.5)
                # (no credit for the extra probes: a correlated filter's rows sit in lists
                # far from the query, measured on the dev set)
            opt = Option(self.name, "ivfflat", {"nprobe": p}, cost, max(0.0, min(1.0, recall)),
                         cost_source=src if not q.filtered else "model")
            return ctx.correct(opt)

        out = [option(p) for p in probes]
        if "nprobe" not in q.knobs:
            out += _between(out, "nprobe", ctx.recall, option)
        return out

    def build(self, ctx: PlanContext, option: Option) -> Runnable:
        """See :meth:`Strategy.build`."""
        q = ctx.query
        scan = _iterative(q)
        settings = {"ivfflat.probes": str(option.params["nprobe"]), "ivfflat.iterative_scan": scan}
        return Runnable("ivfflat", q.statement(exact=False, resort=scan == "relaxed_order"),
                        settings)


def _companion_filtered(recall: float, selectivity: float) -> float:
    """Recall of a companion search under a filter of ``selectivity`` (with ``rerank /
    selectivity`` candidates per result), from its unfiltered ``recall``: the filtered
    top k lie deeper in the unfiltered order, so more of them sit in lists not probed. The
    miss rate grows by 1 + 0.25 (1/selectivity - 1). Fitted on the dev set (IVF_SQ8,
    nprobe 16-64, 2026-11-30): misses grew 1.1-1.25x at 70% selectivity, 2.3-2.7x at 12%,
    6.8-8.8x at 3% (this gives 1.11x, 2.8x, 9.1x)."""
    return 1.0 - (1.0 - recall) * (1.0 + 0.25 * (1.0 / selectivity - 1.0))


class CompanionStrategy:
    """A companion quantized index (IVF_SQ8, IVF_PQ, ANNOY; :mod:`vecpg.companion`):
    candidates from codes in memory, re-ranked exactly in SQL; a query left with fewer than
    k rows (a selective filter, deleted rows) is re-run exactly, like any approximate plan.

    Its calibration (``nprobe``, or ANNOY's ``search_k``, at the default re-rank factor)
    gives one option per measured setting; until it is calibrated its recall is taken to
    be the target at a quarter of an exact scan's cost. A filter is applied to the
    re-ranked candidates, so a filtered search the planner sets up takes ``rerank /
    selectivity`` candidates per result (at most 1,000) and misses more: see
    :func:`_companion_filtered`. Knobs the caller gives run as given (default re-rank 10:
    under a selective filter fewer than k candidates survive and the exact fallback
    answers)."""

    name = "companion"
    knobs: tuple[str, ...] = ("nprobe", "search_k", "rerank", "reorder_k")

    def options(self, ctx: PlanContext) -> list[Option]:
        """See :meth:`Strategy.options`."""
        q = ctx.query
        ix = q.index
        if ix is None or not ix.kind.companion or ix.id is None:
            return []
        knob = ix.kind.knob or "nprobe"
        given = {k: v for k, v in q.knobs.items() if k in self.knobs}
        cal = ctx.calibration
        exact, _ = ctx.exact_costs()
        if cal and cal.get("knob") == knob and knob not in given:
            points = [({knob: int(p[knob])}, _low(p), float(p["ms"])) for p in cal["curve"]]
            src = "calibration"
        else:
            exact_ms = ExactStrategy().options(ctx)[0].model_cost
            points = [({}, ctx.recall if given else UNCALIBRATED_COMPANION_RECALL,
                       exact_ms / 4)]
            src = "default (uncalibrated)"
        sel = max(ctx.stats.selectivity, 1e-9) if q.filtered else 1.0
        extra_ms, scale = 0.0, {}
        if q.filtered and not given:  # knobs the caller gives are run as given
            rerank = min(1000, math.ceil(companion.DEFAULT_RERANK / sel))
            scale = {"rerank": rerank}
            # the extra candidates are fetched by primary key, like a filter's rows
            extra_ms = q.k * (rerank - companion.DEFAULT_RERANK) / 1000 * exact["ff_ms_per_1k"]
        grow = _growth(ctx, cal)
        out = []
        for params, recall, ms in points:
            cost = (ms + extra_ms) * (1 + 0.15 * math.log2(grow))
            recall = _companion_filtered(recall, sel) - 0.01 * math.log2(grow)
            out.append(ctx.correct(Option(
                self.name, ix.index_type.lower(), {**given, **params, **scale}, cost,
                max(0.0, min(1.0, recall)), cost_source=src if not q.filtered else "model")))
        return out

    def build(self, ctx: PlanContext, option: Option) -> Runnable:
        """See :meth:`Strategy.build`."""
        q, ix = ctx.query, ctx.query.index
        if ix is None or ix.id is None:
            raise InvalidArgument("a companion plan needs a companion index")
        cfg = ix.config
        if not isinstance(cfg, Companion):
            raise InvalidArgument(f"index {ix.index_name!r} is not a companion index")
        cp, rerank = companion.plan(ix.id, ix.version, cfg, {**q.knobs, **option.params},
                                    q.table, q.info.schema.primary_field,
                                    sql.SQL(", ").join(q.selection.select_list()), q.dist.order,
                                    sql.SQL(" AND ").join(q.where), list(q.where_params), q.k,
                                    q.dist.where_vectors)
        # The re-rank is a primary-key lookup whatever the candidates: Postgres planned it
        # again on every run (custom plans, 0.06 ms of a 0.42 ms statement, measured) where
        # the generic plan is the same lookup (a filter's values still get custom plans).
        return Runnable(option.label, rerank, {"plan_cache_mode": "force_generic_plan"}, cp)


class Bm25Strategy:
    """Full-text search on a BM25 function's output field: the rows holding any query
    term (through the GIN index on the input's tsvector), scored exactly in SQL from the
    collection's statistics, ``ORDER BY score DESC LIMIT k`` (:mod:`vecpg.fulltext`). The
    only strategy for such a search, and exact: its top k is the exhaustive top k."""

    name = "bm25"
    knobs: tuple[str, ...] = ()

    def options(self, ctx: PlanContext) -> list[Option]:
        """See :meth:`Strategy.options`."""
        q = ctx.query
        if q.bm25 is None:
            return []
        c, src = ctx.exact_costs()
        n = max(ctx.stats.rows, 0.0)
        cost = c["base_ms"] + n / 1000 * c["scan_ms_per_1k"]  # a bound: GIN finds fewer
        note = (f"BM25 scored in SQL: candidates are the rows whose {q.bm25.input_field!r} "
                "holds a query term (GIN index), N and avgdl from vecpg.bm25_stats, df counted "
                "through the GIN index; exact")
        return [Option(self.name, self.name, {"bm25_k1": q.bm25.k1, "bm25_b": q.bm25.b},
                       cost, 1.0, approximate=False, cost_source=src, note=note)]

    def build(self, ctx: PlanContext, option: Option) -> Runnable:
        """See :meth:`Strategy.build`."""
        return Runnable(option.label, ctx.query.bm25_statement(), {})


_STRATEGIES: list[Strategy] = [ExactStrategy(), Bm25Strategy(), HnswStrategy(),
                               IvfFlatStrategy(), CompanionStrategy()]


def register(strategy: Strategy, *, replace_existing: bool = True) -> None:
    """Add a strategy the planner weighs for every search (one with the same name is
    replaced)."""
    for i, s in enumerate(_STRATEGIES):
        if s.name == strategy.name:
            if not replace_existing:
                raise InvalidArgument(f"a strategy named {strategy.name!r} exists")
            _STRATEGIES[i] = strategy
            return
    _STRATEGIES.append(strategy)


def strategies() -> list[Strategy]:
    """The registered strategies, in the order the planner asks them."""
    return list(_STRATEGIES)


# -- choosing -----------------------------------------------------------------------------

def _forced(q: Query, strategy: str | None) -> str | None:
    """The strategy name (or option label) the caller forced, if any."""
    if strategy is not None:
        if not isinstance(strategy, str):
            raise InvalidArgument(f"strategy must be a string, got {strategy!r}")
        name = strategy.strip().lower()
        if name in ("", "auto"):
            return None
        known = {s.name for s in _STRATEGIES} | {"filter_first"} | {
            t.lower() for t in COMPANION_KINDS}
        if name not in known:
            raise InvalidArgument(f"unknown strategy {strategy!r}; expected auto or one of "
                                  f"{', '.join(sorted(known))}")
        # filter_first and exact run the same statement: Postgres takes the filter's index
        # when it is selective enough
        return "exact" if name == "filter_first" else name
    if q.knobs.get("exact"):
        return "exact"
    return None


def _knobs_force(q: Query) -> bool:
    """True when search_params name a setting (the caller chose, the planner did not)."""
    return any(k in q.knobs for s in _STRATEGIES if s.name != "exact" for k in s.knobs)


def _pick(options: list[Option], recall: float) -> Option:
    """The cheapest option that meets the target (an exact one when it costs at most
    EXACT_PREFERENCE times, or EXACT_SLACK_MS more than, the cheapest: its answer is
    complete); else the most accurate."""
    feasible = [o for o in options if o.recall >= recall - 1e-9]
    if not feasible:
        return max(options, key=lambda o: (o.recall, -o.cost_ms))
    best = min(feasible, key=lambda o: (o.cost_ms, -o.recall))
    if best.approximate:
        exact = [o for o in feasible if not o.approximate and o.cost_ms <= max(
            best.cost_ms * EXACT_PREFERENCE, best.cost_ms + EXACT_SLACK_MS)]
        if exact:
            return min(exact, key=lambda o: o.cost_ms)
    return best


def choose(ctx: PlanContext) -> tuple[Option, list[Option]]:
    """The option to run and every option considered (each rejected one says why)."""
    options: list[Option] = []
    by_knob: str | None = None
    for s in _STRATEGIES:
        opts = s.options(ctx)
        options += opts
        if opts and by_knob is None and s.name != "exact" and any(
                k in ctx.query.knobs for k in s.knobs):
            by_knob = s.name  # explicit index knobs force the index (Milvus semantics)
    forced = ctx.forced or by_knob
    pool = options
    tiny = forced is None and 0 <= ctx.stats.rows <= TINY_ROWS
    if tiny and any(not o.approximate for o in options):
        pool = [o for o in options if not o.approximate]
    if forced is not None:
        pool = [o for o in options if forced in (o.strategy, o.label)]
        if not pool:
            have = sorted({o.label for o in options})
            raise InvalidArgument(f"strategy {forced!r} does not apply to this search "
                                  f"(collection {ctx.query.info.name!r}); available: "
                                  f"{', '.join(have)}")
    best = _pick(pool, ctx.recall)
    for o in options:
        if o is best:
            continue
        if o not in pool and tiny:
            o.rejected = (f"the collection has {ctx.stats.rows:.0f} rows (at most {TINY_ROWS}):"
                          " an exact scan answers")
        elif o not in pool:
            o.rejected = f"not the forced strategy {forced}"
        elif o.recall < ctx.recall - 1e-9:
            o.rejected = f"estimated recall {o.recall:.3f} < target {ctx.recall}"
        elif not best.approximate and o.cost_ms < best.cost_ms:
            o.rejected = (f"estimated cost {o.cost_ms:.3f} ms, but an exact plan within "
                          f"{EXACT_PREFERENCE:.1f}x or {EXACT_SLACK_MS} ms of it is preferred")
        else:
            o.rejected = f"estimated cost {o.cost_ms:.3f} ms > {best.cost_ms:.3f} ms"
    return best, options


# -- the entry point ----------------------------------------------------------------------

@dataclass(frozen=True)
class Runnable:
    """What a strategy's option runs: a statement with per-query settings (and, for a
    companion index, the plan that proposes its candidates)."""

    label: str
    statement: sql.Composed
    settings: dict[str, str]
    companion: Any = None


def make_plan(ctx: PlanContext, best: Option, options: list[Option]) -> SearchPlan:
    """The frozen plan for the chosen option, with its exact fallback and explanation
    (pure: no database)."""
    q = ctx.query
    run = _runnable(ctx, best)
    text = run.statement.as_string(None)
    fallback = None
    if best.approximate:
        exact = q.statement(exact=True)
        fallback = SearchPlan(q, "exact", exact.as_string(None), q.settings({}), {},
                              Estimate())
    learns = q.filtered and ctx.forced is None and not _knobs_force(q)
    estimate = _estimate(ctx, best, learns=learns,
                         remembers=q.field.dtype in (DataType.FLOAT_VECTOR,
                                                     DataType.FLOAT16_VECTOR))
    settings = q.settings(run.settings)
    explain = _explain(ctx, best, options, text, settings)
    missing = missing_index(ctx, best)
    if missing is not None:
        explain["missing_index"] = missing
    probe = probe_plan(ctx, best, options) if learns else None
    if probe is not None:
        explain["probe"] = {"strategy": probe.strategy, "params": dict(probe.params),
                            "model_recall": round(probe.estimate.model_recall, 4)}
    return SearchPlan(q, run.label, text, settings, dict(best.params), estimate,
                      run.companion, fallback, explain, probe)


# A probe goes first to a fitting setting whose width has fewer than PROBE_TESTED samples of
# its own: always the cheapest fitting one kept a filter probing ef 145 (0.952 delivered, a
# margin no sample count confirms) where ef 400 delivered 0.971 and never had a sample
# (50k x 128, 30% at one end of the space).
PROBE_TESTED = 16
# A cheaper setting an approximate plan probes is sampled until its width has PROBE_CREDIT
# samples: a lower bound above the model takes ~13 samples that all find everything
PROBE_CREDIT = 32


def probe_plan(ctx: PlanContext, best: Option, options: list[Option]) -> SearchPlan | None:
    """For an exact plan chosen because shadow samples lowered the recall of approximate
    options: the cheapest of those cheaper than ``best`` that would meet the target with
    the samples' mean shortfall alone (not less its standard error), first among those
    whose width has few samples of its own (PROBE_TESTED), or when none would meet it,
    the one with the highest recall by that mean (the cheapest of equals). Running it
    now and then beside the exact plan (:func:`vecpg.shadow.shadow`) samples it: a shortfall
    measured on a few samples, less their large error, may move a search to an exact plan
    that is slower than a wider beam, and an exact plan is never shadowed itself. An
    approximate ``best`` gets :func:`_cheaper_probe`'s."""
    if best.approximate:
        return _cheaper_probe(ctx, best, options)
    cheaper = [o for o in options if o.approximate and o.recall_shift is not None
               and o.recall < ctx.recall - 1e-9  # (rejected for the corrected recall)
               and o.cost_ms < best.cost_ms]
    if not cheaper:
        return None

    def mean_recall(o: Option) -> float:  # corrected by the mean shortfall alone
        return o.model_recall + (o.recall_shift.point if o.recall_shift else 0.0)

    fits = [o for o in cheaper if mean_recall(o) >= ctx.recall - 1e-9]
    # None fits even the mean shortfall: the likeliest to is probed all the same, or a few
    # unlucky first samples would keep the filter exact while its samples last (50k x 128,
    # 30%, no correlation: eleven samples at 0.107 below the model, HNSW at 0.975 delivered,
    # exact for the rest of the run at 0.15x the QPS)
    rec = ctx.cache.recall_record(ctx.table, ctx.query.filter_key, ctx.fingerprint)
    untested = [o for o in fits
                if rec is None or rec.count(o.label, o.params) < PROBE_TESTED]
    o = (min(untested or fits, key=lambda o: o.cost_ms) if fits else
         min(cheaper, key=lambda o: (-round(mean_recall(o), 3), o.cost_ms)))
    return _probe_of(ctx, o)


def _cheaper_probe(ctx: PlanContext, best: Option, options: list[Option]
                   ) -> SearchPlan | None:
    """For an approximate plan whose own samples show no shortfall: the cheapest setting
    of its strategy that misses the target now but would meet it by its model and headroom
    (see RecallShift.applied), while its width has fewer than PROBE_CREDIT samples of its
    own. Shadows of ``best`` run it against the same exact answers: a setting is credited
    by its own width's samples (or a narrower one's), never a wider one's, so without
    samples of it a search that went wide stayed wide (50k x 128, 12% uncorrelated: the
    last half of a run at ef 128, where ef 40 delivered 0.984). With no headroom too:
    eight unlucky first samples of ef 32-63, the widths above borrowing their shortfall,
    sent three filters to ef 512 for a whole run, 0.39-0.48x the QPS of ef 30-40 (50k x
    128, uncorrelated, one build whose filtered calibration found no headroom)."""
    own = best.recall_shift
    if own is None or own.short:
        # samples first, and none showing a shortfall: on a filter that loses recall a
        # cheaper setting's samples lift a plan only by luck (50k x 128, 30% at one end of
        # the space, probed beside a shortfall: auto ran ef 50 and delivered 0.940); a lower
        # bound under the model is no shortfall (see RecallShift.short)
        return None
    rec = ctx.cache.recall_record(ctx.table, ctx.query.filter_key, ctx.fingerprint)
    width = sample_key(best.label, best.params)  # (its own width's samples are the plan's)
    fits = [o for o in options if o.approximate and o.strategy == best.strategy
            and o.cost_ms < best.cost_ms
            and sample_key(o.label, o.params) != width
            and o.recall < ctx.recall - 1e-9 <= o.model_recall + o.headroom
            and (rec is None or rec.count(o.label, o.params) < PROBE_CREDIT)]
    if not fits:
        return None
    return _probe_of(ctx, min(fits, key=lambda o: o.cost_ms))


def _probe_of(ctx: PlanContext, o: Option) -> SearchPlan:
    """Option ``o`` as a probe's plan (no fallback: a probe's short answer counts as found)."""
    q = ctx.query
    run = _runnable(ctx, o)
    return SearchPlan(q, run.label, run.statement.as_string(None), q.settings(run.settings),
                      dict(o.params), _estimate(ctx, o), run.companion)


def _runnable(ctx: PlanContext, o: Option) -> Runnable:
    """What runs option ``o``, built by its strategy."""
    return next(s for s in _STRATEGIES if s.name == o.strategy).build(ctx, o)


def _estimate(ctx: PlanContext, o: Option, *, learns: bool = False,
              remembers: bool = False) -> Estimate:
    """Option ``o``'s estimates as a plan carries them (the recall before shadow samples
    corrected it too, for vecpg.shadow)."""
    return Estimate(o.cost_ms, o.recall, max(o.model_cost, 1e-3), o.ratio, learns=learns,
                    remembers=remembers,
                    model_recall=o.model_recall if o.model_recall >= 0 else o.recall,
                    headroom=o.headroom, target=ctx.recall, fingerprint=ctx.fingerprint,
                    selectivity=ctx.stats.selectivity)


INDEX_GAIN = 1.5  # an index on the filter is worth building when plans get this much cheaper
INDEX_GAIN_MS = 0.5  # ... and save at least this many milliseconds per search


def missing_index(ctx: PlanContext, best: Option) -> dict[str, Any] | None:
    """What an index serving the filter would gain, when no index serves it now and the
    cost model says the best plan with one (fetching the matching rows through it) would
    be at least INDEX_GAIN times and INDEX_GAIN_MS cheaper; else None (pure)."""
    s, q = ctx.stats, ctx.query
    if not q.filtered or s.filter_access != "seq" or s.rows <= TINY_ROWS or q.bm25 is not None:
        return None
    try:
        alt, _ = choose(replace(ctx, stats=replace(s, filter_access="index")))
    except InvalidArgument:
        return None
    # Both sides by the cost model, before measured latencies corrected them: the plan that
    # runs has a measured ratio and the one with the index has none (it is charged another
    # strategy's), so corrected costs compared the machine's speed, not the plans (on a quiet
    # machine the scan measured far under its model and the advice vanished after 8 searches:
    # test_autoindex never saw its 20).
    have, with_ix = best.model_cost or best.cost_ms, alt.model_cost or alt.cost_ms
    if with_ix * INDEX_GAIN > have or have - with_ix < INDEX_GAIN_MS:
        return None
    return {"estimated_cost_ms": round(have, 4),
            "estimated_cost_ms_with_index": round(with_ix, 4),
            "strategy_with_index": alt.label, "speedup": round(have / with_ix, 2),
            "note": (f"no index serves the filter: a scan reads all {s.rows:.0f} rows to find "
                     f"{s.matching:.0f}; with one, {alt.label} would cost about "
                     f"{with_ix:.2f} ms instead of {have:.2f} ms")}


class _Progress:
    """What the searches of one learning plan measured so far."""

    __slots__ = ("plan", "runs", "total")

    def __init__(self, plan: SearchPlan) -> None:
        self.plan, self.runs, self.total = plan, 0, 0.0


class Planner:
    """Plans searches from measured statistics (:class:`~vecpg.stats.StatsCache`) and learns
    from what the plans it chose cost (:meth:`observe`)."""

    def __init__(self, stats: StatsCache | None = None) -> None:
        self.stats = stats or StatsCache()
        self._progress: dict[int, _Progress] = {}

    def plan(self, db: Db, q: Query, *, recall: float, strategy: str | None = None,
             fresh: bool = False) -> SearchPlan:
        """Choose and build the plan for ``q``; ``plan.explain`` says why.

        ``fresh`` measures the statistics again instead of using cached ones (explain does).
        Unfiltered searches on a collection without a vector index need no statistics.
        """
        forced = _forced(q, strategy)
        table = q.table.as_string(None)
        stats = self.measure(db, q, table, recall, forced, fresh)
        ctx = PlanContext(q, stats, recall, forced, self.stats, table)
        best, options = choose(ctx)
        return make_plan(ctx, best, options)

    def measure(self, db: Db, q: Query, table: str, recall: float, forced: str | None,
                fresh: bool) -> Stats:
        """The row count and the filter's selectivity, from the cache or measured."""
        cache = self.stats
        if q.index is None and not fresh:
            return Stats(-1.0, "not measured", -1.0, "not measured", None)
        rows, rows_src = cache.rows(db, table, int(q.field.dim or 0), fresh)
        if not q.filtered:
            return Stats(rows, rows_src, rows, "none", None)
        got = cache.filter(q, table, fresh)
        if got is None:
            est, access = measure_filter(db, q)
            got = (min(est, rows) if rows > 0 else est, access, "planner", None)
            stats = Stats(rows, rows_src, got[0], "planner", access)
            if reads_json(q) or _uncertain(PlanContext(q, stats, recall, forced, cache, table)):
                sampled = sample_filter(db, q, rows)
                if sampled is not None:
                    got = (sampled[0], access, sampled[1], est)
            cache.put_filter(table, q, got)
        return Stats(rows, rows_src, got[0], got[2], got[1], got[3])

    def observe(self, plan: SearchPlan, ms: float) -> bool:
        """Take the measured ms per query of one run of ``plan``. For a filtered plan the
        planner chose, keep the ratio of measured to estimated cost for its strategy under
        this filter (every setting of that strategy is then scaled by it). Returns False
        when the plan should be made again: the ratio moved by more than 2x from the one
        it was planned with."""
        est = plan.estimate
        if not est.learns:
            return True
        prog = self._progress.get(id(plan))
        if prog is None or prog.plan is not plan:
            if len(self._progress) > 1024:
                self._progress.clear()
            prog = self._progress[id(plan)] = _Progress(plan)
        prog.runs += 1
        if prog.runs <= 3:  # the first runs pay for cold caches and a parse: not the cost
            return True
        # the mean, not a moving average: filtered latencies are heavy-tailed (a query
        # that exhausts the scan and falls back to exact costs 10x the others)
        prog.total += ms
        ratio = prog.total / (prog.runs - 3) / est.model_cost_ms
        q = plan.query
        self.stats.record(q.table.as_string(None), q.filter_key, plan.strategy, ratio)
        # a few runs first: replanning costs a parse, and one slow query is not a trend
        if prog.runs >= 8 and not est.ratio / 2 <= ratio <= est.ratio * 2:
            self._progress.pop(id(plan), None)
            return False
        return True

    def remember(self, plan: SearchPlan, vectors: list[Any]) -> None:
        """Keep the first query vectors searched on a float field: real queries calibrate
        an index better than its rows."""
        if plan.estimate.remembers:
            q = plan.query
            key = (q.table.as_string(None), q.field.name)
            if len(self.stats.queries.get(key, ())) < RESERVOIR:
                self.stats.remember(key[0], key[1], vectors)


def _uncertain(ctx: PlanContext) -> bool:
    """True when the choice would differ were the filter 4 times more or less selective."""
    s = ctx.stats
    if s.rows <= 0:
        return False
    try:
        here = choose(ctx)[0].label
        for f in (0.25, 4.0):
            other = replace(s, matching=min(s.rows, max(1.0, s.matching * f)))
            if choose(replace(ctx, stats=other))[0].label != here:
                return True
    except InvalidArgument:
        return False
    return False


def _explain(ctx: PlanContext, best: Option, options: list[Option], text: str,
             settings: dict[str, str]) -> dict[str, Any]:
    q, s = ctx.query, ctx.stats
    cal = ctx.calibration
    out: dict[str, Any] = {
        "strategy": best.label,
        "params": dict(best.params),
        "settings": dict(settings),
        "estimated_cost_ms": round(best.cost_ms, 4),
        "estimated_recall": round(best.recall, 4),
        "cost_source": best.cost_source,
        "recall_target": ctx.recall,
        "forced": ctx.forced,
        "k": q.k,
        "rows": round(s.rows),
        "rows_source": s.rows_source,
        "filtered": q.filtered,
        "selectivity": round(s.selectivity, 6) if q.filtered else 1.0,
        "matching_rows": round(s.matching),
        "selectivity_source": s.selectivity_source,
        "planner_matching_rows": None if s.planner_matching is None else round(s.planner_matching),
        "filter_access": s.filter_access,
        "index": None if q.index is None else {
            "name": q.index.index_name, "type": q.index.index_type,
            "calibrated_at": cal.get("measured_at") if cal else None,
            "calibrated_rows": cal.get("rows") if cal else None},
        "exact_fallback": best.approximate,
        "alternatives": [o.as_dict() for o in options if o is not best],
        "sql": text,
        "sql_params": ["<query vector>", *q.where_params]
        + (["<query vector>"] if q.dist.where is not None else []),
    }
    out.update(_recall_source(best))
    if q.filtered:
        rec = ctx.cache.recall_record(ctx.table, q.filter_key, ctx.fingerprint)
        if rec is not None:
            out["shadow"] = rec.as_dict()
    if best.note:
        out["note"] = best.note
    return out



class PlanCache:
    """Plans by search request, each valid for ``ttl`` seconds and only with the catalog
    entry it was made from (a reloaded entry, after DDL or the catalog cache's expiry,
    makes new plans)."""

    def __init__(self, ttl: float = 10.0, size: int = 256) -> None:
        self.ttl = ttl
        self.size = size
        self._plans: dict[Any, tuple[Any, float, SearchPlan]] = {}

    def get(self, key: Any, info: Any) -> SearchPlan | None:
        """The cached plan for ``key`` made from ``info``, if still fresh."""
        hit = self._plans.get(key)
        if hit is None or hit[0] is not info or hit[1] < time.monotonic():
            return None
        return hit[2]

    def put(self, key: Any, info: Any, plan: SearchPlan) -> None:
        """Cache ``plan`` (the oldest half goes when the cache is full)."""
        if len(self._plans) >= self.size:
            for old in list(self._plans)[: self.size // 2]:
                self._plans.pop(old, None)  # another thread may have dropped it
        self._plans[key] = (info, time.monotonic() + self.ttl, plan)

    def drop(self, key: Any) -> None:
        """Forget the plan for ``key`` (the planner asked for a new one)."""
        self._plans.pop(key, None)
