"""The client: collections, data and search, with the names of pymilvus' ``MilvusClient``.

A thin facade: each method validates its arguments and delegates — connections and every
statement to :mod:`vecpg.session`, catalog reads to :mod:`vecpg.catalog`, DDL to
:mod:`vecpg.ddl`, writes to :mod:`vecpg.ingest`, search planning to :mod:`vecpg.planner`
and running to :mod:`vecpg.executor`, rows to :mod:`vecpg.rows`.

Example::

    import vecpg
    with vecpg.connect() as client:                 # embedded Postgres unless a DSN is given
        client.create_collection("docs", dimension=384, metric_type="COSINE")
        client.insert("docs", [{"id": 1, "vector": vec, "title": "hello"}])
        hits = client.search("docs", [query], limit=5, filter='title like "he%"',
                             output_fields=["title"])
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql

from . import args, catalog, ddl, executor, ingest, rows, tenancy
from . import calibrate as cal
from . import companion as cmp
from .args import check_recall
from .catalog import CatalogCache, CollectionInfo
from .errors import (
    AlreadyExists,
    IndexNotFound,
    InvalidArgument,
    VecpgError,
    translate,
)
from .migrate import server_versions, upgrade
from .planner import DEFAULT_RECALL, PlanCache, Planner
from .query import SearchPlan, SearchRequest, compile_query, query_vectors
from .results import Hit, select_fields
from .schema import DEFAULT_PARTITION, CollectionSchema, check_name
from .server import resolve_dsn, revive
from .session import Db, Session, Tracer, _Lease, retried
from .stats import StatsCache

Progress = Callable[[dict[str, Any]], None]


class IndexParams(list[dict[str, Any]]):
    """A list of index requests, as pymilvus' ``prepare_index_params()`` returns."""

    def add_index(self, field_name: str, index_type: str = "AUTOINDEX", index_name: str = "",
                  metric_type: str | None = None, params: dict[str, Any] | None = None,
                  **kwargs: Any) -> None:
        """Add one index request (pymilvus' signature; extra keywords are parameters)."""
        self.append({"field_name": field_name, "index_type": index_type,
                     "index_name": index_name or field_name, "metric_type": metric_type,
                     "params": dict(params or {}, **kwargs)})


