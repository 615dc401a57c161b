"""pymilvus compatibility: the keywords every MilvusClient method takes, and pymilvus' own
schema and index objects turned into vecpg's.

pymilvus is not a dependency: its objects are read by their attributes (duck typing), so
code written for Milvus can pass ``pymilvus.CollectionSchema``, ``FieldSchema``,
``DataType`` and ``IndexParams`` as they are.

Keywords: each pymilvus method takes ``timeout`` and ``**kwargs``. vecpg accepts the ones
whose meaning holds on one Postgres (:data:`HARMLESS`: they cannot change a result) and
the ones a method honours; any other raises :class:`~vecpg.errors.NotSupported`, so a
keyword is never silently dropped when it would change what comes back.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from . import args
from .catalog import CollectionInfo
from .errors import InvalidArgument, NotSupported, SchemaError
from .replicas import level_name, level_number
from .schema import CollectionSchema, DataType, FieldSchema

# Accepted by every method, changing nothing here: ``consistency_level`` is checked, and the
# read methods of a client with replicas honour it before this (vecpg.replicas; on one
# Postgres every read sees every committed write: Milvus' "Strong"); no request routing, and
# no client-side RPC deadline worth more than the statement it bounds (see ``timeout``).
HARMLESS = frozenset({
    "timeout", "consistency_level", "guarantee_timestamp", "graceful_time",
    "travel_timestamp", "_async", "_callback", "client_request_id", "priority",
    "ignore_growing", "replica_number", "refresh", "resource_groups", "load_fields",
    "skip_load_dynamic_field", "_refresh", "_resource_groups", "_load_fields",
    "_skip_load_dynamic_field", "num_shards", "shards_num", "sync", "check_task",
    "progress_bar",
})


def check_kwargs(method: str, kwargs: Mapping[str, Any], honoured: Iterable[str] = ()
                 ) -> dict[str, Any]:
    """The keywords ``method`` honours, out of ``kwargs``; harmless ones are dropped and
    any other raises :class:`NotSupported` naming it."""
    allowed = set(honoured)
    out: dict[str, Any] = {}
    for key, value in kwargs.items():
        if key in allowed:
            out[key] = value
        elif key in HARMLESS:
            if key == "consistency_level" and value is not None:
                level_name(value)  # honoured by the read methods with replicas
            elif key == "timeout":
                timeout(value)
        else:
            raise NotSupported(f"{method}() got the keyword {key!r}, which vecpg does not "
                               "support; leave it out (see the README's MilvusClient table)")
    return out


def timeout(value: Any) -> float | None:
    """``timeout`` checked: None or a positive number of seconds."""
    if value is None:
        return None
    t = args.number(value, "timeout", 0.0, math.inf)
    if t <= 0:
        raise InvalidArgument(f"timeout must be a positive number of seconds, got {value!r}")
    return t


# -- pymilvus objects -----------------------------------------------------------------------

def is_pymilvus(obj: Any) -> bool:
    """Whether ``obj`` comes from pymilvus (its schema, field or index classes)."""
    return type(obj).__module__.split(".")[0] == "pymilvus"


def field_from_pymilvus(f: Any) -> FieldSchema:
    """A vecpg field from a ``pymilvus.FieldSchema``."""
    params = dict(getattr(f, "params", {}) or {})
    raw = dict(getattr(f, "_kwargs", {}) or {})
    dtype = DataType.parse(f.dtype)
    element = getattr(f, "element_type", None)
    kw: dict[str, Any] = {
        "is_primary": bool(getattr(f, "is_primary", False)),
        "auto_id": bool(getattr(f, "auto_id", False)) and bool(getattr(f, "is_primary", False)),
        "nullable": bool(getattr(f, "nullable", False)),
        "description": str(getattr(f, "description", "") or ""),
        "is_partition_key": bool(getattr(f, "is_partition_key", False)),
    }
    if element is not None and dtype is DataType.ARRAY:
        kw["element_type"] = DataType.parse(element)
    for key in ("dim", "max_length", "max_capacity"):
        if params.get(key) is not None:
            kw[key] = int(params[key])
    for key in ("enable_analyzer", "enable_tokenizer", "enable_match"):
        if params.get(key) is not None or raw.get(key) is not None:
            value = params.get(key, raw.get(key))
            kw["enable_analyzer" if key == "enable_tokenizer" else key] = (
                value.lower() == "true" if isinstance(value, str) else bool(value))
    analyzer = params.get("analyzer_params", raw.get("analyzer_params"))
    if isinstance(analyzer, str):  # pymilvus keeps it as JSON text
        try:
            analyzer = json.loads(analyzer)
        except ValueError:
            raise SchemaError(f"analyzer_params of {f.name!r} is not JSON: {analyzer!r}"
                              ) from None
    if analyzer is not None:
        kw["analyzer_params"] = analyzer
    if params.get("mmap_enabled") is not None:
        kw["mmap_enabled"] = bool(params["mmap_enabled"])
    if getattr(f, "is_clustering_key", False):
        kw["is_clustering_key"] = True
    unknown = sorted(set(params) - {"dim", "max_length", "max_capacity", "enable_analyzer",
                                    "enable_tokenizer", "enable_match", "analyzer_params",
                                    "mmap_enabled"})
    if unknown:
        raise SchemaError(f"field {f.name!r}: unknown field option(s) {', '.join(unknown)}")
    default = raw.get("default_value", getattr(f, "default_value", None))
    if default is not None and hasattr(default, "WhichOneof"):  # pymilvus' protobuf ValueField
        kind = default.WhichOneof("data")
        default = getattr(default, kind) if kind else None
    if default is not None:
        kw["default_value"] = default
    return FieldSchema(f.name, dtype, **kw)


def schema_from_pymilvus(s: Any) -> CollectionSchema:
    """A vecpg schema from a ``pymilvus.CollectionSchema``, its BM25 functions included
    (other functions raise :class:`NotSupported`)."""
    out = CollectionSchema(enable_dynamic_field=bool(getattr(s, "enable_dynamic_field", False)),
                           description=str(getattr(s, "description", "") or ""))
    for f in s.fields:
        out.fields.append(field_from_pymilvus(f))
    for fn in getattr(s, "functions", None) or []:
        out.add_function(fn)
    return out


def schema_of(schema: Any) -> CollectionSchema | None:
    """``create_collection``'s ``schema``: vecpg's, pymilvus', or None."""
    if schema is None or isinstance(schema, CollectionSchema):
        return schema
    if is_pymilvus(schema) and hasattr(schema, "fields"):
        return schema_from_pymilvus(schema)
    raise InvalidArgument(f"schema must come from create_schema() (or be a pymilvus "
                          f"CollectionSchema), got {type(schema).__name__}")


