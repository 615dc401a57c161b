"""The query planner: for each search, the cheapest strategy that meets the recall asked for,
from measured facts, and the reasons (``Client.explain``).

Inputs, all measured:

- rows in the collection: ``pg_class.reltuples`` scaled to the table's current size, as
  Postgres' own planner does (an exact count when the table was never analyzed and is small);
- the filter's selectivity: Postgres' estimate (``EXPLAIN`` of ``SELECT 1 ... WHERE <filter>``
  with the same values), which also tells whether an index serves the filter; when the
  choice of strategy would change within a factor of 4 of that estimate, a sample of the
  table is counted instead;
- the vector index's calibration (:mod:`vecpg.calibrate`): recall and latency of each search
  setting, and the cost of exact scans, measured on the collection's own rows;
- what searches with this filter actually cost (filtered ANN costs depend on how the filter
  correlates with the vectors, which no statistic tells): a plan whose measured latency is
  well above its estimate is made again with the measurement.

Stats are cached per collection and per filter for ``StatsCache.ttl`` seconds, so repeated
searches pay no planning round trip, and an unfiltered search needs only the row count.

Strategies are small objects (:class:`Strategy`): ``options(ctx)`` lists the settings they
could run, each an :class:`Option` with estimated cost (ms per query) and recall;
``build(ctx, option)`` returns the :class:`~vecpg.search.SearchPlan`. :func:`register` adds
one (the companion quantized indexes use it).
"""

from __future__ import annotations

import functools
import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

import psycopg
from psycopg import sql

from . import companion
from .errors import InvalidArgument
from .indexes import COMPANION_INDEX_TYPES, companion_knob, int_param
from .schema import DataType
from .search import Query, SearchPlan, companion_plan

DEFAULT_RECALL = 0.95
HNSW_EF_GRID = (10, 15, 20, 30, 40, 64, 100, 200, 400)
IVF_PROBE_GRID = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
BEAM_COST = 0.1  # a filtered HNSW scan's extra cost per (ef / tuples visited); see HnswStrategy
MAX_SCAN_TUPLES = 20000  # pgvector's hnsw.max_scan_tuples default: an iterative scan stops there
ITERATIVE_SCANS = ("off", "strict_order", "relaxed_order")
RESERVOIR = 100  # query vectors kept per field for calibration
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
# (ef, recall@10, ms) of HNSW M=16, efConstruction=64 on the dev set
DEFAULT_HNSW = [(10, 0.87, 1.0), (20, 0.939, 1.2), (40, 0.978, 1.55), (64, 0.987, 2.0),
                (100, 0.994, 2.6), (200, 0.9995, 4.1), (400, 1.0, 7.1)]
# (nprobe / nlist, recall@10) of IVF_FLAT nlist=200 on the dev set
DEFAULT_IVF = [(0.005, 0.527), (0.01, 0.66), (0.02, 0.775), (0.04, 0.861), (0.08, 0.925),
               (0.16, 0.967), (0.32, 0.99), (1.0, 1.0)]


# -- statistics ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Stats:
    """What the planner knows of the rows a search looks at."""

    rows: float                   # rows in the collection
    rows_source: str              # "pg_class" | "count" | "pages" | "not measured"
    matching: float               # rows the filter lets through (= rows when unfiltered)
    selectivity_source: str       # "none" (no filter) | "planner" | "sample" | "count"
    filter_access: str | None     # "index" | "seq": how Postgres reaches the matching rows
    planner_matching: float | None = None  # Postgres' estimate, when a sample replaced it

    @property
    def selectivity(self) -> float:
        return min(1.0, self.matching / self.rows) if self.rows > 0 else 1.0