class Client:
    """A connection pool to one Postgres and the collections in one of its schemas.

    ``dsn``: a libpq connection string; default ``$VECPG_DSN``, else the embedded server in
    ``data_dir`` (default ``$VECPG_DATA`` or a per-user directory). ``schema``: the Postgres
    schema holding the collection tables (default ``public``). ``tracer``: called with
    ``(sql, params)`` for every statement vecpg sends. ``pool_size``: the most connections
    open at once; ``pool_timeout``: seconds a call waits for a free one before
    :class:`~vecpg.errors.PoolTimeout`.
    """

    def __init__(self, dsn: str | None = None, *, data_dir: str | None = None,
                 schema: str = "public", pool_size: int = 10, pool_timeout: float = 30.0,
                 tracer: Tracer | None = None) -> None:
        self.dsn = resolve_dsn(dsn, data_dir=data_dir)
        self.schema = check_name(schema, "schema name")
        with translate():
            upgrade(self.dsn)
            ddl.ensure_schema(self.dsn, self.schema)
        dsn_ = self.dsn
        self._session = Session(dsn_, pool_size=pool_size, timeout=pool_timeout,
                                tracer=tracer, on_lost=lambda: revive(dsn_))
        self._catalog = CatalogCache(self._session, self.schema)
        self._planner = Planner(StatsCache())
        self._plans = PlanCache(ttl=self._planner.stats.ttl)
        self._companions = cmp.Companions()

    # -- lifecycle ------------------------------------------------------------------------
    @property
    def tracer(self) -> Tracer | None:
        """Called with ``(sql, params)`` for every statement vecpg sends (None: off)."""
        return self._session.tracer

    @tracer.setter
    def tracer(self, value: Tracer | None) -> None:
        self._session.tracer = value

    @property
    def _stats(self) -> StatsCache:
        """Row counts, selectivities and remembered queries the planner reuses;
        ``client._stats.ttl`` (seconds) says for how long."""
        return self._planner.stats

    def close(self) -> None:
        """Close every pooled connection."""
        self._session.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connection(self) -> contextlib.AbstractContextManager[psycopg.Connection]:
        """Borrow a pooled connection for your own SQL (autocommit, pgvector types
        registered): ``with client.connection() as conn: conn.execute(...)``. It is reset
        when it comes back, so settings and temporary tables made on it do not leak."""
        return self._session.lend()

    def _lease(self) -> _Lease:
        return self._session.lease()

    def _info(self, name: str, *, fresh: bool = False) -> CollectionInfo:
        return self._catalog.get(name, fresh=fresh)

    def _table(self, name: str) -> sql.Identifier:
        return sql.Identifier(self.schema, name)

    # -- collections ----------------------------------------------------------------------
    @staticmethod
    def create_schema(**kwargs: Any) -> CollectionSchema:
        """An empty :class:`CollectionSchema` (``auto_id``, ``enable_dynamic_field``, ...)."""
        return CollectionSchema(**kwargs)

    @staticmethod
    def prepare_index_params() -> IndexParams:
        """An empty list of index requests for :meth:`create_index`."""
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
        if schema is not None and not isinstance(schema, CollectionSchema):
            raise InvalidArgument(f"schema must come from create_schema(), got {schema!r}")
        if metric_type is not None:
            args.text(metric_type, "metric_type")
        if schema is None:
            schema = ddl.quick_schema(dimension, primary_field_name, id_type, vector_field_name,
                                      auto_id, max_length, enable_dynamic_field, description)
        schema.validate()
        metrics = ddl.field_metrics(schema, metric_type)
        with self._lease() as db:
            ddl.create_collection(db, self.schema, collection_name, schema, metrics)
        self._catalog.forget(collection_name)
        if index_params:
            self.create_index(collection_name, index_params)

    @retried
    def has_collection(self, collection_name: str) -> bool:
        """Whether the collection exists."""
        check_name(collection_name, "collection name")
        with self._lease() as db:
            return catalog.exists(db, self.schema, collection_name)

    @retried
    def list_collections(self) -> list[str]:
        """The collections of this client's schema, by name."""
        with self._lease() as db:
            return catalog.names(db, self.schema)

    @retried
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
        """Rename a collection (its table, indexes and catalog entry)."""
        info = self._info(old_name, fresh=True)
        check_name(new_name, "collection name")
        with self._lease() as db:
            ddl.rename_collection(db, info, new_name)
        self._catalog.forget(old_name, new_name)

    def drop_collection(self, collection_name: str) -> None:
        """Drop the collection's table and catalog entries. No error if it does not exist."""
        check_name(collection_name, "collection name")
        with self._lease() as db:
            for index_id in ddl.drop_collection(db, self.schema, collection_name):
                self._companions.forget(index_id)
        # queries remembered for calibration belong to the dropped collection
        self._stats.forget_table(self._table(collection_name).as_string(None))
        self._catalog.forget(collection_name)

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
        with self._lease() as db, db.transaction():
            catalog.set_properties(db, self.schema, collection_name,
                                   {**info.properties, **properties})
        self._catalog.forget(collection_name)

    # -- partitions -----------------------------------------------------------------------
    def create_partition(self, collection_name: str, partition_name: str) -> None:
        """Add a partition (rows go in with ``insert(..., partition_name=)``)."""
        self._info(collection_name)
        args.name(partition_name, "partition name")
        with self._lease() as db, db.transaction():
            if partition_name in catalog.partitions(db, self.schema, collection_name):
                raise AlreadyExists(f"partition {partition_name!r} already exists")
            catalog.add_partition(db, self.schema, collection_name, partition_name)
        self._catalog.forget(collection_name)

    @retried
    def list_partitions(self, collection_name: str) -> list[str]:
        """The collection's partitions, ``_default`` first."""
        self._info(collection_name)
        with self._lease() as db:
            return catalog.partitions(db, self.schema, collection_name)

    def has_partition(self, collection_name: str, partition_name: str) -> bool:
        """Whether the partition exists."""
        return args.name(partition_name, "partition name") in self.list_partitions(
            collection_name)

    def drop_partition(self, collection_name: str, partition_name: str) -> None:
        """Delete a partition and every row in it (``_default`` cannot be dropped)."""
        if args.name(partition_name, "partition name") == DEFAULT_PARTITION:
            raise InvalidArgument("the _default partition cannot be dropped")
        self._catalog.partitions(self._info(collection_name), [partition_name])
        with self._lease() as db, db.transaction():
            rows.delete_partition_rows(db, self._table(collection_name), partition_name)
            catalog.drop_partition(db, self.schema, collection_name, partition_name)
        self._catalog.forget(collection_name)

    # -- tenants --------------------------------------------------------------------------
    def enable_tenancy(self, collection_name: str, field_name: str) -> None:
        """Give the collection tenants told apart by the scalar field ``field_name``
        (integer or VARCHAR): from now on a role other than the table's owner sees and
        writes only rows whose field holds a value :meth:`grant_tenant` gave it, through
        every path (see :mod:`vecpg.tenancy`). Roles that see every row: the owner,
        superusers, BYPASSRLS roles."""
        info = self._info(collection_name, fresh=True)
        with self._lease() as db, db.transaction():
            tenancy.enable(db, info, field_name)
        self._catalog.forget(collection_name)

    def disable_tenancy(self, collection_name: str) -> None:
        """Undo :meth:`enable_tenancy`: the tenant policy and every tenant grant go."""
        info = self._info(collection_name, fresh=True)
        with self._lease() as db, db.transaction():
            tenancy.disable(db, info)
        self._catalog.forget(collection_name)

    def grant_tenant(self, collection_name: str, role: str, values: Any, *,
                     write: bool = False) -> None:
        """Let the Postgres role ``role`` (``CREATE ROLE ... LOGIN`` it first) read the
        collection's rows whose tenant field holds one of ``values`` — and with ``write``,
        insert, update and delete such rows; it then connects with its own DSN."""
        info = self._info(collection_name, fresh=True)
        with self._lease() as db, db.transaction():
            tenancy.grant(db, info, role, values, write=args.flag(write, "write"))

    def revoke_tenant(self, collection_name: str, role: str, values: Any = None) -> None:
        """Take tenant ``values`` (default: all) away from ``role``; with none left, its
        rights on the collection go too."""
        info = self._info(collection_name, fresh=True)
        with self._lease() as db, db.transaction():
            tenancy.revoke(db, info, role, values)

    @retried
    def list_tenants(self, collection_name: str) -> dict[str, list[str]]:
        """``{role: [tenant values]}`` (as text) of the collection's tenants."""
        info = self._info(collection_name)
        with self._lease() as db:
            return tenancy.list_grants(db, info)

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
        partition_name = args.optional_name(partition_name, "partition_name")
        if partition_name:
            self._catalog.partitions(info, [partition_name])
        batch = ingest.prepare_batch(info.schema, data, partition=partition_name or
                                     DEFAULT_PARTITION, require_pk=upsert)
        with self._lease() as db:
            ids = rows.write(db, info, batch, ddl.companion_targets(info), self._companions,
                               upsert=upsert)
        return {("upsert_count" if upsert else "insert_count"): batch.n, "ids": ids}

    def delete(self, collection_name: str, ids: Any = None, filter: str = "",
               partition_name: str | None = None) -> dict[str, int]:
        """Delete rows by primary key or by filter. Returns ``{"delete_count": n}``."""
        info = self._info(collection_name)
        filter = args.text(filter, "filter")
        if ids is None and not filter.strip():
            raise InvalidArgument("delete needs ids or a filter")
        args.optional_name(partition_name, "partition_name")
        parts = self._catalog.partitions(info, [partition_name] if partition_name else None)
        where, params = rows.row_filter(info, ids, filter, parts)
        with self._lease() as db, db.transaction():
            return {"delete_count": rows.delete_rows(db, info, where, params)}

    def get(self, collection_name: str, ids: Any, output_fields: list[str] | None = None,
            partition_names: list[str] | None = None) -> list[dict[str, Any]]:
        """Rows by primary key (missing keys are skipped), in primary-key order."""
        if ids is None:  # would be every row: Milvus refuses it too
            raise InvalidArgument("get needs ids (a primary key or a list of them)")
        return self.query(collection_name, ids=ids, output_fields=output_fields,
                          partition_names=partition_names)

    @retried
    def query(self, collection_name: str, filter: str = "", output_fields: list[str] | None = None,
              limit: int | None = None, offset: int = 0, ids: Any = None,
              partition_names: list[str] | None = None) -> list[dict[str, Any]]:
        """Rows matching a filter expression, ordered by primary key.

        ``output_fields=["count(*)"]`` returns ``[{"count(*)": n}]``.
        """
        info = self._info(collection_name)
        filter = args.text(filter, "filter")
        output_fields = args.names(output_fields, "output_fields")
        parts = self._catalog.partitions(info, partition_names)
        where, params = rows.row_filter(info, ids, filter, parts)
        if output_fields == ["count(*)"]:
            with self._lease() as db:
                return [{"count(*)": rows.count_rows(db, info, where, params)}]
        sel = select_fields(info.schema, output_fields, default_all=True)
        if limit is not None:
            limit = args.integer(limit, "limit")
        offset = args.integer(offset, "offset")
        with self._lease() as db:
            return rows.select_rows(db, info, sel, where, params, limit, offset)

    def count(self, collection_name: str, filter: str = "",
              partition_names: list[str] | None = None) -> int:
        """Number of rows (matching ``filter``)."""
        res = self.query(collection_name, filter, ["count(*)"], partition_names=partition_names)
        return int(res[0]["count(*)"])

    # -- search ---------------------------------------------------------------------------
    @retried
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
        req = SearchRequest.of(collection_name, limit=limit, filter=filter,
                               output_fields=output_fields, search_params=search_params,
                               anns_field=anns_field, partition_names=partition_names,
                               offset=offset, recall=recall, strategy=strategy)
        info = self._info(collection_name)
        with self._lease() as db:
            plan = self._plans.get(req, info)
            if plan is None:
                plan = self._plan(db, info, req)
                self._plans.put(req, info, plan)
            vectors = query_vectors(plan.field, data)
            run = executor.run(db, plan, vectors, self._companions)
        self._planner.remember(plan, vectors)
        if run.stale:  # an index changed under the plan: read the catalog, plan again
            self._plans.drop(req)
            self._catalog.forget(collection_name)
        elif not self._planner.observe(plan, run.ms_per_query):
            self._plans.drop(req)  # its cost moved away from the estimate: plan again
        return run.hits(plan)

    def _plan(self, db: Db, info: CollectionInfo, req: SearchRequest, *,
              fresh: bool = False) -> SearchPlan:
        if req.partitions:
            self._catalog.partitions(info, list(req.partitions))
            info = self._info(info.name)
        target = check_recall(req.recall if req.recall is not None
                              else info.properties.get("recall", DEFAULT_RECALL))
        return self._planner.plan(db, compile_query(info, req), recall=target,
                                  strategy=req.strategy, fresh=fresh)

    @retried
    def explain(self, collection_name: str, data: Any = None, limit: int = 10, filter: str = "",
                output_fields: list[str] | None = None,
                search_params: dict[str, Any] | None = None, anns_field: str | None = None,
                partition_names: list[str] | None = None, offset: int = 0, *,
                recall: float | None = None, strategy: str | None = None) -> dict[str, Any]:
        """What :meth:`search` with these arguments would run, and why (statistics
        measured afresh; ``data``, optional, is validated as search would).

        A dict: ``strategy``, ``params``, ``settings``, ``estimated_cost_ms``,
        ``estimated_recall``, ``cost_source``, ``recall_target``, ``forced``, ``k``,
        ``rows``/``rows_source``, ``filtered``, ``selectivity``, ``matching_rows``,
        ``selectivity_source``, ``planner_matching_rows``, ``filter_access``, ``index``,
        ``exact_fallback``, ``alternatives`` (each with why it lost), ``sql``,
        ``sql_params`` (see the README's planner section).

            >>> client.explain("docs", limit=10, filter="lexfile == 19")["strategy"]
            'filter_first'
        """
        req = SearchRequest.of(collection_name, limit=limit, filter=filter,
                               output_fields=output_fields, search_params=search_params,
                               anns_field=anns_field, partition_names=partition_names,
                               offset=offset, recall=recall, strategy=strategy)
        info = self._info(collection_name)
        with self._lease() as db:
            plan = self._plan(db, info, req, fresh=True)
        if data is not None:
            query_vectors(plan.field, data)
        return dict(plan.explain or {})

    def calibrate(self, collection_name: str, index_name: str | None = None, *,
                  queries: Any = 100) -> dict[str, Any]:
        """Measure the recall and latency of each search setting of the collection's
        vector indexes (or of ``index_name``) and store the curves for the planner. Builds
        and rebuilds calibrate on their own; call it after the collection changed a lot.

        ``queries``: an (m, dim) array of real query vectors (best), or a number: the
        first query vectors this client searched the field with (when there are 20+), else
        that many of the collection's rows (their recall corrected for being rows). Returns
        ``{index_name: calibration}`` (:mod:`vecpg.calibrate`; None when nothing to tune).
        """
        info = self._info(collection_name, fresh=True)
        index_name = args.optional_name(index_name, "index_name")
        if isinstance(queries, bool) or (isinstance(queries, int) and queries < 1):
            raise InvalidArgument(f"queries must be a positive number or an array of vectors, "
                                  f"got {queries!r}")
        targets = [ix for ix in info.indexes
                   if (index_name is None or ix.index_name == index_name)
                   and ix.metric_type is not None]
        if index_name is not None and not targets:
            raise IndexNotFound(f"vector index {index_name!r} does not exist on "
                                f"{collection_name!r}")
        out: dict[str, Any] = {}
        table = self._table(collection_name).as_string(None)
        with self._lease() as db:
            for ix in targets:
                # the collection may have been dropped and made again with another dimension
                dim = int(info.schema.field(ix.field_name).dim or 0)
                seen = [v for v in self._stats.queries.get((table, ix.field_name), [])
                        if len(v) == dim]
                if isinstance(queries, int) and len(seen) >= 20:
                    doc = cal.calibrate_index(db, info, ix, queries=seen, source="searches",
                                              companions=self._companions)
                else:
                    doc = cal.calibrate_index(db, info, ix, queries=queries,
                                              companions=self._companions)
                if doc is not None or ix.pg_index is not None or ix.kind.companion:
                    with db.transaction():
                        catalog.set_calibration(db, info, ix, doc)
                out[ix.index_name] = doc
        self._catalog.forget(collection_name)
        return out

    # -- indexes --------------------------------------------------------------------------
    def create_index(self, collection_name: str, index_params: IndexParams | None = None, *,
                     field_name: str | None = None, index_type: str = "AUTOINDEX",
                     metric_type: str | None = None, params: dict[str, Any] | None = None,
                     index_name: str | None = None, progress: Progress | None = None) -> None:
        """Build indexes: pymilvus style (``index_params`` from ``prepare_index_params()``)
        or one index by keywords. ``progress`` receives build progress dicts (phase,
        blocks/tuples done and total) while a long build runs. Vector indexes are then
        calibrated for the planner."""
        requests = args.requests(index_params, "index_params")
        if field_name is not None:
            requests.append(args.index_request(field_name, index_type, index_name, metric_type,
                                               params))
        if not requests:
            raise InvalidArgument("create_index needs index_params or field_name")
        for req in requests:
            info = self._info(collection_name, fresh=True)
            try:
                with self._lease() as db:
                    built = ddl.create_index(db, info, req, self.dsn, progress)
            finally:
                self._catalog.forget(collection_name)
            if built is not None:
                self._calibrate_after_build(collection_name, built)

    def _calibrate_after_build(self, collection_name: str, name: str) -> None:
        """The planner's curve for a new index (a failure leaves it on default estimates)."""
        try:
            self.calibrate(collection_name, name)
        except VecpgError as e:
            logging.getLogger("vecpg").warning("calibrating index %s failed: %s", name, e)

    def rebuild_index(self, collection_name: str, index_name: str,
                      progress: Progress | None = None) -> dict[str, Any]:
        """Build an index again from the current rows, then calibrate it: a companion index
        is re-trained and swapped in when done, a pgvector index is rebuilt with ``REINDEX
        CONCURRENTLY``; searches keep running on the old one meanwhile. Returns build
        statistics."""
        info = self._info(collection_name, fresh=True)
        ix = info.index(index_name)
        with self._lease() as db:
            stats = ddl.rebuild_index(db, info, ix, progress)
        self._catalog.forget(collection_name)
        if ix.kind.knob is not None:  # the new index's curve is not the old one's
            self._calibrate_after_build(collection_name, index_name)
        return stats

    def compact_index(self, collection_name: str, index_name: str, *,
                      max_uncovered: float = 0.1, progress: Progress | None = None
                      ) -> dict[str, Any]:
        """Rebuild a companion index when the share of rows it does not cover (pending
        rows, stale codes of deleted rows) exceeds ``max_uncovered``. Returns the coverage
        and whether it rebuilt."""
        max_uncovered = args.number(max_uncovered, "max_uncovered", 0.0, 1.0)
        info = self._info(collection_name, fresh=True)
        ix = info.index(index_name)
        with self._lease() as db:
            share, cov = ddl.coverage_share(db, info, ix)
        if share <= max_uncovered and ix.state == "ready":
            return {"rebuilt": False, "uncovered_share": share, **(cov or {})}
        stats = self.rebuild_index(collection_name, index_name, progress)
        return {"rebuilt": True, "uncovered_share": share, **(cov or {}), "build": stats}

    @retried
    def list_indexes(self, collection_name: str, field_name: str | None = None) -> list[str]:
        """The collection's index names (on ``field_name`` only, when given)."""
        info = self._info(collection_name, fresh=True)
        field_name = args.optional_name(field_name, "field_name")
        return [ix.index_name for ix in info.indexes
                if field_name is None or ix.field_name == field_name]

    @retried
    def describe_index(self, collection_name: str, index_name: str) -> dict[str, Any]:
        """Type, metric, parameters, state and size of one index.

        Sizes: ``total_bytes`` (pgvector: the index relation; companion: codes table plus
        stored model) and ``bytes_per_vector``. A companion index also reports
        ``model_bytes`` (the stored model), ``codes_table_bytes``, ``memory_bytes`` (what
        this process holds for it, once loaded), ``build`` (build statistics, with
        ``model_memory_bytes``: the model's arrays in memory), ``coverage`` and
        ``build_running`` (a (re)build is running now, in any process)."""
        info = self._info(collection_name, fresh=True)
        ix = info.index(index_name)
        with self._lease() as db:
            return ddl.describe_index(db, info, ix, self._companions)

    def drop_index(self, collection_name: str, index_name: str) -> None:
        """Drop an index (its Postgres index, or a companion index's tables and triggers)."""
        info = self._info(collection_name, fresh=True)
        ix = info.index(index_name)
        try:
            with self._lease() as db:
                dropped = ddl.drop_index(db, info, ix)
        finally:
            self._catalog.forget(collection_name)
        if dropped is not None:
            self._companions.forget(dropped)

    # -- misc -----------------------------------------------------------------------------
    def server_info(self) -> dict[str, Any]:
        """Postgres and pgvector versions, and the database's vecpg revision."""
        with self._lease() as db:
            versions = server_versions(db)
        return {**versions, "dsn": _redact(self.dsn), "schema": self.schema}


def _redact(dsn: str) -> str:
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", dsn)


def connect(dsn: str | None = None, *, data_dir: str | None = None, schema: str = "public",
            pool_size: int = 10, pool_timeout: float = 30.0,
            tracer: Tracer | None = None) -> Client:
    """Open a :class:`Client`: ``dsn``, else ``$VECPG_DSN``, else the embedded server.

    Creates the ``vector`` extension and migrates vecpg's schema on first use.

        >>> client = vecpg.connect()                     # embedded Postgres
        >>> client = vecpg.connect("postgresql://me@db/app", schema="search")
    """
    return Client(dsn, data_dir=data_dir, schema=schema, pool_size=pool_size,
                  pool_timeout=pool_timeout, tracer=tracer)

