"""Milvus protobuf messages <-> the Python values :class:`vecpg.Client` takes and returns.

The wire format is pymilvus': what ``pymilvus/client/prepare.py`` and ``entity_helper.py``
send (columnar ``FieldData``, placeholder groups of vector bytes, template values, key-value
search parameters) and what ``grpc_handler.py`` and ``search_result.py`` read back. The
generated modules carry no types for mypy: messages are ``Any`` at this boundary.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from pymilvus.client import entity_helper
from pymilvus.client.utils import sparse_parse_single_row
from pymilvus.grpc_gen import common_pb2, schema_pb2

from .. import fusion
from ..errors import InvalidArgument, NotSupported
from ..schema import CollectionSchema, DataType, FieldSchema, Function, FunctionType

DYNAMIC_FIELD = "$meta"  # the name Milvus gives the dynamic field's JSON column on the wire

# vecpg's types by Milvus' protobuf DataType numbers (pymilvus' enum values)
_TO_PB: dict[DataType, int] = {
    DataType.BOOL: schema_pb2.Bool, DataType.INT8: schema_pb2.Int8,
    DataType.INT16: schema_pb2.Int16, DataType.INT32: schema_pb2.Int32,
    DataType.INT64: schema_pb2.Int64, DataType.FLOAT: schema_pb2.Float,
    DataType.DOUBLE: schema_pb2.Double, DataType.VARCHAR: schema_pb2.VarChar,
    DataType.JSON: schema_pb2.JSON, DataType.ARRAY: schema_pb2.Array,
    DataType.TIMESTAMPTZ: schema_pb2.Timestamptz,
    DataType.FLOAT_VECTOR: schema_pb2.FloatVector,
    DataType.FLOAT16_VECTOR: schema_pb2.Float16Vector,
    DataType.BFLOAT16_VECTOR: schema_pb2.BFloat16Vector,
    DataType.INT8_VECTOR: schema_pb2.Int8Vector,
    DataType.BINARY_VECTOR: schema_pb2.BinaryVector,
    DataType.SPARSE_FLOAT_VECTOR: schema_pb2.SparseFloatVector,
}
_FROM_PB: dict[int, DataType] = {v: k for k, v in _TO_PB.items()}
_FROM_PB[schema_pb2.String] = DataType.VARCHAR
# the ScalarField member holding each scalar type (pymilvus' type_info)
_SCALAR_ATTR: dict[DataType, str] = {
    DataType.BOOL: "bool_data", DataType.INT8: "int_data", DataType.INT16: "int_data",
    DataType.INT32: "int_data", DataType.INT64: "long_data", DataType.FLOAT: "float_data",
    DataType.DOUBLE: "double_data", DataType.VARCHAR: "string_data",
    DataType.TIMESTAMPTZ: "string_data",
}
_PLACEHOLDER_DTYPE = {
    common_pb2.FloatVector: DataType.FLOAT_VECTOR,
    common_pb2.Float16Vector: DataType.FLOAT16_VECTOR,
    common_pb2.BFloat16Vector: DataType.BFLOAT16_VECTOR,
    common_pb2.Int8Vector: DataType.INT8_VECTOR,
    common_pb2.BinaryVector: DataType.BINARY_VECTOR,
    common_pb2.SparseFloatVector: DataType.SPARSE_FLOAT_VECTOR,
}


def pb_type(dtype: DataType) -> int:
    """Milvus' protobuf DataType number of a vecpg type."""
    return _TO_PB[dtype]


def vecpg_type(number: int, what: str = "field") -> DataType:
    """vecpg's DataType for Milvus' protobuf number; :class:`NotSupported` for the types
    vecpg lacks (geometry, struct arrays, ...)."""
    if number not in _FROM_PB:
        name = schema_pb2.DataType.Name(number) if number in schema_pb2.DataType.values() \
            else str(number)
        raise NotSupported(f"{what} type {name} is not supported by vecpg")
    return _FROM_PB[number]


