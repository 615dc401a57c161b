"""Milvus' ``MilvusService`` on a :class:`vecpg.Client`: each RPC is translated onto the
client method of the same meaning, and vecpg's errors become the Milvus statuses pymilvus
turns into the exceptions it raises against Milvus.

Requests run as a Postgres role: ``token="user:password"`` (or user and password) arrives
base64-encoded in the ``authorization`` metadata, as pymilvus' interceptor sends it, and the
request runs on a client logged in as that role (one client per role and database, the
``max_clients`` most recently used kept open: see :class:`ClientCache`); without
credentials, on the server's own DSN. The Milvus database (``db_name`` in
the request or ``dbname`` in the metadata) is the client's database (a Postgres schema).

RPCs not translated here answer ``UNIMPLEMENTED``, naming the RPC.
"""

from __future__ import annotations

import base64
import functools
import itertools
import logging
import re
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import grpc
import psycopg
from pymilvus.grpc_gen import common_pb2, milvus_pb2, milvus_pb2_grpc, schema_pb2

from .. import __version__, fusion
from ..client import Client
from ..errors import (
    AlreadyExists,
    CollectionNotFound,
    IndexNotFound,
    InvalidArgument,
    NotFound,
    NotSupported,
    PartitionNotFound,
    PermissionDenied,
    PoolTimeout,
    ServerUnavailable,
    VecpgError,
)
from ..milvus_api import STATUS
from ..schema import CollectionSchema, DataType, FieldSchema
from ..server import resolve_dsn
from . import convert
from .paging import SearchPages

_log = logging.getLogger("vecpg.wire")
_OK = common_pb2.Status(code=0, error_code=common_pb2.Success)
# libpq's messages when the server refuses the login (they carry no SQLSTATE)
_AUTH_FAILED = re.compile(r"authentication failed|role \"[^\"]*\" does not exist|"
                          r"no pg_hba\.conf entry")
_INDEX_STATE = {"Finished": common_pb2.Finished, "InProgress": common_pb2.InProgress,
                "Failed": common_pb2.Failed}


def _hybrid_ts() -> int:
    """A Milvus hybrid timestamp for now: milliseconds shifted past 18 logical bits."""
    return int(time.time() * 1000) << 18


def _collection_id(name: str) -> int:
    return zlib.crc32(name.encode()) + 1


# -- errors ---------------------------------------------------------------------------------

def status_of(e: VecpgError, request: Any = None) -> Any:
    """The Milvus Status for a vecpg error: the ``code`` (Milvus' merr codes) and legacy
    ``error_code`` Milvus sets, and a message in Milvus' form where pymilvus or users match
    on it (``collection not found[database=...][collection=...]``)."""
    db = getattr(request, "db_name", "") or "default"
    coll = getattr(request, "collection_name", "")
    reason = str(e)
    input_error = False
    if isinstance(e, CollectionNotFound):
        code, legacy = 100, common_pb2.CollectionNotExists
        reason = f"collection not found[database={db}][collection={coll}]" if coll else reason
    elif isinstance(e, IndexNotFound):
        code, legacy = 700, common_pb2.IndexNotExist
        reason = f"index not found[collection={coll}]: {e}" if coll else reason
    elif isinstance(e, PartitionNotFound):
        code, legacy = 200, common_pb2.UnexpectedError
        reason = f"partition not found: {e}"
    elif isinstance(e, NotFound):
        code, legacy = 1100, common_pb2.IllegalArgument
    elif isinstance(e, (InvalidArgument, AlreadyExists)):
        code, legacy, input_error = 1100, common_pb2.IllegalArgument, True
        reason = f"{e}: invalid parameter"
    elif isinstance(e, PermissionDenied):
        code, legacy = 1401, common_pb2.PermissionDenied
        reason = f"{e}: permission deny"
    elif isinstance(e, NotSupported):
        code, legacy = 10, common_pb2.UnexpectedError
        reason = f"{e}: service unimplemented"
    elif isinstance(e, ServerUnavailable):
        code, legacy = 2, common_pb2.UnexpectedError
    elif isinstance(e, PoolTimeout):
        code, legacy = 4, common_pb2.UnexpectedError
    else:
        code, legacy = 5, common_pb2.UnexpectedError
    status = common_pb2.Status(code=code, error_code=legacy, reason=reason)
    if input_error:
        status.extra_info["is_input_error"] = "true"
    return status