class StatsCache:
    """Row counts, filter selectivities and measured latencies, kept for ``ttl`` seconds
    (the ratios of measured to estimated cost for ``observed_ttl``)."""

    def __init__(self, ttl: float = 10.0, observed_ttl: float = 60.0) -> None:
        self.ttl = ttl
        self.observed_ttl = observed_ttl
        self._rows: dict[str, tuple[float, tuple[float, str]]] = {}
        self._filters: dict[tuple[str, str], tuple[float, tuple[float, str | None, str,
                                                                 float | None]]] = {}
        self._observed: dict[tuple[str, str, str], tuple[float, float]] = {}
        # the first query vectors searched per (table, field): real queries to calibrate with
        self.queries: dict[tuple[str, str], list[Any]] = {}

    def rows(self, conn: psycopg.Connection, table: str, dim: int, fresh: bool) -> tuple[float, str]:
        now = time.monotonic()
        hit = self._rows.get(table)
        if hit is not None and not fresh and now - hit[0] < self.ttl:
            return hit[1]
        value = measure_rows(conn, table, dim)
        self._rows[table] = (now, value)
        return value

    def filter(self, conn: psycopg.Connection, q: Query, table: str, rows: float,
               fresh: bool) -> tuple[float, str | None, str, float | None] | None:
        """Cached (matching, access, source, planner estimate) of ``q``'s filter, or None."""
        hit = self._filters.get((table, q.filter_key))
        if hit is not None and not fresh and time.monotonic() - hit[0] < self.ttl:
            return hit[1]
        return None

    def put_filter(self, table: str, q: Query, value: tuple[float, str | None, str, float | None]
                   ) -> None:
        if len(self._filters) > 4096:  # many distinct filters: start over rather than grow
            self._filters.clear()
        self._filters[(table, q.filter_key)] = (time.monotonic(), value)

    def remember(self, table: str, field: str, vectors: list[Any]) -> bool:
        """Keep float query vectors until RESERVOIR are kept; False once full."""
        kept = self.queries.setdefault((table, field), [])
        for v in vectors[:RESERVOIR - len(kept)]:
            kept.append(v.to_numpy())
        return len(kept) < RESERVOIR

    def ratio(self, table: str, filter_key: str, label: str) -> float | None:
        """Measured / estimated cost of strategy ``label`` under this filter, if measured."""
        hit = self._observed.get((table, filter_key, label))
        if hit is None or time.monotonic() - hit[0] > self.observed_ttl:
            return None
        return hit[1]

    def record(self, table: str, filter_key: str, label: str, ratio: float) -> None:
        if len(self._observed) > 4096:
            self._observed.clear()
        self._observed[(table, filter_key, label)] = (time.monotonic(), ratio)


def measure_rows(conn: psycopg.Connection, table: str, dim: int) -> tuple[float, str]:
    """Rows in ``table``: reltuples scaled by the current page count (as Postgres' planner
    does); an exact count when the table was never analyzed (or analyzed empty) and is small."""
    row = conn.execute(
        "SELECT c.reltuples::float8, c.relpages, pg_relation_size(c.oid)"
        " / current_setting('block_size')::int FROM pg_class c WHERE c.oid = %s::regclass",
        (table,), prepare=False).fetchone()
    assert row is not None
    reltuples, relpages, pages = float(row[0]), int(row[1]), int(row[2])
    if reltuples >= 0 and relpages > 0:
        return reltuples / relpages * max(pages, 1), "pg_class"
    if pages <= 10000:  # up to 80 MB: counting is cheap and right
        cur = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.SQL(table)), prepare=False)
        n = cur.fetchone()
        return float(n[0] if n else 0), "count"
    return pages * 8192 / (4 * dim + 64), "pages"


def _filter_where(q: Query) -> tuple[sql.Composable, list[Any]]:
    """The filter alone (without a metric's own condition, which needs the query vector)."""
    where = q.where[:-1] if q.dist.where is not None else q.where
    return sql.SQL(" AND ").join(where), q.where_params


def measure_filter(conn: psycopg.Connection, q: Query) -> tuple[float, str]:
    """Postgres' estimate of the rows matching ``q``'s filter, and whether it reaches them
    through an index ("index") or a sequential scan ("seq")."""
    where, params = _filter_where(q)
    stmt = sql.SQL("EXPLAIN (FORMAT JSON) SELECT 1 FROM {} WHERE {}").format(q.table, where)
    row = conn.execute(stmt, params, prepare=False).fetchone()
    assert row is not None
    doc = row[0]
    if isinstance(doc, str):
        import json

        doc = json.loads(doc)
    plan = doc[0]["Plan"]
    access = "seq"
    stack = [plan]
    while stack:
        node = stack.pop()
        if node.get("Node Type") in ("Index Scan", "Index Only Scan", "Bitmap Heap Scan",
                                     "Bitmap Index Scan"):
            access = "index"
        stack.extend(node.get("Plans", []))
    return float(plan.get("Plan Rows", 1)), access