# -- schemas --------------------------------------------------------------------------------

def _kv(pairs: Iterable[Any]) -> dict[str, str]:
    return {p.key: p.value for p in pairs}


def _value_field(v: Any) -> Any:
    """A default value from a ``ValueField`` (None when unset)."""
    kind = v.WhichOneof("data")
    return None if kind is None else getattr(v, kind)


def schema_from_pb(raw: bytes) -> CollectionSchema:
    """A vecpg schema from CreateCollectionRequest.schema (a serialized CollectionSchema),
    its BM25 functions and analyzer settings included."""
    pb = schema_pb2.CollectionSchema()
    pb.ParseFromString(raw)
    if len(pb.struct_array_fields):
        raise NotSupported("struct array fields are not supported by vecpg")
    out = CollectionSchema(enable_dynamic_field=bool(pb.enable_dynamic_field),
                           description=pb.description)
    for f in pb.fields:
        if f.is_dynamic or f.name == DYNAMIC_FIELD:
            continue  # the dynamic field is the schema's flag here
        out.fields.append(field_from_pb(f))
    for fn in pb.functions:
        out.add_function(function_from_pb(fn))
    return out


def field_from_pb(f: Any) -> FieldSchema:
    """A vecpg field from a protobuf FieldSchema (a schema's, or AddCollectionField's)."""
    params = kv_params(f.type_params)
    dtype = vecpg_type(f.data_type, f"field {f.name!r}:")
    kw: dict[str, Any] = {"is_primary": f.is_primary_key,
                          "auto_id": f.autoID and f.is_primary_key,
                          "nullable": f.nullable, "description": f.description,
                          "is_partition_key": f.is_partition_key,
                          "is_function_output": f.is_function_output}
    if f.is_clustering_key:
        kw["is_clustering_key"] = True
    if dtype is DataType.ARRAY:
        kw["element_type"] = vecpg_type(f.element_type, f"element of {f.name!r}:")
    for key in ("dim", "max_length", "max_capacity"):
        if params.get(key):
            kw[key] = int(params[key])
    # pymilvus sends booleans as JSON ("true") and analyzer_params as JSON text
    for key, name in (("enable_analyzer", "enable_analyzer"),
                      ("enable_tokenizer", "enable_analyzer"), ("enable_match", "enable_match")):
        if key in params:
            kw[name] = _flag(params[key])
    for key in ("analyzer_params", "tokenizer_params"):
        if key in params:
            value = params[key]
            if not isinstance(value, dict):
                raise InvalidArgument(f"{key} of {f.name!r} must be a JSON object, got "
                                      f"{value!r}")
            kw["analyzer_params"] = value
    if "mmap.enabled" in params:
        kw["mmap_enabled"] = _flag(params["mmap.enabled"])
    if f.HasField("default_value"):
        default = _value_field(f.default_value)
        if default is not None:
            kw["default_value"] = default
    return FieldSchema(f.name, dtype, **kw)


def _flag(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).strip().lower() == "true"


_FUNCTION_TYPES = {schema_pb2.BM25: FunctionType.BM25,
                   schema_pb2.TextEmbedding: FunctionType.TEXTEMBEDDING,
                   schema_pb2.Rerank: FunctionType.RERANK}


def function_from_pb(fn: Any) -> Function:
    """A vecpg Function from a protobuf FunctionSchema (BM25; others: NotSupported)."""
    kind = _FUNCTION_TYPES.get(fn.type)
    if kind is None:
        raise NotSupported(f"function type {schema_pb2.FunctionType.Name(fn.type)} is not "
                           "supported by vecpg")
    return Function(fn.name, kind, list(fn.input_field_names), list(fn.output_field_names),
                    description=fn.description, params=kv_params(fn.params))