def rpc(reply: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Wrap an RPC handler: log it at debug level, hold the clients it takes until it
    answers, and turn a vecpg error into ``reply`` carrying its status (``reply`` is the
    response message class, or Status itself)."""
    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def handler(self: MilvusService, request: Any, context: Any) -> Any:
            if _log.isEnabledFor(logging.DEBUG):
                _log.debug("%s %s", fn.__name__, _brief(request))
            try:
                with self.clients.request():
                    return fn(self, request, context)
            except VecpgError as e:
                _log.debug("%s failed: %s: %s", fn.__name__, type(e).__name__, e)
                status = status_of(e, request)
                return status if reply is common_pb2.Status else reply(status=status)
        return handler
    return deco


def _brief(request: Any) -> str:
    parts = []
    for key in ("db_name", "collection_name", "partition_name", "index_name", "expr", "dsl"):
        value = getattr(request, key, "")
        if value:
            parts.append(f"{key}={value!r}")
    return " ".join(parts)


def _not_implemented(name: str) -> Callable[..., Any]:
    def handler(self: Any, request: Any, context: Any) -> Any:
        _log.debug("%s: not implemented", name)
        context.abort(grpc.StatusCode.UNIMPLEMENTED,
                      f"vecpg serve does not implement MilvusService/{name}")
    handler.__name__ = handler.__qualname__ = name
    handler.unimplemented = True  # type: ignore[attr-defined]
    return handler


class _Entry:
    __slots__ = ("client", "evicted", "users")

    def __init__(self, client: Client) -> None:
        self.client = client
        self.users = 0  # requests holding it now
        self.evicted = False  # out of the cache: closed when the last user lets go


class ClientCache:
    """The clients of the roles and databases requests run as, the ``max_clients`` most
    recently used kept open (each holds a pool of connections). A client pushed out is
    closed once no request holds it any more, so a request in flight never loses its
    client; the next request of that role opens a new one. Thread-safe.

    A request takes clients with :meth:`take` inside ``with cache.request():``, which
    lets them go when the request ends."""

    def __init__(self, max_clients: int = 32) -> None:
        if isinstance(max_clients, bool) or not isinstance(max_clients, int) or max_clients < 1:
            raise InvalidArgument(f"max_clients must be an integer of at least 1, got "
                                  f"{max_clients!r}")
        self.max_clients = max_clients
        self._entries: OrderedDict[tuple[str, ...], _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._held = threading.local()  # the entries the current request holds
        self.opened = 0  # clients opened so far (for tests and logs)
        self.closed = 0  # clients closed so far

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def keys(self) -> list[tuple[str, ...]]:
        """The cached keys, least recently used first."""
        with self._lock:
            return list(self._entries)

    @contextmanager
    def request(self) -> Iterator[None]:
        """The scope of one request: clients taken inside are held until it ends."""
        outer = getattr(self._held, "entries", None)
        self._held.entries = [] if outer is None else outer
        try:
            yield
        finally:
            if outer is None:
                entries, self._held.entries = self._held.entries, None
                self._release(entries)

    def take(self, key: tuple[str, ...], open_client: Callable[[], Client]) -> Client:
        """The client for ``key`` (``open_client()`` opens it when not cached), held by the
        current request; the least recently used beyond ``max_clients`` are evicted."""
        held = getattr(self._held, "entries", None)
        if held is None:
            raise RuntimeError("ClientCache.take outside a request() scope")
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                entry.users += 1
                held.append(entry)
                return entry.client
        client = open_client()  # outside the lock: opening takes a round trip or more
        spare: list[Client] = []
        with self._lock:
            self.opened += 1
            entry = self._entries.get(key)
            if entry is None:
                entry = self._entries[key] = _Entry(client)
                while len(self._entries) > self.max_clients:
                    _, old = self._entries.popitem(last=False)
                    old.evicted = True
                    if old.users == 0:
                        spare.append(old.client)
            else:  # another request opened it meanwhile
                self._entries.move_to_end(key)
                spare.append(client)
            entry.users += 1
            held.append(entry)
        self._close(spare)
        return entry.client

    def evict(self, match: Callable[[tuple[str, ...]], bool]) -> None:
        """Evict the clients whose key matches (closed when no request holds them)."""
        with self._lock:
            gone = [self._entries.pop(k) for k in list(self._entries) if match(k)]
            for e in gone:
                e.evicted = True
            idle = [e.client for e in gone if e.users == 0]
        self._close(idle)

    def close(self) -> None:
        """Close every cached client (requests still running keep theirs until they end)."""
        self.evict(lambda key: True)

    def _release(self, entries: list[_Entry]) -> None:
        idle = []
        with self._lock:
            for e in entries:
                e.users -= 1
                if e.evicted and e.users == 0:
                    idle.append(e.client)
        self._close(idle)

    def _close(self, clients: list[Client]) -> None:
        for c in clients:
            try:
                c.close()
            except VecpgError as e:  # a dead server: nothing left to close cleanly
                _log.debug("closing an evicted client: %s", e)
            with self._lock:
                self.closed += 1


class MilvusService(milvus_pb2_grpc.MilvusServiceServicer):
    """The servicer: ``grpc.server`` it with ``milvus_pb2_grpc.add_MilvusServiceServicer_
    to_server(MilvusService(dsn), server)``, or use :func:`vecpg.wire.serve`.
    ``pool_size``: connections per client; ``max_clients``: clients (role and database
    pairs) kept open, so at most ``pool_size * max_clients`` connections."""

    def __init__(self, dsn: str | None = None, *, data_dir: str | None = None,
                 pool_size: int = 10, max_clients: int = 32) -> None:
        self.dsn = resolve_dsn(dsn, data_dir=data_dir)
        self._pool_size = pool_size
        self.clients = ClientCache(max_clients)
        self._ids = itertools.count(1)
        self._pages = SearchPages()

    @property
    def dsn_redacted(self) -> str:
        """The DSN without its password, for logs."""
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", re.sub(r"password=\S+", "password=***",
                                                                   self.dsn))

    def close(self) -> None:
        """Close every client the service opened."""
        self._pages.close()
        self.clients.close()

    # -- who and where ----------------------------------------------------------------------
    def _client(self, context: Any, request: Any = None, db: str | None = None) -> Client:
        """The client for the request's credentials and database (opened on first use);
        ``db`` overrides the request's (the database RPCs name their target in
        ``db_name``, and run on the caller's own database)."""
        meta = dict(context.invocation_metadata() or ())
        user = password = ""
        auth = meta.get("authorization")
        if auth:
            try:
                text = base64.b64decode(auth).decode()
            except ValueError:
                context.abort(grpc.StatusCode.UNAUTHENTICATED, "malformed authorization header")
            user, _, password = text.partition(":")
        if db is None:
            db = getattr(request, "db_name", "") or meta.get("dbname", "") or "default"
        db = db or "default"
        return self.clients.take((user, password, db),
                                 lambda: self._open(context, user, password, db))

    def _open(self, context: Any, user: str, password: str, db: str) -> Client:
        dsn = self.dsn
        if user:
            dsn = psycopg.conninfo.make_conninfo(dsn, user=user, password=password)
        client = None
        try:
            client = Client(dsn, pool_size=self._pool_size)
            if db != "default":
                client.use_database(db)
            return client
        except VecpgError as e:
            if client is not None:
                client.close()
            cause = e.__cause__
            if isinstance(cause, psycopg.OperationalError) and (
                    (cause.sqlstate or "").startswith("28") or _AUTH_FAILED.search(str(cause))):
                context.abort(grpc.StatusCode.UNAUTHENTICATED,
                              "auth check failure, please check username and password are "
                              "correct")
            raise

    @staticmethod
    def _schema(client: Client, name: str) -> CollectionSchema:
        # from the client's catalog cache: every data RPC needs it, without a round trip
        return client.collection_schema(name)

    # -- server -----------------------------------------------------------------------------
    @rpc(milvus_pb2.ConnectResponse)
    def Connect(self, request: Any, context: Any) -> Any:
        """Open the caller's client (checks its credentials); the server's identity."""
        client = self._client(context, request)
        version = str(client.get_server_version())
        info = common_pb2.ServerInfo(build_tags=f"vecpg-{__version__}", deploy_mode="POSTGRES",
                                     build_time="", git_commit="", go_version="")
        info.reserved["postgres"] = version
        return milvus_pb2.ConnectResponse(status=_OK, server_info=info,
                                          identifier=next(self._ids))

    @rpc(milvus_pb2.GetVersionResponse)
    def GetVersion(self, request: Any, context: Any) -> Any:
        """The Postgres server's version, as ``Client.get_server_version``."""
        version = self._client(context, request).get_server_version()
        return milvus_pb2.GetVersionResponse(status=_OK, version=str(version))

    @rpc(milvus_pb2.CheckHealthResponse)
    def CheckHealth(self, request: Any, context: Any) -> Any:
        """Healthy when the database answers."""
        self._client(context, request).server_info()
        return milvus_pb2.CheckHealthResponse(status=_OK, isHealthy=True)

    @rpc(milvus_pb2.ComponentStates)
    def GetComponentStates(self, request: Any, context: Any) -> Any:
        """Healthy when the database answers (Milvus' component health probe)."""
        self._client(context, request).server_info()
        return milvus_pb2.ComponentStates(
            status=_OK, state=milvus_pb2.ComponentInfo(role="vecpg", nodeID=1,
                                                       state_code=common_pb2.Healthy))

    @rpc(milvus_pb2.AllocTimestampResponse)
    def AllocTimestamp(self, request: Any, context: Any) -> Any:
        """A hybrid timestamp for now (pymilvus asks one before waiting on an index)."""
        return milvus_pb2.AllocTimestampResponse(status=_OK, timestamp=_hybrid_ts())

    # -- collections ------------------------------------------------------------------------
    @rpc(common_pb2.Status)
    def CreateCollection(self, request: Any, context: Any) -> Any:
        """``Client.create_collection`` with the request's schema."""
        client = self._client(context, request)
        schema = convert.schema_from_pb(request.schema)
        kw: dict[str, Any] = {}
        props = {p.key: p.value for p in request.properties}
        if props:
            kw["properties"] = props
        if request.num_partitions and schema.partition_key is not None:
            kw["num_partitions"] = int(request.num_partitions)
        # the collection's default for reads (vecpg.replicas); pymilvus sends Bounded unless told
        kw["consistency_level"] = int(request.consistency_level)
        client.create_collection(request.collection_name, schema=schema, **kw)
        return _OK

    @rpc(milvus_pb2.DescribeCollectionResponse)
    def DescribeCollection(self, request: Any, context: Any) -> Any:
        """``Client.describe_collection`` as Milvus' schema message."""
        client = self._client(context, request)
        d = client.describe_collection(request.collection_name)
        # the catalog's schema (describe_collection's dict omits functions and analyzers)
        schema = self._schema(client, d["collection_name"])
        resp = milvus_pb2.DescribeCollectionResponse(
            status=_OK, collectionID=_collection_id(d["collection_name"]), shards_num=1,
            aliases=list(d.get("aliases", [])),
            consistency_level=int(d.get("consistency_level", common_pb2.Bounded)),
            collection_name=d["collection_name"], db_name=request.db_name or "default",
            num_partitions=int(d.get("num_partitions") or 0))
        convert.schema_to_pb(d["collection_name"], schema, resp.schema)
        for k, v in (d.get("properties") or {}).items():
            resp.properties.add(key=str(k), value=str(v))
        return resp

    @rpc(milvus_pb2.BoolResponse)
    def HasCollection(self, request: Any, context: Any) -> Any:
        """``Client.has_collection``."""
        value = self._client(context, request).has_collection(request.collection_name)
        return milvus_pb2.BoolResponse(status=_OK, value=value)

    @rpc(milvus_pb2.ShowCollectionsResponse)
    def ShowCollections(self, request: Any, context: Any) -> Any:
        """``Client.list_collections`` (all served: always 100% in memory)."""
        names = self._client(context, request).list_collections()
        wanted = list(request.collection_names)
        if wanted:
            names = [n for n in names if n in wanted]
        return milvus_pb2.ShowCollectionsResponse(
            status=_OK, collection_names=names, collection_ids=[_collection_id(n) for n in names],
            created_timestamps=[0] * len(names), created_utc_timestamps=[0] * len(names),
            inMemory_percentages=[100] * len(names),
            query_service_available=[True] * len(names))

    @rpc(common_pb2.Status)
    def DropCollection(self, request: Any, context: Any) -> Any:
        """``Client.drop_collection``."""
        self._client(context, request).drop_collection(request.collection_name)
        return _OK

    @rpc(milvus_pb2.GetCollectionStatisticsResponse)
    def GetCollectionStatistics(self, request: Any, context: Any) -> Any:
        """``Client.get_collection_stats``: ``row_count``."""
        stats = self._client(context, request).get_collection_stats(request.collection_name)
        resp = milvus_pb2.GetCollectionStatisticsResponse(status=_OK)
        resp.stats.add(key="row_count", value=str(stats["row_count"]))
        return resp

    @rpc(common_pb2.Status)
    def LoadCollection(self, request: Any, context: Any) -> Any:
        """``Client.load_collection`` (a check that it exists)."""
        self._client(context, request).load_collection(request.collection_name)
        return _OK

    @rpc(common_pb2.Status)
    def ReleaseCollection(self, request: Any, context: Any) -> Any:
        """``Client.release_collection`` (a check that it exists)."""
        self._client(context, request).release_collection(request.collection_name)
        return _OK

    @rpc(common_pb2.Status)
    def LoadPartitions(self, request: Any, context: Any) -> Any:
        """``Client.load_partitions`` (a check that they exist)."""
        self._client(context, request).load_partitions(request.collection_name,
                                                        list(request.partition_names))
        return _OK

    @rpc(common_pb2.Status)
    def ReleasePartitions(self, request: Any, context: Any) -> Any:
        """``Client.release_partitions`` (a check that they exist)."""
        self._client(context, request).release_partitions(request.collection_name,
                                                           list(request.partition_names))
        return _OK

    @rpc(milvus_pb2.GetLoadingProgressResponse)
    def GetLoadingProgress(self, request: Any, context: Any) -> Any:
        """Always 100% (a table is served as soon as it exists)."""
        client = self._client(context, request)
        for p in request.partition_names or [""]:
            client.get_load_state(request.collection_name, p)
        return milvus_pb2.GetLoadingProgressResponse(status=_OK, progress=100,
                                                     refresh_progress=100)

    @rpc(milvus_pb2.GetLoadStateResponse)
    def GetLoadState(self, request: Any, context: Any) -> Any:
        """Always Loaded (``Client.get_load_state``)."""
        client = self._client(context, request)
        for p in request.partition_names or [""]:
            client.get_load_state(request.collection_name, p)
        return milvus_pb2.GetLoadStateResponse(status=_OK, state=common_pb2.LoadStateLoaded)

    @rpc(milvus_pb2.FlushResponse)
    def Flush(self, request: Any, context: Any) -> Any:
        """``Client.flush``: nothing to wait for, every write is committed."""
        client = self._client(context, request)
        resp = milvus_pb2.FlushResponse(status=_OK, db_name=request.db_name)
        ts = _hybrid_ts()
        for name in request.collection_names:
            client.flush(name)
            resp.coll_segIDs[name].data.extend([])
            resp.flush_coll_segIDs[name].data.extend([])
            resp.coll_seal_times[name] = int(time.time())
            resp.coll_flush_ts[name] = ts
        return resp

    @rpc(milvus_pb2.FlushAllResponse)
    def FlushAll(self, request: Any, context: Any) -> Any:
        """``Client.flush_all``: nothing to wait for, every write is committed."""
        self._client(context, request).flush_all()
        return milvus_pb2.FlushAllResponse(status=_OK, flush_all_ts=_hybrid_ts())

    @rpc(milvus_pb2.GetFlushStateResponse)
    def GetFlushState(self, request: Any, context: Any) -> Any:
        """Always flushed."""
        return milvus_pb2.GetFlushStateResponse(status=_OK, flushed=True)

    @rpc(milvus_pb2.GetFlushAllStateResponse)
    def GetFlushAllState(self, request: Any, context: Any) -> Any:
        """Always flushed."""
        return milvus_pb2.GetFlushAllStateResponse(status=_OK, flushed=True)

    # -- partitions -------------------------------------------------------------------------
    @rpc(common_pb2.Status)
    def CreatePartition(self, request: Any, context: Any) -> Any:
        """``Client.create_partition``."""
        self._client(context, request).create_partition(request.collection_name,
                                                         request.partition_name)
        return _OK

    @rpc(common_pb2.Status)
    def DropPartition(self, request: Any, context: Any) -> Any:
        """``Client.drop_partition``."""
        self._client(context, request).drop_partition(request.collection_name,
                                                       request.partition_name)
        return _OK

    @rpc(milvus_pb2.BoolResponse)
    def HasPartition(self, request: Any, context: Any) -> Any:
        """``Client.has_partition``."""
        value = self._client(context, request).has_partition(request.collection_name,
                                                              request.partition_name)
        return milvus_pb2.BoolResponse(status=_OK, value=value)

    @rpc(milvus_pb2.ShowPartitionsResponse)
    def ShowPartitions(self, request: Any, context: Any) -> Any:
        """``Client.list_partitions``."""
        names = self._client(context, request).list_partitions(request.collection_name)
        return milvus_pb2.ShowPartitionsResponse(
            status=_OK, partition_names=names,
            partitionIDs=[zlib.crc32(n.encode()) + 1 for n in names],
            created_timestamps=[0] * len(names), created_utc_timestamps=[0] * len(names),
            inMemory_percentages=[100] * len(names))

    @rpc(milvus_pb2.GetPartitionStatisticsResponse)
    def GetPartitionStatistics(self, request: Any, context: Any) -> Any:
        """``Client.get_partition_stats``: ``row_count``."""
        stats = self._client(context, request).get_partition_stats(request.collection_name,
                                                                     request.partition_name)
        resp = milvus_pb2.GetPartitionStatisticsResponse(status=_OK)
        resp.stats.add(key="row_count", value=str(stats["row_count"]))
        return resp

    # -- data -------------------------------------------------------------------------------
    def _mutation(self, request: Any, context: Any, *, upsert: bool) -> Any:
        client = self._client(context, request)
        schema = self._schema(client, request.collection_name)
        rows = convert.rows_from_fields(request.fields_data, request.num_rows, schema)
        part = request.partition_name or ""
        if upsert:
            kw = {"partial_update": True} if request.partial_update else {}
            res = client.upsert(request.collection_name, rows, partition_name=part, **kw)
            count = int(res["upsert_count"])
        else:
            res = client.insert(request.collection_name, rows, partition_name=part)
            count = int(res["insert_count"])
        out = milvus_pb2.MutationResult(status=_OK, succ_index=range(len(rows)),
                                        timestamp=_hybrid_ts())
        if upsert:
            out.upsert_cnt = count
        else:
            out.insert_cnt = count
        _ids(out.IDs, schema.primary_field, res["ids"])
        return out

    @rpc(milvus_pb2.MutationResult)
    def Insert(self, request: Any, context: Any) -> Any:
        """``Client.insert`` of the request's columns (dynamic fields from ``$meta``)."""
        return self._mutation(request, context, upsert=False)

    @rpc(milvus_pb2.MutationResult)
    def Upsert(self, request: Any, context: Any) -> Any:
        """``Client.upsert`` of the request's columns (``partial_update`` too)."""
        return self._mutation(request, context, upsert=True)

    @rpc(milvus_pb2.MutationResult)
    def Delete(self, request: Any, context: Any) -> Any:
        """``Client.delete`` by the request's filter and its templates."""
        client = self._client(context, request)
        res = client.delete(request.collection_name, filter=request.expr,
                            partition_name=request.partition_name or "",
                            filter_params=convert.template_values(request.expr_template_values))
        return milvus_pb2.MutationResult(status=_OK, delete_cnt=int(res["delete_count"]),
                                         timestamp=_hybrid_ts())

    @rpc(milvus_pb2.QueryResults)
    def Query(self, request: Any, context: Any) -> Any:
        """``Client.query``: filter, templates, output fields, limit/offset, ``count(*)``."""
        client = self._client(context, request)
        name = request.collection_name
        schema = self._schema(client, name)
        params = convert.kv_params(request.query_params)
        kw: dict[str, Any] = {}
        for key in ("limit", "offset"):
            if key in params:
                kw[key] = int(params[key])
        if params.get("order_by_fields"):
            kw["order_by_fields"] = [_order_item(x) for x in
                                     str(params["order_by_fields"]).split(",")]
        if params.get("group_by_fields"):
            kw["group_by_fields"] = str(params["group_by_fields"]).split(",")
        output = list(request.output_fields)
        rows = client.query(name, request.expr, output_fields=output or None,
                            partition_names=list(request.partition_names) or None,
                            filter_params=convert.template_values(request.expr_template_values),
                            **kw)
        names = _columns(rows, output, schema)
        columns, reported = convert.fields_of_rows(rows, names, schema)
        return milvus_pb2.QueryResults(status=_OK, fields_data=columns, collection_name=name,
                                       output_fields=reported, session_ts=_hybrid_ts(),
                                       primary_field_name=schema.primary_field.name)

    # -- search -----------------------------------------------------------------------------
    def _search_args(self, client: Client, name: str, schema: CollectionSchema,
                     request: Any) -> dict[str, Any]:
        """``Client.search`` keywords (and ``data``) from one SearchRequest."""
        params = convert.kv_params(request.search_params)
        inner = params.get("params") or {}
        if not isinstance(inner, dict):
            raise InvalidArgument(f"search params must be a JSON object, got {inner!r}")
        inner = dict(inner)
        metric = params.get("metric_type") or inner.get("metric_type")
        inner.pop("metric_type", None)
        offset = params.get("offset", inner.pop("offset", 0)) or 0
        inner.pop("offset", None)
        anns = params.get("anns_field") or None
        sp: dict[str, Any] = {"params": inner}
        if metric:
            sp["metric_type"] = metric
        kw: dict[str, Any] = {"limit": int(params.get("topk", 10)), "search_params": sp,
                              "anns_field": anns, "filter": request.dsl,
                              "offset": int(offset),
                              "filter_params": convert.template_values(
                                  request.expr_template_values)}
        rd = params.get("round_decimal", -1)
        if rd not in (-1, "-1", None):
            kw["round_decimal"] = int(rd)
        for key in ("group_by_field", "group_size", "strict_group_size"):
            if key in params:
                kw[key] = params[key]
        if request.WhichOneof("search_input") == "ids":
            ids = request.ids
            kw["ids"] = list(ids.int_id.data if ids.HasField("int_id") else ids.str_id.data)
        else:
            field = _vector_field(schema, anns)
            kw["data"] = convert.placeholder_vectors(request.placeholder_group, field)
        return kw

    @rpc(milvus_pb2.SearchResults)
    def Search(self, request: Any, context: Any) -> Any:
        """``Client.search`` with the placeholder group's query vectors (or ids)."""
        if len(request.sub_reqs):
            raise NotSupported("search with sub_reqs is not supported; use HybridSearch")
        client = self._client(context, request)
        name = request.collection_name
        schema = self._schema(client, name)
        kw = self._search_args(client, name, schema, request)
        output = list(request.output_fields) or None
        parts = list(request.partition_names) or None
        params = convert.kv_params(request.search_params)
        if _flag(params.get("search_iter_v2")):
            return self._search_page(client, name, schema, kw, output, parts, params)
        result = client.search(name, output_fields=output, partition_names=parts, **kw)
        return self._results(name, schema, result, kw["limit"])

    def _search_page(self, client: Client, name: str, schema: CollectionSchema,
                     kw: dict[str, Any], output: list[str] | None, parts: list[str] | None,
                     params: dict[str, Any]) -> Any:
        """One page of pymilvus' SearchIteratorV2 (see :mod:`vecpg.wire.paging`)."""
        if "data" not in kw:
            raise NotSupported("search_iterator by primary keys is not supported")
        batch = int(params.get("search_iter_batch_size") or kw["limit"])
        sp = kw["search_params"]

        def make() -> Any:
            return client.search_iterator(
                name, kw["data"], batch_size=batch, filter=kw["filter"],
                output_fields=output, search_params=sp, partition_names=parts,
                anns_field=kw["anns_field"], round_decimal=kw.get("round_decimal", -1),
                filter_params=kw["filter_params"])

        token = str(params.get("search_iter_id") or "")
        if token:
            hits = self._pages.next(token, make)
        else:
            token, hits = self._pages.first(make)
        resp = self._results(name, schema, [hits], batch)
        it = resp.results.search_iterator_v2_results
        it.token = token
        # the page's last distance (an empty page: the bound it was asked after)
        it.last_bound = float(hits[-1].distance) if hits else float(
            params.get("search_iter_last_bound") or 0.0)
        resp.session_ts = _hybrid_ts()
        return resp

    @rpc(milvus_pb2.SearchResults)
    def HybridSearch(self, request: Any, context: Any) -> Any:
        """``Client.hybrid_search`` with pymilvus' RRF or weighted rank params."""
        client = self._client(context, request)
        name = request.collection_name
        schema = self._schema(client, name)
        reqs = []
        for sub in request.requests:
            kw = self._search_args(client, name, schema, sub)
            if "data" not in kw:
                raise NotSupported("hybrid search by primary keys is not supported")
            reqs.append(fusion.AnnSearchRequest(
                kw["data"], kw["anns_field"] or _vector_field(schema, None).name,
                kw["search_params"], kw["limit"], expr=kw["filter"] or None,
                expr_params=kw["filter_params"]))
        rank = convert.kv_params(request.rank_params)
        ranker = convert.ranker(rank.get("strategy"), rank.get("params"))
        limit = int(rank.get("limit", 10))
        kw2: dict[str, Any] = {"offset": int(rank.get("offset", 0) or 0)}
        rd = rank.get("round_decimal", -1)
        if rd not in (-1, None):
            kw2["round_decimal"] = int(rd)
        for key in ("group_by_field", "group_size", "strict_group_size"):
            if key in rank:
                kw2[key] = rank[key]
        result = client.hybrid_search(name, reqs, ranker, limit=limit,
                                      output_fields=list(request.output_fields) or None,
                                      partition_names=list(request.partition_names) or None,
                                      **kw2)
        return self._results(name, schema, result, limit)

    @staticmethod
    def _results(name: str, schema: CollectionSchema, result: Any, limit: int) -> Any:
        pk = schema.primary_field
        data = schema_pb2.SearchResultData(num_queries=len(result), top_k=limit,
                                           primary_field_name=pk.name)
        entities: list[dict[str, Any]] = []
        ids: list[Any] = []
        for hits in result:
            data.topks.append(len(hits))
            for h in hits:
                ids.append(h.id)
                data.scores.append(float(h.distance))
                entities.append(dict(dict.__getitem__(h, "entity")))
        _ids(data.ids, pk, ids)
        names = [f.name for f in schema.fields if any(f.name in e for e in entities)]
        if entities and any(entities):
            columns, reported = convert.fields_of_rows(entities, names, schema)
            data.fields_data.extend(columns)
            data.output_fields.extend(reported)
        return milvus_pb2.SearchResults(status=_OK, results=data, collection_name=name)

    # -- indexes ----------------------------------------------------------------------------
    @rpc(common_pb2.Status)
    def CreateIndex(self, request: Any, context: Any) -> Any:
        """``Client.create_index`` from the key-value index params."""
        client = self._client(context, request)
        extra = convert.kv_params(request.extra_params)
        index_type = str(extra.pop("index_type", "") or "AUTOINDEX")
        metric = extra.pop("metric_type", None)
        params = extra.pop("params", None) or {}
        if not isinstance(params, dict):
            raise InvalidArgument(f"index params must be a JSON object, got {params!r}")
        params = {**params, **extra}
        client.create_index(request.collection_name, field_name=request.field_name,
                            index_type=index_type, metric_type=metric or None,
                            params=params or None, index_name=request.index_name or None)
        return _OK

    @staticmethod
    def _describe_indexes(client: Client, name: str, index_name: str, field_name: str,
                          target: Any) -> list[dict[str, Any]]:
        """Fill ``target`` (a repeated IndexDescription) with the named index, or every
        index of the field (of the collection, without one); their describe_index dicts."""
        if index_name:
            names = [index_name]
            client.describe_index(name, index_name)  # IndexNotFound when missing
        else:
            names = client.list_indexes(name, field_name=field_name or None)
            if not names:
                raise IndexNotFound(f"no index on {name!r}")
        out = []
        for ix in names:
            d = client.describe_index(name, ix)
            out.append(d)
            desc = target.add(
                index_name=ix, indexID=zlib.crc32(ix.encode()) + 1,
                field_name=d.get("field_name", ""), indexed_rows=int(d.get("indexed_rows", 0)),
                total_rows=int(d.get("total_rows", 0)),
                pending_index_rows=int(d.get("pending_index_rows", 0)),
                state=_INDEX_STATE.get(str(d.get("state")), common_pb2.Finished))
            desc.params.add(key="index_type", value=str(d.get("index_type", "")))
            if d.get("metric_type"):
                desc.params.add(key="metric_type", value=str(d["metric_type"]))
            build = d.get("params") or {}
            desc.params.add(key="params", value=convert.json_text(build))
        return out

    @rpc(milvus_pb2.DescribeIndexResponse)
    def DescribeIndex(self, request: Any, context: Any) -> Any:
        """``Client.describe_index`` (every index of the field, without a name)."""
        resp = milvus_pb2.DescribeIndexResponse(status=_OK)
        self._describe_indexes(self._client(context, request), request.collection_name,
                               request.index_name, request.field_name,
                               resp.index_descriptions)
        return resp

    @rpc(milvus_pb2.GetIndexStatisticsResponse)
    def GetIndexStatistics(self, request: Any, context: Any) -> Any:
        """As DescribeIndex (the rows each index covers)."""
        resp = milvus_pb2.GetIndexStatisticsResponse(status=_OK)
        self._describe_indexes(self._client(context, request), request.collection_name,
                               request.index_name, "", resp.index_descriptions)
        return resp

    @rpc(milvus_pb2.GetIndexStateResponse)
    def GetIndexState(self, request: Any, context: Any) -> Any:
        """The state of the field's index (older SDKs wait on it after CreateIndex)."""
        scratch = milvus_pb2.DescribeIndexResponse()
        self._describe_indexes(self._client(context, request), request.collection_name,
                               request.index_name, request.field_name,
                               scratch.index_descriptions)
        return milvus_pb2.GetIndexStateResponse(status=_OK,
                                                state=scratch.index_descriptions[0].state)

    @rpc(milvus_pb2.GetIndexBuildProgressResponse)
    def GetIndexBuildProgress(self, request: Any, context: Any) -> Any:
        """The rows the field's index covers, of the collection's."""
        scratch = milvus_pb2.DescribeIndexResponse()
        self._describe_indexes(self._client(context, request), request.collection_name,
                               request.index_name, request.field_name,
                               scratch.index_descriptions)
        d = scratch.index_descriptions[0]
        return milvus_pb2.GetIndexBuildProgressResponse(
            status=_OK, indexed_rows=d.indexed_rows, total_rows=d.total_rows)

    @rpc(common_pb2.Status)
    def DropIndex(self, request: Any, context: Any) -> Any:
        """``Client.drop_index`` (the field's indexes, without a name)."""
        client = self._client(context, request)
        names = [request.index_name] if request.index_name else client.list_indexes(
            request.collection_name, field_name=request.field_name or None)
        for ix in names:
            client.drop_index(request.collection_name, ix)
        return _OK


    # -- aliases ----------------------------------------------------------------------------
    @rpc(common_pb2.Status)
    def CreateAlias(self, request: Any, context: Any) -> Any:
        """``Client.create_alias``."""
        self._client(context, request).create_alias(request.collection_name, request.alias)
        return _OK

    @rpc(common_pb2.Status)
    def AlterAlias(self, request: Any, context: Any) -> Any:
        """``Client.alter_alias``: point the alias at another collection."""
        self._client(context, request).alter_alias(request.collection_name, request.alias)
        return _OK

    @rpc(common_pb2.Status)
    def DropAlias(self, request: Any, context: Any) -> Any:
        """``Client.drop_alias``."""
        self._client(context, request).drop_alias(request.alias)
        return _OK

    @rpc(milvus_pb2.DescribeAliasResponse)
    def DescribeAlias(self, request: Any, context: Any) -> Any:
        """``Client.describe_alias``: the collection it names."""
        d = self._client(context, request).describe_alias(request.alias)
        return milvus_pb2.DescribeAliasResponse(status=_OK, db_name=str(d.get("db_name", "")),
                                                alias=d["alias"],
                                                collection=str(d["collection_name"]))

    @rpc(milvus_pb2.ListAliasesResponse)
    def ListAliases(self, request: Any, context: Any) -> Any:
        """``Client.list_aliases`` (of one collection, or of the database)."""
        d = self._client(context, request).list_aliases(request.collection_name)
        return milvus_pb2.ListAliasesResponse(status=_OK, db_name=str(d.get("db_name", "")),
                                              collection_name=request.collection_name,
                                              aliases=list(d["aliases"]))

    # -- databases (Postgres schemas) -------------------------------------------------------
    def _admin(self, context: Any) -> Client:
        """The caller's client on its own database (the request's db_name is the target)."""
        return self._client(context, None)

    @rpc(common_pb2.Status)
    def CreateDatabase(self, request: Any, context: Any) -> Any:
        """``Client.create_database`` (a Postgres schema), with its properties."""
        props = {p.key: p.value for p in request.properties}
        self._admin(context).create_database(request.db_name, properties=props or None)
        return _OK

    @rpc(common_pb2.Status)
    def DropDatabase(self, request: Any, context: Any) -> Any:
        """``Client.drop_database`` (an empty one); the clients opened on it are closed."""
        self._admin(context).drop_database(request.db_name)
        self.clients.evict(lambda key: key[2] == request.db_name)
        return _OK

    @rpc(milvus_pb2.ListDatabasesResponse)
    def ListDatabases(self, request: Any, context: Any) -> Any:
        """``Client.list_databases``."""
        names = self._admin(context).list_databases()
        return milvus_pb2.ListDatabasesResponse(
            status=_OK, db_names=names, created_timestamp=[0] * len(names),
            db_ids=[_collection_id(n) for n in names])

    @rpc(milvus_pb2.DescribeDatabaseResponse)
    def DescribeDatabase(self, request: Any, context: Any) -> Any:
        """``Client.describe_database``: its properties."""
        d = self._admin(context).describe_database(request.db_name or "default")
        name = str(d.pop("name"))
        resp = milvus_pb2.DescribeDatabaseResponse(status=_OK, db_name=name,
                                                   dbID=_collection_id(name))
        for k, v in d.items():
            resp.properties.add(key=str(k), value=_property_text(v))
        return resp

    @rpc(common_pb2.Status)
    def AlterDatabase(self, request: Any, context: Any) -> Any:
        """``Client.alter_database_properties`` / ``drop_database_properties``."""
        client = self._admin(context)
        props = {p.key: p.value for p in request.properties}
        if props:
            client.alter_database_properties(request.db_name, props)
        if request.delete_keys:
            client.drop_database_properties(request.db_name, list(request.delete_keys))
        return _OK

    # -- collection maintenance -------------------------------------------------------------
    @rpc(common_pb2.Status)
    def RenameCollection(self, request: Any, context: Any) -> Any:
        """``Client.rename_collection`` (within its database)."""
        self._client(context, request).rename_collection(request.oldName, request.newName,
                                                          target_db=request.newDBName)
        return _OK

    @rpc(common_pb2.Status)
    def AlterCollection(self, request: Any, context: Any) -> Any:
        """``Client.alter_collection_properties`` (properties) and
        ``drop_collection_properties`` (delete_keys)."""
        client = self._client(context, request)
        name = request.collection_name or self._name_of_id(client, request.collectionID)
        props = {p.key: _property_value(p.key, p.value) for p in request.properties}
        if props:
            client.alter_collection_properties(name, props)
        if request.delete_keys:
            client.drop_collection_properties(name, list(request.delete_keys))
        return _OK

    @rpc(milvus_pb2.TruncateCollectionResponse)
    def TruncateCollection(self, request: Any, context: Any) -> Any:
        """``Client.truncate_collection``: every row gone, the collection kept."""
        self._client(context, request).truncate_collection(request.collection_name)
        return milvus_pb2.TruncateCollectionResponse(status=_OK)

    @rpc(common_pb2.Status)
    def AddCollectionField(self, request: Any, context: Any) -> Any:
        """``Client.add_collection_field`` (pymilvus falls back to this RPC when
        AlterCollectionSchema is unimplemented)."""
        client = self._client(context, request)
        name = request.collection_name or self._name_of_id(client, request.collectionID)
        pf = schema_pb2.FieldSchema()
        pf.ParseFromString(request.schema)
        f = convert.field_from_pb(pf)
        kw: dict[str, Any] = {}
        if f.nullable:
            kw["nullable"] = True
        for key in ("default_value", "max_length", "element_type", "max_capacity"):
            if getattr(f, key) is not None:
                kw[key] = getattr(f, key)
        if f.dtype is not DataType.VARCHAR and f.dtype is not DataType.ARRAY:
            kw.pop("max_length", None)
        client.add_collection_field(name, f.name, f.dtype, f.description, **kw)
        return _OK

    @rpc(common_pb2.Status)
    def AlterCollectionField(self, request: Any, context: Any) -> Any:
        """``Client.alter_collection_field``: vecpg's answer (NotSupported, saying what to
        do instead) as a Milvus status, rather than UNIMPLEMENTED."""
        client = self._client(context, request)
        client.collection_schema(request.collection_name).field(request.field_name)
        status, note = STATUS["alter_collection_field"]
        if status == "not_supported":  # Client's method raises this (set at import)
            raise NotSupported(f"alter_collection_field: {note}")
        raise NotSupported("alter_collection_field is not translated by vecpg serve yet")

    @rpc(milvus_pb2.ManualCompactionResponse)
    def ManualCompaction(self, request: Any, context: Any) -> Any:
        """``Client.compact``: VACUUM (ANALYZE), done when it answers."""
        client = self._client(context, request)
        name = request.collection_name or self._name_of_id(client, request.collectionID)
        job = client.compact(name, is_clustering=bool(request.majorCompaction),
                             is_l0=bool(request.l0Compaction))
        return milvus_pb2.ManualCompactionResponse(status=_OK, compactionID=int(job),
                                                   compactionPlanCount=1)

    @rpc(milvus_pb2.GetCompactionStateResponse)
    def GetCompactionState(self, request: Any, context: Any) -> Any:
        """Completed (``Client.get_compaction_state``: compact finishes before it answers)."""
        self._client(context, request).get_compaction_state(int(request.compactionID))
        return milvus_pb2.GetCompactionStateResponse(status=_OK, state=common_pb2.Completed,
                                                     completedPlanNo=1)

    @staticmethod
    def _name_of_id(client: Client, collection_id: int) -> str:
        for n in client.list_collections():
            if _collection_id(n) == collection_id:
                return n
        raise CollectionNotFound(f"no collection has id {collection_id}")

    # -- users, roles, privileges (Postgres roles and grants) -------------------------------
    @rpc(common_pb2.Status)
    def CreateCredential(self, request: Any, context: Any) -> Any:
        """``Client.create_user`` (the password arrives base64-encoded)."""
        self._admin(context).create_user(request.username, _b64(request.password),
                                         description=request.description or None)
        return _OK

    @rpc(common_pb2.Status)
    def UpdateCredential(self, request: Any, context: Any) -> Any:
        """``Client.update_password``; without passwords (pymilvus' ``update_user``),
        ``Client.update_user``: the description only."""
        client = self._admin(context)
        if not request.oldPassword and not request.newPassword:
            client.update_user(request.username, request.description)
            return _OK
        client.update_password(request.username, _b64(request.oldPassword),
                               _b64(request.newPassword))
        return _OK

    @rpc(common_pb2.Status)
    def AlterRole(self, request: Any, context: Any) -> Any:
        """``Client.alter_role``: the role's description."""
        self._admin(context).alter_role(request.role_name, request.description)
        return _OK

    @rpc(common_pb2.Status)
    def DeleteCredential(self, request: Any, context: Any) -> Any:
        """``Client.drop_user``."""
        self._admin(context).drop_user(request.username)
        return _OK

    @rpc(milvus_pb2.ListCredUsersResponse)
    def ListCredUsers(self, request: Any, context: Any) -> Any:
        """``Client.list_users``."""
        return milvus_pb2.ListCredUsersResponse(status=_OK,
                                                usernames=self._admin(context).list_users())

    @rpc(common_pb2.Status)
    def CreateRole(self, request: Any, context: Any) -> Any:
        """``Client.create_role`` (a NOLOGIN Postgres role)."""
        self._admin(context).create_role(request.entity.name,
                                         description=request.entity.description or None)
        return _OK

    @rpc(common_pb2.Status)
    def DropRole(self, request: Any, context: Any) -> Any:
        """``Client.drop_role`` (``force_drop`` too)."""
        self._admin(context).drop_role(request.role_name, force_drop=bool(request.force_drop))
        return _OK

    @rpc(common_pb2.Status)
    def OperateUserRole(self, request: Any, context: Any) -> Any:
        """``Client.grant_role`` / ``revoke_role``."""
        client = self._admin(context)
        if request.type == milvus_pb2.AddUserToRole:
            client.grant_role(request.username, request.role_name)
        else:
            client.revoke_role(request.username, request.role_name)
        return _OK

    @rpc(milvus_pb2.SelectRoleResponse)
    def SelectRole(self, request: Any, context: Any) -> Any:
        """One role (or every role), with its users when asked (``list_roles`` and
        ``describe_role`` read this)."""
        client = self._admin(context)
        roles = client.list_roles()
        if request.HasField("role") and request.role.name:
            roles = [r for r in roles if r == request.role.name]
        members: dict[str, list[str]] = {}
        if request.include_user_info:
            for u in client.list_users():
                for r in client.describe_user(u).get("roles", ()):
                    members.setdefault(r, []).append(u)
        resp = milvus_pb2.SelectRoleResponse(status=_OK)
        for r in roles:
            desc = str(client.describe_role(r).get("description") or "") if len(roles) == 1 \
                else ""
            res = resp.results.add(role=milvus_pb2.RoleEntity(name=r, description=desc))
            for u in members.get(r, []):
                res.users.add(name=u)
        return resp

    @rpc(milvus_pb2.SelectUserResponse)
    def SelectUser(self, request: Any, context: Any) -> Any:
        """One user (or every user), with its roles when asked (``describe_user``)."""
        client = self._admin(context)
        if request.HasField("user") and request.user.name:
            users = [request.user.name]
        else:
            users = client.list_users()
        resp = milvus_pb2.SelectUserResponse(status=_OK)
        for u in users:
            d = client.describe_user(u)
            if not d:
                continue
            res = resp.results.add(user=milvus_pb2.UserEntity(name=u),
                                   description=str(d.get("description") or ""))
            if request.include_role_info:
                for r in d.get("roles", ()):
                    res.roles.add(name=r)
        return resp

    @rpc(common_pb2.Status)
    def OperatePrivilege(self, request: Any, context: Any) -> Any:
        """``Client.grant_privilege`` / ``revoke_privilege``."""
        e = request.entity
        client = self._admin(context)
        op = client.grant_privilege if request.type == milvus_pb2.Grant \
            else client.revoke_privilege
        op(e.role.name, e.object.name, e.grantor.privilege.name, e.object_name,
           db_name=e.db_name)
        return _OK

    @rpc(common_pb2.Status)
    def OperatePrivilegeV2(self, request: Any, context: Any) -> Any:
        """``Client.grant_privilege_v2`` / ``revoke_privilege_v2``."""
        client = self._admin(context)
        op = client.grant_privilege_v2 if request.type == milvus_pb2.Grant \
            else client.revoke_privilege_v2
        op(request.role.name, request.grantor.privilege.name, request.collection_name,
           db_name=request.db_name or None)
        return _OK

    @rpc(milvus_pb2.SelectGrantResponse)
    def SelectGrant(self, request: Any, context: Any) -> Any:
        """``Client.describe_role``'s privileges (in the entity's database), as grants."""
        e = request.entity
        db = e.db_name if e.db_name not in ("", "*") else None
        d = self._client(context, None, db=db).describe_role(e.role.name)
        resp = milvus_pb2.SelectGrantResponse(status=_OK)
        for p in d.get("privileges", []):
            if e.HasField("object") and e.object.name and p["object_type"] != e.object.name:
                continue
            if e.object_name and p["object_name"] != e.object_name:
                continue
            resp.entities.add(
                role=milvus_pb2.RoleEntity(name=p["role_name"]),
                object=milvus_pb2.ObjectEntity(name=p["object_type"]),
                object_name=p["object_name"], db_name=str(p.get("db_name") or ""),
                grantor=milvus_pb2.GrantorEntity(
                    user=milvus_pb2.UserEntity(name=str(p.get("grantor_name") or "")),
                    privilege=milvus_pb2.PrivilegeEntity(name=p["privilege"])))
        return resp

    @rpc(milvus_pb2.ListPrivilegeGroupsResponse)
    def ListPrivilegeGroups(self, request: Any, context: Any) -> Any:
        """``Client.list_privilege_groups`` (the built-in groups)."""
        resp = milvus_pb2.ListPrivilegeGroupsResponse(status=_OK)
        for g in self._admin(context).list_privilege_groups():
            info = resp.privilege_groups.add(group_name=g["privilege_group"])
            for priv in g["privileges"]:
                info.privileges.add(name=priv)
        return resp

    @rpc(common_pb2.Status)
    def CreatePrivilegeGroup(self, request: Any, context: Any) -> Any:
        """``Client.create_privilege_group``: not supported (a role is the group)."""
        self._admin(context).create_privilege_group(request.group_name)
        return _OK

    @rpc(common_pb2.Status)
    def DropPrivilegeGroup(self, request: Any, context: Any) -> Any:
        """``Client.drop_privilege_group``: not supported (see CreatePrivilegeGroup)."""
        self._admin(context).drop_privilege_group(request.group_name)
        return _OK


def _ids(target: Any, pk: FieldSchema, values: list[Any]) -> None:
    if pk.dtype is DataType.VARCHAR:
        target.str_id.data.extend(str(v) for v in values)
    else:
        target.int_id.data.extend(int(v) for v in values)


def _flag(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).strip().lower() == "true"


def _b64(value: Any) -> str:
    """A password as pymilvus sends it (base64 of its UTF-8)."""
    try:
        return base64.b64decode(value).decode()
    except ValueError as e:
        raise InvalidArgument("a password must be base64-encoded UTF-8") from e


def _property_value(key: str, text: str) -> Any:
    """A collection property from its wire text: vecpg's ``recall`` as a number, Milvus'
    own as the strings Milvus keeps."""
    if key == "recall":
        try:
            return float(text)
        except ValueError as e:
            raise InvalidArgument(f"recall must be a number, got {text!r}") from e
    return text


def _property_text(value: Any) -> str:
    return value if isinstance(value, str) else convert.json_text(value)


def _vector_field(schema: CollectionSchema, anns: str | None) -> FieldSchema:
    vfs = schema.vector_fields
    if anns:
        return schema.field(anns)
    if len(vfs) != 1:
        raise InvalidArgument(f"the collection has several vector fields "
                              f"{[f.name for f in vfs]}; pass anns_field")
    return vfs[0]


def _order_item(text: str) -> Any:
    field, _, direction = text.partition(":")
    return {"field": field.strip(), "order": (direction or "asc").strip()}


def _columns(rows: list[dict[str, Any]], output: list[str],
             schema: CollectionSchema) -> list[str]:
    """The schema fields (and ``count(*)``) a query answer has, in schema order: those in
    the rows, or with no rows those the request names (so pymilvus still sees columns)."""
    if rows:
        keys = set().union(*(r.keys() for r in rows))
        names = [f.name for f in schema.fields if f.name in keys]
        return (["count(*)"] if "count(*)" in keys else []) + names
    if output == ["count(*)"]:
        return ["count(*)"]
    pk = schema.primary_field.name
    if not output or "*" in output:
        return [f.name for f in schema.fields]
    return [f.name for f in schema.fields if f.name == pk or f.name in output]


# The RPCs behind the MilvusClient methods vecpg classifies not_supported (vecpg.milvus_api):
# answered with that NotSupported as a Milvus status (code 10), whose message says what to
# do instead, rather than a bare UNIMPLEMENTED.
_NOT_SUPPORTED_RPCS = {
    "CreateResourceGroup": "create_resource_group", "DropResourceGroup": "drop_resource_group",
    "DescribeResourceGroup": "describe_resource_group",
    "ListResourceGroups": "list_resource_groups",
    "UpdateResourceGroups": "update_resource_groups", "TransferReplica": "transfer_replica",
    "GetReplicas": "describe_replica",
    "UpdateReplicateConfiguration": "update_replicate_configuration",
    "GetReplicateConfiguration": "get_replicate_configuration",
    "GetQuerySegmentInfo": "list_loaded_segments",
    "GetPersistentSegmentInfo": "list_persistent_segments",
    "GetCompactionStateWithPlans": "get_compaction_plans",
    "CreateSnapshot": "create_snapshot", "DropSnapshot": "drop_snapshot",
    "ListSnapshots": "list_snapshots", "DescribeSnapshot": "describe_snapshot",
    "RestoreSnapshot": "restore_snapshot", "GetRestoreSnapshotState": "get_restore_snapshot_state",
    "ListRestoreSnapshotJobs": "list_restore_snapshot_jobs",
    "PinSnapshotData": "pin_snapshot_data", "UnpinSnapshotData": "unpin_snapshot_data",
    "AddFileResource": "add_file_resource", "RemoveFileResource": "remove_file_resource",
    "ListFileResources": "list_file_resources",
    "RefreshExternalCollection": "refresh_external_collection",
    "GetRefreshExternalCollectionProgress": "get_refresh_external_collection_progress",
    "ListRefreshExternalCollectionJobs": "list_refresh_external_collection_jobs",
    "AlterIndex": "alter_index_properties", "OperatePrivilegeGroup": "add_privileges_to_group",
    "RunAnalyzer": "run_analyzer", "AddCollectionFunction": "add_collection_function",
    "AlterCollectionFunction": "alter_collection_function",
    "DropCollectionFunction": "drop_collection_function",
    "AddCollectionStructField": "add_collection_struct_field",
}


def _not_supported(rpc_name: str, method: str, note: str, reply: Any) -> Callable[..., Any]:
    def handler(self: Any, request: Any, context: Any) -> Any:
        raise NotSupported(f"{method}: {note}")
    handler.__name__ = handler.__qualname__ = rpc_name
    handler.__doc__ = f"Not supported (``Client.{method}``): {note}."
    return rpc(reply)(handler)


for _m in milvus_pb2.DESCRIPTOR.services_by_name["MilvusService"].methods:
    _method = _NOT_SUPPORTED_RPCS.get(_m.name)
    _status = STATUS.get(_method or "", ("", ""))
    if _method is None or _status[0] != "not_supported" or _m.name in MilvusService.__dict__ \
            or _m.server_streaming or _m.client_streaming:  # streams: UNIMPLEMENTED
        continue
    _reply = common_pb2.Status if _m.output_type.name == "Status" else getattr(
        milvus_pb2, _m.output_type.name, None)
    if _reply is not None and (_reply is common_pb2.Status
                               or "status" in _m.output_type.fields_by_name):
        setattr(MilvusService, _m.name, _not_supported(_m.name, _method, _status[1], _reply))

# Every other RPC of the service: UNIMPLEMENTED, naming it.
for _name in dir(milvus_pb2_grpc.MilvusServiceServicer):
    if _name[0].isupper() and _name not in MilvusService.__dict__:
        setattr(MilvusService, _name, _not_implemented(_name))


def implemented_rpcs() -> list[str]:
    """The MilvusService RPCs ``vecpg serve`` translates onto vecpg, by name: every other
    answers NotSupported (:func:`not_supported_rpcs`) or UNIMPLEMENTED."""
    service = milvus_pb2.DESCRIPTOR.services_by_name["MilvusService"]
    return sorted(m.name for m in service.methods
                  if m.name in MilvusService.__dict__ and m.name not in _NOT_SUPPORTED_RPCS
                  and not getattr(MilvusService.__dict__[m.name], "unimplemented", False))


def not_supported_rpcs() -> dict[str, str]:
    """The RPCs answered with vecpg's NotSupported status (code 10) and the MilvusClient
    method each serves (its note in :data:`vecpg.milvus_api.STATUS` says why)."""
    return {n: m for n, m in sorted(_NOT_SUPPORTED_RPCS.items())
            if n in MilvusService.__dict__
            and not getattr(MilvusService.__dict__[n], "unimplemented", False)}


__all__ = ["ClientCache", "MilvusService", "implemented_rpcs", "not_supported_rpcs",
           "status_of"]
