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
import os
import re
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from psycopg import sql

from . import (
    __version__,
    args,
    catalog,
    compat,
    ddl,
    distributed,
    executor,
    fusion,
    ingest,
    rows,
    shadow,
    tenancy,
)
from . import calibrate as cal
from . import companion as cmp
from .args import check_recall
from .autoindex import AutoIndexer
from .catalog import CatalogCache, CollectionInfo
from .compat import check_kwargs
from .errors import (
    AlreadyExists,
    IndexNotFound,
    InvalidArgument,
    NotFound,
    NotSupported,
    VecpgError,
    translate,
)
from .iterators import QueryIterator, SearchIterator
from .migrate import server_versions, upgrade
from .milvus_api import UnsupportedMethods
from .planner import DEFAULT_RECALL, PlanCache, Planner
from .query import SearchPlan, SearchRequest, compile_query, query_vectors
from .rbac import RbacMethods
from .replicas import ReplicaPolicy, Replicas, in_recovery, level_name, routed
from .replicas import check as check_replicas
from .results import Hit, Hits, SearchResult, round_distances, select_fields
from .schema import (
    DEFAULT_PARTITION,
    META_COLUMN,
    CollectionSchema,
    DataType,
    FieldSchema,
    check_name,
)
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


class Client(RbacMethods, UnsupportedMethods):
    """A connection pool to one Postgres and the collections in one of its schemas.

    ``dsn``: a libpq connection string; default ``$VECPG_DSN``, else the embedded server in
    ``data_dir`` (default ``$VECPG_DATA`` or a per-user directory). ``schema``: the Postgres
    schema holding the collection tables (default ``public``). ``tracer``: called with
    ``(sql, params)`` for every statement vecpg sends. ``pool_size``: the most connections
    open at once; ``pool_timeout``: seconds a call waits for a free one before
    :class:`~vecpg.errors.PoolTimeout`. ``replicas``: DSNs of streaming standbys of
    ``dsn`` that take reads by consistency level, as ``replica_policy`` says (see
    :mod:`vecpg.replicas`).
    """

    def __init__(self, dsn: str | None = None, *, data_dir: str | None = None,
                 schema: str = "public", pool_size: int = 10, pool_timeout: float = 30.0,
                 tracer: Tracer | None = None, replicas: Sequence[str] | None = None,
                 replica_policy: ReplicaPolicy | None = None) -> None:
        check_replicas(replicas, replica_policy)
        self.dsn = resolve_dsn(dsn, data_dir=data_dir)
        self.schema = check_name(schema, "schema name")
        self._default_schema = self.schema  # Milvus' "default" database
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
        # scalar indexes built for filters that need one (vecpg.autoindex)
        self._auto_indexes = AutoIndexer(self.dsn, self._after_auto_index)
        self._replicas: Replicas | None = None
        # a standby given as the DSN: read-only (never migrated, calibrations not stored)
        self._session.standby = in_recovery(self._session)
        if replicas:
            self._replicas = Replicas(self._session, list(replicas),
                                      replica_policy or ReplicaPolicy(), pool_size=pool_size,
                                      timeout=pool_timeout)
            self._companions.primary = self._session.own_lease

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
        self._auto_indexes.close()
        self._session.close()
        if self._replicas is not None:
            self._replicas.close()

    def replica_status(self) -> list[dict[str, Any]]:
        """The primary and each standby: reads served, and a standby's state and staleness
        (see :meth:`vecpg.replicas.Replicas.status`); just the primary without replicas."""
        if self._replicas is None:
            return [{"dsn": _redact(self.dsn), "role": "standby" if self._session.standby
                     else "primary", "reads": None}]
        return self._replicas.status()

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
    def create_field_schema(name: str, data_type: Any, desc: str = "",
                            **kwargs: Any) -> FieldSchema:
        """A :class:`FieldSchema` (pymilvus' ``create_field_schema``)."""
        return FieldSchema(name, DataType.parse(data_type), description=desc, **kwargs)

    @staticmethod
    def prepare_index_params(field_name: str = "", **kwargs: Any) -> IndexParams:
        """A list of index requests for :meth:`create_index`: empty, or with one index on
        ``field_name`` (keywords as :meth:`IndexParams.add_index`)."""
        params = IndexParams()
        if field_name:
            params.add_index(field_name, **kwargs)
        return params

    def create_collection(self, collection_name: str, dimension: int | None = None,
                          primary_field_name: str = "id", id_type: str = "int",
                          vector_field_name: str = "vector", metric_type: str | None = None,
                          auto_id: bool = False, timeout: float | None = None,
                          schema: Any = None, index_params: Any = None, **kwargs: Any) -> None:
        """Create a collection: the quick form (``dimension``, float vectors, metric COSINE
        unless ``metric_type`` says, dynamic fields on) or the full form (``schema``: from
        :meth:`create_schema`, or a pymilvus ``CollectionSchema``). Keywords as pymilvus':
        ``enable_dynamic_field``, ``description``, ``max_length`` (of a string key),
        ``num_partitions`` (of a partition key), ``properties``, ``consistency_level``.
        On Citus, ``shard_key`` (the primary or the partition key; None: not distributed)
        and ``shard_count`` create it distributed (see :meth:`distribute_collection`).
        Raises :class:`AlreadyExists` if it exists."""
        kw = check_kwargs("create_collection", {"timeout": timeout, **kwargs}, (
            "enable_dynamic_field", "description", "max_length", "num_partitions",
            "properties", "partition_key_field", "shard_key", "shard_count",
            "consistency_level"))
        check_name(collection_name, "collection name")
        schema = compat.schema_of(schema)
        if metric_type is not None:
            args.text(metric_type, "metric_type")
        if schema is None:
            schema = ddl.quick_schema(dimension, primary_field_name, id_type, vector_field_name,
                                      auto_id, kw.get("max_length", 65535),
                                      kw.get("enable_dynamic_field", True),
                                      kw.get("description", ""))
        if kw.get("partition_key_field"):
            ddl.set_partition_key(schema, kw["partition_key_field"])
        schema.validate()
        metrics = ddl.field_metrics(schema, metric_type)
        props = ddl.collection_properties(schema, kw.get("properties"), kw.get("num_partitions"))
        if kw.get("consistency_level") is not None:  # the reads' default (vecpg.replicas)
            props["consistency_level"] = level_name(kw["consistency_level"])
        shard = kw.get("shard_key") is not None or kw.get("shard_count") is not None
        if shard:
            distributed.refuse_unsupported(schema)
            distributed.check_shard_key(schema, kw.get("shard_key"))
        with self._lease() as db, db.transaction():
            ddl.create_collection(db, self.schema, collection_name, schema,
                                  {"metrics": metrics, **props})
            if shard:  # in the same transaction: a refused distribution leaves nothing
                distributed.distribute(db, catalog.load(db, self.schema, collection_name),
                                       kw.get("shard_key"), kw.get("shard_count"))
        self._catalog.forget(collection_name)
        if index_params:
            self.create_index(collection_name, index_params)

    def distribute_collection(self, collection_name: str, shard_key: str | None = None,
                              shard_count: int | None = None) -> dict[str, Any]:
        """Make the collection a Citus distributed table (on a Citus coordinator): its rows
        move to ``shard_count`` shards (Citus' default: ``citus.shard_count``, 32) hashed by
        ``shard_key`` — the partition key if the collection has one, else the primary key.
        Vector indexes are built on every shard; searches fan out and merge.
        Returns ``{"shard_key": ..., "shard_count": ...}``.

            >>> client.distribute_collection("docs", shard_count=8)
            {'shard_key': 'id', 'shard_count': 8}

        Raises :class:`NotSupported` for a collection with a companion index, BM25
        functions or tenancy, :class:`UnsupportedServer` without Citus."""
        info = self._info(collection_name, fresh=True)
        with self._lease() as db, db.transaction():
            db.lock(f"collection {self.schema}.{collection_name}")
            got = distributed.distribute(db, info, shard_key, shard_count)
        self._catalog.forget(collection_name)
        self._stats.forget_table(info.table.as_string(None))
        return got.as_dict()

    @retried
    def has_collection(self, collection_name: str, timeout: float | None = None,
                       **kwargs: Any) -> bool:
        """Whether the collection exists."""
        check_kwargs("has_collection", {"timeout": timeout, **kwargs})
        check_name(collection_name, "collection name")
        with self._lease() as db:
            return catalog.exists(db, self.schema, collection_name)

    @retried
    def list_collections(self, **kwargs: Any) -> list[str]:
        """The collections of this client's schema (its database), by name."""
        check_kwargs("list_collections", kwargs)
        with self._lease() as db:
            return catalog.names(db, self.schema)

    @retried
    def describe_collection(self, collection_name: str, timeout: float | None = None,
                            **kwargs: Any) -> dict[str, Any]:
        """The collection as pymilvus describes it (``collection_name``, ``fields`` with
        ``type`` and ``params``, ``auto_id``, ``enable_dynamic_field``, ``num_partitions``,
        ``properties``, ``aliases``, ...) plus vecpg's ``table``, ``metrics``, ``indexes``
        and ``partitions``."""
        check_kwargs("describe_collection", {"timeout": timeout, **kwargs})
        info = self._info(collection_name, fresh=True)
        with self._lease() as db:
            aliases = catalog.aliases_of(db, self.schema, info.name)
        return compat.describe_collection(info, aliases)

    def collection_schema(self, collection_name: str) -> CollectionSchema:
        """The collection's schema as vecpg holds it (its BM25 functions and analyzer
        settings included; ``describe_collection`` is pymilvus' dict of it), from the
        client's catalog cache: no round trip once the collection has been seen. The object
        is the cached one, shared by later calls: copy it (``copy.deepcopy``) to change it.

        >>> client.collection_schema("docs").primary_field.name
        'id'
        """
        return self._info(collection_name).schema

    def rename_collection(self, old_name: str, new_name: str, target_db: str = "",
                          timeout: float | None = None, **kwargs: Any) -> None:
        """Rename a collection (its table, indexes and catalog entry); ``target_db`` must
        be this client's database (moving between schemas is not supported)."""
        check_kwargs("rename_collection", {"timeout": timeout, **kwargs})
        target_db = args.text(target_db, "target_db")
        if target_db and self._database_schema(target_db) != self.schema:
            raise NotSupported("rename_collection cannot move a collection to another database;"
                               " ALTER TABLE ... SET SCHEMA does, outside vecpg")
        info = self._info(old_name, fresh=True)
        check_name(new_name, "collection name")
        with self._lease() as db:
            ddl.rename_collection(db, info, new_name)
        self._catalog.forget(old_name, new_name)

    def drop_collection(self, collection_name: str, timeout: float | None = None,
                        **kwargs: Any) -> None:
        """Drop the collection's table and catalog entries. No error if it does not exist."""
        check_kwargs("drop_collection", {"timeout": timeout, **kwargs})
        check_name(collection_name, "collection name")
        with self._lease() as db:
            for index_id in ddl.drop_collection(db, self.schema, collection_name):
                self._companions.forget(index_id)
        # queries remembered for calibration belong to the dropped collection
        self._stats.forget_table(self._table(collection_name).as_string(None))
        self._catalog.forget(collection_name)

    def get_collection_stats(self, collection_name: str, timeout: float | None = None,
                             **kwargs: Any) -> dict[str, int]:
        """``{"row_count": n}``, as pymilvus returns it."""
        check_kwargs("get_collection_stats", {"timeout": timeout, **kwargs})
        return {"row_count": self.count(collection_name)}

    def load_collection(self, collection_name: str, timeout: float | None = None,
                        **kwargs: Any) -> None:
        """Nothing to do: Postgres serves a collection as soon as it exists. Kept so code
        written for Milvus runs unchanged; checks that the collection exists."""
        check_kwargs("load_collection", {"timeout": timeout, **kwargs}, ("replica_number",))
        self._info(collection_name)

    def release_collection(self, collection_name: str, timeout: float | None = None,
                           **kwargs: Any) -> None:
        """Nothing to do (see :meth:`load_collection`)."""
        check_kwargs("release_collection", {"timeout": timeout, **kwargs})
        self._info(collection_name)

    def refresh_load(self, collection_name: str, timeout: float | None = None,
                     **kwargs: Any) -> None:
        """Nothing to do (see :meth:`load_collection`)."""
        check_kwargs("refresh_load", {"timeout": timeout, **kwargs})
        self._info(collection_name)

    def load_partitions(self, collection_name: str, partition_names: Any,
                        timeout: float | None = None, **kwargs: Any) -> None:
        """Nothing to do (see :meth:`load_collection`); checks the partitions exist."""
        check_kwargs("load_partitions", {"timeout": timeout, **kwargs}, ("replica_number",))
        self._catalog.partitions(self._info(collection_name), partition_names)

    def release_partitions(self, collection_name: str, partition_names: Any,
                           timeout: float | None = None, **kwargs: Any) -> None:
        """Nothing to do (see :meth:`load_collection`); checks the partitions exist."""
        check_kwargs("release_partitions", {"timeout": timeout, **kwargs})
        self._catalog.partitions(self._info(collection_name), partition_names)

    def get_load_state(self, collection_name: str, partition_name: str = "",
                       timeout: float | None = None, **kwargs: Any) -> dict[str, Any]:
        """Always loaded: ``{"state": LoadState.Loaded}`` (pymilvus' enum when pymilvus is
        installed, else the string ``"Loaded"``)."""
        check_kwargs("get_load_state", {"timeout": timeout, **kwargs})
        info = self._info(collection_name)
        if partition_name:
            self._catalog.partitions(info, [partition_name])
        return {"state": compat.loaded_state()}

    def flush(self, collection_name: str, timeout: float | None = None, **kwargs: Any) -> None:
        """Nothing to do: every insert is durable when it returns (one committed transaction)."""
        check_kwargs("flush", {"timeout": timeout, **kwargs})
        self._info(collection_name)

    def alter_collection_properties(self, collection_name: str, properties: dict[str, Any],
                                    timeout: float | None = None, **kwargs: Any) -> None:
        """Set collection properties. ``{"recall": 0.9}`` sets the recall@k that searches
        aim for when they do not say (default 0.95); Milvus' own properties (``mmap.enabled``,
        ``collection.ttl.seconds``, ``partitionkey.isolation``, ...) are kept and shown by
        :meth:`describe_collection`, and change nothing else here."""
        check_kwargs("alter_collection_properties", {"timeout": timeout, **kwargs})
        if not isinstance(properties, dict):
            raise InvalidArgument(f"properties must be a dict, got {properties!r}")
        unknown = {k for k in properties if not isinstance(k, str)}
        if unknown:
            raise InvalidArgument(f"property names must be strings, got "
                                  f"{sorted(map(repr, unknown))}")
        reserved = set(properties) & {"metrics", "tenant_field", "num_partitions",
                                       distributed.PROPERTY}
        if reserved:
            raise InvalidArgument(f"properties {sorted(reserved)} are vecpg's own; "
                                  "they change through other calls")
        if "allow_insert_auto_id" in properties:
            properties = {**properties, "allow_insert_auto_id": args.flag(
                properties["allow_insert_auto_id"] in (True, "true", "True"),
                "allow_insert_auto_id")}
        if "recall" in properties:
            check_recall(properties["recall"])
        info = self._info(collection_name, fresh=True)
        with self._lease() as db, db.transaction():
            catalog.set_properties(db, self.schema, collection_name,
                                   {**info.properties, **properties})
        self._catalog.forget(collection_name)

    def drop_collection_properties(self, collection_name: str, property_keys: list[str],
                                   timeout: float | None = None, **kwargs: Any) -> None:
        """Remove properties set by :meth:`alter_collection_properties`."""
        check_kwargs("drop_collection_properties", {"timeout": timeout, **kwargs})
        keys = args.names(property_keys, "property_keys") or []
        info = self._info(collection_name, fresh=True)
        reserved = set(keys) & {"metrics", "tenant_field", "num_partitions",
                                       distributed.PROPERTY}
        if reserved:
            raise InvalidArgument(f"properties {sorted(reserved)} are vecpg's own")
        with self._lease() as db, db.transaction():
            catalog.set_properties(db, self.schema, collection_name,
                                   {k: v for k, v in info.properties.items() if k not in keys})
        self._catalog.forget(collection_name)

    # -- partitions -----------------------------------------------------------------------
    def _no_partition_key(self, info: CollectionInfo, what: str) -> None:
        if info.schema.partition_key is not None:
            raise InvalidArgument(f"{what} is not allowed on collection {info.name!r}: its "
                                  f"partition key {info.schema.partition_key.name!r} places the "
                                  "rows (filter on it instead)")

    def create_partition(self, collection_name: str, partition_name: str,
                         timeout: float | None = None, **kwargs: Any) -> None:
        """Add a partition (rows go in with ``insert(..., partition_name=)``)."""
        check_kwargs("create_partition", {"timeout": timeout, **kwargs})
        self._no_partition_key(self._info(collection_name), "create_partition")
        args.name(partition_name, "partition name")
        with self._lease() as db, db.transaction():
            if partition_name in catalog.partitions(db, self.schema, collection_name):
                raise AlreadyExists(f"partition {partition_name!r} already exists")
            catalog.add_partition(db, self.schema, collection_name, partition_name)
        self._catalog.forget(collection_name)

    @retried
    def list_partitions(self, collection_name: str, timeout: float | None = None,
                        **kwargs: Any) -> list[str]:
        """The collection's partitions, ``_default`` first."""
        check_kwargs("list_partitions", {"timeout": timeout, **kwargs})
        self._info(collection_name)
        with self._lease() as db:
            return catalog.partitions(db, self.schema, collection_name)

    def has_partition(self, collection_name: str, partition_name: str,
                      timeout: float | None = None, **kwargs: Any) -> bool:
        """Whether the partition exists."""
        check_kwargs("has_partition", {"timeout": timeout, **kwargs})
        return args.name(partition_name, "partition name") in self.list_partitions(
            collection_name)

    def get_partition_stats(self, collection_name: str, partition_name: str,
                            timeout: float | None = None, **kwargs: Any) -> dict[str, int]:
        """``{"row_count": n}`` of one partition."""
        check_kwargs("get_partition_stats", {"timeout": timeout, **kwargs})
        self._catalog.partitions(self._info(collection_name), [partition_name])
        return {"row_count": self.count(collection_name, partition_names=[partition_name])}

    def drop_partition(self, collection_name: str, partition_name: str,
                       timeout: float | None = None, **kwargs: Any) -> None:
        """Delete a partition and every row in it (``_default`` cannot be dropped)."""
        check_kwargs("drop_partition", {"timeout": timeout, **kwargs})
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
            distributed.refuse_tenancy(info)
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
    def insert(self, collection_name: str, data: Any, timeout: float | None = None,
               partition_name: str | None = "", **kwargs: Any) -> dict[str, Any]:
        """Insert rows (a dict, a list of dicts, or a dict of columns / numpy arrays).

        All or nothing: a bad row or a duplicate key raises and writes nothing.
        Returns ``{"insert_count": n, "ids": [...]}``.
        """
        check_kwargs("insert", {"timeout": timeout, **kwargs})
        return self._write(collection_name, data, partition_name, upsert=False)

    def upsert(self, collection_name: str, data: Any, timeout: float | None = None,
               partition_name: str | None = "", **kwargs: Any) -> dict[str, Any]:
        """Insert rows, replacing whole rows whose primary key exists; a key given twice in
        one batch keeps its last row, as in Milvus. ``partial_update=True`` replaces only
        the fields the rows give (every row must give the same fields, the key included).
        Returns ``{"upsert_count": n, "ids": [...]}``."""
        kw = check_kwargs("upsert", {"timeout": timeout, **kwargs}, ("partial_update",))
        partial = args.flag(kw.get("partial_update", False), "partial_update")
        return self._write(collection_name, data, partition_name, upsert=True, partial=partial)

    def _write(self, collection_name: str, data: Any, partition_name: str | None,
               *, upsert: bool, partial: bool = False) -> dict[str, Any]:
        info = self._info(collection_name)
        partition_name = args.blank_name(partition_name, "partition_name")
        if partition_name is not None and partition_name != DEFAULT_PARTITION:
            self._no_partition_key(info, "insert with partition_name")
            self._catalog.partitions(info, [partition_name])
        if isinstance(data, dict) and ingest.is_one_row(info.schema, data):
            data = [data]  # pymilvus takes one row as a dict (vecpg also a dict of columns)
        batch = ingest.prepare_batch(info.schema, data, partition=partition_name or
                                     DEFAULT_PARTITION, require_pk=upsert, last_wins=True,
                                     partial=partial, timezone=info.timezone)
        pk = info.schema.primary_field
        if (pk.auto_id and not upsert and batch.pk_values is not None
                and not info.properties.get("allow_insert_auto_id")):
            raise InvalidArgument(
                f"{pk.name!r} is auto_id: its values are generated; leave it out of the rows, "
                "or set the collection property allow_insert_auto_id (as in Milvus)")
        with self._lease() as db:
            ids = rows.write(db, info, batch, ddl.companion_targets(info), self._companions,
                             upsert=upsert, partial=partial)
        given = batch.given_pks if batch.given_pks is not None else ids  # as Milvus counts
        return {("upsert_count" if upsert else "insert_count"): len(given), "ids": list(given)}

    def delete(self, collection_name: str, ids: Any = None, timeout: float | None = None,
               filter: str = "", partition_name: str | None = "",
               **kwargs: Any) -> dict[str, int]:
        """Delete rows by primary key or by filter. Returns ``{"delete_count": n}``."""
        kw = check_kwargs("delete", {"timeout": timeout, **kwargs},
                          ("filter_params", "expr_params", "pks"))
        if ids is None and kw.get("pks") is not None:
            ids = kw["pks"]
        info = self._info(collection_name)
        filter = args.text(filter, "filter")
        if ids is None and not filter.strip():
            raise InvalidArgument("delete needs ids or a filter")
        part = args.blank_name(partition_name, "partition_name")
        parts = self._catalog.partitions(info, [part] if part else None)
        where, params = rows.row_filter(info, ids, filter, parts, _filter_params(kw))
        with self._lease() as db, db.transaction():
            return {"delete_count": rows.delete_rows(db, info, where, params)}

    @routed
    def get(self, collection_name: str, ids: Any, output_fields: list[str] | None = None,
            timeout: float | None = None, partition_names: list[str] | None = None,
            **kwargs: Any) -> list[dict[str, Any]]:
        """Rows by primary key (missing keys are skipped), in primary-key order."""
        check_kwargs("get", {"timeout": timeout, **kwargs})
        if ids is None:  # would be every row: Milvus refuses it too
            raise InvalidArgument("get needs ids (a primary key or a list of them)")
        return self.query(collection_name, ids=ids, output_fields=output_fields,
                          partition_names=partition_names)

    @routed
    @retried
    def query(self, collection_name: str, filter: str = "", output_fields: list[str] | None = None,
              timeout: float | None = None, ids: Any = None,
              partition_names: list[str] | None = None, **kwargs: Any) -> list[dict[str, Any]]:
        """Rows matching a filter expression, ordered by primary key; keywords ``limit``,
        ``offset`` and ``filter_params`` (values for ``{name}`` placeholders in ``filter``).

        ``output_fields=["count(*)"]`` returns ``[{"count(*)": n}]``.
        """
        kw = check_kwargs("query", {"timeout": timeout, **kwargs},
                          ("limit", "offset", "filter_params", "expr_params",
                           "order_by_fields", "order_by", "group_by_fields"))
        limit, offset = kw.get("limit"), kw.get("offset", 0)
        info = self._info(collection_name)
        filter = args.text(filter, "filter")
        output_fields = args.names(output_fields, "output_fields")
        parts = self._catalog.partitions(info, partition_names)
        where, params = rows.row_filter(info, ids, filter, parts, _filter_params(kw))
        order = kw.get("order_by_fields", kw.get("order_by"))
        order_by = rows.order_fields(info, order) if order else None
        if kw.get("group_by_fields"):
            group_by = args.names(kw["group_by_fields"], "group_by_fields") or []
            lim = kw.get("limit")
            with self._lease() as db:
                return rows.aggregate_rows(
                    db, info, group_by, output_fields or [*group_by, "count(*)"], where, params,
                    None if lim in (None, -1) else args.integer(lim, "limit"),
                    args.integer(kw.get("offset") or 0, "offset"), order_by)
        if output_fields == ["count(*)"]:
            with self._lease() as db:
                return [{"count(*)": rows.count_rows(db, info, where, params)}]
        sel = select_fields(info.schema, output_fields, default_all=True,
                            timezone=info.timezone)
        if limit is not None and limit != -1:
            limit = args.integer(limit, "limit")
        else:
            limit = None
        offset = args.integer(offset or 0, "offset")
        with self._lease() as db:
            got = rows.select_rows(db, info, sel, where, params, limit, offset, order_by)
        if not self._session.standby and ids is None:
            self._auto_indexes.note_query(info, filter, _filter_params(kw))
        return got

    @routed
    def count(self, collection_name: str, filter: str = "",
              partition_names: list[str] | None = None, **kwargs: Any) -> int:
        """Number of rows (matching ``filter``; keyword ``filter_params`` as :meth:`query`)."""
        kw = check_kwargs("count", kwargs, ("filter_params", "expr_params"))
        res = self.query(collection_name, filter, ["count(*)"], partition_names=partition_names,
                         **kw)
        return int(res[0]["count(*)"])

    # -- search ---------------------------------------------------------------------------
    @routed
    @retried
    def search(self, collection_name: str, data: Any = None, filter: str = "", limit: int = 10,
               output_fields: list[str] | None = None,
               search_params: dict[str, Any] | None = None, timeout: float | None = None,
               partition_names: list[str] | None = None, anns_field: str | None = None,
               ranker: Any = None, function_chains: Any = None, highlighter: Any = None,
               ids: Any = None, search_aggregation: Any = None,
               **kwargs: Any) -> SearchResult:
        """Nearest neighbours of each query vector in ``data`` (or, with ``ids``, of the
        stored vectors of those rows), as pymilvus' ``search``.

        Returns a :class:`SearchResult`: one :class:`Hits` per query, closest first; each
        :class:`Hit` is ``{<primary field>: key, "distance": d, "entity": {...}}`` with
        ``output_fields`` (distances follow Milvus: L2 is squared L2, see
        :mod:`vecpg.metrics`). Keywords: ``offset``, ``round_decimal``, ``filter_params``,
        and vecpg's ``recall`` and ``strategy``.

        The planner (:mod:`vecpg.planner`) picks the cheapest strategy and setting whose
        estimated recall@k reaches ``recall`` (default: the collection's ``recall``
        property, else 0.95); :meth:`explain` shows its choice. ``strategy`` ("exact",
        "filter_first", "hnsw", "ivfflat", or a companion index type) forces one;
        ``search_params`` knobs force a setting: ``{"params": {"ef": 64}}`` for HNSW,
        ``{"nprobe": 16}`` for IVF, ``{"exact": True}`` for an exact scan. Whatever runs, a
        query gets ``limit`` hits whenever ``limit + offset`` rows match the filter.
        """
        kw = check_kwargs("search", {"timeout": timeout, **kwargs}, (
            "offset", "round_decimal", "recall", "strategy", "filter_params", "expr_params",
            "group_by_field", "group_size", "strict_group_size"))
        for name, value in (("ranker", ranker), ("function_chains", function_chains),
                            ("highlighter", highlighter),
                            ("search_aggregation", search_aggregation)):
            if value is not None:
                raise NotSupported(f"search({name}=...) is not supported yet")
        if ids is not None:
            if data is not None:
                raise InvalidArgument("search takes data or ids, not both")
            data = self._vectors_of(collection_name, ids, anns_field)
        if data is None:
            raise InvalidArgument("search needs data (query vectors) or ids")
        req = SearchRequest.of(collection_name, limit=limit, filter=filter,
                               output_fields=output_fields, search_params=search_params,
                               anns_field=anns_field, partition_names=partition_names,
                               offset=kw.get("offset", 0), recall=kw.get("recall"),
                               strategy=kw.get("strategy"), filter_params=_filter_params(kw))
        digits = args.round_decimal(kw.get("round_decimal"))
        info = self._info(collection_name)
        if kw.get("group_by_field") is not None:
            result = self._grouped_search(info, req, data, kw)
            for hits in result:
                round_distances(hits, digits)
            return result
        with self._lease() as db:
            plan = self._plans.get(req, info)
            if plan is None:
                plan = self._plan(db, info, req)
                self._plans.put(req, info, plan)
            vectors = query_vectors(plan.field, data)
            run = executor.run(db, plan, vectors, self._companions)
            # sometimes the exact answer too: what recall the plan delivered (budgeted)
            recall_ok = run.stale or shadow.shadow(self._planner.stats, db, plan, vectors,
                                                   run.rows, run.ms_per_query * len(vectors),
                                                   self._companions)
        self._planner.remember(plan, vectors)
        if run.stale:  # an index changed under the plan: read the catalog, plan again
            self._plans.drop(req)
            self._catalog.forget(collection_name)
        elif not self._planner.observe(plan, run.ms_per_query) or not recall_ok:
            self._plans.drop(req)  # its cost or recall moved away from the estimate: again
        if not self._session.standby:
            self._auto_indexes.note(info, req.filter, _filter_params(kw), plan.explain,
                                    len(vectors))
        result = run.hits(plan)
        for hits in result:
            round_distances(hits, digits)
        return result

    @routed
    def hybrid_search(self, collection_name: str, reqs: list[Any], ranker: Any = None,
                      limit: int = 10, output_fields: list[str] | None = None,
                      timeout: float | None = None, partition_names: list[str] | None = None,
                      **kwargs: Any) -> SearchResult:
        """Several searches of one collection (``reqs``: ``AnnSearchRequest`` s, vecpg's or
        pymilvus', each with its own field, parameters, limit and filter), fused by
        ``ranker`` (``RRFRanker(k)``, the default, or ``WeightedRanker(*weights)``; see
        :mod:`vecpg.fusion`): ``limit`` hits per query whose ``distance`` is the fused
        score, best first. Each search is planned as :meth:`search` plans it. Keywords:
        ``offset``, ``round_decimal``."""
        kw = check_kwargs("hybrid_search", {"timeout": timeout, **kwargs},
                          ("offset", "round_decimal", "group_by_field", "group_size",
                           "strict_group_size"))
        if not isinstance(reqs, (list, tuple)) or not reqs:
            raise InvalidArgument("hybrid_search needs a non-empty list of AnnSearchRequest")
        requests = [fusion.request(r) for r in reqs]
        strategy, params = fusion.ranker(ranker, len(requests))
        digits = args.round_decimal(kw.get("round_decimal"))
        limit = args.integer(limit, "limit", 1, 16384)
        offset = args.integer(kw.get("offset") or 0, "offset", 0, 16384 - limit)
        info = self._info(collection_name)
        runs, metrics = [], []
        for r in requests:
            sp = dict(r.param)
            f = info.vector_field(r.anns_field)
            metrics.append(sp.get("metric_type") or info.metric(f.name))
            runs.append(self.search(collection_name, r.data, filter=r.expr or "",
                                    limit=r.limit, search_params=sp,
                                    partition_names=partition_names, anns_field=r.anns_field,
                                    filter_params=r.expr_params))
        nq = {len(x) for x in runs}
        if len(nq) != 1:
            raise InvalidArgument(f"every request of a hybrid search needs as many query "
                                  f"vectors; got {sorted(nq)}")
        pk = info.schema.primary_field.name
        # each query's hits per request, as (key, distance)
        per_query = [[[(h.id, h.distance) for h in run[q]] for run in runs]
                     for q in range(nq.pop())]
        if kw.get("group_by_field") is None:
            fused = [fusion.fuse(strategy, params, per, metrics, limit + offset)[offset:]
                     for per in per_query]
        else:  # every candidate fused, then grouped as Milvus groups
            gname = args.name(kw["group_by_field"], "group_by_field")
            size = args.integer(kw.get("group_size") or 1, "group_size", 1, 1024)
            args.flag(kw.get("strict_group_size", False), "strict_group_size")
            ranked = [fusion.fuse(strategy, params, per, metrics, 1 << 30) for per in per_query]
            cand = list({key for r in ranked for key, _ in r})
            group_of = {row[pk]: row.get(gname) for row in self.query(
                info.name, ids=cand, output_fields=[gname])} if cand else {}
            fused = [fusion.group(r, group_of, limit, size, offset) for r in ranked]
        wanted = args.names(output_fields, "output_fields")
        entities: dict[Any, dict[str, Any]] = {}
        keys = list({key for hits in fused for key, _ in hits})
        if wanted and keys:
            for row in self.query(info.name, ids=keys, output_fields=wanted):
                key = row[pk] if pk in wanted or "*" in wanted else row.pop(pk)
                entities[key] = row
        result = SearchResult()
        for hits in fused:
            result.append(Hits(Hit(pk, key, s, dict(entities.get(key, {}))) for key, s in hits))
            round_distances(result[-1], digits)
        return result

    def _grouped_search(self, info: CollectionInfo, req: SearchRequest, data: Any,
                        kw: dict[str, Any]) -> SearchResult:
        """Milvus' grouping search (``group_by_field``, ``group_size``): exact, in one
        statement per query (:meth:`Query.grouped_statement`)."""
        name = args.name(kw["group_by_field"], "group_by_field")
        field = info.schema.get(name)
        if field is None and info.schema.enable_dynamic_field:  # a dynamic field's value
            group: sql.Composable = sql.SQL("({} -> {})").format(sql.Identifier(META_COLUMN),
                                                                 sql.Literal(name))
        else:
            field = info.schema.field(name)
            if field.dtype.is_vector or field.dtype in (DataType.JSON, DataType.ARRAY,
                                                        DataType.FLOAT, DataType.DOUBLE):
                raise InvalidArgument(f"cannot group by {field.dtype.value} field {name!r}")
            group = sql.Identifier(name)
        size = args.integer(kw.get("group_size") or 1, "group_size", 1, 1024)
        args.flag(kw.get("strict_group_size", False), "strict_group_size")
        if req.offset:
            raise NotSupported("offset with group_by_field is not supported")
        if info.schema.function_for(info.vector_field(req.anns_field).name) is not None:
            raise NotSupported("group_by_field with a BM25 search is not supported")
        with self._lease() as db:
            plan = self._planner.plan(db, compile_query(info, req), recall=1.0,
                                      strategy="exact")
            vectors = query_vectors(plan.field, data)
            db.apply(plan.settings)
            stmt = plan.query.grouped_statement(group, size)
            found = db.run_many(stmt.as_string(db.raw), plan.bind(vectors))
        return SearchResult(plan.to_hits(r) for r in found)

    def _vectors_of(self, collection_name: str, ids: Any, anns_field: str | None) -> list[Any]:
        """The stored vectors of rows ``ids`` (search by primary key), in the order given."""
        info = self._info(collection_name)
        f = info.vector_field(anns_field)
        keys = rows.id_list(ids, info.schema.primary_field.dtype)
        got = {r[info.schema.primary_field.name]: r[f.name] for r in self.query(
            collection_name, ids=keys, output_fields=[f.name])}
        missing = [k for k in keys if k not in got]
        if missing:
            raise NotFound(f"search ids {missing[:5]} are not in {collection_name!r}")
        return [got[k] for k in keys]

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
    def explain(self, collection_name: str, data: Any = None, filter: str = "", limit: int = 10,
                output_fields: list[str] | None = None,
                search_params: dict[str, Any] | None = None,
                partition_names: list[str] | None = None, anns_field: str | None = None,
                offset: int = 0, *, recall: float | None = None, strategy: str | None = None,
                filter_params: dict[str, Any] | None = None) -> dict[str, Any]:
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
                               offset=offset, recall=recall, strategy=strategy,
                               filter_params=filter_params)
        info = self._info(collection_name)
        with self._lease() as db:
            plan = self._plan(db, info, req, fresh=True)
            vectors = query_vectors(plan.field, data) if data is not None else None
            out = dict(plan.explain or {})
            if "missing_index" in out:
                out["missing_index"] = {**out["missing_index"],
                                        "auto_index": self._auto_indexes.status(info, filter)}
            dist = distributed.of(info)
            if dist is not None:  # how Citus runs it: shards searched (1: routed by the key)
                probe = vectors or query_vectors(plan.field, [distributed.probe(plan.field)])
                out["distribution"] = {**dist.as_dict(), **distributed.explain_tasks(
                    db, out["sql"], plan.bind(probe[:1])[0])}
        return out

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
                if (doc is not None or ix.pg_index is not None or ix.kind.companion) and \
                        not db.standby:  # a standby's catalog is the primary's
                    with db.transaction():
                        catalog.set_calibration(db, info, ix, doc)
                out[ix.index_name] = doc
        self._catalog.forget(collection_name)
        return out

    # -- indexes --------------------------------------------------------------------------
    def create_index(self, collection_name: str, index_params: Any = None,
                     timeout: float | None = None, *, field_name: str | None = None,
                     index_type: str = "AUTOINDEX", metric_type: str | None = None,
                     params: dict[str, Any] | None = None, index_name: str | None = None,
                     progress: Progress | None = None, **kwargs: Any) -> None:
        """Build indexes: pymilvus style (``index_params`` from ``prepare_index_params()``,
        vecpg's or pymilvus') or one index by keywords. ``progress`` receives build
        progress dicts (phase, blocks/tuples done and total) while a long build runs.
        Vector indexes are then calibrated for the planner."""
        check_kwargs("create_index", {"timeout": timeout, **kwargs}, ("sync",))
        requests = args.requests(compat.index_requests(index_params), "index_params")
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

    def _after_auto_index(self, collection_name: str) -> None:
        """An automatic scalar index was built (in vecpg.autoindex's thread): plans and
        filter statistics made without it go."""
        self._catalog.forget(collection_name)
        self._stats.forget_filters(self._table(collection_name).as_string(None))

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
    def list_indexes(self, collection_name: str, field_name: str | None = "",
                     **kwargs: Any) -> list[str]:
        """The collection's index names (on ``field_name`` only, when given)."""
        check_kwargs("list_indexes", kwargs)
        info = self._info(collection_name, fresh=True)
        field_name = args.blank_name(field_name, "field_name")
        return [ix.index_name for ix in info.indexes
                if field_name is None or ix.field_name == field_name]

    @retried
    def describe_index(self, collection_name: str, index_name: str,
                       timeout: float | None = None, **kwargs: Any) -> dict[str, Any]:
        """Type, metric, parameters, state and size of one index, with pymilvus' keys
        (``index_type``, ``metric_type``, the build parameters flattened, ``field_name``,
        ``index_name``, ``total_rows``, ``indexed_rows``, ``pending_index_rows``, ``state``:
        Finished / InProgress / Failed) and vecpg's (``params``, ``build_state``, sizes).

        Sizes: ``total_bytes`` (pgvector: the index relation; companion: codes table plus
        stored model) and ``bytes_per_vector``. A companion index also reports
        ``model_bytes`` (the stored model), ``codes_table_bytes``, ``memory_bytes`` (what
        this process holds for it, once loaded), ``build`` (build statistics, with
        ``model_memory_bytes``: the model's arrays in memory), ``coverage`` and
        ``build_running`` (a (re)build is running now, in any process)."""
        check_kwargs("describe_index", {"timeout": timeout, **kwargs})
        info = self._info(collection_name, fresh=True)
        ix = info.index(index_name)
        with self._lease() as db:
            return ddl.describe_index(db, info, ix, self._companions)

    def drop_index(self, collection_name: str, index_name: str, timeout: float | None = None,
                   **kwargs: Any) -> None:
        """Drop an index (its Postgres index, or a companion index's tables and triggers)."""
        check_kwargs("drop_index", {"timeout": timeout, **kwargs})
        info = self._info(collection_name, fresh=True)
        if all(ix.index_name != args.name(index_name, "index_name") for ix in info.indexes):
            return  # as in Milvus: dropping an index that is not there succeeds
        ix = info.index(index_name)
        try:
            with self._lease() as db:
                dropped = ddl.drop_index(db, info, ix)
        finally:
            self._catalog.forget(collection_name)
        if dropped is not None:
            self._companions.forget(dropped)

    # -- iterators ------------------------------------------------------------------------
    @routed
    def query_iterator(self, collection_name: str, batch_size: int = 1000, limit: int = -1,
                       filter: str = "", output_fields: list[str] | None = None,
                       partition_names: list[str] | None = None,
                       timeout: float | None = None, **kwargs: Any) -> QueryIterator:
        """Rows matching ``filter`` in primary-key order, ``batch_size`` at a time, ``limit``
        in all (-1: every one), every batch read from one snapshot (see
        :mod:`vecpg.iterators`): ``it.next()`` until it returns an empty batch; ``close()``
        (or a ``with`` block) to stop early. Keywords ``offset`` and ``filter_params``."""
        kw = check_kwargs("query_iterator", {"timeout": timeout, **kwargs},
                          ("offset", "filter_params", "expr_params"))
        return QueryIterator(self, collection_name, batch_size, limit, filter, output_fields,
                             partition_names, offset=kw.get("offset", 0),
                             filter_params=_filter_params(kw))

    @routed
    def search_iterator(self, collection_name: str, data: Any, batch_size: int = 1000,
                        filter: str = "", limit: int = -1,
                        output_fields: list[str] | None = None,
                        search_params: dict[str, Any] | None = None,
                        timeout: float | None = None,
                        partition_names: list[str] | None = None,
                        anns_field: str | None = None, round_decimal: int = -1, *,
                        external_filter_func: Callable[[Hits], Any] | None = None,
                        **kwargs: Any) -> SearchIterator:
        """The hits of one query vector, closest first, ``batch_size`` at a time, ``limit``
        in all (-1: every matching row): an exact search over one snapshot (see
        :mod:`vecpg.iterators`), so the batches together equal
        ``search(..., search_params={"exact": True})``. Keywords ``filter_params`` and
        ``external_filter_func`` (pymilvus' client-side filter of each page)."""
        kw = check_kwargs("search_iterator", {"timeout": timeout, **kwargs},
                          ("offset", "filter_params", "expr_params"))
        return SearchIterator(self, collection_name, data, batch_size, filter, limit,
                              output_fields, search_params, partition_names, anns_field,
                              round_decimal, offset=kw.get("offset", 0),
                              filter_params=_filter_params(kw),
                              external_filter_func=external_filter_func)

    # -- aliases --------------------------------------------------------------------------
    def create_alias(self, collection_name: str, alias: str, timeout: float | None = None,
                     **kwargs: Any) -> None:
        """Another name for a collection, taken wherever a collection name is."""
        check_kwargs("create_alias", {"timeout": timeout, **kwargs})
        info = self._info(collection_name, fresh=True)
        alias = check_name(alias, "alias")
        with self._lease() as db, db.transaction():
            db.lock(f"collection {self.schema}.{alias}")
            if catalog.exists(db, self.schema, alias) or catalog.alias_target(
                    db, self.schema, alias):
                raise AlreadyExists(f"alias or collection {alias!r} exists already")
            catalog.set_alias(db, self.schema, alias, info.name, create=True)
        self._catalog.forget(alias)

    def alter_alias(self, collection_name: str, alias: str, timeout: float | None = None,
                    **kwargs: Any) -> None:
        """Point an existing alias at another collection (atomically: no reader sees none)."""
        check_kwargs("alter_alias", {"timeout": timeout, **kwargs})
        info = self._info(collection_name, fresh=True)
        alias = check_name(alias, "alias")
        with self._lease() as db, db.transaction():
            if catalog.alias_target(db, self.schema, alias) is None:
                raise NotFound(f"alias {alias!r} does not exist")
            catalog.set_alias(db, self.schema, alias, info.name, create=False)
        self._catalog.forget(alias)

    def drop_alias(self, alias: str, timeout: float | None = None, **kwargs: Any) -> None:
        """Forget an alias (the collection stays)."""
        check_kwargs("drop_alias", {"timeout": timeout, **kwargs})
        alias = check_name(alias, "alias")
        with self._lease() as db, db.transaction():
            catalog.drop_alias(db, self.schema, alias)
        self._catalog.forget(alias)

    @retried
    def describe_alias(self, alias: str, timeout: float | None = None,
                       **kwargs: Any) -> dict[str, str]:
        """``{"alias", "collection_name", "db_name"}`` of an alias."""
        check_kwargs("describe_alias", {"timeout": timeout, **kwargs})
        alias = check_name(alias, "alias")
        with self._lease() as db:
            target = catalog.alias_target(db, self.schema, alias)
        if target is None:
            raise NotFound(f"alias {alias!r} does not exist")
        return {"alias": alias, "collection_name": target, "db_name": self.db_name}

    @retried
    def list_aliases(self, collection_name: str = "", timeout: float | None = None,
                     **kwargs: Any) -> dict[str, Any]:
        """``{"aliases": [...], "collection_name", "db_name"}``: the aliases of one
        collection, or of every collection of the database."""
        check_kwargs("list_aliases", {"timeout": timeout, **kwargs})
        collection_name = args.text(collection_name, "collection_name")
        name = self._info(collection_name).name if collection_name else None
        with self._lease() as db:
            aliases = catalog.aliases_of(db, self.schema, name)
        return {"aliases": aliases, "collection_name": collection_name, "db_name": self.db_name}

    # -- databases (Postgres schemas) ----------------------------------------------------
    @property
    def db_name(self) -> str:
        """The Milvus database this client uses: ``"default"`` for the schema it
        connected to, else the name of the Postgres schema it switched to."""
        return "default" if self.schema == self._default_schema else self.schema

    def _database_schema(self, db_name: Any) -> str:
        name = args.text(db_name, "db_name", optional=False)
        return self._default_schema if name in ("", "default") else check_name(name, "db_name")

    def create_database(self, db_name: str, properties: dict[str, Any] | None = None,
                        timeout: float | None = None, **kwargs: Any) -> None:
        """A new database: a Postgres schema of that name (``"default"`` is the schema the
        client connected to)."""
        check_kwargs("create_database", {"timeout": timeout, **kwargs})
        schema = self._database_schema(db_name)
        props = args.mapping(properties, "properties")
        with self._lease() as db, db.transaction():
            db.lock(f"database {schema}")
            if schema == self._default_schema or db.value(
                    "SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)):
                raise AlreadyExists(f"database {db_name!r} exists already")
            db.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
            catalog.add_database(db, schema, props)

    @retried
    def list_databases(self, timeout: float | None = None, **kwargs: Any) -> list[str]:
        """``"default"`` and every database made by :meth:`create_database` (or holding
        collections)."""
        check_kwargs("list_databases", {"timeout": timeout, **kwargs})
        with self._lease() as db:
            names = set(catalog.databases(db)) | set(catalog.schemas_with_collections(db))
        names.discard(self._default_schema)
        return ["default", *sorted(names)]

    @retried
    def describe_database(self, db_name: str, timeout: float | None = None,
                          **kwargs: Any) -> dict[str, Any]:
        """``{"name": db_name, **properties}``."""
        check_kwargs("describe_database", {"timeout": timeout, **kwargs})
        schema = self._database_schema(db_name)
        if db_name not in ("", "default") and db_name not in self.list_databases():
            raise NotFound(f"database {db_name!r} does not exist")
        with self._lease() as db:
            props = catalog.database_properties(db, schema) or {}
        return {"name": db_name or "default", **props}

    def alter_database_properties(self, db_name: str, properties: dict[str, Any],
                                  timeout: float | None = None, **kwargs: Any) -> None:
        """Set a database's properties (kept and shown; they change nothing else here)."""
        check_kwargs("alter_database_properties", {"timeout": timeout, **kwargs})
        current = self.describe_database(db_name)
        current.pop("name")
        with self._lease() as db, db.transaction():
            catalog.add_database(db, self._database_schema(db_name),
                                 {**current, **args.mapping(properties, "properties")})

    def drop_database_properties(self, db_name: str, property_keys: list[str],
                                 timeout: float | None = None, **kwargs: Any) -> None:
        """Remove database properties."""
        check_kwargs("drop_database_properties", {"timeout": timeout, **kwargs})
        keys = set(args.names(property_keys, "property_keys") or [])
        current = self.describe_database(db_name)
        current.pop("name")
        with self._lease() as db, db.transaction():
            catalog.add_database(db, self._database_schema(db_name),
                                 {k: v for k, v in current.items() if k not in keys})

    def use_database(self, db_name: str, **kwargs: Any) -> None:
        """Work in another database (Postgres schema) from now on."""
        check_kwargs("use_database", kwargs)
        schema = self._database_schema(db_name)
        if db_name not in ("", "default") and db_name not in self.list_databases():
            raise NotFound(f"database {db_name!r} does not exist")
        self.schema = schema
        self._catalog = CatalogCache(self._session, schema)

    def using_database(self, db_name: str, **kwargs: Any) -> None:
        """pymilvus' older name of :meth:`use_database`."""
        self.use_database(db_name, **kwargs)

    def drop_database(self, db_name: str, timeout: float | None = None,
                      **kwargs: Any) -> None:
        """Drop an empty database (its schema); Milvus refuses a database with collections,
        and so does vecpg. ``"default"`` cannot be dropped."""
        check_kwargs("drop_database", {"timeout": timeout, **kwargs})
        schema = self._database_schema(db_name)
        if schema == self._default_schema:
            raise InvalidArgument("the default database cannot be dropped")
        with self._lease() as db, db.transaction():
            if catalog.names(db, schema):
                raise InvalidArgument(f"database {db_name!r} still has collections; drop "
                                      "them first")
            if not db.value("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)):
                raise NotFound(f"database {db_name!r} does not exist")
            db.execute(sql.SQL("DROP SCHEMA {}").format(sql.Identifier(schema)))
            catalog.drop_database(db, schema)
        if self.schema == schema:
            self.use_database("default")

    # -- maintenance ----------------------------------------------------------------------
    def truncate_collection(self, collection_name: str, timeout: float | None = None,
                            **kwargs: Any) -> None:
        """Delete every row, keeping the collection, its indexes and partitions
        (Postgres' TRUNCATE: companion pending lists are emptied by their trigger)."""
        check_kwargs("truncate_collection", {"timeout": timeout, **kwargs})
        info = self._info(collection_name, fresh=True)
        with self._lease() as db, db.transaction():
            db.execute(sql.SQL("TRUNCATE {}").format(info.table))

    def compact(self, collection_name: str, is_clustering: bool = False, is_l0: bool = False,
                target_size: Any = None, target_size_unit: Any = None,
                timeout: float | None = None, **kwargs: Any) -> int:
        """What compaction means here: ``VACUUM (ANALYZE)`` of the table (dead rows
        reclaimed, statistics fresh) and a rebuild of companion indexes whose uncovered
        share passed 10% (see :meth:`compact_index`). Returns a job id (always 0: it is done
        when this returns; :meth:`get_compaction_state` says "Completed")."""
        check_kwargs("compact", {"timeout": timeout, **kwargs})
        info = self._info(collection_name, fresh=True)
        with self._lease() as db:
            db.execute(sql.SQL("VACUUM (ANALYZE) {}").format(info.table))
        for ix in info.indexes:
            if ix.kind.companion:
                self.compact_index(info.name, ix.index_name)
        return 0

    def optimize(self, collection_name: str, target_size: Any = None, wait: bool = True,
                 timeout: float | None = None, **kwargs: Any) -> int:
        """As :meth:`compact` (Milvus 3's name for a compaction it waits for)."""
        check_kwargs("optimize", {"timeout": timeout, **kwargs})
        return self.compact(collection_name)

    def flush_all(self, timeout: float | None = None, **kwargs: Any) -> None:
        """Nothing to do: every write is durable when it returns."""
        check_kwargs("flush_all", {"timeout": timeout, **kwargs})

    def get_flush_all_state(self, timeout: float | None = None, **kwargs: Any) -> bool:
        """Always True (see :meth:`flush_all`)."""
        check_kwargs("get_flush_all_state", {"timeout": timeout, **kwargs})
        return True

    def add_collection_field(self, collection_name: str, field_name: str, data_type: Any,
                             desc: str = "", timeout: float | None = None,
                             **kwargs: Any) -> None:
        """Add a scalar field to an existing collection (``ALTER TABLE ... ADD COLUMN``):
        as in Milvus it must be ``nullable=True`` or have a ``default_value``, which
        existing rows then hold. Keywords as :class:`FieldSchema`'s."""
        kw = check_kwargs("add_collection_field", {"timeout": timeout, **kwargs}, (
            "nullable", "default_value", "max_length", "element_type", "max_capacity"))
        info = self._info(collection_name, fresh=True)
        f = FieldSchema(args.name(field_name, "field_name"), DataType.parse(data_type),
                        description=args.text(desc, "desc"), **kw)
        with self._lease() as db:
            ddl.add_field(db, info, f)
        self._catalog.forget(collection_name, info.name)

    def get_compaction_state(self, job_id: int, timeout: float | None = None,
                             **kwargs: Any) -> str:
        """``"Completed"``: :meth:`compact` finishes before it returns."""
        check_kwargs("get_compaction_state", {"timeout": timeout, **kwargs})
        args.integer(job_id, "job_id")
        return "Completed"

    # -- misc -----------------------------------------------------------------------------
    def get_server_version(self, timeout: float | None = None, detail: bool = False,
                           **kwargs: Any) -> str | dict[str, Any]:
        """The Postgres server's version (``detail``: with pgvector's and vecpg's)."""
        check_kwargs("get_server_version", {"timeout": timeout, **kwargs})
        info = self.server_info()
        if not args.flag(detail, "detail"):
            return str(info.get("postgres", ""))
        return {"version": info.get("postgres"), "pgvector": info.get("pgvector"),
                "vecpg": __version__, "deploy_mode": "POSTGRES",
                "vecpg_schema_revision": info.get("vecpg_schema_revision")}

    def get_server_type(self) -> str:
        """``"vecpg"`` (pymilvus says "milvus" or "zilliz")."""
        return "vecpg"

    def server_info(self) -> dict[str, Any]:
        """Postgres and pgvector versions, and the database's vecpg revision."""
        with self._lease() as db:
            versions = server_versions(db)
        return {**versions, "dsn": _redact(self.dsn), "schema": self.schema}


def _filter_params(kw: dict[str, Any]) -> dict[str, Any] | None:
    """``filter_params`` (or pymilvus' older ``expr_params``): values for the filter's
    ``{name}`` placeholders."""
    value = kw.get("filter_params", kw.get("expr_params"))
    return None if value is None else args.mapping(value, "filter_params")


def _redact(dsn: str) -> str:
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", dsn)


def connect(dsn: str | None = None, *, data_dir: str | None = None, schema: str = "public",
            pool_size: int = 10, pool_timeout: float = 30.0,
            tracer: Tracer | None = None, replicas: Sequence[str] | None = None,
            replica_policy: ReplicaPolicy | None = None) -> Client:
    """Open a :class:`Client`: ``dsn``, else ``$VECPG_DSN``, else the embedded server.

    Creates the ``vector`` extension and migrates vecpg's schema on first use (not on a
    standby). ``replicas``: standbys that take reads (:mod:`vecpg.replicas`).

        >>> client = vecpg.connect()                     # embedded Postgres
        >>> client = vecpg.connect("postgresql://me@db/app", schema="search")
        >>> client = vecpg.connect("postgresql://db1/app", replicas=["postgresql://db2/app"])
    """
    return Client(dsn, data_dir=data_dir, schema=schema, pool_size=pool_size,
                  pool_timeout=pool_timeout, tracer=tracer, replicas=replicas,
                  replica_policy=replica_policy)



class MilvusClient(Client):
    """vecpg's :class:`Client` under pymilvus' name and constructor, so Milvus code runs
    with only its import changed: ``MilvusClient(uri, user, password, db_name, token)``.

    ``uri``: a ``postgresql://`` DSN; or a local path, as Milvus Lite takes one
    (``MilvusClient("./milvus_demo.db")``): the embedded Postgres keeps its data in that
    directory; or ``""`` for ``$VECPG_DSN`` / the default embedded server. ``user`` and
    ``password`` (or ``token="user:password"``) log in as that role; ``db_name`` picks the
    database (a Postgres schema; ``"default"`` is ``public``).
    """

    def __init__(self, uri: str = "", user: str = "", password: str = "", db_name: str = "",
                 token: str = "", timeout: float | None = None, **kwargs: Any) -> None:
        check_kwargs("MilvusClient", {"timeout": timeout, **kwargs},
                     ("pool_size", "pool_timeout", "tracer", "replicas", "replica_policy"))
        uri = args.text(uri, "uri")
        if token and not (user or password):
            user, _, password = args.text(token, "token").partition(":")
        dsn, data_dir = None, None
        if uri.startswith(("postgresql://", "postgres://")) or "=" in uri:
            dsn = uri
        elif uri.startswith(("http://", "https://", "tcp://", "grpc://", "unix:")):
            raise InvalidArgument(
                f"uri {uri!r} names a Milvus server; vecpg.MilvusClient talks to Postgres: pass "
                "a postgresql:// DSN or a local directory (as Milvus Lite takes a file)")
        elif uri:
            if os.path.isfile(uri):
                raise InvalidArgument(f"{uri!r} is a file (a Milvus Lite database?); vecpg keeps "
                                      "an embedded Postgres in a directory: give a new path")
            data_dir = uri
        if user or password:
            dsn = psycopg.conninfo.make_conninfo(resolve_dsn(dsn, data_dir=data_dir),
                                                 **({"user": user} if user else {}),
                                                 **({"password": password} if password else {}))
            data_dir = None
        schema = "public" if db_name in ("", "default") else check_name(db_name, "db_name")
        super().__init__(dsn, data_dir=data_dir, schema=schema,
                         pool_size=int(kwargs.get("pool_size", 10)),
                         pool_timeout=float(kwargs.get("pool_timeout", 30.0)),
                         tracer=kwargs.get("tracer"), replicas=kwargs.get("replicas"),
                         replica_policy=kwargs.get("replica_policy"))
        self._default_schema = "public"