def _default_pb(f: FieldSchema, target: Any) -> None:
    v = f.default_value
    d = f.dtype
    if d is DataType.BOOL:
        target.bool_data = bool(v)
    elif d in (DataType.INT8, DataType.INT16, DataType.INT32):
        target.int_data = int(v)
    elif d is DataType.INT64:
        target.long_data = int(v)
    elif d is DataType.FLOAT:
        target.float_data = float(v)
    elif d is DataType.DOUBLE:
        target.double_data = float(v)
    else:  # VARCHAR, TIMESTAMPTZ (as its string), JSON
        target.string_data = v if isinstance(v, str) else json.dumps(v)


def schema_to_pb(name: str, schema: CollectionSchema, target: Any) -> None:
    """Fill a protobuf CollectionSchema (``target``) from a vecpg schema."""
    target.name = name
    target.description = schema.description
    target.enable_dynamic_field = schema.enable_dynamic_field
    pk = schema.primary_field
    target.autoID = pk.auto_id
    for i, f in enumerate(schema.fields):
        pf = target.fields.add()
        pf.fieldID = 100 + i
        pf.name = f.name
        pf.description = f.description
        pf.data_type = pb_type(f.dtype)
        pf.is_primary_key = f.is_primary
        pf.autoID = f.auto_id
        pf.nullable = f.nullable
        pf.is_partition_key = f.is_partition_key
        if f.element_type is not None:
            pf.element_type = pb_type(f.element_type)
        params: dict[str, Any] = {}
        if f.dim is not None:
            params["dim"] = f.dim
        if f.max_length is not None and f.dtype in (DataType.VARCHAR, DataType.ARRAY):
            params["max_length"] = f.max_length
        if f.max_capacity is not None:
            params["max_capacity"] = f.max_capacity
        if f.enable_analyzer:
            params["enable_analyzer"] = "true"
            if f.analyzer_params is not None:
                params["analyzer_params"] = json.dumps(f.analyzer_params)
        if f.enable_match:
            params["enable_match"] = "true"
        if f.mmap_enabled is not None:
            params["mmap.enabled"] = "true" if f.mmap_enabled else "false"
        for k, v in params.items():
            pf.type_params.add(key=k, value=str(v))
        pf.is_function_output = f.is_function_output or any(
            fn.output_field == f.name for fn in schema.functions)
        pf.is_clustering_key = f.is_clustering_key
        if f.default_value is not None:
            _default_pb(f, pf.default_value)
    ids = {f.name: 100 + i for i, f in enumerate(schema.fields)}
    for j, fn in enumerate(schema.functions):
        pfn = target.functions.add(
            name=fn.name, id=200 + j, description=fn.description, type=schema_pb2.BM25,
            input_field_names=fn.input_field_names, output_field_names=fn.output_field_names,
            input_field_ids=[ids.get(n, 0) for n in fn.input_field_names],
            output_field_ids=[ids.get(n, 0) for n in fn.output_field_names])
        for k, v in fn.params.items():
            pfn.params.add(key=str(k), value=v if isinstance(v, str) else json.dumps(v))


# -- filter templates ---------------------------------------------------------------------

def _template_array(a: Any) -> list[Any]:
    kind = a.WhichOneof("data")
    if kind is None:
        return []
    if kind == "array_data":
        return [_template_array(x) for x in a.array_data.data]
    if kind == "json_data":
        return [json.loads(x) for x in a.json_data.data]
    return list(getattr(a, kind).data)


def template_value(v: Any) -> Any:
    """A Python value from a TemplateValue (``expr_template_values``)."""
    kind = v.WhichOneof("val")
    if kind is None:
        return None
    if kind == "array_val":
        return _template_array(v.array_val)
    return getattr(v, kind)


def template_values(m: Mapping[str, Any]) -> dict[str, Any] | None:
    """``filter_params`` from a request's ``expr_template_values`` (None when empty)."""
    return {k: template_value(v) for k, v in m.items()} or None


# -- columns in (Insert / Upsert) -----------------------------------------------------------

