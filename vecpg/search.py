"""The search path: query vectors in, SQL and per-query settings out, hits back.

One statement per query vector, all sent in one pipeline (``executemany`` with
``returning=True``), so a batch of queries costs one round trip, not one per query.
"""

from __future__ import annotations

import math
import struct
import sys
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

import numpy as np
from pgvector import Bit, HalfVector, SparseVector, Vector
from psycopg import sql

from . import companion
from .catalog import CollectionInfo, IndexInfo
from .errors import InvalidArgument
from .filters import compile_filter
from .indexes import COMPANION_INDEX_TYPES, Companion, config_from_catalog
from .ingest import validate_vectors
from .metrics import DistanceSQL, Metric, check_metric, distance_sql, returned_affine
from .results import Hit, Selection
from .schema import PARTITION_COLUMN, DataType, FieldSchema


def query_vectors(f: FieldSchema, data: Any) -> list[Any]:
    """Validate query vectors for field ``f`` (with the insert path's rules and errors);
    return values psycopg can send.

    ``data`` is a list of vectors (or a 2-D array); a single vector is taken as one query.
    """
    dim = int(f.dim or 0)
    rows = _float32_rows(data, dim) if f.dtype is DataType.FLOAT_VECTOR else None
    if rows is not None:
        # the common case, checked without the general machinery: float32 numpy rows
        vectors = QueryVector.batch(rows)
        # a float (double) sum of float32 values cannot overflow: it is finite exactly
        # when every value is (and costs less than numpy's isfinite on one query)
        if not all(math.isfinite(sum(v._value)) for v in vectors):
            validate_vectors(f, rows)  # raises, naming the bad row
        return vectors
    if _is_single(f.dtype, data):
        data = [data]
    if isinstance(data, (str, bytes)) or not hasattr(data, "__len__") or len(data) == 0:
        raise InvalidArgument(f"expected a non-empty list of query vectors for {f.name!r}")
    values = validate_vectors(f, data)
    if f.dtype is DataType.BINARY_VECTOR:
        return [Bit(np.unpackbits(row)[:dim].astype(bool)) for row in values]
    if f.dtype is DataType.SPARSE_FLOAT_VECTOR:
        return [SparseVector(dict(zip(idx.tolist(), val.tolist())), dim) for idx, val in values]
    # float16 queries travel as vector and are cast to halfvec in SQL
    return [Vector(row) for row in np.asarray(values, dtype=np.float32)]


class QueryVector(Vector):
    """A float32 query vector whose wire form (pgvector's binary ``vector``) is computed once
    for the whole batch: pgvector's :class:`~pgvector.Vector` copies, byte-swaps and packs
    each vector when it is sent. It is a ``Vector`` (the values in ``_value``, an
    ``array('f')`` as in the base class), so pgvector's dumpers send it (they call
    :meth:`to_binary`) and code that reads query vectors (``to_numpy``) works unchanged.
    Built with the ``array`` module rather than numpy: on the search path every numpy call
    costs several µs of client CPU (measured 40 µs for the numpy version of this step)."""

    def __init__(self, value: array, wire: bytes) -> None:  # noqa: D107 (use batch)
        self._value = value
        self._wire = wire

    @classmethod
    def batch(cls, rows: np.ndarray) -> list[QueryVector]:
        """One ``QueryVector`` per row of a C-contiguous 2-D float32 array (copied: later
        changes to the caller's array do not reach queries kept for calibration)."""
        n, dim = rows.shape
        values = array("f", rows.tobytes())
        swapped = array("f", values)
        if sys.byteorder == "little":
            swapped.byteswap()
        wire = swapped.tobytes()
        head = struct.pack(">HH", dim, 0)
        if n == 1:
            return [cls(values, head + wire)]
        step = 4 * dim
        return [cls(values[i * dim:(i + 1) * dim], head + wire[i * step:(i + 1) * step])
                for i in range(n)]

    def to_binary(self) -> bytes:
        return self._wire


def _float32_rows(data: Any, dim: int) -> np.ndarray | None:
    """``data`` as an (n, dim) float32 array when it is float32 numpy rows, else None."""
    if isinstance(data, np.ndarray):
        ok = data.dtype == np.float32 and data.ndim in (1, 2) and data.shape[-1] == dim
        return data.reshape(-1, dim) if ok and data.size else None
    if isinstance(data, list) and data and all(
            isinstance(v, np.ndarray) and v.dtype == np.float32 and v.shape == (dim,) for v in data):
        return np.stack(data)
    return None


