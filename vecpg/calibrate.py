"""Calibration: what each search setting of a vector index costs and finds, measured on the
collection's own rows, stored in ``vecpg.indexes.calibration`` for the planner.

A sample of the collection's vectors serves as queries. For each, the exact top k (the row
itself left out, since a row always finds itself) is the truth; every setting of the
index's knob (HNSW ``ef``, IVF ``nprobe``; for companion indexes ``nprobe`` or ANNOY's
``search_k``, each search planned and run as ``search`` runs it) is then timed and scored
against it. The exact scan's cost is measured on the way (per 1,000 rows scanned, with
and without distances, and through an index), so the planner can weigh exact against the
index on one scale.

The stored document::

    {"version": 1, "measured_at": "2026-11-25T10:00:00+00:00", "rows": 55000, "k": 10,
     "queries": 50, "queries_source": "rows", "base_ms": 0.12, "knob": "ef",
     "exact": {"ms_per_1k": 0.67, "scan_ms_per_1k": 0.45, "ff_ms_per_1k": 1.9},
     "curve": [{"ef": 10, "recall": 0.87, "se": 0.01, "ms": 1.0,
                 "recall_measured": 0.987}, ...],
     "filtered": {"selectivity": 0.125, "curve": [{"ef": 10, ...}, ...]}}

``filtered`` (HNSW only) is the same sweep under a filter that has nothing to do with the
vectors (a hash of the primary key keeps 1 row in 8), with the iterative scan searches
use: what a filter costs the graph's recall, measured instead of guessed (the planner's
model of it, fitted on one data set's correlated filters, was 0.05 pessimistic on others).
"""

from __future__ import annotations

import datetime as _dt
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from psycopg import sql

from . import distributed, executor
from .catalog import CollectionInfo, IndexInfo
from .companion import Companions
from .errors import InvalidArgument
from .metrics import Metric, distance_sql
from .planner import Planner
from .query import SearchPlan, SearchRequest, compile_query, query_vectors
from .schema import PARTITION_COLUMN
from .session import Db

MIN_ROWS = 50  # below this a curve says nothing (and every search is an exact scan anyway)
# The filtered sweep: rows whose key hashes to 0 mod FILTER_BUCKETS match (1/8: an iterative
# scan at k 10 visits ~80 tuples, past every ef of FILTERED_EFS, so each point measures the
# iterative regime); it needs FILTERED_MIN_MATCHES * k matching rows to say anything.
FILTER_BUCKETS, FILTERED_EFS, FILTERED_MIN_MATCHES = 8, (10, 20, 40, 64), 20
# ... on the first FILTERED_QUERIES queries only: its exact truth scans the whole table once
# per query, and with every query the sweep made a calibration 1.55x as long (50k x 128:
# 6.9 s against 4.5 s with 300 queries, 2.3 s against 1.5 s with 100; with 50: 1.05x and
# 1.22x, 2 runs each). The price: a standard error of 0.002-0.027 at ef 10-64 (seven builds;
# one query's recall is heavy-tailed), so the headroom, read at recall - se, is smaller
FILTERED_QUERIES = 50


def _timed(conn: Db, stmt: sql.SQL | sql.Composed, params: list[Any]
           ) -> tuple[float, list[tuple[Any, ...]]]:
    t0 = time.perf_counter()
    rows = conn.execute(stmt, params).fetchall()
    return (time.perf_counter() - t0) * 1000, rows


def _miss_factor(knob: str, value: int) -> float:
    """How many times more a real query misses than a row of the collection searched for
    itself (with itself left out). A row is a node of the index, so the search lands on it
    and its stored neighbours are its answer: the row-as-query recall is optimistic.
    Measured on the dev set (rows vs its held-out test queries): HNSW missed 10x more at
    ef 10, 7.6x at 20, 3.1x at 40, 2.2x at 64, 2x at 100; IVF_FLAT 1.0-1.8x. On clustered
    synthetic data HNSW missed 2.9x more at ef 10 and 1.4-1.6x at 40-200. The factor here
    errs high, and the planner also subtracts a standard error: a recall overstated is a
    promise broken, one understated only a slower plan. Real queries (``queries=``, or
    those of recent searches) need no such guess."""
    return 2.0 + 100.0 / value if knob == "ef" else 1.25