def sample_filter(conn: psycopg.Connection, q: Query, rows: float) -> tuple[float, str] | None:
    """Rows matching ``q``'s filter, counted exactly (small tables) or in a block sample of
    about 10,000 rows (``TABLESAMPLE SYSTEM``); None when the sample came back empty."""
    where, params = _filter_where(q)
    if rows <= 20000:
        cur = conn.execute(sql.SQL("SELECT count(*) FROM {} WHERE {}").format(q.table, where),
                           params, prepare=False)
        n = cur.fetchone()
        return float(n[0] if n else 0), "count"
    pct = min(100.0, 100.0 * 10000 / rows)
    cur = conn.execute(sql.SQL("SELECT count(*) FILTER (WHERE {}), count(*) FROM {} "
                               "TABLESAMPLE SYSTEM (%s)").format(where, q.table),
                       [*params, pct], prepare=False)
    got = cur.fetchone()
    if not got or not got[1]:
        return None
    return rows * got[0] / got[1], "sample"


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

    @property
    def key(self) -> str:
        return self.label + repr(sorted(self.params.items()))

    def as_dict(self) -> dict[str, Any]:
        d = {"strategy": self.label, "params": dict(self.params),
             "estimated_cost_ms": round(self.cost_ms, 4), "estimated_recall": round(self.recall, 4),
             "cost_source": self.cost_source}
        if self.ratio != 1.0:
            d["measured_over_estimated"] = round(self.ratio, 3)
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
    def calibration(self) -> dict[str, Any] | None:
        ix = self.query.index
        cal = getattr(ix, "calibration", None) if ix is not None else None
        return cal if isinstance(cal, dict) and cal.get("curve") else None

    def exact_costs(self) -> tuple[dict[str, float], str]:
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
            if r is not None:
                option.cost_ms *= r
                option.ratio = r
                option.cost_source += " x observed"
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

    def build(self, ctx: PlanContext, option: Option) -> SearchPlan:
        """The plan that runs ``option``."""
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


