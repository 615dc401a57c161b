"""Milvus' RESTful API v2 (``POST /v2/vectordb/<category>/<action>``, JSON in, ``{"code": 0,
"data": ...}`` out) beside the gRPC service, on the same clients, credentials and errors.

It listens on a port of its own (``vecpg serve --rest-port``): Milvus answers both on
19530, but grpcio owns its port and speaks only HTTP/2, so HTTP/1.1 requests cannot share
it. The endpoints and their JSON follow Milvus' own REST layer:

- ``collections/``: list, has, describe, create (quick form: ``dimension``, ``metricType``,
  ``idType``, ``autoID``, ``primaryFieldName``, ``vectorFieldName``; or ``schema`` with
  ``fields`` and ``indexParams``), drop, get_stats, load, release, get_load_state, rename;
- ``entities/``: insert, upsert, delete, query, get, search, hybrid_search;
- ``indexes/``: list, describe, create, drop; ``partitions/``: list, has, create, drop,
  get_stats; ``aliases/``: list, describe, create, alter, drop; ``databases/``: list,
  describe, create, drop.

Calls that carry no rows are the gRPC handlers themselves (a request message built from
the JSON, the response message read back), so both protocols answer alike; rows, vectors
and hits go to :class:`vecpg.Client` directly (JSON rows are what it takes). Errors are
Milvus' codes and messages with HTTP 200, as Milvus answers. ``Authorization: Bearer
user:password`` logs in as that Postgres role; ``dbName`` picks the database. Vectors are
JSON lists (binary vectors: lists of byte values; sparse ones: ``{"index": value}``).
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
from pymilvus.grpc_gen import common_pb2, milvus_pb2, schema_pb2

from .. import fusion
from ..client import Client
from ..errors import InvalidArgument, VecpgError
from ..schema import CollectionSchema, DataType, FieldSchema
from . import convert
from .service import MilvusService, status_of

_log = logging.getLogger("vecpg.wire.rest")
_MAX_BODY = 256 * 2**20  # bytes; Milvus' own REST limit is 64 MB by default


class _Abort(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class _Context:
    """What the gRPC handlers read of a ServicerContext: the credentials (as pymilvus'
    ``authorization`` metadata) and ``abort``."""

    def __init__(self, token: str, db: str) -> None:
        meta = [("authorization", base64.b64encode(token.encode()).decode())] if token else []
        if db:
            meta.append(("dbname", db))
        self._meta = meta

    def invocation_metadata(self) -> list[tuple[str, str]]:
        return self._meta

    def abort(self, code: Any, details: str) -> None:
        raise _Abort(1800 if str(code).endswith("UNAUTHENTICATED") else 1, details)


def _ok(data: Any = None) -> dict[str, Any]:
    return {"code": 0, "data": {} if data is None else data}


def _status_body(st: Any) -> dict[str, Any] | None:
    """A non-success status as Milvus' error body (None for success)."""
    if st.code == 0 and st.error_code == common_pb2.Success:
        return None
    return {"code": int(st.code or 1), "message": st.reason}


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, (bytes, bytearray, memoryview)):
        return list(bytes(v))  # binary vectors: their byte values, as Milvus' REST takes
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        if len(v) == 1 and isinstance(v[0], (bytes, bytearray)):
            return list(bytes(v[0]))
        return [_jsonable(x) for x in v]
    return v


def _vector_in(f: FieldSchema, v: Any) -> Any:
    """A JSON vector as vecpg takes it for field ``f``."""
    if f.dtype is DataType.BINARY_VECTOR and isinstance(v, list):
        try:
            return bytes(v)
        except (TypeError, ValueError) as e:
            raise InvalidArgument(f"{f.name!r}: a binary vector is a list of byte values "
                                  f"(0-255), got {str(v)[:60]}") from e
    if f.dtype is DataType.SPARSE_FLOAT_VECTOR and isinstance(v, dict):
        try:
            return {int(k): float(x) for k, x in v.items()}
        except (TypeError, ValueError) as e:
            raise InvalidArgument(f"{f.name!r}: a sparse vector maps indexes to numbers, "
                                  f"got {str(v)[:60]}") from e
    if f.dtype is DataType.INT8_VECTOR and isinstance(v, list):
        return np.asarray(v, dtype=np.int8)
    return v