_REQUEST_KEYS = ("field_name", "index_type", "index_name", "metric_type", "params")


def index_requests(value: Any) -> Any:
    """``index_params`` as vecpg's list of request dicts: pymilvus' ``IndexParams`` (a list
    of ``IndexParam`` objects with flattened settings) are converted; others pass through
    for :func:`vecpg.args.requests` to check."""
    if not isinstance(value, (list, tuple)) or not any(is_pymilvus(v) for v in value):
        return value
    out = []
    for v in value:
        d = dict(v.to_dict()) if hasattr(v, "to_dict") else dict(v)
        params = dict(d.pop("params", None) or {})
        req = {k: d.pop(k, None) for k in _REQUEST_KEYS if k != "params"}
        params.update(d)  # pymilvus flattens the build settings (M, nlist, ...) into it
        req["index_type"] = req["index_type"] or "AUTOINDEX"
        req["index_name"] = req["index_name"] or req["field_name"]
        req["params"] = params
        out.append(req)
    return out


# -- pymilvus' result shapes ---------------------------------------------------------------

def _pymilvus_enum(name: str) -> Any:
    """pymilvus' enum ``name`` (e.g. ``DataType``), or None without pymilvus."""
    try:
        import pymilvus
    except ImportError:
        return None
    return getattr(pymilvus, name, None)


