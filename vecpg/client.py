"""The client: collections, data and search, with the names of pymilvus' ``MilvusClient``.

Example::

    import vecpg
    with vecpg.connect() as client:                 # embedded Postgres unless a DSN is given
        client.create_collection("docs", dimension=384, metric_type="COSINE")
        client.insert("docs", [{"id": 1, "vector": vec, "title": "hello"}])
        hits = client.search("docs", [query], limit=5, filter='title like "he%"',
                             output_fields=["title"])
"""

from __future__ import annotations

import functools
import logging
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from psycopg import sql
from psycopg_pool import ConnectionPool

from . import catalog
from . import companion as cmp
from .calibrate import calibrate_index
from .calibrate import store as store_calibration
from .catalog import CollectionInfo, IndexInfo
from .errors import (
    AlreadyExists,
    IndexNotFound,
    InvalidArgument,
    PartitionNotFound,
    SchemaError,
    ServerError,
    VecpgError,
    translate,
)
from .filters import compile_filter
from .indexes import (
    COMPANION_INDEX_TYPES,
    companion_knob,
    Companion,
    Flat,
    config_from_catalog,
    config_params,
    create_index_sql,
    parse_index,
    pg_index_name,
    popcount_index_name,
)
from .ingest import copy_batch, prepare_batch
from .metrics import Metric, check_metric, default_metric
from .migrate import upgrade
from .planner import DEFAULT_RECALL, StatsCache, check_recall, plan_query
from .pool import WarmPool
from .results import Hit, select_fields
from .schema import (
    DEFAULT_PARTITION,
    PARTITION_COLUMN,
    CollectionSchema,
    DataType,
    check_name,
)
from .search import SearchPlan, prepare_query, query_vectors, to_hits
from .server import resolve_dsn

Tracer = Callable[[str, Sequence[Any]], None]
_CACHE_TTL = 2.0  # seconds a process trusts its cached catalog entry (other processes may DDL)


class IndexParams(list):  # type: ignore[type-arg]
    """A list of index requests, as pymilvus' ``prepare_index_params()`` returns."""

    def add_index(self, field_name: str, index_type: str = "AUTOINDEX", index_name: str = "",
                  metric_type: str | None = None, params: dict[str, Any] | None = None,
                  **kwargs: Any) -> None:
        self.append({"field_name": field_name, "index_type": index_type,
                     "index_name": index_name or field_name, "metric_type": metric_type,
                     "params": dict(params or {}, **kwargs)})



class _Lease:
    """One call's hold on a pooled connection (see :meth:`Client._connection`). A class
    rather than a generator-based context manager: it wraps every search, and the generator
    form cost ~4 µs a call."""

    __slots__ = ("_client", "_conn")

    def __init__(self, client: Client) -> None:
        self._client = client
        self._conn: psycopg.Connection | None = None

    def __enter__(self) -> psycopg.Connection:
        local = self._client._local
        outer: psycopg.Connection | None = getattr(local, "conn", None)
        if outer is not None:
            return outer
        conn = self._conn = self._client._warm.take()
        local.conn = conn
        return conn

    def __exit__(self, *exc: object) -> None:
        conn = self._conn
        if conn is not None:
            self._client._local.conn = None
            self._client._warm.give(conn)


