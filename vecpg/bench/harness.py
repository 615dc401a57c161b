"""The dataset benchmark: load an ann-benchmarks file into a collection, build each index,
sweep its search setting, and measure recall, QPS and latency, unfiltered and filtered,
side by side with the same SQL run through plain psycopg (the raw pgvector baseline).

Example::

    from vecpg.bench.harness import BenchOptions, run_dataset
    from vecpg.bench.report import Report
    with vecpg.connect(schema="bench") as client:
        report = Report("bench_out")
        run_dataset(client, load_hdf5("wordnet-minilm-384-angular.hdf5"), BenchOptions(), report)

The raw baseline runs the very statement vecpg sends (taken from the client's tracer) with
the very settings it sets, on its own psycopg connection, interleaved query by query with
the vecpg calls (see :mod:`vecpg.bench.timing`); their QPS ratio is the layer's overhead.
"""

from __future__ import annotations

import datetime
import inspect
import math
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from psycopg import sql

from ..datasets import AnnDataset, recall_at_k
from ..errors import InvalidArgument, VecpgError
from ..indexes import kind_of
from ..progress import Progress
from ..schema import CollectionSchema, DataType
from . import INDEX_NAMES
from .report import Report
from .timing import Side, Timed, same_ids, time_sides

VECTOR_FIELD = "vector"
DEFAULT_INDEXES = INDEX_NAMES
NOT_AVAILABLE = "not available yet"  # what create_index says for a companion index not built yet


@dataclass
class IndexSpec:
    """One index to benchmark: how to build it and which search knob to sweep."""

    name: str                       # CLI name: exact, hnsw, ivfflat, ...
    index_type: str                 # Milvus index type: FLAT, HNSW, IVF_FLAT, ...
    params: dict[str, Any]          # build parameters
    knob: str | None                # search parameter swept (None: one point)
    values: list[int]               # its values, unfiltered
    filter_values: list[int]        # its values with a filter (fewer: filtered runs are slower)
    raw: bool                       # pgvector index: has a raw SQL baseline
    fixed: dict[str, Any] = field(default_factory=dict)  # search params sent with every knob


@dataclass
class BenchOptions:
    """What :func:`run_dataset` measures."""

    indexes: tuple[str, ...] = DEFAULT_INDEXES
    queries: int = 500
    k: int = 10
    filters: bool = False
    quick: bool = False
    ingest: bool = True
    ingest_repeat: int = 2
    references: tuple[str, ...] = ()
    collection: str = "bench"
    keep: bool = False
    batch: int = 5000               # rows per insert call while loading
    warmup: int = 10
    point_budget_s: float | None = 20.0   # a sweep point stops after this (>= 50 queries)
    sweep_budget_s: float | None = 90.0   # a sweep (one index, one filter) skips its
                                          # remaining points after this