def _column(fd: Any, n: int, dtype: DataType | None) -> list[Any]:
    """The ``n`` values of one FieldData, None where ``valid_data`` says null. Nullable
    scalars arrive without their nulls (pymilvus packs only the valid values)."""
    kind = fd.WhichOneof("field")
    values: list[Any]
    if kind == "scalars":
        sk = fd.scalars.WhichOneof("data")
        if sk is None:
            values = []
        elif sk == "json_data":
            values = [json.loads(x) for x in fd.scalars.json_data.data]
        elif sk == "array_data":
            values = [list(getattr(x, x.WhichOneof("data")).data) if x.WhichOneof("data")
                      else [] for x in fd.scalars.array_data.data]
        else:
            values = list(getattr(fd.scalars, sk).data)
    elif kind == "vectors":
        values = _vector_column(fd.vectors, dtype or vecpg_type(fd.type))
    else:
        raise NotSupported(f"field data of {fd.field_name!r} ({kind}) is not supported")
    valid = list(fd.valid_data)
    if not valid:
        return values
    if len(values) == len(valid):  # aligned (as Milvus sends results)
        return [v if ok else None for v, ok in zip(values, valid)]
    it = iter(values)
    return [next(it) if ok else None for ok in valid]


def _vector_column(vf: Any, dtype: DataType) -> list[Any]:
    dim = int(vf.dim)
    if dtype is DataType.FLOAT_VECTOR:
        a = np.asarray(vf.float_vector.data, dtype=np.float32)
        return list(a.reshape(-1, dim)) if dim else []
    if dtype is DataType.SPARSE_FLOAT_VECTOR:
        return [sparse_parse_single_row(c) for c in vf.sparse_float_vector.contents]
    raw = {DataType.FLOAT16_VECTOR: vf.float16_vector, DataType.BFLOAT16_VECTOR:
           vf.bfloat16_vector, DataType.INT8_VECTOR: vf.int8_vector,
           DataType.BINARY_VECTOR: vf.binary_vector}[dtype]
    width = {DataType.FLOAT16_VECTOR: 2 * dim, DataType.BFLOAT16_VECTOR: 2 * dim,
             DataType.INT8_VECTOR: dim, DataType.BINARY_VECTOR: (dim + 7) // 8}[dtype]
    if width == 0:
        return []
    chunks = [raw[i:i + width] for i in range(0, len(raw), width)]
    if dtype is DataType.FLOAT16_VECTOR:
        return [np.frombuffer(c, dtype="<f2") for c in chunks]
    return chunks  # int8, bfloat16 and binary vectors: vecpg takes pymilvus' bytes


def rows_from_fields(fields_data: Sequence[Any], num_rows: int,
                     schema: CollectionSchema) -> list[dict[str, Any]]:
    """Columnar FieldData (an Insert/Upsert request's) as row dicts; the dynamic field's
    JSON objects are merged into their rows. A null for a field with a default value is
    left out, so the default applies."""
    n = int(num_rows) or (max((_len(fd) for fd in fields_data), default=0))
    rows: list[dict[str, Any]] = [{} for _ in range(n)]
    for fd in fields_data:
        f = schema.get(fd.field_name)
        if fd.is_dynamic or (f is None and fd.field_name == DYNAMIC_FIELD):
            for row, extra in zip(rows, _column(fd, n, DataType.JSON)):
                if isinstance(extra, dict):
                    for k, v in extra.items():
                        row.setdefault(k, v)
            continue
        col = _column(fd, n, f.dtype if f is not None else None)
        if len(col) != n:
            raise InvalidArgument(f"field {fd.field_name!r} has {len(col)} values for "
                                  f"{n} rows")
        for row, v in zip(rows, col):
            if v is None and f is not None and f.default_value is not None:
                continue
            row[fd.field_name] = v
    return rows


def _len(fd: Any) -> int:
    if fd.valid_data:
        return len(fd.valid_data)
    return len(_column(fd, 0, None))


# -- columns out (Query / Search results) ---------------------------------------------------

def _vector_bytes(dtype: DataType, v: Any) -> bytes:
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v)
    if isinstance(v, list) and len(v) == 1 and isinstance(v[0], (bytes, bytearray)):
        return bytes(v[0])  # pymilvus' [bytes] form of one binary vector
    if dtype is DataType.FLOAT16_VECTOR:
        return np.asarray(v, dtype="<f2").tobytes()
    if dtype is DataType.INT8_VECTOR:
        return np.asarray(v, dtype=np.int8).tobytes()
    if dtype is DataType.BFLOAT16_VECTOR:
        bits = np.asarray(v, dtype=np.float32).view(np.uint32) >> 16
        return bits.astype("<u2").tobytes()
    raise InvalidArgument(f"cannot send a {dtype.value} value of type {type(v).__name__}")