class ExactStrategy:
    """Exact distances: ``ORDER BY distance + 0`` (no ANN index matches it), so Postgres
    scans sequentially, or fetches the filter's rows through a btree/GIN index first when
    that is cheaper (reported as filter_first)."""

    name = "exact"
    knobs: tuple[str, ...] = ("exact",)

    def options(self, ctx: PlanContext) -> list[Option]:
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

    def build(self, ctx: PlanContext, option: Option) -> SearchPlan:
        q = ctx.query
        return q.plan(option.label, q.statement(exact=True), {})


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
        q = ctx.query
        ix = q.index
        if ix is None or ix.index_type not in ("HNSW", "AUTOINDEX") or ix.pg_index is None:
            return []
        cal = ctx.calibration
        if cal and cal.get("knob") == "ef":
            curve = [(float(p["ef"]), _low(p), float(p["ms"])) for p in cal["curve"]]
            src, kcal = "calibration", int(cal.get("k", 10))
        else:
            curve, src, kcal = [(float(a), b, c) for a, b, c in DEFAULT_HNSW], "default", 10
        rec = [(e, r) for e, r, _ in curve]
        lat = [(e, ms) for e, _, ms in curve]
        grow = _growth(ctx, cal)
        if "ef" in q.knobs:
            efs = [int_param(q.knobs, ("ef",), 40, 1, 1000, what="search parameter")]
        else:
            efs = sorted({e for e in HNSW_EF_GRID if e >= q.k} | {max(q.k, HNSW_EF_GRID[0])})
            efs = [e for e in efs if e <= max(1000, q.k)]
        sel = ctx.stats.selectivity

        def ms_at(e: float) -> float:
            """Latency exploring ``e`` candidates: interpolated on the curve, linear past
            its end."""
            top_ef, top_ms = lat[-1]
            return _interp(e, lat) if e <= top_ef else top_ms * e / top_ef

        def option(ef: int) -> Option:
            ef_search = max(ef, q.k)
            explored = float(ef_search)
            note = ""
            need = q.k / max(sel, 1e-9)
            if q.filtered and need > ef_search:
                # An iterative scan visits about k / selectivity tuples before k of them
                # match: it costs about that much whatever ef is, but a narrow beam finds
                # less on its way (recall grew from 0.95 at ef 10 to 0.97 at ef 64): credit
                # the geometric mean. A wider beam still costs a little more (at 12% on the
                # dev set: +3% at ef 40, +7% at ef 64, over ef 20), so the smallest ef that
                # meets the target wins rather than any ef below k / selectivity.
                cost = ms_at(need) * (1 + BEAM_COST * ef_search / need)
                explored = math.sqrt(ef_search * need)
            else:
                cost = ms_at(explored) * (1 + BEAM_COST if q.filtered else 1)
            cost *= 1 + 0.15 * math.log2(grow)
            # recall@k exploring e candidates behaves like recall@kcal at ef = e * kcal / k
            recall = _interp(explored * kcal / q.k, rec) - 0.01 * math.log2(grow)
            if q.filtered:
                recall -= _filtered_loss(sel, 0.045)
                if need > MAX_SCAN_TUPLES * 0.8:
                    recall = min(recall, 0.5)
                    note = (f"k/selectivity = {need:.0f} tuples to visit is near "
                            f"hnsw.max_scan_tuples ({MAX_SCAN_TUPLES})")
            opt = Option(self.name, "hnsw", {"ef": ef}, cost, max(0.0, min(1.0, recall)),
                         cost_source=src if not q.filtered else "model", note=note)
            return ctx.correct(opt)

        out = [option(ef) for ef in efs]
        if "ef" not in q.knobs:
            out += _between(out, "ef", ctx.recall, option)
        return out

    def build(self, ctx: PlanContext, option: Option) -> SearchPlan:
        q = ctx.query
        ef = int(option.params["ef"])
        scan = _iterative(q)
        settings = {"hnsw.ef_search": str(max(ef, q.k)),  # pgvector returns at most ef rows
                    "hnsw.iterative_scan": scan}
        return q.plan("hnsw", q.statement(exact=False, resort=scan == "relaxed_order"), settings)


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
        q = ctx.query
        ix = q.index
        if ix is None or ix.index_type not in ("IVF_FLAT", "BIN_IVF_FLAT") or ix.pg_index is None:
            return []
        nlist = int(ix.params.get("nlist", 128))
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
            src = "default"
        grow = _growth(ctx, cal)
        if "nprobe" in q.knobs:
            probes = [min(int_param(q.knobs, ("nprobe",), 8, 1, 65536, what="search parameter"),
                          nlist)]
        else:
            probes = sorted({p for p in IVF_PROBE_GRID if p <= nlist} | {nlist})
        sel = ctx.stats.selectivity

        def option(p: int) -> Option:
            recall = _interp(float(p), rec) if q.k <= 10 else _interp(p * 10 / q.k, rec)
            base = c["base_ms"]
            cost = base + (_interp(float(p), lat) - base) * grow  # lists grow with the table
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

    def build(self, ctx: PlanContext, option: Option) -> SearchPlan:
        q = ctx.query
        scan = _iterative(q)
        settings = {"ivfflat.probes": str(option.params["nprobe"]), "ivfflat.iterative_scan": scan}
        return q.plan("ivfflat", q.statement(exact=False, resort=scan == "relaxed_order"), settings)


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
        q = ctx.query
        ix = q.index
        if ix is None or ix.index_type not in COMPANION_INDEX_TYPES or ix.id is None:
            return []
        knob = companion_knob(ix.index_type)
        given = {k: v for k, v in q.knobs.items() if k in self.knobs}
        cal = ctx.calibration
        exact, _ = ctx.exact_costs()
        if cal and cal.get("knob") == knob and knob not in given:
            points = [({knob: int(p[knob])}, _low(p), float(p["ms"])) for p in cal["curve"]]
            src = "calibration"
        else:
            exact_ms = ExactStrategy().options(ctx)[0].model_cost
            points = [({}, ctx.recall, exact_ms / 4)]
            src = "default"
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

    def build(self, ctx: PlanContext, option: Option) -> SearchPlan:
        assert ctx.query.index is not None
        return companion_plan(ctx.query, ctx.query.index,
                              {**ctx.query.knobs, **option.params})


_STRATEGIES: list[Strategy] = [ExactStrategy(), HnswStrategy(), IvfFlatStrategy(),
                               CompanionStrategy()]


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
            t.lower() for t in COMPANION_INDEX_TYPES}
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