def _pq_m(dim: int) -> int:
    """PQ sub-quantizers: the largest divisor of ``dim`` that is at most dim / 8
    (8 dimensions per code byte, faiss' usual choice: 48 for 384)."""
    target = max(1, dim // 8)
    return max(m for m in range(1, target + 1) if dim % m == 0)


def index_specs(n: int, dim: int, k: int, quick: bool) -> dict[str, IndexSpec]:
    """The default build parameters and sweeps for ``n`` rows of dimension ``dim``.

    IVF uses nlist ~ sqrt(n) (the usual rule); HNSW M=16, efConstruction=64 (pgvector's
    defaults). Sweeps cover recall from ~0.5 to ~1 on the dev dataset.
    """
    nlist = int(min(4096, max(4, round(math.sqrt(n)))))
    probes = [p for p in (1, 2, 4, 8, 16, 32, 64) if p <= nlist]
    efs = sorted({max(e, k) for e in (10, 20, 40, 80, 160, 320)})
    search_k = [500, 2000, 8000, 32000]
    if quick:
        probes, efs, search_k = probes[1::2], efs[::2], search_k[::2]

    def few(v: list[int]) -> list[int]:
        # filtered sweeps: low, middle and high end of the unfiltered sweep
        return v if len(v) <= 3 else [v[0], v[len(v) // 2], v[-1]]

    return {
        "exact": IndexSpec("exact", "FLAT", {}, None, [0], [0], True, {"exact": True}),
        "ivfflat": IndexSpec("ivfflat", "IVF_FLAT", {"nlist": nlist}, "nprobe", probes,
                             few(probes), True),
        "hnsw": IndexSpec("hnsw", "HNSW", {"M": 16, "efConstruction": 64}, "ef", efs,
                          few(efs), True),
        "ivf_sq8": IndexSpec("ivf_sq8", "IVF_SQ8", {"nlist": nlist}, "nprobe", probes[::2],
                             few(probes), False),
        "ivf_pq": IndexSpec("ivf_pq", "IVF_PQ", {"nlist": nlist, "m": _pq_m(dim), "nbits": 8},
                            "nprobe", probes[::2], few(probes), False),
        "annoy": IndexSpec("annoy", "ANNOY", {"n_trees": 8}, "search_k", search_k,
                           few(search_k), False),
    }


@dataclass
class FilterCase:
    """One filter of the dataset: its expression on the collection and its ground truth."""

    name: str
    expr: str
    truth: np.ndarray
    selectivity: float


class DatasetBench:
    """One benchmark run of one dataset on one client (see :func:`run_dataset`)."""

    def __init__(self, client: Any, ds: AnnDataset, opts: BenchOptions, report: Report) -> None:
        if opts.k < 1 or opts.k > ds.k:
            raise InvalidArgument(f"k must be in [1, {ds.k}] (the depth of the dataset's "
                                  f"ground truth), got {opts.k}")
        if opts.queries < 1:
            raise InvalidArgument(f"queries must be >= 1, got {opts.queries}")
        unknown = [i for i in opts.indexes if i not in INDEX_NAMES]
        if unknown:
            raise InvalidArgument(f"unknown index {unknown[0]!r}; expected some of "
                                  f"{', '.join(INDEX_NAMES)}")
        self.client = client
        self.ds = ds
        self.opts = opts
        self.report = report
        self.coll = opts.collection
        self.metric = ds.vecpg_metric
        nq = min(opts.queries, len(ds.test))
        self.queries = np.ascontiguousarray(ds.test[:nq], dtype=np.float32)
        self.truth = ds.neighbors[:nq]
        self.specs = index_specs(len(ds.train), ds.dim, opts.k, opts.quick)
        self.scalar_fields = self._scalar_fields()
        self.filters = self._filter_cases() if opts.filters else []
        self._raw: psycopg.Connection | None = None
        self._raw_settings: dict[str, str] = {}
        self._seen_settings: dict[str, str] = {}
        self._captured: list[tuple[str, list[Any]]] = []
        # a client with a planner takes search(recall=...), by name or (vecpg.Client, as
        # pymilvus does for its extras) through **kwargs next to explain()
        params = inspect.signature(client.search).parameters
        self.has_planner = "recall" in params or (
            hasattr(client, "explain")
            and any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()))

    # -- setup ----------------------------------------------------------------------------
    def _scalar_fields(self) -> dict[str, np.ndarray]:
        """Integer per-row attributes that some filter of the file tests: name -> column."""
        used = {t.attr for t in self.ds.filters.values() if t.attr is not None}
        out = {}
        for attr in sorted(used):
            col = self.ds.attrs.get(f"train_{attr}")
            if col is not None and np.issubdtype(col.dtype, np.integer):
                out[attr] = col.astype(np.int32)
        return out

    def _filter_cases(self) -> list[FilterCase]:
        cases = []
        nq = len(self.queries)
        for name, t in sorted(self.ds.filters.items(),
                              key=lambda kv: kv[1].selectivity if kv[1].selectivity else 1.0):
            if t.attr not in self.scalar_fields or t.value is None:
                self.report.note(f"filter {name}: no evaluable condition, skipped")
                continue
            sel = t.selectivity if t.selectivity is not None else \
                float(np.mean(self.scalar_fields[t.attr] == t.value))
            cases.append(FilterCase(name, f"{t.attr} == {int(t.value)}", t.neighbors[:nq], sel))
        return cases

    def load(self) -> None:
        """Create the collection and insert the train rows with a progress bar."""
        c, ds = self.client, self.ds
        c.drop_collection(self.coll)
        schema = CollectionSchema(enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field(VECTOR_FIELD, DataType.FLOAT_VECTOR, dim=ds.dim)
        for name in self.scalar_fields:
            schema.add_field(name, DataType.INT32)
        c.create_collection(self.coll, schema=schema, metric_type=self.metric)
        n = len(ds.train)
        ids = np.arange(n, dtype=np.int64)
        t0 = time.perf_counter()
        with Progress("load", total=n) as bar:
            for lo in range(0, n, self.opts.batch):
                hi = min(n, lo + self.opts.batch)
                cols: dict[str, Any] = {"id": ids[lo:hi], VECTOR_FIELD: ds.train[lo:hi]}
                cols.update({k: v[lo:hi] for k, v in self.scalar_fields.items()})
                c.insert(self.coll, cols)
                bar.update(hi - lo)
        seconds = time.perf_counter() - t0
        for name in self.scalar_fields:  # btree, so selective filters can use it
            c.create_index(self.coll, field_name=name, index_type="STL_SORT")
        table = sql.Identifier(c.schema, self.coll)
        with c.connection() as conn:
            conn.execute(sql.SQL("VACUUM ANALYZE {}").format(table))
            size = conn.execute("SELECT pg_total_relation_size(%s::regclass)",
                                (table.as_string(conn),)).fetchone()[0]
        self.report.add({"kind": "load", "dataset": ds.name, "rows": n, "seconds": seconds,
                         "rows_per_s": n / seconds, "batch": self.opts.batch,
                         "scalar_fields": list(self.scalar_fields), "table_bytes": int(size)})

    # -- raw baseline ---------------------------------------------------------------------
    def _tracer(self, text: str, params: Any) -> None:
        self._captured.append((text, list(params)))

    def raw_connection(self) -> psycopg.Connection:
        """The baseline's own plain psycopg connection (psycopg's default preparation)."""
        if self._raw is None:
            self._raw = psycopg.connect(self.client.dsn, autocommit=True)
            register_vector(self._raw)
        return self._raw

    def close(self) -> None:
        """Close the baseline's connection (the client is the caller's to close)."""
        if self._raw is not None:
            self._raw.close()
            self._raw = None

    def _capture(self, run: Callable[[], Any]) -> tuple[str, list[Any]]:
        """Run one vecpg search with the tracer on; return its statement and parameters,
        and remember the settings it applied (vecpg sends a setting only when it changes,
        so the union of all seen is what its connection has)."""
        self._captured = []
        old = self.client.tracer
        self.client.tracer = self._tracer
        try:
            run()
        finally:
            self.client.tracer = old
        stmt: tuple[str, list[Any]] | None = None
        for text, params in self._captured:
            if "set_config(" in text:
                self._seen_settings.update(dict(zip(params[0::2], params[1::2])))
            else:
                stmt = (text, params)
        if stmt is None:
            raise VecpgError("the tracer saw no search statement")
        return stmt

    def _raw_side(self, text: str, params: list[Any]) -> Side:
        conn = self.raw_connection()
        todo = {k: v for k, v in self._seen_settings.items() if self._raw_settings.get(k) != v}
        for k, v in todo.items():
            conn.execute("SELECT set_config(%s, %s, false)", (k, v))
        self._raw_settings.update(todo)
        tail = params[1:]

        def run(q: np.ndarray) -> list[int]:
            return [r[0] for r in conn.execute(text, [q, *tail]).fetchall()]
        return run

    # -- measuring ------------------------------------------------------------------------
    def _vecpg_side(self, expr: str, search_params: dict[str, Any] | None,
                    extra: dict[str, Any] | None = None) -> Side:
        c, coll, k = self.client, self.coll, self.opts.k
        kw = dict(extra or {})
        if search_params is not None:
            kw["search_params"] = search_params

        def run(q: np.ndarray) -> list[int]:
            return [h.id for h in c.search(coll, q.reshape(1, -1), limit=k, filter=expr, **kw)[0]]
        return run

    def _time(self, sides: list[Side]) -> list[Timed]:
        return time_sides(self.queries, sides, warmup=self.opts.warmup,
                          budget_s=self.opts.point_budget_s)

    def _scores(self, timed: Timed, truth: np.ndarray) -> dict[str, float]:
        k = self.opts.k
        truth = truth[:len(timed.found)]  # a point cut short by its time budget
        out = {"recall": round(recall_at_k(timed.found, truth[:, :k], k), 4)}
        if k >= 10:
            top10 = [f[:10] for f in timed.found]
            out["recall@10"] = round(recall_at_k(top10, truth[:, :10], 10), 4)
        if k >= 100:
            out["recall@100"] = round(recall_at_k(timed.found, truth[:, :100], 100), 4)
        return out

    def measure(self, spec: IndexSpec, value: int | None, case: FilterCase | None,
                build: dict[str, Any]) -> None:
        """One sweep point: vecpg (and the raw SQL, interleaved, for pgvector indexes)."""
        expr = case.expr if case else ""
        truth = case.truth if case else self.truth
        sp: dict[str, Any] = dict(spec.fixed)
        if spec.knob is not None and value is not None:
            sp[spec.knob] = value
        search_params = {"metric_type": self.metric, "params": sp}
        vside = self._vecpg_side(expr, search_params)
        sides = [vside]
        sql_text = None
        if spec.raw:
            q0 = self.queries[0]
            sql_text, params = self._capture(lambda: vside(q0))
            sides.append(self._raw_side(sql_text, params))
        timed = self._time(sides)
        base = {"kind": "search", "dataset": self.ds.name, "index": spec.index_type,
                "build_params": spec.params, "param": spec.knob, "value": value,
                "filter": case.name if case else None,
                "selectivity": case.selectivity if case else None, "k": self.opts.k,
                "queries": len(timed[0].found), "build_s": build.get("build_s"),
                "index_bytes": build.get("index_bytes")}
        v = dict(base, system="vecpg", **self._scores(timed[0], truth), **timed[0].summary())
        if spec.raw:
            raw = dict(base, system="pgvector-sql", **self._scores(timed[1], truth),
                       **timed[1].summary(), sql=sql_text,
                       settings={k: self._raw_settings[k] for k in sorted(self._raw_settings)})
            v["vecpg_over_raw"] = round(timed[0].qps / timed[1].qps, 3)
            v["same_ids"] = round(same_ids(timed[0], timed[1]), 4)
            self.report.add(v)
            self.report.add(raw)
        else:
            self.report.add(v)

    def measure_planner(self, case: FilterCase | None, present: list[str],
                        label: str = "auto") -> None:
        """The planner's own choice (``recall=`` target, no strategy forced), reported as
        index ``label``."""
        targets = [0.9, 0.99] if self.opts.quick else [0.8, 0.9, 0.95, 0.99]
        for target in targets:
            side = self._vecpg_side(case.expr if case else "", None, {"recall": target})
            try:
                timed = self._time([side])[0]
            except VecpgError as e:
                self.report.add({"kind": "error", "system": "vecpg", "index": label,
                                 "param": "recall", "value": target,
                                 "filter": case and case.name,
                                 "reason": f"{type(e).__name__}: {e}"})
                self.report.note(f"error: planner recall={target}: {e}")
                continue
            truth = case.truth if case else self.truth
            self.report.add({"kind": "search", "dataset": self.ds.name, "system": "vecpg",
                             "index": label, "param": "recall", "value": target,
                             "filter": case.name if case else None,
                             "selectivity": case.selectivity if case else None,
                             "k": self.opts.k, "queries": len(timed.found),
                             "indexes_present": present, **self._chosen(case, target),
                             **self._scores(timed, truth), **timed.summary()})

    def _chosen(self, case: FilterCase | None, target: float) -> dict[str, Any]:
        """The strategy the planner ran for a recall target (asked after the timed run,
        so it is the plan the timed searches settled on), for the plot's labels."""
        try:
            plan = self.client.explain(self.coll, self.queries[:1], filter=case.expr if case
                                       else "", limit=self.opts.k, recall=target)
        except VecpgError:
            return {}
        return {"strategy": plan.get("strategy"), "strategy_params": plan.get("params") or {}}

    # -- one index ------------------------------------------------------------------------
    def build(self, spec: IndexSpec) -> dict[str, Any] | None:
        """Build ``spec``'s index; None when this index type is not available (skipped)."""
        if kind_of(spec.index_type).family == "flat":
            return {}
        c, n = self.client, len(self.ds.train)
        t0 = time.perf_counter()
        try:
            with Progress(f"build {spec.index_type}", total=n, unit="tuples") as bar:
                c.create_index(self.coll, field_name=VECTOR_FIELD, index_type=spec.index_type,
                               metric_type=self.metric, params=spec.params,
                               progress=lambda p: bar.set(p.get("tuples_done") or 0, None,
                                                          str(p.get("phase") or "")))
                bar.set(n)
        except VecpgError as e:
            kind = "skip" if NOT_AVAILABLE in str(e) else "error"
            self.report.add({"kind": kind, "system": "vecpg", "index": spec.index_type,
                             "reason": f"{type(e).__name__}: {e}"})
            self.report.note(f"{kind}: {spec.index_type}: {e}")
            return None
        seconds = time.perf_counter() - t0
        d = c.describe_index(self.coll, VECTOR_FIELD)
        rec = {"kind": "build", "dataset": self.ds.name, "system": "vecpg",
               "index": spec.index_type, "params": spec.params, "build_s": round(seconds, 3),
               "index_bytes": d.get("total_bytes"), "bytes_per_vector": d.get("bytes_per_vector"),
               "describe": d}
        self.report.add(rec)
        return rec

    def run_index(self, spec: IndexSpec) -> None:
        """Build one index, sweep its search knob unfiltered and under every filter (each
        sweep within the time budget), measure the planner's own choice, then drop the
        index so the next one is measured alone. Errors become report records."""
        build = self.build(spec)
        if build is None:
            return
        try:
            points = spec.values if spec.knob else [None]
            cases: list[FilterCase | None] = [None, *self.filters]
            total = sum(len(spec.values if case is None else spec.filter_values)
                        if spec.knob else 1 for case in cases)
            budget = self.opts.sweep_budget_s
            with Progress(f"search {spec.name}", total=total, unit="points") as bar:
                for case in cases:
                    pts = points if case is None or not spec.knob else spec.filter_values
                    t0 = time.perf_counter()
                    for value in pts:
                        if budget is not None and time.perf_counter() - t0 > budget:
                            self.report.add({"kind": "skip", "system": "vecpg",
                                             "index": spec.index_type, "param": spec.knob,
                                             "value": value, "filter": case and case.name,
                                             "reason": f"time budget of {budget:.0f} s for "
                                                       "this sweep spent"})
                            self.report.note(f"skip: {spec.index_type} {spec.knob}={value} "
                                             f"filter={case and case.name}: time budget spent")
                            bar.update(1)
                            continue
                        try:
                            self.measure(spec, value, case, build)
                        except VecpgError as e:
                            self.report.add({"kind": "error", "system": "vecpg",
                                             "index": spec.index_type, "param": spec.knob,
                                             "value": value, "filter": case and case.name,
                                             "reason": f"{type(e).__name__}: {e}"})
                            self.report.note(f"error: {spec.index_type} {spec.knob}={value}: {e}")
                        bar.update(1)
            kind = kind_of(spec.index_type)
            if self.has_planner and (kind.family == "hnsw" or kind.companion):
                # the planner with this index (and the scalar indexes) to choose from
                label = "auto" if kind.family == "hnsw" else f"auto/{spec.index_type}"
                present = self.client.list_indexes(self.coll)
                for case in [None, *self.filters]:
                    self.measure_planner(case, present, label)
        finally:
            if kind_of(spec.index_type).family != "flat":
                self.client.drop_index(self.coll, VECTOR_FIELD)


def machine_info(client: Any) -> dict[str, Any]:
    """Where the numbers come from: host, cores, memory, server versions."""
    info = client.server_info()
    mem = None
    try:
        with open("/proc/meminfo") as fh:
            mem = int(fh.readline().split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "host": platform.node(), "cpus": os.cpu_count(), "memory_bytes": mem,
            "python": platform.python_version(), "postgres": info.get("postgres"),
            "pgvector": info.get("pgvector"), "dsn": info.get("dsn")}


def run_dataset(client: Any, ds: AnnDataset, opts: BenchOptions, report: Report) -> DatasetBench:
    """Load ``ds`` and benchmark every requested index; records go to ``report``."""
    bench = DatasetBench(client, ds, opts, report)
    report.add({"kind": "run", "dataset": ds.name, "n_train": len(ds.train), "dim": ds.dim,
                "metric": ds.metric, "queries": len(bench.queries), "k": opts.k,
                "indexes": list(opts.indexes), "filters": [f.name for f in bench.filters],
                "planner": bench.has_planner, "quick": opts.quick, **machine_info(client)})
    try:
        bench.load()
        if opts.ingest:
            from .ingest import ingest_bench

            for rec in ingest_bench(client, ds.train, repeat=opts.ingest_repeat,
                                    metric=bench.metric):
                report.add(rec)
        # pgvector indexes first, then companions; the exact scan first of all (the slowest
        # per query, and the reference every other row is compared with)
        for name in INDEX_NAMES:
            if name in opts.indexes:
                bench.run_index(bench.specs[name])
        if opts.references:
            from .references import run_references

            run_references(opts.references, ds, bench.queries, bench.truth, opts.k,
                           bench.specs, report, filters=bench.filters,
                           scalar_fields=bench.scalar_fields, warmup=opts.warmup,
                           budget_s=opts.point_budget_s)
    finally:
        bench.close()
        if not opts.keep:
            client.drop_collection(bench.coll)
    return bench