def _is_single(dt: DataType, data: Any) -> bool:
    """True when ``data`` is one vector rather than a list of them."""
    if isinstance(data, (Vector, HalfVector, Bit, SparseVector, dict, str, bytes, bytearray)):
        return True
    if isinstance(data, np.ndarray):
        return data.ndim == 1 and not (dt is DataType.BINARY_VECTOR and data.dtype == object)
    if isinstance(data, (list, tuple)) and data:
        return isinstance(data[0], (bool, int, float, np.bool_, np.integer, np.floating))
    return False


@dataclass
class SearchPlan:
    """What a search runs, independent of the query vectors (so it can be cached):
    the statement, the filter's parameters, the per-connection settings, and the planner's
    estimate that chose it."""

    field: FieldSchema           # the vector field searched
    statement: sql.Composed
    text: str                    # the statement rendered once; psycopg caches its parsing
    where_params: list[Any]
    vector_in_where: int         # times the WHERE clause binds the query vector again
    settings: dict[str, str]
    metric: Metric
    strategy: str
    selection: Selection
    limit: int
    offset: int
    # set when a companion (quantized) index serves the search: it runs its own statements
    companion: Any = None
    # the exact plan that answers a query for which this (approximate) plan returned fewer
    # than limit + offset rows: k results whenever k rows match
    fallback: SearchPlan | None = None
    params: dict[str, Any] = dc_field(default_factory=dict)  # the strategy's knobs, e.g. {"ef": 64}
    est_cost_ms: float = 0.0
    est_recall: float = 1.0
    expires: float = math.inf    # time.monotonic() after which the plan is made again
    explain: dict[str, Any] | None = None  # the planner's reasoning (see Client.explain)
    # called with each measured ms per query (the planner learns filtered costs)
    observe: Callable[[SearchPlan, float], None] | None = None
    # keeps query vectors for calibration; returns False when it wants no more
    remember: Callable[[list[Any]], bool] | None = None

    @property
    def k(self) -> int:
        """Rows each query asks the database for (limit + offset)."""
        return self.limit + self.offset

    def bind(self, vectors: list[Any]) -> list[list[Any]]:
        """Parameters for each query vector."""
        tail = self.where_params
        if self.vector_in_where:
            n = self.vector_in_where
            return [[v, *tail, *([v] * n)] for v in vectors]
        return [[v, *tail] for v in vectors]


def parse_search_params(search_params: dict[str, Any] | None) -> tuple[str | None, dict[str, Any]]:
    """Milvus style ``{"metric_type": ..., "params": {...}}`` or a flat dict."""
    sp = dict(search_params or {})
    metric = sp.pop("metric_type", None)
    inner = sp.pop("params", None) or {}
    if not isinstance(inner, dict):
        raise InvalidArgument(f"search_params['params'] must be a dict, got {inner!r}")
    sp.update(inner)
    return metric, sp


@dataclass
class Query:
    """A search's arguments, validated and compiled: everything but the query vectors and
    the strategy. The planner turns it into a :class:`SearchPlan`."""

    info: CollectionInfo
    field: FieldSchema
    metric: Metric
    limit: int
    offset: int
    where: list[sql.Composable]   # ANDed; includes the metric's own condition (SUBSTRUCTURE)
    where_params: list[Any]
    filtered: bool                # a filter expression or partitions restrict the rows
    dist: DistanceSQL
    selection: Selection
    knobs: dict[str, Any]         # search_params' knobs (ef, nprobe, exact, ...)
    index: IndexInfo | None       # the vector index on the field that serves this metric
    filter_key: str               # the filter as SQL text and values: a cache key

    @property
    def k(self) -> int:
        return self.limit + self.offset

    @property
    def table(self) -> sql.Identifier:
        return sql.Identifier(self.info.schema_name, self.info.name)

    def statement(self, *, exact: bool, resort: bool = False) -> sql.Composed:
        """``SELECT <fields>, <distance> AS _vecpg_d ... ORDER BY _vecpg_d LIMIT k``.

        ``exact``: order by ``distance + 0``, which no ANN index matches, so the scan is
        exact while btree/GIN indexes still serve the filter (filter first). ``resort``:
        sort the k rows again (pgvector's relaxed-order iterative scans).
        """
        order = sql.SQL("({} + 0)").format(self.dist.order) if exact else self.dist.order
        stmt = sql.SQL("SELECT {cols}, {order} AS _vecpg_d FROM {table} WHERE {where} "
                       "ORDER BY _vecpg_d LIMIT {k}").format(
            cols=sql.SQL(", ").join(self.selection.select_list()), order=order,
            table=self.table, where=sql.SQL(" AND ").join(self.where), k=sql.Literal(self.k))
        if resort:
            stmt = sql.SQL("SELECT * FROM ({}) s ORDER BY _vecpg_d").format(stmt)
        return stmt

    def plan(self, strategy: str, stmt: sql.Composed, settings: dict[str, str],
             **kw: Any) -> SearchPlan:
        """A :class:`SearchPlan` running ``stmt`` with ``settings`` (plus the plan cache
        mode every statement with filter values needs)."""
        # Filter values decide the best plan: never let a prepared generic plan ignore them.
        settings = {**settings,
                    "plan_cache_mode": "force_custom_plan" if self.where_params else "auto"}
        return SearchPlan(self.field, stmt, stmt.as_string(None), self.where_params,
                          self.dist.where_vectors, settings, self.metric, strategy,
                          self.selection, self.limit, self.offset, **kw)