class Client:
    """A connection pool to one Postgres and the collections in one of its schemas.

    ``dsn``: a libpq connection string; default ``$VECPG_DSN``, else the embedded server in
    ``data_dir`` (default ``$VECPG_DATA`` or a per-user directory). ``schema``: the Postgres
    schema holding the collection tables (default ``public``). ``tracer``: called with
    ``(sql, params)`` for every statement the data path runs. ``pool_size``: the most
    connections open at once (threads beyond that wait for a free one).
    """

    def __init__(self, dsn: str | None = None, *, data_dir: str | None = None,
                 schema: str = "public", pool_size: int = 10, tracer: Tracer | None = None) -> None:
        self.dsn = resolve_dsn(dsn, data_dir=data_dir)
        self.schema = check_name(schema, "schema name")
        self.tracer = tracer
        with translate():
            upgrade(self.dsn)
            with psycopg.connect(self.dsn, autocommit=True) as c, c.transaction():
                # IF NOT EXISTS alone races: two processes can both find it missing
                _lock(c, f"schema {schema}")
                c.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        # Statements are prepared after 2 runs (measured: ~5% more search QPS than never
        # preparing); a search with a filter sets plan_cache_mode = force_custom_plan, since
        # a generic plan can ignore a filter value's selectivity (see DESIGN.md).
        self._pool = ConnectionPool(self.dsn, min_size=1, max_size=pool_size,
                                    kwargs={"autocommit": True, "prepare_threshold": 2},
                                    configure=register_vector, open=True)
        self._cache: dict[str, tuple[float, CollectionInfo]] = {}
        self._settings: weakref.WeakKeyDictionary[psycopg.Connection, dict[str, str]] = \
            weakref.WeakKeyDictionary()
        self._warm = WarmPool(self._pool)
        self._local = threading.local()
        self._companions = cmp.Companions()

    # -- lifecycle ------------------------------------------------------------------------
    def close(self) -> None:
        self._warm.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connection(self) -> Any:
        """Borrow a pooled connection (autocommit, pgvector types registered)."""
        return self._pool.connection()

    def _connection(self) -> _Lease:
        """A pooled connection for one call (``with self._connection() as conn``); a call
        made inside another call of the same thread shares the outer one (so it sees the
        outer transaction)."""
        return _Lease(self)

    def _exec(self, conn: psycopg.Connection, query: sql.Composed | sql.SQL | str,
              params: Sequence[Any] | None = None) -> psycopg.Cursor:
        if self.tracer is not None:
            text = query.as_string(conn) if isinstance(query, sql.Composable) else query
            self.tracer(text, list(params or []))
        return conn.execute(query, params)

    def _table(self, name: str) -> sql.Identifier:
        return sql.Identifier(self.schema, name)

    def _info(self, name: str, *, fresh: bool = False) -> CollectionInfo:
        now = time.monotonic()
        hit = self._cache.get(name) if not fresh else None
        if hit is not None and now - hit[0] < _CACHE_TTL:
            return hit[1]  # only checked names are cached
        check_name(name, "collection name")
        with self._connection() as conn, translate():
            info = catalog.load(conn, self.schema, name)
        self._cache[name] = (now, info)
        return info

    def _forget(self, name: str) -> None:
        self._cache.pop(name, None)

    # -- collections ----------------------------------------------------------------------
    @staticmethod
    def create_schema(**kwargs: Any) -> CollectionSchema:
        """An empty :class:`CollectionSchema` (``auto_id``, ``enable_dynamic_field``, ...)."""
        return CollectionSchema(**kwargs)

    @staticmethod
    def prepare_index_params() -> IndexParams:
        return IndexParams()

    def create_collection(self, collection_name: str, dimension: int | None = None, *,
                          primary_field_name: str = "id", id_type: str = "int",
                          vector_field_name: str = "vector", metric_type: str | None = None,
                          auto_id: bool = False, max_length: int = 65535,
                          schema: CollectionSchema | None = None,
                          index_params: IndexParams | None = None,
                          enable_dynamic_field: bool = True, description: str = "") -> None:
        """Create a collection: the quick form (``dimension``, float vectors, dynamic fields
        on) or the full form (``schema``). Raises :class:`AlreadyExists` if it exists."""
        check_name(collection_name, "collection name")
        if schema is None:
            if dimension is None:
                raise InvalidArgument("create_collection needs dimension (quick form) or schema")
            schema = CollectionSchema(enable_dynamic_field=enable_dynamic_field,
                                      description=description)
            if id_type in ("int", "INT64", DataType.INT64):
                schema.add_field(primary_field_name, DataType.INT64, is_primary=True,
                                 auto_id=auto_id)
            elif id_type in ("str", "string", "VARCHAR", DataType.VARCHAR):
                schema.add_field(primary_field_name, DataType.VARCHAR, is_primary=True,
                                 max_length=max_length)
            else:
                raise InvalidArgument(f"id_type must be 'int' or 'str', got {id_type!r}")
            schema.add_field(vector_field_name, DataType.FLOAT_VECTOR, dim=dimension)
        schema.validate()
        metrics: dict[str, str] = {}
        for f in schema.vector_fields:
            m = Metric.parse(metric_type) if metric_type else default_metric(f.dtype)
            if metric_type and len(schema.vector_fields) > 1:
                try:
                    check_metric(m, f.dtype, f.name)
                except InvalidArgument:
                    m = default_metric(f.dtype)
            check_metric(m, f.dtype, f.name)
            metrics[f.name] = m.value
        with self._connection() as conn, translate(), conn.transaction():
            _lock(conn, f"collection {self.schema}.{collection_name}")
            if catalog.exists(conn, self.schema, collection_name):
                raise AlreadyExists(f"collection {collection_name!r} already exists")
            if _value(conn.execute("SELECT to_regclass(%s)",
                                   (self._table(collection_name).as_string(conn),))):
                raise AlreadyExists(f"a table {self.schema}.{collection_name} exists already "
                                    "and is not a vecpg collection")
            self._exec(conn, schema.create_table_sql(self._table(collection_name)))
            self._exec(conn, sql.SQL("CREATE INDEX {} ON {} ({})").format(
                sql.Identifier(pg_index_name(collection_name, PARTITION_COLUMN)),
                self._table(collection_name), sql.Identifier(PARTITION_COLUMN)))
            catalog.insert(conn, self.schema, collection_name, schema, {"metrics": metrics})
        self._forget(collection_name)
        if index_params:
            self.create_index(collection_name, index_params)

    def has_collection(self, collection_name: str) -> bool:
        check_name(collection_name, "collection name")
        with self._connection() as conn, translate():
            return catalog.exists(conn, self.schema, collection_name)

    def list_collections(self) -> list[str]:
        with self._connection() as conn, translate():
            return catalog.names(conn, self.schema)

    def describe_collection(self, collection_name: str) -> dict[str, Any]:
        """Schema, metrics, indexes and partitions of a collection, as a dict."""
        info = self._info(collection_name, fresh=True)
        pk = info.schema.primary_field
        return {"collection_name": collection_name, "schema": self.schema,
                "table": f"{self.schema}.{collection_name}",
                "auto_id": pk.auto_id, "primary_field": pk.name,
                "fields": [f.to_dict() for f in info.schema.fields],
                "enable_dynamic_field": info.schema.enable_dynamic_field,
                "description": info.schema.description,
                "metrics": dict(info.properties.get("metrics", {})),
                "indexes": [ix.index_name for ix in info.indexes],
                "partitions": list(info.partitions)}

    def rename_collection(self, old_name: str, new_name: str) -> None:
        info = self._info(old_name, fresh=True)
        check_name(new_name, "collection name")
        with self._connection() as conn, translate(), conn.transaction():
            if catalog.exists(conn, self.schema, new_name):
                raise AlreadyExists(f"collection {new_name!r} already exists")
            self._exec(conn, sql.SQL("ALTER TABLE {} RENAME TO {}").format(
                self._table(old_name), sql.Identifier(new_name)))
            renames = [(pg_index_name(old_name, PARTITION_COLUMN), PARTITION_COLUMN, False)]
            renames += [(ix.pg_index, ix.index_name, True) for ix in info.indexes if ix.pg_index]
            for ix in info.indexes:
                if info.schema.field(ix.field_name).dtype is DataType.BINARY_VECTOR:
                    self._exec(conn, sql.SQL("ALTER INDEX IF EXISTS {} RENAME TO {}").format(
                        sql.Identifier(self.schema, popcount_index_name(old_name, ix.index_name)),
                        sql.Identifier(popcount_index_name(new_name, ix.index_name))))
            for old_pg, ix_name, in_catalog in renames:
                new_pg = pg_index_name(new_name, ix_name)
                self._exec(conn, sql.SQL("ALTER INDEX {} RENAME TO {}").format(
                    sql.Identifier(self.schema, old_pg), sql.Identifier(new_pg)))
                if in_catalog:
                    conn.execute("UPDATE vecpg.indexes SET pg_index = %s WHERE schema_name = %s"
                                 " AND collection = %s AND index_name = %s",
                                 (new_pg, self.schema, old_name, ix_name))
            conn.execute("UPDATE vecpg.collections SET name = %s WHERE schema_name = %s AND name = %s",
                         (new_name, self.schema, old_name))
        self._forget(old_name)
        self._forget(new_name)

    def drop_collection(self, collection_name: str) -> None:
        """Drop the collection's table and catalog entries. No error if it does not exist."""
        check_name(collection_name, "collection name")
        with self._connection() as conn, translate(), conn.transaction():
            if catalog.exists(conn, self.schema, collection_name):
                for (index_id,) in conn.execute(
                        "SELECT id FROM vecpg.indexes WHERE schema_name = %s AND collection = %s"
                        " AND index_type = ANY(%s)",
                        (self.schema, collection_name, list(COMPANION_INDEX_TYPES))).fetchall():
                    cmp.uninstall(conn, index_id)
                    self._companions.forget(index_id)
                self._exec(conn, sql.SQL("DROP TABLE IF EXISTS {}").format(
                    self._table(collection_name)))
                conn.execute("DELETE FROM vecpg.collections WHERE schema_name = %s AND name = %s",
                             (self.schema, collection_name))
                # queries remembered for calibration belong to the dropped collection
                table = self._table(collection_name).as_string(conn)
                for key in [k for k in self._stats.queries if k[0] == table]:
                    del self._stats.queries[key]
        self._forget(collection_name)

    def get_collection_stats(self, collection_name: str) -> dict[str, int]:
        """``{"row_count": n}``, as pymilvus returns it."""
        return {"row_count": self.count(collection_name)}

    def load_collection(self, collection_name: str, **_: Any) -> None:
        """Nothing to do: Postgres serves a collection as soon as it exists. Kept so code
        written for Milvus runs unchanged; checks that the collection exists."""
        self._info(collection_name)

    def release_collection(self, collection_name: str, **_: Any) -> None:
        """Nothing to do (see :meth:`load_collection`)."""
        self._info(collection_name)

    def get_load_state(self, collection_name: str, **_: Any) -> dict[str, str]:
        """Always loaded: ``{"state": "Loaded"}``."""
        self._info(collection_name)
        return {"state": "Loaded"}

    def flush(self, collection_name: str, **_: Any) -> None:
        """Nothing to do: every insert is durable when it returns (one committed transaction)."""
        self._info(collection_name)

    # -- partitions -----------------------------------------------------------------------
    def create_partition(self, collection_name: str, partition_name: str) -> None:
        self._info(collection_name)
        check_name(partition_name, "partition name")
        with self._connection() as conn, translate(), conn.transaction():
            if partition_name in catalog.partitions(conn, self.schema, collection_name):
                raise AlreadyExists(f"partition {partition_name!r} already exists")
            conn.execute("INSERT INTO vecpg.partitions (schema_name, collection, name)"
                         " VALUES (%s, %s, %s)", (self.schema, collection_name, partition_name))
        self._forget(collection_name)

    def list_partitions(self, collection_name: str) -> list[str]:
        self._info(collection_name)
        with self._connection() as conn, translate():
            return catalog.partitions(conn, self.schema, collection_name)

    def has_partition(self, collection_name: str, partition_name: str) -> bool:
        return partition_name in self.list_partitions(collection_name)

    def drop_partition(self, collection_name: str, partition_name: str) -> None:
        """Delete a partition and every row in it (``_default`` cannot be dropped)."""
        self._info(collection_name)
        if partition_name == DEFAULT_PARTITION:
            raise InvalidArgument("the _default partition cannot be dropped")
        self._check_partitions(self._info(collection_name), [partition_name])
        with self._connection() as conn, translate(), conn.transaction():
            self._exec(conn, sql.SQL("DELETE FROM {} WHERE {} = %s").format(
                self._table(collection_name), sql.Identifier(PARTITION_COLUMN)), [partition_name])
            conn.execute("DELETE FROM vecpg.partitions WHERE schema_name = %s AND collection = %s"
                         " AND name = %s", (self.schema, collection_name, partition_name))
        self._forget(collection_name)

    def _check_partitions(self, info: CollectionInfo, names: Sequence[str] | None
                          ) -> list[str] | None:
        """The partition names, checked against the catalog (None: no restriction)."""
        if not names:
            return None
        if isinstance(names, str):
            names = [names]
        if any(p not in info.partitions for p in names):
            info = self._info(info.name, fresh=True)  # another process may have created it
        for p in names:
            if p not in info.partitions:
                raise PartitionNotFound(f"partition {p!r} of {info.name!r} does not exist")
        return list(names)

    # -- data -----------------------------------------------------------------------------
    def insert(self, collection_name: str, data: Any, partition_name: str | None = None
               ) -> dict[str, Any]:
        """Insert rows (a list of dicts, or a dict of columns / numpy arrays).

        All or nothing: a bad row or a duplicate key raises and writes nothing.
        Returns ``{"insert_count": n, "ids": [...]}``.
        """
        return self._write(collection_name, data, partition_name, upsert=False)

    def upsert(self, collection_name: str, data: Any, partition_name: str | None = None
               ) -> dict[str, Any]:
        """Insert rows, replacing whole rows whose primary key exists.
        Returns ``{"upsert_count": n, "ids": [...]}``."""
        return self._write(collection_name, data, partition_name, upsert=True)

    def _write(self, collection_name: str, data: Any, partition_name: str | None,
               *, upsert: bool) -> dict[str, Any]:
        info = self._info(collection_name)
        part = partition_name or DEFAULT_PARTITION
        if partition_name:
            self._check_partitions(info, [partition_name])
        batch = prepare_batch(info.schema, data, partition=part, require_pk=upsert)
        pk = info.schema.primary_field
        table = self._table(collection_name)
        with self._connection() as conn, translate(), conn.transaction():
            if batch.pk_values is None:
                seq = _value(conn.execute("SELECT pg_get_serial_sequence(%s, %s)",
                                          (table.as_string(conn), pk.name)))
                ids = [r[0] for r in conn.execute(
                    "SELECT nextval(%s::regclass) FROM generate_series(1, %s)", (seq, batch.n))]
                batch.set_ids(ids)
            targets = self._companion_targets(info)
            encoding = self._companions.before_write(conn, targets) if targets else []
            with conn.cursor() as cur:
                if not upsert:
                    copy_batch(cur, table, batch)
                else:
                    self._upsert(conn, cur, info, batch)
            for t, version in encoding:
                self._companions.encode_rows(conn, t, version, batch.pk_values or [],
                                             batch.column(t.vec.name).values)
        ids = list(batch.pk_values or [])
        return {("upsert_count" if upsert else "insert_count"): batch.n, "ids": ids}

    def _upsert(self, conn: psycopg.Connection, cur: psycopg.Cursor, info: CollectionInfo,
                batch: Any) -> None:
        tmp = sql.Identifier("_vecpg_upsert")
        conn.execute(sql.SQL("CREATE TEMP TABLE {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DROP")
                     .format(tmp, self._table(info.name)))
        copy_batch(cur, tmp, batch)
        pk = info.schema.primary_field.name
        cols = [f.name for f in info.schema.fields] + [PARTITION_COLUMN]
        if info.schema.enable_dynamic_field:
            cols.append("_meta")
        ident = [sql.Identifier(c) for c in cols]
        # Every column is set, so an upsert replaces the whole row (as Milvus does).
        sets = sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c))
                                  for c in cols if c != pk)
        self._exec(conn, sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT ({}) "
                                 "DO UPDATE SET {}").format(
            self._table(info.name), sql.SQL(", ").join(ident), sql.SQL(", ").join(ident), tmp,
            sql.Identifier(pk), sets))

    def delete(self, collection_name: str, ids: Any = None, filter: str = "",
               partition_name: str | None = None) -> dict[str, int]:
        """Delete rows by primary key or by filter. Returns ``{"delete_count": n}``."""
        info = self._info(collection_name)
        if ids is None and not (filter and filter.strip()):
            raise InvalidArgument("delete needs ids or a filter")
        where, params = self._where(info, ids, filter,
                                    self._check_partitions(info,
                                                           [partition_name] if partition_name else None))
        with self._connection() as conn, translate(), conn.transaction():
            cur = self._exec(conn, sql.SQL("DELETE FROM {} WHERE {}").format(
                self._table(collection_name), where), params)
            return {"delete_count": cur.rowcount}

    def _where(self, info: CollectionInfo, ids: Any, expr: str,
               partitions: list[str] | None) -> tuple[sql.Composable, list[Any]]:
        parts: list[sql.Composable] = []
        params: list[Any] = []
        if ids is not None:
            pk = info.schema.primary_field
            id_list = _id_list(ids, pk.dtype)
            cast = sql.SQL("bigint[]" if pk.dtype is DataType.INT64 else "text[]")
            parts.append(sql.SQL("{} = ANY(%s::{})").format(sql.Identifier(pk.name), cast))
            params.append(id_list)
        if expr and expr.strip():
            frag = compile_filter(expr, info.schema)
            parts.append(sql.SQL("({})").format(frag.sql))
            params += frag.params
        if partitions:
            parts.append(sql.SQL("{} = ANY(%s)").format(sql.Identifier(PARTITION_COLUMN)))
            params.append(partitions)
        if not parts:
            return sql.SQL("TRUE"), []
        return sql.SQL(" AND ").join(parts), params

    def get(self, collection_name: str, ids: Any, output_fields: list[str] | None = None,
            partition_names: list[str] | None = None) -> list[dict[str, Any]]:
        """Rows by primary key (missing keys are skipped), in primary-key order."""
        return self.query(collection_name, ids=ids, output_fields=output_fields,
                          partition_names=partition_names)

    def query(self, collection_name: str, filter: str = "", output_fields: list[str] | None = None,
              limit: int | None = None, offset: int = 0, ids: Any = None,
              partition_names: list[str] | None = None) -> list[dict[str, Any]]:
        """Rows matching a filter expression, ordered by primary key.

        ``output_fields=["count(*)"]`` returns ``[{"count(*)": n}]``.
        """
        info = self._info(collection_name)
        parts = self._check_partitions(info, partition_names)
        where, params = self._where(info, ids, filter, parts)
        table = self._table(collection_name)
        if output_fields and list(output_fields) == ["count(*)"]:
            with self._connection() as conn, translate():
                n = _value(self._exec(conn, sql.SQL("SELECT count(*) FROM {} WHERE {}").format(
                    table, where), params))
            return [{"count(*)": n}]
        sel = select_fields(info.schema, output_fields, default_all=True)
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise InvalidArgument(f"limit must be a non-negative integer, got {limit!r}")
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise InvalidArgument(f"offset must be a non-negative integer, got {offset!r}")
        stmt = sql.SQL("SELECT {} FROM {} WHERE {} ORDER BY {} LIMIT %s OFFSET %s").format(
            sql.SQL(", ").join(sel.select_list()), table, where,
            sql.Identifier(info.schema.primary_field.name))
        with self._connection() as conn, translate():
            rows = self._exec(conn, stmt, params + [limit, offset]).fetchall()
        return [sel.to_dict(r) for r in rows]

    def count(self, collection_name: str, filter: str = "",
              partition_names: list[str] | None = None) -> int:
        """Number of rows (matching ``filter``)."""
        res = self.query(collection_name, filter, ["count(*)"], partition_names=partition_names)
        return int(res[0]["count(*)"])

    # -- search ---------------------------------------------------------------------------
    def search(self, collection_name: str, data: Any, limit: int = 10, filter: str = "",
               output_fields: list[str] | None = None,
               search_params: dict[str, Any] | None = None, anns_field: str | None = None,
               partition_names: list[str] | None = None, offset: int = 0, *,
               recall: float | None = None, strategy: str | None = None) -> list[list[Hit]]:
        """Nearest neighbours of each query vector in ``data``.

        Returns one list of :class:`Hit` per query, closest first: ``hit.id``,
        ``hit.distance`` (see the metric conventions in :mod:`vecpg.metrics`) and
        ``hit.entity`` with ``output_fields``.

        The planner (:mod:`vecpg.planner`) picks the cheapest strategy and setting whose
        estimated recall@k reaches ``recall`` (default: the collection's ``recall``
        property, else 0.95); :meth:`explain` shows its choice. ``strategy`` ("exact",
        "filter_first", "hnsw", "ivfflat", or a companion index type) forces one;
        ``search_params`` knobs force a setting: ``{"params": {"ef": 64}}`` for HNSW,
        ``{"nprobe": 16}`` for IVF, ``{"exact": True}`` for an exact scan. Whatever runs, a
        query gets ``limit`` hits whenever ``limit + offset`` rows match the filter.
        """
        return self._search(collection_name, data, limit, filter, output_fields, search_params,
                            anns_field, partition_names, offset, recall, strategy, learn=True)

    def _search(self, collection_name: str, data: Any, limit: int, filter: str,
                output_fields: list[str] | None, search_params: dict[str, Any] | None,
                anns_field: str | None, partition_names: list[str] | None, offset: int,
                recall: float | None, strategy: str | None, *, learn: bool
                ) -> list[list[Hit]]:
        """:meth:`search`; ``learn=False`` keeps the query vectors and latencies out of
        the planner's statistics (calibration's own searches: rows, not user queries)."""
        info = self._info(collection_name)
        key = (anns_field, repr(search_params), limit, offset, filter,
               tuple(partition_names or ()), tuple(output_fields or ()) if output_fields else None,
               recall, strategy)
        plan = info.plans.get(key)
        with self._connection() as conn, translate():
            if plan is None or plan.expires < time.monotonic():
                plan = self._plan(conn, info, limit=limit, offset=offset, filter=filter,
                                  output_fields=output_fields, search_params=search_params,
                                  anns_field=anns_field, partition_names=partition_names,
                                  recall=recall, strategy=strategy)
                if len(info.plans) < 256:  # the info is reloaded every few seconds anyway
                    info.plans[key] = plan
            vectors = query_vectors(plan.field, data)
            if learn and plan.remember is not None and not plan.remember(vectors):
                plan.remember = None
            self._apply_settings(conn, plan.settings)
            started = time.perf_counter()
            if plan.companion is not None:
                queries = np.stack([v.to_numpy() for v in vectors])
                results = self._run_many(conn, plan.text, plan.companion.bind(
                    conn, self._companions, queries, vectors))
            else:
                results = self._run_many(conn, plan.text, plan.bind(vectors))
            fallback = plan.fallback
            if fallback is not None:
                # An approximate plan returned fewer rows than asked for: the exact plan
                # says whether that many rows match (a filter can starve an index scan).
                short = [i for i, rows in enumerate(results) if len(rows) < plan.k]
                if short:
                    redo = self._run_many(conn, fallback.text,
                                          fallback.bind([vectors[i] for i in short]))
                    for i, rows in zip(short, redo):
                        results[i] = rows
            if learn and plan.observe is not None:
                plan.observe(plan, (time.perf_counter() - started) * 1000 / len(vectors))
        return [to_hits(plan, rows) for rows in results]

    def _plan(self, conn: psycopg.Connection, info: CollectionInfo, *, limit: int, offset: int,
              filter: str, output_fields: list[str] | None,
              search_params: dict[str, Any] | None, anns_field: str | None,
              partition_names: list[str] | None, recall: float | None, strategy: str | None,
              fresh: bool = False) -> SearchPlan:
        f = info.vector_field(anns_field)
        sel = select_fields(info.schema, output_fields, default_all=False)
        parts = self._check_partitions(info, partition_names)
        q = prepare_query(info, f, limit=limit, offset=offset, expr=filter, selection=sel,
                          partitions=parts, search_params=search_params)
        target = check_recall(recall if recall is not None
                              else info.properties.get("recall", DEFAULT_RECALL))
        return plan_query(conn, q, self._stats, recall=target, strategy=strategy, fresh=fresh)

    @functools.cached_property
    def _stats(self) -> StatsCache:
        """Row counts, filter selectivities and measured latencies the planner reuses;
        ``client._stats.ttl`` (seconds) says for how long."""
        return StatsCache()

    def explain(self, collection_name: str, data: Any = None, limit: int = 10, filter: str = "",
                output_fields: list[str] | None = None,
                search_params: dict[str, Any] | None = None, anns_field: str | None = None,
                partition_names: list[str] | None = None, offset: int = 0, *,
                recall: float | None = None, strategy: str | None = None) -> dict[str, Any]:
        """What :meth:`search` with these arguments would run, and why. Statistics are
        measured afresh. ``data`` (query vectors) is optional: the plan does not depend on
        it, but when given it is validated as search would.

        Returns a dict: ``strategy`` (exact, filter_first, hnsw, ivfflat, or a companion
        index type), ``params`` (its knobs, e.g. ``{"ef": 64}``), ``settings`` (the
        Postgres settings it sets), ``estimated_cost_ms`` (per query), ``estimated_recall``,
        ``cost_source`` (calibration, default, model or observed), ``recall_target``,
        ``forced``, ``k``, ``rows`` and ``rows_source``, ``filtered``, ``selectivity``,
        ``matching_rows``, ``selectivity_source`` (none, planner, sample or count),
        ``planner_matching_rows`` (Postgres' estimate when a count replaced it),
        ``filter_access`` (index or seq), ``index`` (name, type, calibration time and
        rows), ``exact_fallback`` (whether short results are redone exactly),
        ``alternatives`` (each option considered, with its estimates and why it was
        rejected), ``sql`` and ``sql_params`` (the statement and its parameters).

            >>> client.explain("docs", limit=10, filter="lexfile == 19")["strategy"]
            'filter_first'
        """
        info = self._info(collection_name)
        with self._connection() as conn, translate():
            plan = self._plan(conn, info, limit=limit, offset=offset, filter=filter,
                              output_fields=output_fields, search_params=search_params,
                              anns_field=anns_field, partition_names=partition_names,
                              recall=recall, strategy=strategy, fresh=True)
        if data is not None:
            query_vectors(plan.field, data)
        assert plan.explain is not None
        return dict(plan.explain)

    def calibrate(self, collection_name: str, index_name: str | None = None, *,
                  queries: Any = 100) -> dict[str, Any]:
        """Measure the recall and latency of each search setting of the collection's
        vector indexes (or of ``index_name``) and store the curves in the catalog for the
        planner. Index builds calibrate on their own; call this after the collection has
        grown or changed a lot, or with real queries.

        ``queries``: an (m, dim) array of representative query vectors (e.g. from a query
        log), which measure recall as users see it; or a number: the first query vectors
        this client searched the field with (up to 100, when there are at least 20), else
        that many of the collection's own rows (their recall is corrected for being rows
        of the index).

        Returns ``{index_name: calibration}`` (see :mod:`vecpg.calibrate`; None for an
        index with no knob to tune or a collection of fewer than 50 rows).
        """
        info = self._info(collection_name, fresh=True)
        targets = [ix for ix in info.indexes
                   if (index_name is None or ix.index_name == index_name)
                   and ix.metric_type is not None]
        if index_name is not None and not targets:
            raise IndexNotFound(f"vector index {index_name!r} does not exist on "
                                f"{collection_name!r}")
        out: dict[str, Any] = {}
        with self._connection() as conn, translate():
            for ix in targets:
                seen = self._stats.queries.get((self._table(collection_name).as_string(conn),
                                                ix.field_name), [])
                # the collection may have been dropped and made again with another dimension
                dim = int(info.schema.field(ix.field_name).dim or 0)
                seen = [v for v in seen if len(v.to_numpy() if hasattr(v, "to_numpy") else v)
                        == dim]
                run = (self._companion_search(collection_name, ix)
                       if ix.index_type in COMPANION_INDEX_TYPES else None)
                if isinstance(queries, int) and len(seen) >= 20:
                    cal = calibrate_index(conn, info, ix, queries=seen, source="searches",
                                          companion_search=run)
                else:
                    cal = calibrate_index(conn, info, ix, queries=queries, companion_search=run)
                if cal is not None or ix.pg_index is not None or run is not None:
                    with conn.transaction():
                        store_calibration(conn, info, ix, cal)
                out[ix.index_name] = cal
        self._forget(collection_name)
        return out

    def _companion_search(self, collection_name: str, ix: IndexInfo
                          ) -> Callable[[Any, int, int], list[Any]]:
        """One search through companion index ``ix`` with its knob set, the way ``search``
        runs it (candidates, exact re-rank, pending rows), for calibration."""
        knob = companion_knob(ix.index_type)

        def run(vec: Any, value: int, limit: int) -> list[Any]:
            hits = self._search(collection_name, [vec], limit=limit, filter="",
                                output_fields=None, search_params={"params": {knob: value}},
                                anns_field=ix.field_name, partition_names=None, offset=0,
                                recall=None, strategy=ix.index_type, learn=False)
            return [h.id for h in hits[0]]
        return run

    def alter_collection_properties(self, collection_name: str, properties: dict[str, Any]
                                    ) -> None:
        """Set collection properties. ``{"recall": 0.9}`` sets the recall@k that searches
        aim for when they do not say (default 0.95)."""
        if not isinstance(properties, dict):
            raise InvalidArgument(f"properties must be a dict, got {properties!r}")
        unknown = set(properties) - {"recall"}
        if unknown:
            raise InvalidArgument(f"unknown collection properties {sorted(unknown)}; "
                                  "known: ['recall']")
        if "recall" in properties:
            check_recall(properties["recall"])
        info = self._info(collection_name, fresh=True)
        with self._connection() as conn, translate(), conn.transaction():
            catalog.set_properties(conn, self.schema, collection_name,
                                   {**info.properties, **properties})
        self._forget(collection_name)

    def _apply_settings(self, conn: psycopg.Connection, settings: dict[str, str]) -> None:
        """Session-level settings, sent only when they differ from what this connection has.

        Session level rather than SET LOCAL: a search is then a single statement with no
        BEGIN/COMMIT round trips; the cache per connection keeps every search's settings
        exact (pool connections are used by vecpg only).
        """
        have = self._settings.setdefault(conn, {})
        todo = {k: v for k, v in settings.items() if have.get(k) != v}
        if not todo:
            return
        calls = sql.SQL(", ").join(sql.SQL("set_config(%s, %s, false)") for _ in todo)
        params: list[Any] = []
        for k, v in todo.items():
            params += [k, v]
        self._exec(conn, sql.SQL("SELECT {}").format(calls), params)
        have.update(todo)

    def _run_many(self, conn: psycopg.Connection, stmt: str,
                  params: list[list[Any]]) -> list[list[tuple[Any, ...]]]:
        if self.tracer is not None:
            for p in params:
                self.tracer(stmt, p)
        with conn.cursor() as cur:
            if len(params) == 1:
                return [cur.execute(stmt, params[0]).fetchall()]
            cur.executemany(stmt, params, returning=True)
            out = []
            while True:
                out.append(cur.fetchall())
                if not cur.nextset():
                    break
            return out

    # -- indexes --------------------------------------------------------------------------
    def create_index(self, collection_name: str, index_params: IndexParams | None = None, *,
                     field_name: str | None = None, index_type: str = "AUTOINDEX",
                     metric_type: str | None = None, params: dict[str, Any] | None = None,
                     index_name: str | None = None,
                     progress: Callable[[dict[str, Any]], None] | None = None) -> None:
        """Build indexes: pymilvus style (``index_params`` from ``prepare_index_params()``)
        or one index by keywords. ``progress`` receives build progress dicts (phase,
        blocks/tuples done and total) while a long build runs."""
        requests = list(index_params or [])
        if field_name is not None:
            requests.append({"field_name": field_name, "index_type": index_type,
                             "index_name": index_name or field_name,
                             "metric_type": metric_type, "params": params or {}})
        if not requests:
            raise InvalidArgument("create_index needs index_params or field_name")
        for req in requests:
            self._create_one(collection_name, req, progress)

    def _create_one(self, collection_name: str, req: Mapping[str, Any],
                    progress: Callable[[dict[str, Any]], None] | None) -> None:
        info = self._info(collection_name, fresh=True)
        f = info.schema.get(str(req.get("field_name")))
        if f is None:
            raise SchemaError(f"unknown field {req.get('field_name')!r} in {collection_name!r}")
        name = check_name(req.get("index_name") or f.name, "index name", allow_underscore=False)
        if any(ix.index_name == name for ix in info.indexes):
            raise AlreadyExists(f"index {name!r} exists on {collection_name!r}")
        metric: Metric | None = None
        if f.dtype.is_vector:
            metric = Metric.parse(req["metric_type"]) if req.get("metric_type") else info.metric(f.name)
            check_metric(metric, f.dtype, f.name)
        cfg = parse_index(str(req.get("index_type") or "AUTOINDEX"), req.get("params"), f, metric)
        if f.dtype.is_vector and info.index_on(f.name) is not None:
            raise AlreadyExists(f"field {f.name!r} has a vector index already; drop it first")
        if isinstance(cfg, Companion):
            assert metric is not None
            self._create_companion(info, f, name, cfg, metric, progress)
            self._calibrate_after_build(collection_name, name)
            return
        pg_name = None if isinstance(cfg, Flat) else pg_index_name(collection_name, name)
        ddl = create_index_sql(cfg, self.schema, collection_name, pg_name or "", f, metric)
        stop = threading.Event()
        watcher = None
        with self._connection() as conn, translate():
            if progress is not None and ddl is not None:
                watcher = threading.Thread(target=self._watch_build,
                                           args=(conn.info.backend_pid, progress, stop), daemon=True)
            try:
                with conn.transaction():
                    if ddl is not None:
                        # Builds are much faster when the graph fits in memory.
                        conn.execute("SET LOCAL maintenance_work_mem = '1GB'")
                        if watcher is not None:
                            watcher.start()
                        self._exec(conn, ddl)
                    if f.dtype is DataType.BINARY_VECTOR:
                        # popcount bounds screen SUBSTRUCTURE/SUPERSTRUCTURE and Tanimoto
                        # range searches before the exact bit test (see metrics.distance_sql)
                        self._exec(conn, sql.SQL("CREATE INDEX {} ON {} ((vecpg.popcount({})))")
                                   .format(sql.Identifier(popcount_index_name(collection_name, name)),
                                           self._table(collection_name), sql.Identifier(f.name)))
                    if ddl is not None or f.dtype is DataType.BINARY_VECTOR:
                        self._exec(conn, sql.SQL("ANALYZE {}").format(self._table(collection_name)))
                    conn.execute(
                        "INSERT INTO vecpg.indexes (schema_name, collection, index_name, field_name,"
                        " index_type, metric_type, params, pg_index) VALUES (%s,%s,%s,%s,%s,%s,%s,%s)",
                        (self.schema, collection_name, name, f.name, cfg.kind,
                         metric.value if metric else None,
                         psycopg.types.json.Jsonb(config_params(cfg)), pg_name))
                    if metric is not None:
                        props = dict(info.properties)
                        props["metrics"] = dict(props.get("metrics", {}), **{f.name: metric.value})
                        catalog.set_properties(conn, self.schema, collection_name, props)
            finally:
                stop.set()
                if watcher is not None and watcher.is_alive():
                    watcher.join()
        self._forget(collection_name)
        if metric is not None and pg_name is not None:
            self._calibrate_after_build(collection_name, name)

    def _calibrate_after_build(self, collection_name: str, name: str) -> None:
        """The planner's curve for a new index (a failure leaves it on default estimates)."""
        try:
            self.calibrate(collection_name, name)
        except VecpgError as e:
            logging.getLogger("vecpg").warning("calibrating index %s failed: %s", name, e)

    def _create_companion(self, info: CollectionInfo, f: Any, name: str, cfg: Companion,
                          metric: Metric, progress: Callable[[dict[str, Any]], None] | None
                          ) -> None:
        """Register a companion index with its triggers (committed first, so rows written
        during the build are listed as pending), then train and encode it."""
        table = self._table(info.name)
        with self._connection() as conn, translate():
            with conn.transaction():
                row = conn.execute(
                    "INSERT INTO vecpg.indexes (schema_name, collection, index_name, field_name,"
                    " index_type, metric_type, params, pg_index, state, version, build_started)"
                    " VALUES (%s,%s,%s,%s,%s,%s,%s,NULL,'building',0,now()) RETURNING id",
                    (self.schema, info.name, name, f.name, cfg.kind, metric.value,
                     psycopg.types.json.Jsonb(config_params(cfg)))).fetchone()
                assert row is not None
                index_id = int(row[0])
                cmp.install(conn, table, info.schema.primary_field, f, index_id)
                props = dict(info.properties)
                props["metrics"] = dict(props.get("metrics", {}), **{f.name: metric.value})
                catalog.set_properties(conn, self.schema, info.name, props)
            self._forget(info.name)
            target = cmp.Target(index_id, table, info.schema.primary_field, f, metric, cfg)
            try:
                cmp.build(conn, target, progress)
            except Exception:
                # A first build that fails leaves nothing behind (a killed one stays
                # 'building' and is ignored by searches until rebuilt or dropped).
                with conn.transaction():
                    cmp.uninstall(conn, index_id)
                    conn.execute("DELETE FROM vecpg.indexes WHERE id = %s", (index_id,))
                raise
        self._forget(info.name)

    def _companion_targets(self, info: CollectionInfo) -> list[tuple[cmp.Target, str]]:
        out = []
        for ix in info.indexes:
            if ix.index_type in COMPANION_INDEX_TYPES and ix.id is not None:
                out.append((self._target(info, ix), ix.index_type))
        return out

    def _target(self, info: CollectionInfo, ix: IndexInfo) -> cmp.Target:
        cfg = config_from_catalog(ix.index_type, ix.params)
        assert isinstance(cfg, Companion) and ix.id is not None
        return cmp.Target(ix.id, self._table(info.name), info.schema.primary_field,
                          info.schema.field(ix.field_name),
                          Metric.parse(ix.metric_type or "L2"), cfg)

    def rebuild_index(self, collection_name: str, index_name: str,
                      progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Build an index again from the current rows: a companion index is re-trained and
        swapped in when done (the old version serves until then); a pgvector index is
        REINDEXed. Returns build statistics."""
        info = self._info(collection_name, fresh=True)
        ix = self._index(info, index_name)
        started = time.monotonic()
        with self._connection() as conn, translate():
            if ix.index_type in COMPANION_INDEX_TYPES:
                stats = cmp.build(conn, self._target(info, ix), progress)
            else:
                if ix.pg_index:
                    self._exec(conn, sql.SQL("REINDEX INDEX {}").format(
                        sql.Identifier(self.schema, ix.pg_index)))
                stats = {}
        self._forget(collection_name)
        return {"build_seconds": round(time.monotonic() - started, 3), **stats}

    def compact_index(self, collection_name: str, index_name: str, *,
                      max_uncovered: float = 0.1,
                      progress: Callable[[dict[str, Any]], None] | None = None
                      ) -> dict[str, Any]:
        """Rebuild a companion index when the share of rows it does not cover (pending
        rows, stale codes of deleted rows) exceeds ``max_uncovered``. Returns the coverage
        and whether it rebuilt."""
        info = self._info(collection_name, fresh=True)
        ix = self._index(info, index_name)
        if ix.index_type not in COMPANION_INDEX_TYPES or ix.id is None:
            raise InvalidArgument(f"index {index_name!r} is {ix.index_type}, not a companion "
                                  f"index ({', '.join(COMPANION_INDEX_TYPES)})")
        t = self._target(info, ix)
        with self._connection() as conn, translate():
            cov = cmp.coverage(conn, t.table, t.pk, ix.id, ix.version) if ix.version else None
        share = 1.0 if cov is None else (
            (cov["pending"] + cov["stale_codes"]) / max(1, cov["rows"]))
        if share <= max_uncovered and ix.state == "ready":
            return {"rebuilt": False, "uncovered_share": share, **(cov or {})}
        stats = self.rebuild_index(collection_name, index_name, progress)
        return {"rebuilt": True, "uncovered_share": share, **(cov or {}), "build": stats}

    def _index(self, info: CollectionInfo, index_name: str) -> IndexInfo:
        for ix in info.indexes:
            if ix.index_name == index_name:
                return ix
        raise IndexNotFound(f"index {index_name!r} does not exist on {info.name!r}")

    def _watch_build(self, pid: int, progress: Callable[[dict[str, Any]], None],
                     stop: threading.Event) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as c:
            while not stop.wait(0.5):
                row = c.execute(
                    "SELECT phase, blocks_done, blocks_total, tuples_done, tuples_total"
                    " FROM pg_stat_progress_create_index WHERE pid = %s", (pid,)).fetchone()
                if row:
                    progress(dict(zip(("phase", "blocks_done", "blocks_total", "tuples_done",
                                       "tuples_total"), row)))

    def list_indexes(self, collection_name: str, field_name: str | None = None) -> list[str]:
        info = self._info(collection_name, fresh=True)
        return [ix.index_name for ix in info.indexes
                if field_name is None or ix.field_name == field_name]

    def describe_index(self, collection_name: str, index_name: str) -> dict[str, Any]:
        """Type, metric, parameters, state and size of one index.

        Sizes: ``total_bytes`` (pgvector: the index relation; companion: codes table plus
        stored model) and ``bytes_per_vector``. A companion index also reports
        ``model_bytes`` (the stored model), ``codes_table_bytes``, ``memory_bytes`` (what
        this process holds for it, once loaded), ``build`` (build statistics, with
        ``model_memory_bytes``: the model's arrays in memory) and ``coverage``."""
        info = self._info(collection_name, fresh=True)
        for ix in info.indexes:
            if ix.index_name == index_name and ix.index_type in COMPANION_INDEX_TYPES:
                return self._describe_companion(info, ix)
            if ix.index_name == index_name:
                size = 0
                if ix.pg_index:
                    with self._connection() as conn, translate():
                        size = _value(conn.execute("SELECT pg_relation_size(%s::regclass)", (
                            sql.Identifier(self.schema, ix.pg_index).as_string(conn),)))
                n = self.count(collection_name) if ix.pg_index else 0
                return {"index_name": ix.index_name, "field_name": ix.field_name,
                        "index_type": ix.index_type, "metric_type": ix.metric_type,
                        "params": ix.params, "state": ix.state, "pg_index": ix.pg_index,
                        "total_bytes": int(size),
                        "bytes_per_vector": (size / n) if n else None}
        raise IndexNotFound(f"index {index_name!r} does not exist on {collection_name!r}")

    def _describe_companion(self, info: CollectionInfo, ix: IndexInfo) -> dict[str, Any]:
        assert ix.id is not None
        out: dict[str, Any] = {
            "index_name": ix.index_name, "field_name": ix.field_name,
            "index_type": ix.index_type, "metric_type": ix.metric_type, "params": ix.params,
            "state": ix.state, "pg_index": None, "version": ix.version}
        if not ix.version:
            return out
        t = self._target(info, ix)
        with self._connection() as conn, translate():
            row = conn.execute(
                "SELECT stats, model_bytes, pg_total_relation_size(%s::regclass)"
                " FROM vecpg.index_models WHERE index_id = %s AND version = %s",
                (cmp.codes_table(ix.id, ix.version).as_string(conn), ix.id, ix.version)).fetchone()
            cov = cmp.coverage(conn, t.table, t.pk, ix.id, ix.version)
        stats, model_bytes, codes_bytes = row if row else ({}, 0, 0)
        state = self._companions._loaded.get(ix.id)
        out.update({
            "total_bytes": int(codes_bytes) + int(model_bytes),
            # ANNOY's trees hold the vectors themselves: its cost per vector is the forest's
            "bytes_per_vector": (stats.get("code_size") if ix.index_type != "ANNOY"
                                 else round(int(model_bytes) / max(1, int(stats.get("rows", 0))), 1)),
            "float_bytes_per_vector": stats.get("float_bytes_per_vector"),
            "model_bytes": int(model_bytes), "codes_table_bytes": int(codes_bytes),
            "memory_bytes": state.memory_bytes() if state and state.version == ix.version else None,
            "build": stats, "coverage": cov})
        return out

    def drop_index(self, collection_name: str, index_name: str) -> None:
        info = self._info(collection_name, fresh=True)
        ix = next((i for i in info.indexes if i.index_name == index_name), None)
        if ix is None:
            raise IndexNotFound(f"index {index_name!r} does not exist on {collection_name!r}")
        with self._connection() as conn, translate(), conn.transaction():
            if ix.pg_index:
                self._exec(conn, sql.SQL("DROP INDEX IF EXISTS {}").format(
                    sql.Identifier(self.schema, ix.pg_index)))
            self._exec(conn, sql.SQL("DROP INDEX IF EXISTS {}").format(
                sql.Identifier(self.schema, popcount_index_name(collection_name, index_name))))
            if ix.index_type in COMPANION_INDEX_TYPES and ix.id is not None:
                cmp.uninstall(conn, ix.id)
                self._companions.forget(ix.id)
            conn.execute("DELETE FROM vecpg.indexes WHERE schema_name = %s AND collection = %s"
                         " AND index_name = %s", (self.schema, collection_name, index_name))
        self._forget(collection_name)

    # -- misc -----------------------------------------------------------------------------
    def server_info(self) -> dict[str, Any]:
        """Postgres and pgvector versions, and the database's vecpg revision."""
        from .migrate import current_revision

        with self._connection() as conn, translate():
            version = _value(conn.execute("SHOW server_version"))
            pgv = _value(conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'"))
            rev = current_revision(conn)
        return {"postgres": version, "pgvector": pgv, "vecpg_schema_revision": rev,
                "dsn": _redact(self.dsn), "schema": self.schema}


def _value(cur: psycopg.Cursor[Any]) -> Any:
    """The first column of the first row of a query that always returns one row."""
    row = cur.fetchone()
    if row is None:  # pragma: no cover - only for queries that always return a row
        raise ServerError("the server returned no row")
    return row[0]


def _lock(conn: psycopg.Connection, what: str) -> None:
    """Serialize a check-then-create on ``what`` across processes until the transaction ends."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"vecpg {what}",))


def _id_list(ids: Any, dtype: DataType) -> list[Any]:
    if isinstance(ids, (str, int)) or not hasattr(ids, "__iter__"):
        ids = [ids]
    out: list[Any] = []
    for v in ids:
        if dtype is DataType.INT64:
            if isinstance(v, bool) or not hasattr(v, "__index__"):
                raise InvalidArgument(f"primary key values must be integers, got {v!r}")
            out.append(int(v))
        else:
            if not isinstance(v, str):
                raise InvalidArgument(f"primary key values must be strings, got {v!r}")
            out.append(v)
    return out


def _redact(dsn: str) -> str:
    import re

    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", dsn)


def connect(dsn: str | None = None, *, data_dir: str | None = None, schema: str = "public",
            **kwargs: Any) -> Client:
    """Open a :class:`Client`: ``dsn``, else ``$VECPG_DSN``, else the embedded server.

    Creates the ``vector`` extension and migrates vecpg's schema on first use.
    """
    return Client(dsn, data_dir=data_dir, schema=schema, **kwargs)