def _rows_in(rows: Any, schema: CollectionSchema) -> list[dict[str, Any]]:
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise InvalidArgument("data must be a list of JSON objects (rows)")
    vectors = {f.name: f for f in schema.vector_fields}
    out = []
    for r in rows:
        row = dict(r)
        for name, f in vectors.items():
            if name in row:
                row[name] = _vector_in(f, row[name])
        out.append(row)
    return out


def _kv_json(pairs: Any) -> list[dict[str, str]]:
    return [{"key": p.key, "value": p.value} for p in pairs]


_DTYPE_NUMBERS = dict(schema_pb2.DataType.items())
_DTYPE_NAMES = {v: k for k, v in _DTYPE_NUMBERS.items()}


def _dtype(name: Any, what: str) -> DataType:
    """vecpg's type for a Milvus REST type name (``Int64``, ``FloatVector``, ...)."""
    if not isinstance(name, str) or name not in _DTYPE_NUMBERS:
        raise InvalidArgument(f"{what}: unknown data type {name!r}; expected one of "
                              f"{', '.join(_DTYPE_NUMBERS)}")
    return convert.vecpg_type(_DTYPE_NUMBERS[name], what)


class RestApi:
    """The REST endpoints on a :class:`MilvusService` (its clients and error statuses)."""

    def __init__(self, service: MilvusService) -> None:
        self.service = service
        self._routes: dict[str, Callable[[_Context, dict[str, Any]], dict[str, Any]]] = {
            "collections/list": self._list, "collections/has": self._has,
            "collections/describe": self._describe, "collections/create": self._create,
            "collections/drop": self._drop, "collections/get_stats": self._stats,
            "collections/load": self._load, "collections/release": self._release,
            "collections/get_load_state": self._load_state,
            "collections/rename": self._rename,
            "entities/insert": self._insert, "entities/upsert": self._upsert,
            "entities/delete": self._delete, "entities/query": self._query,
            "entities/get": self._get, "entities/search": self._search,
            "entities/hybrid_search": self._hybrid,
            "indexes/list": self._index_list, "indexes/describe": self._index_describe,
            "indexes/create": self._index_create, "indexes/drop": self._index_drop,
            "partitions/list": self._part_list, "partitions/has": self._part_has,
            "partitions/create": self._part_create, "partitions/drop": self._part_drop,
            "partitions/get_stats": self._part_stats,
            "aliases/list": self._alias_list, "aliases/describe": self._alias_describe,
            "aliases/create": self._alias_create, "aliases/alter": self._alias_alter,
            "aliases/drop": self._alias_drop,
            "databases/list": self._db_list, "databases/describe": self._db_describe,
            "databases/create": self._db_create, "databases/drop": self._db_drop,
        }

    @property
    def paths(self) -> list[str]:
        """Every path served, ``/v2/vectordb/...``."""
        return [f"/v2/vectordb/{p}" for p in sorted(self._routes)]

    def handle(self, path: str, token: str, body: dict[str, Any]) -> dict[str, Any]:
        """The JSON answer to one request (never raises)."""
        route = path.removeprefix("/v2/vectordb/").strip("/")
        fn = self._routes.get(route)
        if fn is None:
            return {"code": 1100 if path.startswith("/v2/vectordb/") else 404,
                    "message": f"vecpg serve has no REST endpoint {path}"}
        ctx = _Context(token, str(body.get("dbName") or ""))
        try:
            with self.service.clients.request():
                return fn(ctx, body)
        except _Abort as e:
            return {"code": e.code, "message": e.message}
        except VecpgError as e:
            st = status_of(e, _Named(body))
            return {"code": st.code, "message": st.reason}
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            # JSON of the wrong shape for the endpoint (e.g. a string where a list goes)
            return {"code": 1100, "message": f"invalid request body: {type(e).__name__}: {e}"}

    # -- helpers ----------------------------------------------------------------------------
    def _client(self, ctx: _Context, body: dict[str, Any]) -> Client:
        return self.service._client(ctx, None, db=str(body.get("dbName") or "default"))

    def _rpc(self, rpc: str, request: Any, ctx: _Context) -> Any:
        """A gRPC handler's answer; its error status raised as the REST error."""
        resp = getattr(self.service, rpc)(request, ctx)
        st = resp if isinstance(resp, common_pb2.Status) else resp.status
        err = _status_body(st)
        if err is not None:
            raise _Abort(err["code"], err["message"])
        return resp

    @staticmethod
    def _name(body: dict[str, Any], key: str = "collectionName") -> str:
        v = body.get(key)
        if not isinstance(v, str) or not v:
            raise InvalidArgument(f"{key} is required (a string)")
        return v

    # -- collections ------------------------------------------------------------------------
    def _list(self, ctx: _Context, body: dict[str, Any]) -> dict[str, Any]:
        r = self._rpc("ShowCollections", milvus_pb2.ShowCollectionsRequest(), ctx)
        return _ok(list(r.collection_names))

    def _has(self, ctx: _Context, body: dict[str, Any]) -> dict[str, Any]:
        r = self._rpc("HasCollection", milvus_pb2.HasCollectionRequest(
            collection_name=self._name(body)), ctx)
        return _ok({"has": r.value})

    def _describe(self, ctx: _Context, body: dict[str, Any]) -> dict[str, Any]:
        name = self._name(body)
        r = self._rpc("DescribeCollection", milvus_pb2.DescribeCollectionRequest(
            collection_name=name), ctx)
        s = r.schema
        fields = []
        for f in s.fields:
            d: dict[str, Any] = {"name": f.name, "id": f.fieldID,
                                 "type": _DTYPE_NAMES[f.data_type],
                                 "primaryKey": f.is_primary_key, "autoId": f.autoID,
                                 "partitionKey": f.is_partition_key,
                                 "clusteringKey": f.is_clustering_key,
                                 "nullable": f.nullable, "description": f.description,
                                 "params": _kv_json(f.type_params)}
            if f.data_type == schema_pb2.Array:
                d["elementType"] = _DTYPE_NAMES[f.element_type]
            if f.HasField("default_value") and f.default_value.WhichOneof("data"):
                d["defaultValue"] = getattr(f.default_value, f.default_value.WhichOneof("data"))
            fields.append(d)
        client = self._client(ctx, body)
        indexes = []
        for ix in client.list_indexes(name):
            di = client.describe_index(name, ix)
            indexes.append({"fieldName": di.get("field_name", ""), "indexName": ix,
                            "metricType": str(di.get("metric_type") or "")})
        return _ok({
            "collectionName": r.collection_name, "collectionID": r.collectionID,
            "description": s.description, "autoId": s.autoID,
            "enableDynamicField": s.enable_dynamic_field, "fields": fields,
            "functions": [{"name": fn.name, "type": schema_pb2.FunctionType.Name(fn.type),
                           "inputFieldNames": list(fn.input_field_names),
                           "outputFieldNames": list(fn.output_field_names),
                           "params": _kv_json(fn.params)} for fn in s.functions],
            "indexes": indexes, "load": "LoadStateLoaded", "shardsNum": r.shards_num,
            "partitionsNum": r.num_partitions, "consistencyLevel": "Strong",
            "aliases": list(r.aliases), "properties": _kv_json(r.properties)})

    def _create(self, ctx: _Context, body: dict[str, Any]) -> dict[str, Any]:
        name = self._name(body)
        client = self._client(ctx, body)
        schema_json = body.get("schema")
        params = body.get("params") or {}
        if not isinstance(params, dict):
            raise InvalidArgument("params must be a JSON object")
        kw: dict[str, Any] = {}
        if params.get("properties"):
            kw["properties"] = params["properties"]
        if schema_json and schema_json.get("fields"):
            schema = CollectionSchema(
                enable_dynamic_field=bool(schema_json.get("enableDynamicField", False)),
                description=str(body.get("description") or ""))
            for f in schema_json["fields"]:
                schema.fields.append(self._field(f, bool(schema_json.get("autoID", False))))
            client.create_collection(name, schema=schema, **kw)
            index_params = body.get("indexParams") or []
            for ip in index_params:
                self._create_index(client, name, ip)
            return _ok()
        dim = body.get("dimension")
        if dim is None:
            raise InvalidArgument("create needs dimension (the quick form) or schema")
        id_type = str(body.get("idType") or "Int64")
        vector = str(body.get("vectorFieldName") or "vector")
        metric = str(body.get("metricType") or "COSINE")
        client.create_collection(
            name, dimension=int(dim), primary_field_name=str(body.get("primaryFieldName") or
                                                              "id"),
            id_type="string" if id_type.lower() == "varchar" else "int",
            vector_field_name=vector, metric_type=metric,
            auto_id=bool(body.get("autoID", False)),
            max_length=int(params.get("max_length", 65535)),
            description=str(body.get("description") or ""),
            enable_dynamic_field=bool(params.get("enableDynamicField", True)), **kw)
        # as Milvus (and pymilvus' quick form): an AUTOINDEX on the vector field
        client.create_index(name, field_name=vector, index_type="AUTOINDEX",
                            metric_type=metric, index_name=vector)
        return _ok()

    @staticmethod
    def _field(f: dict[str, Any], auto_id: bool) -> FieldSchema:
        name = f.get("fieldName")
        if not isinstance(name, str):
            raise InvalidArgument(f"a schema field needs fieldName, got {f!r}")
        dtype = _dtype(f.get("dataType"), f"field {name!r}")
        params = dict(f.get("elementTypeParams") or {})
        kw: dict[str, Any] = {"is_primary": bool(f.get("isPrimary", False)),
                              "is_partition_key": bool(f.get("isPartitionKey", False)),
                              "nullable": bool(f.get("nullable", False)),
                              "description": str(f.get("description") or "")}
        if kw["is_primary"]:
            kw["auto_id"] = auto_id
        if dtype is DataType.ARRAY:
            kw["element_type"] = _dtype(f.get("elementDataType"), f"elements of {name!r}")
        for key in ("dim", "max_length", "max_capacity"):
            if key in params:
                kw[key] = int(params.pop(key))
        for key in ("enable_analyzer", "enable_match"):
            if key in params:
                kw[key] = convert._flag(params.pop(key))
        if "analyzer_params" in params:
            ap = params.pop("analyzer_params")
            kw["analyzer_params"] = json.loads(ap) if isinstance(ap, str) else ap
        if f.get("defaultValue") is not None:
            kw["default_value"] = f["defaultValue"]
        return FieldSchema(name, dtype, **kw)

    @staticmethod
    def _create_index(client: Client, name: str, ip: dict[str, Any]) -> None:
        if not isinstance(ip, dict) or not isinstance(ip.get("fieldName"), str):
            raise InvalidArgument(f"an index param needs fieldName, got {ip!r}")
        params = ip.get("params") or {}
        if not isinstance(params, dict):
            raise InvalidArgument("index params must be a JSON object")
        params = dict(params)
        kind = str(ip.get("indexType") or params.pop("index_type", "") or "AUTOINDEX")
        metric = ip.get("metricType") or params.pop("metric_type", None)
        client.create_index(name, field_name=ip["fieldName"], index_type=kind,
                            metric_type=metric or None, params=params or None,
                            index_name=ip.get("indexName") or None)

    def _drop(self, ctx: _Context, body: dict[str, Any]) -> dict[str, Any]:
        self._rpc("DropCollection", milvus_pb2.DropCollectionRequest(
            collection_name=self._name(body)), ctx)
        return _ok()

    def _stats(self, ctx: _Context, body: dict[str, Any]) -> dict[str, Any]:
        r = self._rpc("GetCollectionStatistics", milvus_pb2.GetCollectionStatisticsRequest(
            collection_name=self._name(body)), ctx)
        return _ok({"rowCount": int({p.key: p.value for p in r.stats}.get("row_count", 0))})

    def _load(self, ctx: _Context, body: dict[str, Any]) -> dict[str, Any]:
        self._rpc("LoadCollection", milvus_pb2.LoadCollectionRequest(
            collection_name=self._name(body)), ctx)
        return _ok()

    def _release(self, ctx: _Context, body: dict[str, Any]) -> dict[str, Any]:
        self._rpc("ReleaseCollection", milvus_pb2.ReleaseCollectionRequest(
            collection_name=self._name(body)), ctx)
        return _ok()

    def _load_state(self, ctx: _Context, body: dict[str, Any]) -> dict[str, Any]:
        self._rpc("GetLoadState", milvus_pb2.GetLoadStateRequest(
            collection_name=self._name(body),
            partition_names=list(body.get("partitionNames") or [])), ctx)
        return _ok({"loadState": "LoadStateLoaded", "loadProgress": 100})

    def _rename(self, ctx: _Context, body: dict[str, Any]) -> dict[str, Any]:
        self._rpc("RenameCollection", milvus_pb2.RenameCollectionRequest(
            oldName=self._name(body), newName=self._name(body, "newCollectionName"),
            newDBName=str(body.get("newDbName") or "")), ctx)
        return _ok()

    # -- entities ---------------------------------------------------------------------------
    def _write(self, ctx: _Context, body: dict[str, Any], upsert: bool) -> dict[str, Any]:
        name = self._name(body)
        client = self._client(ctx, body)
        rows = _rows_in(body.get("data"), client.collection_schema(name))
        part = str(body.get("partitionName") or "")
        if upsert:
            res = client.upsert(name, rows, partition_name=part)
            return _ok({"upsertCount": int(res["upsert_count"]),
                        "upsertIds": _jsonable(list(res["ids"]))})
        res = client.insert(name, rows, partition_name=part)
        return _ok({"insertCount": int(res["insert_count"]),
                    "insertIds": _jsonable(list(res["ids"]))})

    def _insert(self, ctx: _Context, body: dict[str, Any]) -> dict[str, Any]:
        return self._write(ctx, body, upsert=False)

    def _upsert(self, ctx: _Context, body: dict[str, Any]) -> dict[str, Any]:
        return self._write(ctx, body, upsert=True)

    def _delete(self, ctx: _Context, body: dict[str, Any]) -> dict[str, Any]:
        name = self._name(body)
        r = self._client(ctx, body).delete(
            name, filter=str(body.get("filter") or ""),
            partition_name=str(body.get("partitionName") or ""),
            filter_params=body.get("exprParams") or None)
        return _ok({"deleteCount": int(r["delete_count"])})

    def _query(self, ctx: _Context, body: dict[str, Any]) -> dict[str, Any]:
        name = self._name(body)
        kw: dict[str, Any] = {}
        if body.get("limit"):
            kw["limit"] = int(body["limit"])
        if body.get("offset"):
            kw["offset"] = int(body["offset"])
        rows = self._client(ctx, body).query(
            name, str(body.get("filter") or ""), output_fields=body.get("outputFields") or None,
            partition_names=body.get("partitionNames") or None,
            filter_params=body.get("exprParams") or None, **kw)
        return _ok(_jsonable(rows))

    def _get(self, ctx: _Context, body: dict[str, Any]) -> dict[str, Any]:
        name = self._name(body)
        if "id" not in body:
            raise InvalidArgument("get needs id (a primary key or a list of them)")
        rows = self._client(ctx, body).get(name, body["id"],
                                           output_fields=body.get("outputFields") or None,
                                           partition_names=body.get("partitionNames") or None)
        return _ok(_jsonable(rows))

    @staticmethod
    def _search_params(body: dict[str, Any], metric_key: str = "metricType") -> dict[str, Any]:
        sp = body.get("searchParams") or body.get("params") or {}
        if not isinstance(sp, dict):
            raise InvalidArgument("searchParams must be a JSON object")
        sp = dict(sp)
        inner = sp.pop("params", {}) or {}
        if not isinstance(inner, dict):
            raise InvalidArgument("searchParams.params must be a JSON object")
        out: dict[str, Any] = {"params": {**{k: v for k, v in sp.items()
                                             if k not in ("metricType", "metric_type")},
                                          **inner}}
        metric = body.get(metric_key) or sp.get("metricType") or sp.get("metric_type")
        if metric:
            out["metric_type"] = metric
        return out

    def _data(self, client: Client, name: str, body: dict[str, Any]) -> tuple[str, list[Any]]:
        data = body.get("data")
        if not isinstance(data, list) or not data:
            raise InvalidArgument("data must be a non-empty list of query vectors")
        schema = client.collection_schema(name)
        anns = body.get("annsField") or None
        if anns is None and len(schema.vector_fields) == 1:
            anns = schema.vector_fields[0].name
        if anns is None:
            raise InvalidArgument("the collection has several vector fields; pass annsField")
        f = schema.field(str(anns))
        return f.name, [_vector_in(f, v) for v in data]

    @staticmethod
    def _hits(result: Any, pk: str) -> list[dict[str, Any]]:
        out = []
        for hits in result:
            for h in hits:
                row = {pk: h.id, "distance": float(h.distance)}
                row.update(dict.__getitem__(h, "entity"))
                out.append(_jsonable(row))
        return out

    def _search(self, ctx: _Context, body: dict[str, Any]) -> dict[str, Any]:
        name = self._name(body)
        client = self._client(ctx, body)
        anns, data = self._data(client, name, body)
        kw: dict[str, Any] = {}
        if body.get("offset"):
            kw["offset"] = int(body["offset"])
        if body.get("groupingField"):
            kw["group_by_field"] = body["groupingField"]
            if body.get("groupSize"):
                kw["group_size"] = int(body["groupSize"])
            if body.get("strictGroupSize"):
                kw["strict_group_size"] = True
        result = client.search(name, data, filter=str(body.get("filter") or ""),
                               limit=int(body.get("limit") or 100),
                               output_fields=body.get("outputFields") or None,
                               search_params=self._search_params(body), anns_field=anns,
                               partition_names=body.get("partitionNames") or None,
                               filter_params=body.get("exprParams") or None, **kw)
        return _ok(self._hits(result, client.collection_schema(name).primary_field.name))

    def _hybrid(self, ctx: _Context, body: dict[str, Any]) -> dict[str, Any]:
        name = self._name(body)
        client = self._client(ctx, body)
        subs = body.get("search")
        if not isinstance(subs, list) or not subs:
            raise InvalidArgument("hybrid_search needs search: a list of sub-searches")
        reqs = []
        for sub in subs:
            anns, data = self._data(client, name, sub)
            reqs.append(fusion.AnnSearchRequest(
                data, anns, self._search_params(sub), int(sub.get("limit") or 100),
                expr=sub.get("filter") or None, expr_params=sub.get("exprParams") or None))
        rerank = body.get("rerank") or {}
        ranker = convert.ranker(rerank.get("strategy"), rerank.get("params"))
        kw: dict[str, Any] = {}
        if body.get("groupingField"):
            kw["group_by_field"] = body["groupingField"]
            if body.get("groupSize"):
                kw["group_size"] = int(body["groupSize"])
        result = client.hybrid_search(name, reqs, ranker, limit=int(body.get("limit") or 100),
                                      output_fields=body.get("outputFields") or None,
                                      partition_names=body.get("partitionNames") or None, **kw)
        return _ok(self._hits(result, client.collection_schema(name).primary_field.name))

    # -- indexes ----------------------------------------------------------------------------
    def _index_list(self, ctx: _Context, body: dict[str, Any]) -> dict[str, Any]:
        return _ok(self._client(ctx, body).list_indexes(self._name(body)))

    def _index_describe(self, ctx: _Context, body: dict[str, Any]) -> dict[str, Any]:
        r = self._rpc("DescribeIndex", milvus_pb2.DescribeIndexRequest(
            collection_name=self._name(body), index_name=self._name(body, "indexName")), ctx)
        out = []
        for d in r.index_descriptions:
            params = {p.key: p.value for p in d.params}
            out.append({"indexName": d.index_name, "fieldName": d.field_name,
                        "indexType": params.get("index_type", ""),
                        "metricType": params.get("metric_type", ""),
                        "params": json.loads(params.get("params") or "{}"),
                        "indexState": common_pb2.IndexState.Name(d.state),
                        "indexedRows": d.indexed_rows, "totalRows": d.total_rows,
                        "pendingRows": d.pending_index_rows, "failReason": ""})
        return _ok(out)

    def _index_create(self, ctx: _Context, body: dict[str, Any]) -> dict[str, Any]:
        name = self._name(body)
        client = self._client(ctx, body)
        ips = body.get("indexParams")
        if not isinstance(ips, list) or not ips:
            raise InvalidArgument("indexParams must be a non-empty list")
        for ip in ips:
            self._create_index(client, name, ip)
        return _ok()

    def _index_drop(self, ctx: _Context, body: dict[str, Any]) -> dict[str, Any]:
        self._rpc("DropIndex", milvus_pb2.DropIndexRequest(
            collection_name=self._name(body), index_name=self._name(body, "indexName")), ctx)
        return _ok()

    # -- partitions -------------------------------------------------------------------------
    def _part_list(self, ctx: _Context, body: dict[str, Any]) -> dict[str, Any]:
        r = self._rpc("ShowPartitions", milvus_pb2.ShowPartitionsRequest(
            collection_name=self._name(body)), ctx)
        return _ok(list(r.partition_names))

    def _part_has(self, ctx: _Context, body: dict[str, Any]) -> dict[str, Any]:
        r = self._rpc("HasPartition", milvus_pb2.HasPartitionRequest(
            collection_name=self._name(body), partition_name=self._name(body,
                                                                         "partitionName")), ctx)
        return _ok({"has": r.value})

    def _part_create(self, ctx: _Context, body: dict[str, Any]) -> dict[str, Any]:
        self._rpc("CreatePartition", milvus_pb2.CreatePartitionRequest(
            collection_name=self._name(body), partition_name=self._name(body,
                                                                         "partitionName")), ctx)
        return _ok()

    def _part_drop(self, ctx: _Context, body: dict[str, Any]) -> dict[str, Any]:
        self._rpc("DropPartition", milvus_pb2.DropPartitionRequest(
            collection_name=self._name(body), partition_name=self._name(body,
                                                                         "partitionName")), ctx)
        return _ok()

    def _part_stats(self, ctx: _Context, body: dict[str, Any]) -> dict[str, Any]:
        r = self._rpc("GetPartitionStatistics", milvus_pb2.GetPartitionStatisticsRequest(
            collection_name=self._name(body), partition_name=self._name(body,
                                                                         "partitionName")), ctx)
        return _ok({"rowCount": int({p.key: p.value for p in r.stats}.get("row_count", 0))})

    # -- aliases ----------------------------------------------------------------------------
    def _alias_list(self, ctx: _Context, body: dict[str, Any]) -> dict[str, Any]:
        r = self._rpc("ListAliases", milvus_pb2.ListAliasesRequest(
            collection_name=str(body.get("collectionName") or "")), ctx)
        return _ok(list(r.aliases))

    def _alias_describe(self, ctx: _Context, body: dict[str, Any]) -> dict[str, Any]:
        r = self._rpc("DescribeAlias", milvus_pb2.DescribeAliasRequest(
            alias=self._name(body, "aliasName")), ctx)
        return _ok({"aliasName": r.alias, "collectionName": r.collection,
                    "dbName": r.db_name or "default"})

    def _alias_create(self, ctx: _Context, body: dict[str, Any]) -> dict[str, Any]:
        self._rpc("CreateAlias", milvus_pb2.CreateAliasRequest(
            collection_name=self._name(body), alias=self._name(body, "aliasName")), ctx)
        return _ok()

    def _alias_alter(self, ctx: _Context, body: dict[str, Any]) -> dict[str, Any]:
        self._rpc("AlterAlias", milvus_pb2.AlterAliasRequest(
            collection_name=self._name(body), alias=self._name(body, "aliasName")), ctx)
        return _ok()

    def _alias_drop(self, ctx: _Context, body: dict[str, Any]) -> dict[str, Any]:
        self._rpc("DropAlias", milvus_pb2.DropAliasRequest(alias=self._name(body,
                                                                             "aliasName")), ctx)
        return _ok()

    # -- databases --------------------------------------------------------------------------
    def _db_list(self, ctx: _Context, body: dict[str, Any]) -> dict[str, Any]:
        r = self._rpc("ListDatabases", milvus_pb2.ListDatabasesRequest(), _Context(
            _token_of(ctx), ""))
        return _ok(list(r.db_names))

    def _db_describe(self, ctx: _Context, body: dict[str, Any]) -> dict[str, Any]:
        r = self._rpc("DescribeDatabase", milvus_pb2.DescribeDatabaseRequest(
            db_name=self._name(body, "dbName")), _Context(_token_of(ctx), ""))
        return _ok({"dbName": r.db_name, "dbID": r.dbID,
                    "properties": _kv_json(r.properties)})

    def _db_create(self, ctx: _Context, body: dict[str, Any]) -> dict[str, Any]:
        props = body.get("properties") or {}
        if not isinstance(props, dict):
            raise InvalidArgument("properties must be a JSON object")
        self._rpc("CreateDatabase", milvus_pb2.CreateDatabaseRequest(
            db_name=self._name(body, "dbName"),
            properties=[common_pb2.KeyValuePair(key=str(k), value=str(v))
                        for k, v in props.items()]), _Context(_token_of(ctx), ""))
        return _ok()

    def _db_drop(self, ctx: _Context, body: dict[str, Any]) -> dict[str, Any]:
        self._rpc("DropDatabase", milvus_pb2.DropDatabaseRequest(
            db_name=self._name(body, "dbName")), _Context(_token_of(ctx), ""))
        return _ok()