def field_data(name: str, dtype: DataType, values: Sequence[Any], *,
               element_type: DataType | None = None, dim: int | None = None,
               dynamic: bool = False) -> Any:
    """One result column as Milvus sends it: scalars aligned with the rows (a null keeps
    its slot, with ``valid_data`` False), vectors packed."""
    fd = schema_pb2.FieldData(type=pb_type(dtype), field_name=name, is_dynamic=dynamic)
    nulls = [v is None for v in values]
    if any(nulls) and not dtype.is_vector:
        fd.valid_data.extend(not x for x in nulls)
    if dtype is DataType.JSON:
        fd.scalars.json_data.data.extend(
            b"" if v is None else json.dumps(v, default=_json_default).encode() for v in values)
    elif dtype is DataType.ARRAY:
        et = element_type or DataType.INT64
        arr = fd.scalars.array_data
        arr.element_type = pb_type(et)
        attr = _SCALAR_ATTR[et]
        for v in values:
            cell = arr.data.add()
            getattr(cell, attr).data.extend(list(v) if v is not None else [])
    elif dtype in _SCALAR_ATTR:
        zero: Any = {"bool_data": False, "string_data": ""}.get(_SCALAR_ATTR[dtype], 0)
        getattr(fd.scalars, _SCALAR_ATTR[dtype]).data.extend(
            zero if v is None else (str(v) if dtype is DataType.TIMESTAMPTZ else v)
            for v in values)
    elif dtype is DataType.FLOAT_VECTOR:
        first = next((v for v in values if v is not None), None)
        fd.vectors.dim = dim or (len(first) if first is not None else 0)
        # the oneof set even for no rows: pymilvus reads an unset one as binary, / dim
        fd.vectors.float_vector.SetInParent()
        if values:
            fd.vectors.float_vector.data.extend(
                np.asarray(values, dtype=np.float32).reshape(-1).tolist())
    elif dtype is DataType.SPARSE_FLOAT_VECTOR:
        fd.vectors.dim = dim or 0
        fd.vectors.sparse_float_vector.SetInParent()
        if values:
            rows = [dict(v) if v is not None else {} for v in values]
            fd.vectors.sparse_float_vector.CopyFrom(entity_helper.sparse_rows_to_proto(rows))
    else:  # byte vectors
        fd.vectors.dim = dim or 0
        blob = b"".join(_vector_bytes(dtype, v) for v in values)
        attr = {DataType.FLOAT16_VECTOR: "float16_vector",
                DataType.BFLOAT16_VECTOR: "bfloat16_vector",
                DataType.INT8_VECTOR: "int8_vector",
                DataType.BINARY_VECTOR: "binary_vector"}[dtype]
        setattr(fd.vectors, attr, blob)
    return fd


