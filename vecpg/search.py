"""The search path: query vectors in, SQL and per-query settings out, hits back.

One statement per query vector, all sent in one pipeline (``executemany`` with
``returning=True``), so a batch of queries costs one round trip, not one per query.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from pgvector import Bit, HalfVector, SparseVector, Vector
from psycopg import sql

from .catalog import CollectionInfo, IndexInfo
from .errors import InvalidArgument
from .filters import compile_filter
from . import companion
from .indexes import COMPANION_INDEX_TYPES, Companion, config_from_catalog, int_param
from .ingest import validate_vectors
from .metrics import Metric, check_metric, distance_sql, to_returned
from .results import Hit, Selection
from .schema import PARTITION_COLUMN, DataType, FieldSchema

DEFAULT_NPROBE = 8
DEFAULT_EF = 40  # pgvector's hnsw.ef_search default


def query_vectors(f: FieldSchema, data: Any) -> list[Any]:
    """Validate query vectors for field ``f`` (with the insert path's rules and errors);
    return values psycopg can send.

    ``data`` is a list of vectors (or a 2-D array); a single vector is taken as one query.
    """
    dim = int(f.dim or 0)
    rows = _float32_rows(data, dim) if f.dtype is DataType.FLOAT_VECTOR else None
    if rows is not None:
        # the common case, checked without the general machinery: float32 numpy rows
        if not np.isfinite(rows).all():
            validate_vectors(f, rows)  # raises, naming the bad row
        return [Vector(row) for row in rows]
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
    the statement, the filter's parameters, the per-connection settings."""

    field: FieldSchema           # the vector field searched
    statement: sql.Composed
    text: str                    # the statement rendered once; psycopg caches its parsing
    where_params: list[Any]
    vector_in_where: bool        # SUBSTRUCTURE/SUPERSTRUCTURE bind the query a second time
    settings: dict[str, str]
    metric: Metric
    strategy: str
    selection: Selection
    limit: int
    offset: int
    # set when a companion (quantized) index serves the search: it runs its own statements
    companion: Any = None

    def bind(self, vectors: list[Any]) -> list[list[Any]]:
        """Parameters for each query vector."""
        tail = self.where_params
        if self.vector_in_where:
            return [[v, *tail, v] for v in vectors]
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


def plan_search(info: CollectionInfo, f: FieldSchema, *, limit: int,
                offset: int, expr: str, selection: Selection,
                partitions: list[str] | None, search_params: dict[str, Any] | None) -> SearchPlan:
    """Build the SQL for a search on ``info``'s table."""
    metric_name, knobs = parse_search_params(search_params)
    metric = Metric.parse(metric_name) if metric_name else info.metric(f.name)
    check_metric(metric, f.dtype, f.name)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 16384:
        raise InvalidArgument(f"limit must be an integer in [1, 16384], got {limit!r}")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidArgument(f"offset must be a non-negative integer, got {offset!r}")
    k = limit + offset

    dist = distance_sql(metric, sql.Identifier(f.name), f.dtype, int(f.dim or 0))
    filt = compile_filter(expr or "", info.schema)
    where: list[sql.Composable] = [filt.sql]
    where_params: list[Any] = list(filt.params)
    if partitions:
        where.append(sql.SQL("{} = ANY(%s)").format(sql.Identifier(PARTITION_COLUMN)))
        where_params.append(list(partitions))
    filtered = bool(expr and expr.strip()) or bool(partitions)

    index: IndexInfo | None = info.index_on(f.name)
    if index is not None and (index.metric_type != metric.value or (
            index.pg_index is None and index.index_type not in COMPANION_INDEX_TYPES)):
        index = None
    exact = bool(knobs.get("exact")) or index is None
    if not exact and index is not None and index.index_type in COMPANION_INDEX_TYPES:
        return _companion_plan(info, f, index, metric, dist, where, where_params, selection,
                               knobs, limit, offset)
    settings: dict[str, str] = {}
    strategy = "exact"
    order = dist.order
    if exact:
        # "+ 0" keeps the ordering key from matching the ANN index, so the scan is exact
        # while btree indexes still serve the filter.
        order = sql.SQL("({} + 0)").format(dist.order)
    elif index is not None and index.index_type in ("HNSW", "AUTOINDEX"):
        strategy = "hnsw"
        ef = int_param(knobs, ("ef",), max(DEFAULT_EF, k), 1, 1000, what="search parameter")
        # pgvector returns at most ef_search rows: never fewer than asked for.
        settings["hnsw.ef_search"] = str(max(ef, k))
        settings["hnsw.iterative_scan"] = "relaxed_order" if filtered else "off"
    elif index is not None:
        strategy = "ivfflat"
        nlist = int(index.params.get("nlist", 128))
        nprobe = int_param(knobs, ("nprobe",), min(DEFAULT_NPROBE, nlist), 1, 65536,
                           what="search parameter")
        settings["ivfflat.probes"] = str(min(nprobe, nlist))
        settings["ivfflat.iterative_scan"] = "relaxed_order" if filtered else "off"

    # Filter values decide the best plan: never let a prepared generic plan ignore them.
    settings["plan_cache_mode"] = "force_custom_plan" if where_params else "auto"
    if dist.where is not None:
        where.append(dist.where)
    table = sql.Identifier(info.schema_name, info.name)
    select = selection.select_list()
    stmt = sql.SQL("SELECT {cols}, {order} AS _vecpg_d FROM {table} WHERE {where} "
                   "ORDER BY _vecpg_d LIMIT {k}").format(
        cols=sql.SQL(", ").join(select), order=order, table=table,
        where=sql.SQL(" AND ").join(where), k=sql.Literal(k))
    if "relaxed_order" in settings.values():
        # relaxed order may return rows slightly out of order: sort the k rows again
        stmt = sql.SQL("SELECT * FROM ({}) s ORDER BY _vecpg_d").format(stmt)
    return SearchPlan(f, stmt, stmt.as_string(None), where_params, dist.where is not None,
                      settings, metric, strategy, selection, limit, offset)


def _companion_plan(info: CollectionInfo, f: FieldSchema, index: IndexInfo, metric: Metric,
                    dist: Any, where: list[sql.Composable], where_params: list[Any],
                    selection: Selection, knobs: dict[str, Any], limit: int,
                    offset: int) -> SearchPlan:
    cfg = config_from_catalog(index.index_type, index.params)
    assert isinstance(cfg, Companion) and index.id is not None
    table = sql.Identifier(info.schema_name, info.name)
    cp = companion.plan(index.id, index.version, index.index_type, cfg, knobs, table,
                        info.schema.primary_field, sql.SQL(", ").join(selection.select_list()),
                        dist.order, sql.SQL(" AND ").join(where), where_params, limit + offset)
    settings = {"plan_cache_mode": "force_custom_plan" if where_params else "auto"}
    return SearchPlan(f, cp.exact, cp.exact.as_string(None), where_params, False, settings,
                      metric, index.index_type.lower(), selection, limit, offset, companion=cp)


def to_hits(plan: SearchPlan, rows: list[tuple[Any, ...]]) -> list[Hit]:
    offset = plan.offset
    sel = plan.selection
    metric = plan.metric
    if sel.width == 1:  # only the primary key: the default, and the hot path
        return [Hit(id=r[0], distance=to_returned(metric, r[1]), entity={}) for r in rows[offset:]]
    out = []
    for r in rows[offset:]:
        ent = sel.to_dict(r[:sel.width])
        pk = ent.pop(sel.columns[0])
        out.append(Hit(id=pk, distance=to_returned(plan.metric, float(r[-1])), entity=ent))
    return out