def _token_of(ctx: _Context) -> str:
    for k, v in ctx.invocation_metadata():
        if k == "authorization":
            return base64.b64decode(v).decode()
    return ""


class _Named:
    """The names status_of puts in Milvus' messages, from a JSON body."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.db_name = str(body.get("dbName") or "")
        self.collection_name = str(body.get("collectionName") or "")


def _handler(api: RestApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "vecpg-serve"

        def log_message(self, format: str, *args: Any) -> None:
            _log.debug("%s " + format, self.address_string(), *args)

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload, default=str).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > _MAX_BODY:
                self._send(413, {"code": 1100, "message": f"request body over {_MAX_BODY} "
                                                          "bytes"})
                self.close_connection = True
                return
            raw = self.rfile.read(length) if length else b"{}"
            try:
                body = json.loads(raw or b"{}")
            except ValueError as e:
                self._send(200, {"code": 1100, "message": f"the body is not JSON: {e}"})
                return
            if not isinstance(body, dict):
                self._send(200, {"code": 1100, "message": "the body must be a JSON object"})
                return
            auth = self.headers.get("Authorization") or ""
            token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else ""
            path = self.path.split("?", 1)[0]
            answer = api.handle(path, token, body)
            self._send(404 if answer.get("code") == 404 else 200, answer)

        def do_GET(self) -> None:  # a liveness probe (Milvus serves /healthz)
            if self.path.split("?", 1)[0] in ("/healthz", "/v2/vectordb/healthz"):
                self._send(200, {"code": 0, "data": {}})
            else:
                self._send(404, {"code": 404, "message": "POST /v2/vectordb/<category>/"
                                                         "<action>"})
    return Handler


def serve_rest(service: MilvusService, host: str, port: int) -> ThreadingHTTPServer:
    """Start the REST API for ``service`` on ``host:port`` (0: a free port, read back from
    ``server.server_address``) in a background thread; ``server.shutdown()`` stops it."""
    api = RestApi(service)
    try:
        httpd = ThreadingHTTPServer((host, port), _handler(api))
    except OSError as e:
        raise InvalidArgument(f"cannot listen on {host}:{port} for REST: {e.strerror}") from e
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, name="vecpg-rest", daemon=True).start()
    _log.info("vecpg serve: Milvus REST v2 on %s:%s", host, httpd.server_address[1])
    return httpd