def _json_default(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return str(v)


def fields_of_rows(rows: Sequence[Mapping[str, Any]], names: Sequence[str],
                   schema: CollectionSchema) -> tuple[list[Any], list[str]]:
    """Result rows as FieldData columns: ``names`` (schema fields, in order) each one
    column, every other key of the rows into the dynamic field ``$meta``. Returns the
    columns and the output field names to report (so pymilvus shows exactly those keys)."""
    columns = []
    seen = list(names)
    for name in names:
        if name == "count(*)":
            columns.append(field_data(name, DataType.INT64, [r[name] for r in rows]))
            continue
        f = schema.field(name)
        columns.append(field_data(name, f.dtype, [r.get(name) for r in rows],
                                  element_type=f.element_type, dim=f.dim))
    extra: list[str] = []
    for r in rows:
        for k in r:
            if k not in seen and k not in extra:
                extra.append(k)
    if extra:
        columns.append(field_data(DYNAMIC_FIELD, DataType.JSON,
                                  [{k: r[k] for k in extra if k in r} for r in rows],
                                  dynamic=True))
    return columns, [*seen, *extra]


def placeholder_vectors(raw: bytes, field: FieldSchema) -> list[Any]:
    """The query vectors of a serialized PlaceholderGroup, as vecpg's search takes them."""
    group = common_pb2.PlaceholderGroup()
    group.ParseFromString(raw)
    out: list[Any] = []
    for ph in group.placeholders:
        if ph.type == common_pb2.VarChar:  # text queries of a BM25 function's output field
            out.extend(bytes(v).decode() for v in ph.values)
            continue
        dtype = _PLACEHOLDER_DTYPE.get(ph.type)
        if dtype is None:
            raise NotSupported(f"placeholder type {common_pb2.PlaceholderType.Name(ph.type)} "
                               "(embedding-list search) is not supported")
        if dtype is DataType.FLOAT_VECTOR and field.dtype in (
                DataType.FLOAT16_VECTOR, DataType.BFLOAT16_VECTOR, DataType.INT8_VECTOR):
            dtype = DataType.FLOAT_VECTOR  # float32 queries of a float16 field are fine
        for v in ph.values:
            if dtype is DataType.FLOAT_VECTOR:
                out.append(np.frombuffer(v, dtype="<f4"))
            elif dtype is DataType.FLOAT16_VECTOR:
                out.append(np.frombuffer(v, dtype="<f2").astype(np.float32))
            elif dtype is DataType.BFLOAT16_VECTOR:
                bits = np.frombuffer(v, dtype="<u2").astype(np.uint32) << 16
                out.append(bits.view(np.float32))
            elif dtype is DataType.INT8_VECTOR:
                out.append(np.frombuffer(v, dtype=np.int8))  # vecpg takes int8 as int8
            elif dtype is DataType.SPARSE_FLOAT_VECTOR:
                out.append(sparse_parse_single_row(v))
            else:
                out.append(bytes(v))
    return out


def kv_params(pairs: Iterable[Any]) -> dict[str, Any]:
    """Key-value parameters as pymilvus sends them (``utils.dumps``: JSON for dicts, str()
    for the rest), decoded: JSON where it parses, else the string."""
    out: dict[str, Any] = {}
    for p in pairs:
        try:
            out[p.key] = json.loads(p.value)
        except ValueError:
            low = p.value.lower()
            out[p.key] = True if low == "true" else False if low == "false" else p.value
    return out


def json_text(value: Any) -> str:
    """``value`` as JSON text (numpy values as plain numbers)."""
    return json.dumps(value, default=_json_default)


def ranker(strategy: Any, params: Mapping[str, Any] | None) -> Any:
    """The fusion ranker a hybrid search names, as the gRPC rank params and the REST
    ``rerank`` object both give it: ``rrf`` (``k``) or ``weighted`` (``weights``,
    ``norm_score``)."""
    name, p = str(strategy or "rrf").lower(), params or {}
    if name == "rrf":
        return fusion.RRFRanker(int(p.get("k", 60)))
    if name == "weighted":
        return fusion.WeightedRanker(*p.get("weights", []),
                                     norm_score=bool(p.get("norm_score", True)))
    raise NotSupported(f"hybrid search ranker {name!r} is not supported; use rrf "
                       "(RRFRanker) or weighted (WeightedRanker)")