def data_type(dt: DataType) -> Any:
    """A field type as pymilvus code compares it: pymilvus' ``DataType`` when pymilvus is
    installed (``field["type"] == DataType.INT64``), else vecpg's (same names)."""
    enum = _pymilvus_enum("DataType")
    return enum[dt.value] if enum is not None and dt.value in enum.__members__ else dt


def loaded_state() -> Any:
    """pymilvus' ``LoadState.Loaded`` when pymilvus is installed, else ``"Loaded"``."""
    try:
        from pymilvus.client.types import LoadState
    except ImportError:
        return "Loaded"
    return LoadState.Loaded


# collection properties vecpg keeps for itself (not shown as Milvus properties)
OWN_PROPERTIES = ("metrics", "tenant_field", "num_partitions", "recall", "consistency_level")


def _function(fn: Any) -> dict[str, Any]:
    """A schema function as pymilvus describes it (``type``: pymilvus' FunctionType when
    pymilvus is installed)."""
    kind = fn.function_type.value if hasattr(fn.function_type, "value") else fn.function_type
    enum = _pymilvus_enum("FunctionType")
    return {"name": fn.name, "description": fn.description,
            "type": enum[kind] if enum is not None and kind in enum.__members__ else kind,
            "input_field_names": list(fn.input_field_names),
            "output_field_names": list(fn.output_field_names), "params": dict(fn.params)}


def describe_collection(info: CollectionInfo, aliases: list[str]) -> dict[str, Any]:
    """``describe_collection``'s answer: pymilvus' keys, then vecpg's."""
    fields = []
    for i, f in enumerate(info.schema.fields):
        params: dict[str, Any] = {}
        for key in ("dim", "max_length", "max_capacity"):
            if getattr(f, key) is not None and (key != "max_length" or f.dtype in (
                    DataType.VARCHAR, DataType.ARRAY)):
                params[key] = getattr(f, key)
        d: dict[str, Any] = {"field_id": 100 + i, "name": f.name, "description": f.description,
                             "type": data_type(f.dtype), "params": params}
        for key in ("is_primary", "auto_id", "nullable", "is_partition_key",
                    "is_function_output"):
            if getattr(f, key, False):
                d[key] = True
        for key in ("enable_analyzer", "enable_match"):  # pymilvus keeps these in params
            if getattr(f, key, False):
                params[key] = True
        if getattr(f, "analyzer_params", None) is not None:
            params["analyzer_params"] = f.analyzer_params
        if f.default_value is not None:
            d["default_value"] = f.default_value
        if f.element_type is not None:
            d["element_type"] = data_type(f.element_type)
        fields.append(d)
    pk = info.schema.primary_field
    props = {k: v for k, v in info.properties.items() if k not in OWN_PROPERTIES}
    return {
        "collection_name": info.name, "auto_id": pk.auto_id, "num_shards": 1,
        "description": info.schema.description, "fields": fields,
        "functions": [_function(fn) for fn in info.schema.functions],
        "aliases": aliases,  # the reads' default level (vecpg.replicas); Milvus' Bounded
        "consistency_level": level_number(info.properties.get("consistency_level")),
        "properties": props,
        "num_partitions": int(info.properties.get("num_partitions", len(info.partitions))),
        "enable_dynamic_field": info.schema.enable_dynamic_field,
        # vecpg's own
        "schema": info.schema_name, "table": f"{info.schema_name}.{info.name}",
        "primary_field": pk.name, "metrics": dict(info.properties.get("metrics", {})),
        "indexes": [ix.index_name for ix in info.indexes], "partitions": list(info.partitions),
    }