def prepare_query(info: CollectionInfo, f: FieldSchema, *, limit: int, offset: int, expr: str,
                  selection: Selection, partitions: list[str] | None,
                  search_params: dict[str, Any] | None) -> Query:
    """Validate a search's arguments and compile its filter."""
    metric_name, knobs = parse_search_params(search_params)
    metric = Metric.parse(metric_name) if metric_name else info.metric(f.name)
    check_metric(metric, f.dtype, f.name)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 16384:
        raise InvalidArgument(f"limit must be an integer in [1, 16384], got {limit!r}")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidArgument(f"offset must be a non-negative integer, got {offset!r}")
    dist = distance_sql(metric, sql.Identifier(f.name), f.dtype, int(f.dim or 0),
                        knobs.get("radius"), knobs.get("range_filter"))
    filt = compile_filter(expr or "", info.schema)
    where: list[sql.Composable] = [filt.sql]
    where_params: list[Any] = list(filt.params)
    if partitions:
        where.append(sql.SQL("{} = ANY(%s)").format(sql.Identifier(PARTITION_COLUMN)))
        where_params.append(list(partitions))
    filtered = bool(expr and expr.strip()) or bool(partitions)
    if dist.where is not None:
        where.append(dist.where)
    index: IndexInfo | None = info.index_on(f.name)
    if index is not None and (index.metric_type != metric.value or (
            index.pg_index is None and index.index_type not in COMPANION_INDEX_TYPES)):
        index = None
    filter_key = (sql.SQL(" AND ").join(where).as_string(None) + repr(where_params)
                  if filtered else "")
    return Query(info, f, metric, limit, offset, where, where_params, filtered, dist, selection,
                 knobs, index, filter_key)


def companion_plan(q: Query, index: IndexInfo, knobs: dict[str, Any]) -> SearchPlan:
    """A search through a companion (quantized) index, re-ranked exactly in SQL."""
    cfg = config_from_catalog(index.index_type, index.params)
    assert isinstance(cfg, Companion) and index.id is not None
    cp, rerank = companion.plan(index.id, index.version, index.index_type, cfg, knobs, q.table,
                                q.info.schema.primary_field,
                                sql.SQL(", ").join(q.selection.select_list()), q.dist.order,
                                sql.SQL(" AND ").join(q.where), q.where_params, q.k,
                                q.dist.where_vectors)
    return q.plan(index.index_type.lower(), rerank, {}, companion=cp)


def to_hits(plan: SearchPlan, rows: list[tuple[Any, ...]]) -> list[Hit]:
    if plan.offset:
        rows = rows[plan.offset:]
    sel = plan.selection
    shift, scale = returned_affine(plan.metric)
    if sel.width == 1:  # only the primary key: the default, and the hot path
        if scale == 1.0:  # a distance: returned as it is
            return [Hit(id=r[0], distance=r[1], entity={}) for r in rows]
        return [Hit(id=r[0], distance=shift + scale * r[1], entity={}) for r in rows]
    out = []
    for r in rows:
        ent = sel.to_dict(r[:sel.width])
        pk = ent.pop(sel.columns[0])
        out.append(Hit(id=pk, distance=shift + scale * float(r[-1]), entity=ent))
    return out