class _Learner:
    """Receives the measured ms per query of a filtered plan the planner chose, keeps the
    ratio of measured to estimated cost for the plan's strategy under this filter (every
    setting of that strategy is then scaled by it), and retires the plan when the ratio
    moved by more than 2x from the one it was planned with: the next search replans."""

    def __init__(self, cache: StatsCache, table: str, filter_key: str, option: Option) -> None:
        self.cache, self.table, self.filter_key = cache, table, filter_key
        self.label, self.model_cost, self.planned_ratio = (
            option.label, max(option.model_cost, 1e-3), option.ratio)
        self.total = 0.0
        self.runs = 0

    def __call__(self, plan: SearchPlan, ms: float) -> None:
        self.runs += 1
        if self.runs <= 3:  # the first runs pay for cold caches and a parse: not the cost
            return
        # the mean, not a moving average: filtered latencies are heavy-tailed (a query
        # that exhausts the scan and falls back to exact costs 10x the others)
        self.total += ms
        ratio = self.total / (self.runs - 3) / self.model_cost
        self.cache.record(self.table, self.filter_key, self.label, ratio)
        # a few runs first: replanning costs a parse, and one slow query is not a trend
        if self.runs >= 8 and not self.planned_ratio / 2 <= ratio <= self.planned_ratio * 2:
            plan.expires = 0.0
            plan.observe = None  # the replacement plan learns from here on


def check_recall(recall: Any) -> float:
    if isinstance(recall, bool) or not isinstance(recall, (int, float)) or not 0 < recall <= 1:
        raise InvalidArgument(f"recall must be a number in (0, 1], got {recall!r}")
    return float(recall)


def plan_query(conn: psycopg.Connection, q: Query, cache: StatsCache, *, recall: float,
               strategy: str | None = None, fresh: bool = False) -> SearchPlan:
    """Choose and build the plan for ``q``; ``plan.explain`` says why.

    ``fresh`` measures the statistics again instead of using cached ones (explain does).
    Unfiltered searches on a collection without a vector index need no statistics at all.
    """
    forced = _forced(q, strategy)
    table = q.table.as_string(conn)
    dim = int(q.field.dim or 0)
    if q.index is None and not fresh:
        stats = Stats(-1.0, "not measured", -1.0, "not measured", None)
    else:
        rows, rows_src = cache.rows(conn, table, dim, fresh)
        stats = Stats(rows, rows_src, rows, "none", None)
        if q.filtered:
            got = cache.filter(conn, q, table, rows, fresh)
            if got is None:
                est, access = measure_filter(conn, q)
                got = (min(est, rows) if rows > 0 else est, access, "planner", None)
                stats = Stats(rows, rows_src, got[0], "planner", access)
                if _uncertain(PlanContext(q, stats, recall, forced, cache, table)):
                    sampled = sample_filter(conn, q, rows)
                    if sampled is not None:
                        got = (sampled[0], access, sampled[1], est)
                cache.put_filter(table, q, got)
            stats = Stats(rows, rows_src, got[0], got[2], got[1], got[3])
    ctx = PlanContext(q, stats, recall, forced, cache, table)
    best, options = choose(ctx)
    builder = next(s for s in _STRATEGIES if s.name == best.strategy)
    plan = builder.build(ctx, best)
    plan.params = dict(best.params)
    plan.est_cost_ms, plan.est_recall = best.cost_ms, best.recall
    plan.expires = time.monotonic() + cache.ttl
    if best.approximate:
        plan.fallback = q.plan("exact", q.statement(exact=True), {})
    if q.filtered and forced is None and not _knobs_force(q):
        plan.observe = _Learner(cache, table, q.filter_key, best)
    if q.field.dtype in (DataType.FLOAT_VECTOR, DataType.FLOAT16_VECTOR) and \
            len(cache.queries.get((table, q.field.name), ())) < RESERVOIR:
        plan.remember = functools.partial(cache.remember, table, q.field.name)
    plan.explain = _explain(ctx, best, options, plan)
    return plan


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


def _explain(ctx: PlanContext, best: Option, options: list[Option], plan: SearchPlan
             ) -> dict[str, Any]:
    q, s = ctx.query, ctx.stats
    cal = ctx.calibration
    out: dict[str, Any] = {
        "strategy": best.label,
        "params": dict(best.params),
        "settings": dict(plan.settings),
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
        "sql": plan.text,
        "sql_params": ["<query vector>", *q.where_params]
        + (["<query vector>"] if q.dist.where is not None else []),
    }
    if best.note:
        out["note"] = best.note
    return out