def _as_params(queries: Any, sample_type: Any) -> list[Any]:
    """Caller-given query vectors as values of the column's pgvector type."""
    from pgvector import HalfVector, Vector

    try:
        rows = np.asarray(queries, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise InvalidArgument(f"calibration queries must be a 2-D array of numbers: {e}") from None
    if rows.ndim != 2 or len(rows) == 0:
        raise InvalidArgument("calibration queries must be a non-empty 2-D array of vectors")
    if not np.isfinite(rows).all():
        raise InvalidArgument("calibration queries must be finite")
    make = HalfVector if sample_type is HalfVector else Vector
    return [make(r) for r in rows]


CompanionSearch = Callable[[Any, int, int], list[Any]]
"""``(query vector, knob value, limit) -> primary keys``: one search through a companion index
with its knob (``nprobe`` or ``search_k``) set, as ``search`` runs it."""


def companion_search(db: Db, info: CollectionInfo, index: IndexInfo,
                     companions: Companions) -> CompanionSearch:
    """Searches through companion ``index``, planned by a planner of their own (they are
    rows of the collection, not user queries: nothing of them is remembered or learnt)
    and run by the executor, with the re-rank and pending rows of a real search."""
    planner = Planner()
    plans: dict[tuple[int, int], SearchPlan] = {}
    knob = index.kind.knob or ""
    f = info.schema.field(index.field_name)

    def run(vec: Any, value: int, limit: int) -> list[Any]:
        plan = plans.get((value, limit))
        if plan is None:
            req = SearchRequest.of(info.name, limit=limit, anns_field=index.field_name,
                                   search_params={"params": {knob: value}},
                                   strategy=index.kind.name)
            plan = plans[(value, limit)] = planner.plan(
                db, compile_query(info, req), recall=0.95, strategy=index.kind.name)
        rows = executor.run(db, plan, query_vectors(f, [vec]), companions).rows[0]
        return [r[0] for r in rows]
    return run


def calibrate_index(conn: Db, info: CollectionInfo, index: IndexInfo, *,
                    queries: int | Any = 100, k: int = 10, source: str | None = None,
                    companions: Companions | None = None) -> dict[str, Any] | None:
    """Measure ``index`` (a pgvector HNSW or IVF_FLAT index, or a companion index whose
    loaded codes ``companions`` holds) and return the calibration document, or None
    when the collection has too few rows or the index no knob to tune.

    ``queries``: how many rows of the collection to take as queries, or the query vectors
    themselves (an (m, dim) array, e.g. from a query log: they represent real searches
    best). Rows as queries overstate recall (see :func:`_miss_factor`); the stored
    ``recall`` is corrected for it and ``recall_measured`` keeps the raw value. ``source``
    names where given queries came from (stored as ``queries_source``; default "given").

    Runs in one transaction with ``SET LOCAL`` settings, so the connection's session
    settings (which the client caches) are untouched.
    """
    kind = index.kind
    if index.metric_type is None or kind.knob is None or (
            kind.companion and companions is None) or (
            not kind.companion and index.pg_index is None):
        return None
    dist = distributed.of(info)
    if dist is not None:  # as searches on it run (see vecpg.distributed)
        conn.apply(distributed.coordinator_settings(dist))
    with conn.transaction():
        run = _Calibration(conn, info, index, k, given=not isinstance(queries, int))
        if not run.take_sample(queries):
            return None
        run.measure_exact()
        search = run.companion_searcher(companions) if companions is not None and \
            kind.companion else run.index_searcher()
        curve = run.sweep(search)
        filtered = run.filtered_sweep() if kind.family == "hnsw" and not kind.companion \
            else None
    doc: dict[str, Any] = {
        "version": 1,
        "measured_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "rows": run.n, "k": k, "queries": len(run.sample),
        "queries_source": (source or "given") if run.given else "rows",
        "base_ms": round(run.base, 4), "knob": run.knob,
        "exact": {"ms_per_1k": round(run.exact_per_1k, 5),
                  "scan_ms_per_1k": round(run.scan_per_1k, 5),
                  # rows fetched through a filter's index: a bitmap heap scan plus the
                  # distance, measured at 2.9x the exact scan's per row on the dev set
                  "ff_ms_per_1k": round(2.9 * run.exact_per_1k, 5)},
        "curve": curve}
    if filtered is not None:
        doc["filtered"] = filtered
    return doc


Searcher = Callable[[Any, int], tuple[float, list[Any]]]
"""``(query vector, knob value) -> (ms, primary keys)``: one timed search."""


class _Calibration:
    """One calibration run's state, measured step by step inside one transaction."""

    def __init__(self, conn: Db, info: CollectionInfo, index: IndexInfo, k: int, *,
                 given: bool) -> None:
        kind = index.kind
        self.conn, self.info, self.index, self.k, self.given = conn, info, index, k, given
        self.knob, self.setting, self.grid = kind.knob or "", kind.family, kind.grid
        if nlist := kind.nlist(index.params):  # IVF: probing every list ends the grid
            self.grid = tuple(sorted({p for p in self.grid if p < nlist} | {nlist}))
        f = info.schema.field(index.field_name)
        self.table = info.table
        self.pk = sql.Identifier(info.schema.primary_field.name)
        self.col = sql.Identifier(f.name)
        self.dist = distance_sql(Metric.parse(index.metric_type or "L2"), self.col, f.dtype,
                                 int(f.dim or 0)).order
        # rows as queries: k + 1 rows, since a row finds itself; given queries are searched
        # exactly as a search runs them, k rows at ef >= k
        self.fetch = k if given else k + 1
        self.distributed = distributed.of(info) is not None
        self.n = 0
        self.sample: list[tuple[Any, Any]] = []
        self.truth: list[set[Any]] = []
        self.base = self.exact_per_1k = self.scan_per_1k = 0.0

    def _set(self, name: str, value: str) -> None:
        """A setting until the calibration's transaction ends (on a distributed collection
        a propagated SET LOCAL: set_config stays on the coordinator, see
        :mod:`vecpg.distributed`)."""
        if self.distributed:
            distributed.set_local(self.conn, name, value)
        else:
            self.conn.execute("SELECT set_config(%s, %s, true)", [name, value])

    def take_sample(self, queries: int | Any) -> bool:
        """The query vectors (given, or a random sample of rows); False when the
        collection is too small to say anything."""
        conn, table = self.conn, self.table
        self.n = int(conn.value(sql.SQL("SELECT count(*) FROM {}").format(table)) or 0)
        if self.n < MIN_ROWS:
            return False
        if self.given:
            first = conn.execute(sql.SQL("SELECT {} FROM {} LIMIT 1").format(self.col, table)
                                 ).fetchone()
            self.sample = [(None, v) for v in _as_params(queries, type(first[0]) if first
                                                         else None)]
            return True
        m = min(int(queries), max(10, self.n // 20))
        # a block sample first on big tables, so the random pick stays cheap
        src = table if self.n <= 200_000 else sql.SQL("{} TABLESAMPLE SYSTEM ({})").format(
            table, sql.Literal(min(100.0, 100.0 * m * 50 / self.n)))
        self.sample = [tuple(r) for r in conn.execute(sql.SQL(
            "SELECT {}, {} FROM {} ORDER BY random() LIMIT %s").format(self.pk, self.col, src),
            [m]).fetchall()]
        return len(self.sample) >= 10

    def measure_exact(self) -> None:
        """The exact top k of each query (the truth), and what exact scans cost: with
        distances, and a sequential scan evaluating only a cheap filter."""
        conn, k = self.conn, self.k
        self.base = min(_timed(conn, sql.SQL("SELECT 1"), [])[0] for _ in range(7))
        stmt = sql.SQL("SELECT {pk}, ({d} + 0) AS _d FROM {t} ORDER BY _d LIMIT {k}").format(
            pk=self.pk, d=self.dist, t=self.table, k=sql.Literal(self.fetch))
        spent: list[float] = []
        for key, vec in self.sample:
            ms, rows = _timed(conn, stmt, [vec])
            spent.append(ms)
            self.truth.append({r[0] for r in rows if r[0] != key}
                              if key is not None else {r[0] for r in rows[:k]})
        per_1k = self.n / 1000
        self.exact_per_1k = max(statistics.median(spent) - self.base, 0.001) / per_1k
        scans = ("enable_indexscan", "enable_bitmapscan", "enable_indexonlyscan")
        for s in scans:
            self._set(s, "off")
        scan_stmt = sql.SQL("SELECT count(*) FROM {} WHERE {} = ''").format(
            self.table, sql.Identifier(PARTITION_COLUMN))
        scan = statistics.median(_timed(conn, scan_stmt, [])[0] for _ in range(3))
        for s in scans:
            self._set(s, "on")
        self.scan_per_1k = min(max(scan - self.base, 0.0) / per_1k, self.exact_per_1k)

    def companion_searcher(self, companions: Companions) -> Searcher:
        """Timed searches through the companion index, the knob given per search."""
        cs = companion_search(self.conn, self.info, self.index, companions)

        def search(vec: Any, value: int) -> tuple[float, list[Any]]:
            t0 = time.perf_counter()
            keys = cs(vec, value, self.fetch)
            return (time.perf_counter() - t0) * 1000, keys
        return search

    def index_searcher(self, where: sql.Composable | None = None, scan: str = "off"
                       ) -> Searcher:
        """Timed searches through the pgvector index, the knob set per search by
        ``SET LOCAL``: by default the plain, non-iterative scan (what the knob alone
        finds); with a ``where`` condition and an iterative ``scan``, as a filtered search
        runs (a relaxed order is sorted again, as vecpg.query's statement does)."""
        conn, knob = self.conn, self.knob
        stmt = sql.SQL("SELECT {pk}, {d} AS _d FROM {t}{w} ORDER BY _d LIMIT {k}").format(
            pk=self.pk, d=self.dist, t=self.table, k=sql.Literal(self.fetch),
            w=sql.SQL("") if where is None else sql.SQL(" WHERE {}").format(where))
        if scan == "relaxed_order":
            stmt = sql.SQL("SELECT * FROM ({}) s ORDER BY _d").format(stmt)
        param = f"{self.setting}.ef_search" if knob == "ef" else f"{self.setting}.probes"
        self._set(f"{self.setting}.iterative_scan", scan)
        current: list[int] = []

        def search(vec: Any, value: int) -> tuple[float, list[Any]]:
            if current != [value]:
                self._set(param, str(max(value, self.fetch) if knob == "ef" else value))
                current[:] = [value]
            ms, rows = _timed(conn, stmt, [vec])
            return ms, [r[0] for r in rows]
        return search

    def score(self, search: Searcher, value: int, truth: list[set[Any]] | None = None
              ) -> tuple[float, float, float]:
        """Recall at one setting (against ``truth``, by default the unfiltered top k), its
        standard error over the queries, and the median ms per query (the median: other
        processes' bursts are not the index's cost)."""
        per_query: list[float] = []
        spent: list[float] = []
        for (key, vec), want in zip(self.sample, truth if truth is not None else self.truth):
            ms, keys = search(vec, value)
            spent.append(ms)
            got = [x for x in keys if x != key][:self.k]
            if want:
                per_query.append(len(want.intersection(got)) / len(want))
        if not per_query:
            return 1.0, 0.0, statistics.median(spent)
        se = statistics.stdev(per_query) / len(per_query) ** 0.5 if len(per_query) > 1 else 0
        return statistics.mean(per_query), se, statistics.median(spent)

    def sweep(self, search: Searcher) -> list[dict[str, Any]]:
        """Recall and latency at each setting of the grid, until more cannot find more."""
        knob = self.knob
        self.score(search, self.grid[len(self.grid) // 2])  # warm the index's pages
        curve: list[dict[str, Any]] = []
        for value in self.grid:
            point = self._point(value, *self.score(search, value))
            curve.append(point)
            recall, se = point["recall"], point["se"]
            # higher settings cost more and cannot find more (rows as queries: a few more
            # points, their estimate is rough)
            if recall - se >= 0.999 and (self.given or value >= 64 or knob != "ef"):
                break
        return curve

    def _point(self, value: int, recall: float, se: float, ms: float,
               queries: int | None = None) -> dict[str, Any]:
        """One point of a curve measured with ``queries`` queries (default: the sample);
        rows as queries have their recall corrected (see :func:`_miss_factor`), the raw
        value kept as ``recall_measured``."""
        point: dict[str, Any] = {self.knob: value}
        if not self.given:
            point["recall_measured"] = round(recall, 4)
            factor = _miss_factor(self.knob, value)
            # a perfect score from rows proves little: count half a miss
            miss = max(1.0 - recall, 0.5 / (self.k * (queries or len(self.sample))))
            recall, se = max(0.0, 1.0 - miss * factor), se * factor
        point.update({"recall": round(recall, 4), "se": round(se, 4), "ms": round(ms, 4)})
        return point

    def filtered_sweep(self) -> dict[str, Any] | None:
        """HNSW's recall and latency at FILTERED_EFS under a filter independent of the
        vectors (1 row in FILTER_BUCKETS by a hash of the key), searched as a filtered
        search runs (relaxed-order iterative scan), for the first FILTERED_QUERIES
        queries; None when too few rows match. Index scans are forced: the hash's
        selectivity is unknown to Postgres, which may otherwise sort the matching rows
        exactly."""
        cond = sql.SQL("(hashtext({}::text) & {}) = 0").format(
            self.pk, sql.Literal(FILTER_BUCKETS - 1))
        matching = int(self.conn.value(sql.SQL("SELECT count(*) FROM {} WHERE {}").format(
            self.table, cond)) or 0)
        if matching < FILTERED_MIN_MATCHES * self.k:
            return None
        exact = sql.SQL("SELECT {pk}, ({d} + 0) AS _d FROM {t} WHERE {c} ORDER BY _d "
                        "LIMIT {k}").format(pk=self.pk, d=self.dist, t=self.table, c=cond,
                                            k=sql.Literal(self.fetch))
        truth = []  # (score() pairs the queries with it: the first FILTERED_QUERIES)
        for key, vec in self.sample[:FILTERED_QUERIES]:
            got = [r[0] for r in self.conn.execute(exact, [vec]).fetchall() if r[0] != key]
            truth.append(set(got[:self.k]))
        search = self.index_searcher(cond, "relaxed_order")
        self._set("enable_seqscan", "off")
        curve = [self._point(ef, *self.score(search, ef, truth), queries=len(truth))
                 for ef in FILTERED_EFS]
        self._set("hnsw.iterative_scan", "off")
        self._set("enable_seqscan", "on")
        return {"selectivity": round(matching / self.n, 5), "k": self.k, "curve": curve}
