"""Validating rows against a collection schema and loading them with binary COPY.

:func:`prepare_batch` checks every value before anything reaches the database and turns the
data into columns (numpy arrays for numbers and dense vectors); :func:`copy_batch` streams a
:class:`Batch` into the collection table with ``COPY ... FROM STDIN (FORMAT BINARY)``::

    batch = prepare_batch(schema, [{"id": 1, "vec": [0.1, 0.2]}, {"id": 2, "vec": [0.3, 0.4]}])
    with db.transaction():
        copy_batch(db, sql.Identifier("public", "docs"), batch)    # db: a vecpg.session.Db

Accepted ``data``:

* a sequence of row dicts (pymilvus style);
* one dict of columns, e.g. ``{"id": np.arange(n), "vec": np.ndarray((n, d))}``. A dict is
  read as columns iff every value is a list, tuple or ndarray, each vector field among them
  holds a sequence of vectors (a 2-D ndarray, or a list whose first item is itself a
  vector: list/tuple/ndarray/bytes/str/dict/pgvector object), and all have one length;
* any other dict is a single row.

The COPY encoder is :mod:`vecpg.copybin`; ``copy_batch`` is re-exported here.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pgvector import Bit, HalfVector, SparseVector, Vector

from .copybin import copy_batch
from .errors import (
    DimensionMismatch,
    DuplicateKey,
    FieldTypeError,
    InvalidArgument,
    InvalidVector,
    SchemaError,
    ValueTooLong,
)
from .schema import (
    DEFAULT_PARTITION,
    INT_RANGES,
    META_COLUMN,
    PARTITION_COLUMN,
    PG_EPOCH_US,
    CollectionSchema,
    DataType,
    FieldSchema,
    check_name,
    time_zone,
    timestamp_us,
)

__all__ = ["Batch", "Column", "copy_batch", "prepare_batch"]

DT = DataType
META_KEY = "$meta"  # pymilvus' key for a row's dict of dynamic fields
_MISSING: Any = object()
_F16_MAX = 65504.0
_F32_MAX = float(np.finfo(np.float32).max)
_SPARSE_MAX_NNZ = 16000  # pgvector's SPARSEVEC_MAX_NNZ
_INTS = frozenset({DT.INT8, DT.INT16, DT.INT32, DT.INT64})
_NP = {DT.BOOL: np.bool_, DT.INT8: np.int16, DT.INT16: np.int16, DT.INT32: np.int32,
       DT.INT64: np.int64, DT.FLOAT: np.float32, DT.DOUBLE: np.float64}


class _Bad(Exception):
    """A value failed a check; the caller adds where (row, field) and raises ``cls``."""

    def __init__(self, cls: type[SchemaError], msg: str) -> None:
        super().__init__(msg)
        self.cls, self.msg = cls, msg


def _at(row: int | None, name: str) -> str:
    return f"field {name!r}" if row is None else f"row {row}, field {name!r}"


def _tname(v: Any) -> str:
    return type(v).__name__


def _is_int(x: Any) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def _is_num(x: Any) -> bool:
    return (isinstance(x, (int, float, np.integer, np.floating))
            and not isinstance(x, (bool, np.bool_)))


def _per_row(name: str, vals: Sequence[Any], check: Callable[[Any], Any]) -> list[Any]:
    """``check`` each value; a ``_Bad`` becomes its vecpg error naming the row and field."""
    out: list[Any] = []
    for i, x in enumerate(vals):
        try:
            out.append(check(x))
        except _Bad as e:
            raise e.cls(f"{_at(i, name)}: {e.msg}") from None
    return out


def _first(bad_rows: np.ndarray) -> int | None:
    """Index of the first True in a per-row mask, or None."""
    return int(np.argmax(bad_rows)) if bad_rows.any() else None


@dataclass
class Column:
    """One validated column. ``values`` is an ndarray for numbers, TIMESTAMPTZ (int64
    microseconds since 2000-01-01 UTC, Postgres' own count) and dense/bit vectors (vectors
    as ``(n, dim)`` float32 — also for INT8 and BFLOAT16 vectors, whose values float32
    holds exactly — float16 or packed uint8), else a list: str for VARCHAR,
    JSON text for JSON and ``_meta``, lists for ARRAY, ``(indices, values)`` for sparse.
    ``nulls`` marks the NULL rows of a numeric column (lists hold None); ``const`` is the
    value of every row (the partition)."""

    name: str
    pg_type: str
    dtype: DataType
    values: Any = None
    nulls: np.ndarray | None = None
    const: str | None = None
    field: FieldSchema | None = None


@dataclass
class Batch:
    """Validated rows in columns, ready for :func:`copy_batch`."""

    n: int
    columns: list[str]
    pg_types: list[str]
    pk_values: list[Any] | None
    cols: list[Column] = field(default_factory=list)
    pk_field: FieldSchema | None = None
    given_pks: list[Any] | None = None  # every row's key as given (a repeated key: each time)

    def column(self, name: str) -> Column:
        """The validated column ``name``, e.g. a vector field's ``(n, dim)`` array."""
        for c in self.cols:
            if c.name == name:
                return c
        raise InvalidArgument(f"the batch has no column {name!r}; it has {self.columns}")

    def take(self, rows: list[int]) -> None:
        """Keep only ``rows`` (indices, in the order given), in every column."""
        for c in self.cols:
            if c.const is not None or c.values is None:
                continue
            if isinstance(c.values, np.ndarray):
                c.values = c.values[rows]
            else:
                c.values = [c.values[i] for i in rows]
            if c.nulls is not None:
                c.nulls = c.nulls[rows]
        if self.pk_values is not None:
            self.pk_values = [self.pk_values[i] for i in rows]
        self.n = len(rows)

    def set_ids(self, ids: Sequence[int] | np.ndarray) -> None:
        """Add the primary-key column from keys the caller allocated (auto_id)."""
        pk = self.pk_field
        if pk is None or self.pk_values is not None:
            raise InvalidArgument("set_ids: the batch already has primary keys")
        if len(ids) != self.n:
            raise InvalidArgument(f"set_ids: expected {self.n} ids, got {len(ids)}")
        col = _field_column(pk, ids if isinstance(ids, np.ndarray) else list(ids), self.n)
        self.pk_values = _check_unique(pk.name, col.values)
        self.cols.insert(0, col)
        self.columns.insert(0, col.name)
        self.pg_types.insert(0, col.pg_type)


# -- input forms ---------------------------------------------------------------------------

def _holds_vectors(f: FieldSchema, v: Any) -> bool:
    """Whether a field's value is a sequence of vectors (columnar) rather than one vector."""
    if isinstance(v, np.ndarray):
        return v.ndim == 2 or (v.ndim == 1 and v.dtype == object)
    if not v:
        return True
    if f.dtype is DT.SPARSE_FLOAT_VECTOR:
        return isinstance(v[0], (Mapping, SparseVector))
    return isinstance(v[0], (list, tuple, np.ndarray, bytes, bytearray, str, Vector,
                             HalfVector, Bit))


def _is_columnar(schema: CollectionSchema, data: Mapping[str, Any]) -> bool:
    if not data or not all(isinstance(v, (list, tuple, range)) or (isinstance(v, np.ndarray)
                                                             and v.ndim >= 1)
                           for v in data.values()):
        return False
    vectors = [k for k in data if (f := schema.get(k)) is not None and f.dtype.is_vector]
    if not all(_holds_vectors(schema.field(k), data[k]) for k in vectors):
        return False
    lengths = {k: len(v) for k, v in data.items()}
    if len(set(lengths.values())) != 1:
        if vectors:
            raise InvalidArgument(f"columns of different lengths: {lengths}")
        return False
    return True


def _columns_of(schema: CollectionSchema,
                data: Any) -> tuple[int, dict[str, Any], list[dict[str, Any]] | None]:
    """(n, field name -> list or ndarray, each row's dynamic fields or None)."""
    names = {f.name for f in schema.fields}
    if isinstance(data, Mapping) and _is_columnar(schema, data):
        n = len(next(iter(data.values())))
        extra = {k: (v.tolist() if isinstance(v, np.ndarray) else v)
                 for k, v in data.items() if k not in names}
        rows: list[dict[str, Any]] = ([{k: v[i] for k, v in extra.items()} for i in range(n)]
                                      if extra else [])
        cols = {k: v for k, v in data.items() if k in names}
    else:
        if isinstance(data, Mapping):
            data = [data]
        if isinstance(data, (str, bytes)) or not isinstance(data, Sequence):
            raise InvalidArgument(f"data must be a list of row dicts or a dict, got {_tname(data)}")
        for i, row in enumerate(data):
            if type(row) is not dict and not isinstance(row, Mapping):  # dict: skip the ABC
                raise InvalidArgument(f"row {i}: expected a dict, got {_tname(row)}")
        n = len(data)
        cols = {k: [r.get(k, _MISSING) for r in data] for k in names}
        extra = {}
        rows = [{k: v for k, v in r.items() if k not in names} if not names.issuperset(r) else {}
                for r in data]
    if not any(rows):
        return n, cols, None
    if not schema.enable_dynamic_field:
        i, k = next((i, next(iter(r))) for i, r in enumerate(rows) if r)
        raise SchemaError(f"{_at(i, k)}: unknown field; fields are {sorted(names)}")
    return n, cols, [_merge_meta(i, r) for i, r in enumerate(rows)]


def _merge_meta(i: int, extra: dict[str, Any]) -> dict[str, Any]:
    """A row's dynamic fields: its ``$meta`` dict, then its other unknown keys."""
    meta = extra.pop(META_KEY, None)
    if meta is None:
        return extra
    if not isinstance(meta, Mapping):
        raise FieldTypeError(f"{_at(i, META_KEY)}: expected a dict, got {_tname(meta)}")
    return {**meta, **extra}


# -- prepare -------------------------------------------------------------------------------

def prepare_batch(schema: CollectionSchema, data: Sequence[Mapping[str, Any]] | Mapping[str, Any],
                  *, partition: str = DEFAULT_PARTITION, require_pk: bool = False,
                  last_wins: bool = False, partial: bool = False,
                  timezone: str | None = None) -> Batch:
    """Validate ``data`` against ``schema`` and return it as a :class:`Batch`.

    Raises a :class:`~vecpg.errors.SchemaError` subclass naming the row and field of the
    first bad value, :class:`~vecpg.errors.DuplicateKey` for a key repeated in the batch.
    A field absent from every row is left out of the COPY, so the table's identity, DEFAULT
    or NULL applies; a field absent from some rows gets its ``default_value`` there.
    ``require_pk`` demands the primary key even when it is auto_id (upsert); ``last_wins``
    keeps the last row of a key given twice (Milvus' upsert) instead of raising;
    ``partial`` leaves out every field the rows do not give, required or not (a partial
    update changes only those). ``timezone`` (an IANA name, default UTC: Milvus' collection
    ``timezone``) places TIMESTAMPTZ values given without an offset.

    >>> prepare_batch(schema, {"id": np.arange(3), "vec": np.zeros((3, 8), np.float32)}).n
    3
    """
    check_name(partition, "partition name")
    time_zone(timezone)  # an unknown name fails here, not in some row
    n, raw, metas = _columns_of(schema, data)
    if n == 0:
        raise InvalidArgument("no rows to insert")
    cols: list[Column] = []
    pk_values: list[Any] | None = None
    for f in schema.fields:
        v = raw.get(f.name, _MISSING)
        absent = v is _MISSING or (isinstance(v, list) and all(x is _MISSING for x in v))
        if f.is_function_output:  # a BM25 output: scored from the input's terms
            if not absent:
                raise SchemaError(f"field {f.name!r} is the output of function "
                                  f"{getattr(schema.function_for(f.name), 'name', '?')!r}: "
                                  "it is computed, do not give it")
            continue
        if absent and ((f.auto_id and not require_pk) or (not f.is_primary and (
                partial or f.nullable or f.default_value is not None))):
            continue
        col = _field_column(f, v, n, partial_pk=f.auto_id and not absent, timezone=timezone)
        if f.is_primary:
            pk_values = _check_unique(f.name, col.values, allow=last_wins)
        cols.append(col)
    cols.append(Column(PARTITION_COLUMN, "text", DT.VARCHAR, const=partition))
    if metas is not None:
        texts = _per_row(META_COLUMN, metas, _json_text)
        cols.append(Column(META_COLUMN, "jsonb", DT.JSON, texts))
    batch = Batch(n, [c.name for c in cols], [c.pg_type for c in cols], pk_values, cols,
                  schema.primary_field)
    batch.given_pks = pk_values
    if pk_values is not None and len(set(pk_values)) != n:  # last_wins: keep each key's last
        last = {k: i for i, k in enumerate(pk_values)}
        batch.take(sorted(last.values()))
    return batch


def is_one_row(schema: CollectionSchema, data: Mapping[str, Any]) -> bool:
    """Whether a dict is one row (pymilvus' form) rather than a dict of columns: its scalar
    fields hold single values."""
    for f in schema.scalar_fields:
        if f.name in data:
            v = data[f.name]
            return not (isinstance(v, (list, tuple, range))
                        or (isinstance(v, np.ndarray) and v.ndim))
    return False


def _check_unique(name: str, values: Any, allow: bool = False) -> list[Any]:
    """The primary keys as a list; raise DuplicateKey naming a repeated key and its rows
    (unless ``allow``)."""
    keys: list[Any] = values.tolist() if isinstance(values, np.ndarray) else values
    if len(set(keys)) != len(keys) and not allow:
        seen: dict[Any, int] = {}
        for i, k in enumerate(keys):
            if k in seen:
                raise DuplicateKey(f"{_at(i, name)}: primary key {k!r} repeats row {seen[k]} "
                                   "of the batch")
            seen[k] = i
    return keys


def _field_column(f: FieldSchema, v: Any, n: int, partial_pk: bool = False,
                  timezone: str | None = None) -> Column:
    """Validate one field's values: an ndarray, or a list that may hold _MISSING / None."""
    d = f.dtype
    col = Column(f.name, f.pg_type_name(), d, field=f)
    plain = isinstance(v, np.ndarray) and v.dtype != object
    if plain and (d.is_vector or d in _NP):
        col.values = _vectors_array(f, v) if d.is_vector else _scalar_array(f, v)
        return col
    if plain and d is DT.TIMESTAMPTZ and v.dtype.kind == "M":
        vals = list(v)  # numpy datetime64 scalars (tolist() would make some of them ints)
    else:
        vals = [_MISSING] * n if v is _MISSING else v.tolist() if plain else list(v)
    if d is DT.TIMESTAMPTZ:  # NaT is a missing time: a null
        vals = [None if isinstance(x, np.datetime64) and np.isnat(x) else x for x in vals]
    nulls: list[int] = []
    for i, x in enumerate(vals):
        if x is None or x is _MISSING:
            if f.is_primary:
                hint = " (give it in every row or in none)" if partial_pk else ""
                raise SchemaError(f"{_at(i, f.name)}: the primary key is missing{hint}")
            if f.default_value is not None:
                vals[i] = f.default_value
            elif f.nullable:
                vals[i] = None
                nulls.append(i)
            else:
                raise SchemaError(f"{_at(i, f.name)}: {'missing' if x is _MISSING else 'null'}, "
                                  "and the field has no default and is not nullable")
    if d.is_vector:
        col.values = _vectors_list(f, vals)
    elif d in _NP:
        zero = _NP[d]().item()  # a placeholder in NULL rows, which the mask marks
        for i in nulls:
            vals[i] = zero
        col.values = _scalar_array(f, _number_list(f, vals))
        if nulls:
            col.nulls = np.zeros(n, np.bool_)
            col.nulls[nulls] = True
    elif d is DT.TIMESTAMPTZ:
        col.values = np.array(_per_row(f.name, vals, lambda x: 0 if x is None else
                                       _timestamp(x, timezone)), np.int64)
        if nulls:
            col.nulls = np.zeros(n, np.bool_)
            col.nulls[nulls] = True
    else:
        col.values = _check_values(f, vals)
    return col


def _timestamp(v: Any, timezone: str | None) -> int:
    """One TIMESTAMPTZ value as Postgres' microseconds since 2000-01-01 UTC."""
    try:
        return timestamp_us(v, timezone) - PG_EPOCH_US
    except InvalidArgument as e:
        raise _Bad(FieldTypeError, str(e)) from None


def _number_list(f: FieldSchema, vals: list[Any]) -> np.ndarray:
    """A list of numbers or bools as an array for :func:`_scalar_array` to check.

    Plain Python values take one C-level type pass and one conversion; anything else
    (numpy scalars, wrong types) is checked value by value to name the offending row.
    """
    d = f.dtype
    kinds = {bool} if d is DT.BOOL else {int} if d in _INTS else {int, float}
    if set(map(type, vals)) <= kinds:
        try:
            return np.array(vals, np.bool_ if d is DT.BOOL else np.int64 if d in _INTS
                            else np.float64)
        except OverflowError:  # an int beyond int64 / float64; the loop below names it
            pass
    return np.array(_per_row(f.name, vals, lambda x: _scalar(d, x)), _NP[d])


def _check_values(f: FieldSchema, vals: list[Any]) -> list[Any]:
    """Validate VARCHAR, JSON or ARRAY values (None is NULL): the common case of plain
    strings passes C-level checks; the per-value loop names the offending row."""
    d = f.dtype
    if d is DT.VARCHAR:
        strs = [s for s in vals if s is not None]
        if set(map(type, strs)) <= {str}:
            joined = "".join(strs)
            if (max(map(len, strs), default=0) <= (f.max_length or 0) and "\x00" not in joined
                    and _utf8_ok(joined)):
                return vals
    check: Callable[[Any], Any]
    if d is DT.JSON:
        check = _json_text
    elif d is DT.ARRAY:
        def check(x: Any) -> Any:
            return _array_value(f, x)
    else:
        def check(x: Any) -> Any:
            return _scalar(d, x, f.max_length)
    return _per_row(f.name, vals, lambda x: None if x is None else check(x))


def _utf8_ok(s: str) -> bool:
    try:
        return s.isascii() or bool(s.encode("utf-8"))
    except UnicodeEncodeError:  # lone surrogates
        return False


def _scalar(d: DataType, v: Any, max_length: int | None = None) -> Any:
    """One non-null scalar, checked and converted to a plain Python value."""
    if d in _INTS:
        if not _is_int(v):
            raise _Bad(FieldTypeError, f"expected an integer for {d.value}, got {_tname(v)}")
        lo, hi = INT_RANGES[d]
        if not lo <= int(v) <= hi:
            raise _Bad(FieldTypeError, f"{int(v)} is out of range for {d.value} [{lo}, {hi}]")
        return int(v)
    if d in (DT.FLOAT, DT.DOUBLE):
        if not _is_num(v):
            raise _Bad(FieldTypeError, f"expected a number for {d.value}, got {_tname(v)}")
        try:
            x = float(v)
        except OverflowError:
            x = math.inf
        if not math.isfinite(x) or (d is DT.FLOAT and abs(x) > _F32_MAX):
            raise _Bad(SchemaError, f"{v!r} is not a finite {d.value} value")
        return x
    if d is DT.BOOL:
        if not isinstance(v, (bool, np.bool_)):
            raise _Bad(FieldTypeError, f"expected a bool, got {_tname(v)}")
        return bool(v)
    if not isinstance(v, str):  # VARCHAR
        raise _Bad(FieldTypeError, f"expected a str, got {_tname(v)}")
    if max_length is not None and len(v) > max_length:
        raise _Bad(ValueTooLong, f"{len(v)} characters, max_length is {max_length}")
    if "\x00" in v:
        raise _Bad(SchemaError, "contains a NUL character, which Postgres text cannot store")
    if not _utf8_ok(v):
        raise _Bad(FieldTypeError, "not encodable as UTF-8 (a lone surrogate)")
    return str(v)


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"{_tname(o)} is not JSON serializable")


def _json_text(v: Any) -> str:
    """``v`` as JSON text that jsonb accepts."""
    try:
        t = json.dumps(v, ensure_ascii=False, allow_nan=False, default=_json_default,
                       separators=(",", ":"))
    except (TypeError, ValueError, RecursionError) as e:
        raise _Bad(FieldTypeError, f"is not JSON-serializable: {e}") from None
    if "\\u0000" in t or not _utf8_ok(t):
        raise _Bad(FieldTypeError, "holds \\u0000 or a lone surrogate, which jsonb cannot store")
    return t


def _array_value(f: FieldSchema, v: Any) -> list[Any]:
    if isinstance(v, np.ndarray) and v.ndim == 1:
        v = v.tolist()
    if not isinstance(v, (list, tuple)):
        raise _Bad(FieldTypeError, f"expected a list for ARRAY, got {_tname(v)}")
    if f.max_capacity is not None and len(v) > f.max_capacity:
        raise _Bad(ValueTooLong, f"{len(v)} elements, max_capacity is {f.max_capacity}")
    et = f.element_type or DT.INT64  # FieldSchema guarantees an element_type for ARRAY
    out: list[Any] = []
    for j, x in enumerate(v):
        try:
            if x is None:
                raise _Bad(FieldTypeError, "None; array elements cannot be null")
            out.append(_scalar(et, x, f.max_length))
        except _Bad as e:
            raise _Bad(e.cls, f"element {j}: {e.msg}") from None
    return out


def _scalar_array(f: FieldSchema, a: np.ndarray) -> np.ndarray:
    """A numeric ndarray column, checked without a per-row loop."""
    d, kind = f.dtype, a.dtype.kind
    if a.ndim != 1:
        raise FieldTypeError(f"{_at(None, f.name)}: expected a 1-D array, got shape {a.shape}")
    if kind not in ("b" if d is DT.BOOL else "iu" if d in _INTS else "iuf"):
        raise FieldTypeError(f"{_at(0, f.name)}: expected {d.value} values, got a {a.dtype} array")
    if d in _INTS:
        lo, hi = INT_RANGES[d]
        if (i := _first((a > hi) if kind == "u" else (a < lo) | (a > hi))) is not None:
            raise FieldTypeError(f"{_at(i, f.name)}: {a[i]} is out of range for {d.value}")
    with np.errstate(over="ignore"):  # overflow to inf is caught just below
        out: np.ndarray = a.astype(_NP[d], copy=False)
    if kind == "f" and (i := _first(~np.isfinite(out))) is not None:
        raise SchemaError(f"{_at(i, f.name)}: {a[i]!r} is not a finite {d.value} value")
    return out


# -- vectors -------------------------------------------------------------------------------

def validate_vectors(f: FieldSchema, items: Any) -> Any:
    """Validate vectors for field ``f`` (a 2-D array or a sequence of vectors) exactly as
    an insert does; returns the column form described on :class:`Column`."""
    if isinstance(items, np.ndarray) and items.dtype != object:
        return _vectors_array(f, items)
    return _vectors_list(f, list(items))


def _vectors_array(f: FieldSchema, a: np.ndarray) -> Any:
    """A 2-D ndarray of vectors, checked as a whole."""
    d, dim = f.dtype, f.vector_dim
    if a.ndim != 2 or d is DT.SPARSE_FLOAT_VECTOR:
        if a.ndim == 1 or d is DT.SPARSE_FLOAT_VECTOR:
            return _vectors_list(f, list(a))
        raise FieldTypeError(f"{_at(None, f.name)}: expected a 2-D array of vectors, got "
                             f"shape {a.shape}")
    if d is DT.BINARY_VECTOR:
        nbytes = (dim + 7) // 8
        if a.dtype == np.uint8 and a.shape[1] == nbytes:  # packed, most significant bit first
            return _pad_bits(np.ascontiguousarray(a), dim)
        if a.shape[1] != dim or a.dtype.kind not in "biu":
            raise DimensionMismatch(f"{_at(0, f.name)}: expected dim {dim} ({nbytes} packed "
                                    f"uint8 or {dim} 0/1 columns), got {a.shape[1]} {a.dtype}")
        if (i := _first(~((a == 0) | (a == 1)).all(axis=1))) is not None:
            raise FieldTypeError(f"{_at(i, f.name)}: a bit array may hold only 0/1")
        return np.packbits(a.astype(np.uint8), axis=1)
    if a.shape[1] != dim:
        raise DimensionMismatch(f"{_at(0, f.name)}: expected dim {dim}, got {a.shape[1]}")
    if d is DT.INT8_VECTOR:
        return _int8_array(f, a)
    if d is DT.BFLOAT16_VECTOR:
        return _bf16_array(f, a)
    if a.dtype.kind not in "iuf":
        raise FieldTypeError(f"{_at(0, f.name)}: expected numbers, got a {a.dtype} array")
    half = d is DT.FLOAT16_VECTOR
    # NaN compares False here and is caught below.
    if half and a.dtype != np.float16 and a.size and (
            i := _first(np.abs(a).max(axis=1) > _F16_MAX)) is not None:
            raise InvalidVector(f"{_at(i, f.name)}: a value exceeds ±65504, the FLOAT16 range")
    with np.errstate(over="ignore"):  # beyond float32 becomes inf, caught just below
        out = np.ascontiguousarray(a, dtype=np.float16 if half else np.float32)
    if (i := _first(~np.isfinite(out).all(axis=1))) is not None:
        raise InvalidVector(f"{_at(i, f.name)}: the vector holds NaN or infinity")
    return out


def _vectors_list(f: FieldSchema, vals: list[Any]) -> Any:
    """Vectors given one object per row."""
    d, dim = f.dtype, f.vector_dim
    if d is DT.SPARSE_FLOAT_VECTOR:
        return _per_row(f.name, vals, lambda v: _sparse(v, dim))
    if d is DT.BINARY_VECTOR:
        return _pad_bits(np.stack(_per_row(f.name, vals, lambda v: _bits(v, dim))), dim)
    if d in (DT.INT8_VECTOR, DT.BFLOAT16_VECTOR):
        vals = _per_row(f.name, vals, lambda v: _byte_vector(d, v, dim))
    types = set(map(type, vals))
    if types == {np.ndarray} and {v.shape for v in vals} == {(dim,)}:
        return _vectors_array(f, np.stack(vals))  # far faster than np.array on arrays
    if types <= {list, tuple} and set(map(len, vals)) == {dim}:
        items = vals
    else:
        items = _per_row(f.name, vals, lambda v: _dense(v, dim))
    try:
        a = np.array(items)  # one pass over all rows
    except (ValueError, TypeError):
        a = np.array(items, dtype=object)
    if a.ndim != 2 or a.dtype.kind not in "iuf":
        _per_row(f.name, items, _numeric)  # raises for the first row that is not numbers
        a = np.array(items, dtype=np.float64)  # numbers of mixed Python and numpy types
    return _vectors_array(f, a)


def _int8_array(f: FieldSchema, a: np.ndarray) -> np.ndarray:
    """INT8 vectors, checked (integers in [-128, 127]) and widened to float32, which holds
    them exactly."""
    if a.dtype.kind not in "iu":
        raise FieldTypeError(f"{_at(0, f.name)}: INT8_VECTOR takes integers in [-128, 127] "
                             f"(numpy int8 arrays, lists of ints or bytes), got a {a.dtype} "
                             "array")
    outside = np.asarray(((a < -128) | (a > 127)).any(axis=1))
    if a.dtype != np.int8 and a.size and (i := _first(outside)) is not None:
        raise FieldTypeError(f"{_at(i, f.name)}: a value is outside [-128, 127], the INT8 range")
    return np.ascontiguousarray(a, dtype=np.float32)


def _bf16_array(f: FieldSchema, a: np.ndarray) -> np.ndarray:
    """BFLOAT16 vectors as float32 (which holds every bfloat16 exactly): ml_dtypes' bfloat16
    arrays as they are, other numbers rounded to the nearest bfloat16 (ties to even, as
    ml_dtypes and Milvus' float32-to-bfloat16 conversion do)."""
    if a.dtype.name == "bfloat16":  # ml_dtypes' type, read by its bits: no import needed
        bits = np.ascontiguousarray(a).view(np.uint16).astype(np.uint32) << 16
        out = bits.view(np.float32)
    elif a.dtype.kind in "iuf":
        with np.errstate(over="ignore", invalid="ignore"):
            wide = np.ascontiguousarray(a, dtype=np.float32)
            infinite = np.asarray(~np.isfinite(wide).all(axis=1))
            if (i := _first(infinite)) is not None:
                raise InvalidVector(f"{_at(i, f.name)}: the vector holds NaN or infinity (or "
                                    "a value beyond the float32 range)")
            b: np.ndarray = wide.view(np.uint32).astype(np.uint64)
            b = (b + 0x7FFF + ((b >> 16) & 1)) & 0xFFFF0000
            out = b.astype(np.uint32).view(np.float32)
    else:
        raise FieldTypeError(f"{_at(0, f.name)}: BFLOAT16_VECTOR takes numbers (bfloat16, "
                             f"float32 or float64 arrays, lists) or bytes, got a {a.dtype} "
                             "array")
    nonfinite = np.asarray(~np.isfinite(out).all(axis=1))
    if (i := _first(nonfinite)) is not None:
        raise InvalidVector(f"{_at(i, f.name)}: the vector holds NaN or infinity, or a value "
                            "beyond the BFLOAT16 range (about ±3.39e38)")
    return out


def _byte_vector(d: DataType, v: Any, dim: int) -> Any:
    """One INT8 / BFLOAT16 vector given as pymilvus' bytes (``dim`` int8 bytes; ``2 * dim``
    little-endian bfloat16 bytes) or a bfloat16 array, as a numpy row; anything else as it
    is (a list of ints for INT8 is checked for bools, which numpy would take as 0/1)."""
    if isinstance(v, (bytes, bytearray, memoryview)):
        width = dim if d is DT.INT8_VECTOR else 2 * dim
        if len(v) != width:
            raise _Bad(DimensionMismatch, f"expected dim {dim} ({width} bytes), got "
                                          f"{len(v)} bytes")
        if d is DT.INT8_VECTOR:
            return np.frombuffer(bytes(v), np.int8)
        bits = np.frombuffer(bytes(v), "<u2").astype(np.uint32) << 16
        return bits.view(np.float32)
    if isinstance(v, np.ndarray) and v.dtype.name == "bfloat16" and v.ndim == 1:
        return (np.ascontiguousarray(v).view(np.uint16).astype(np.uint32) << 16
                ).view(np.float32)
    if isinstance(v, np.ndarray) and v.dtype.kind not in ("iu" if d is DT.INT8_VECTOR
                                                          else "iuf"):
        raise _Bad(FieldTypeError, f"{d.value} takes "
                                   f"{'integers' if d is DT.INT8_VECTOR else 'numbers'}, got a "
                                   f"{v.dtype} array")
    bad = (next((x for x in v if not _is_int(x)), _MISSING)
           if d is DT.INT8_VECTOR and isinstance(v, (list, tuple)) else _MISSING)
    if bad is not _MISSING:
        raise _Bad(FieldTypeError, f"INT8_VECTOR takes integers in [-128, 127], got "
                                   f"{_tname(bad)} {bad!r}")
    return v


def _dense(v: Any, dim: int) -> Any:
    if isinstance(v, (Vector, HalfVector)):
        v = v.to_numpy()
    if isinstance(v, np.ndarray) and v.ndim != 1:
        raise _Bad(FieldTypeError, f"expected a 1-D vector, got shape {v.shape}")
    if not isinstance(v, (list, tuple, np.ndarray)):
        raise _Bad(FieldTypeError, f"expected a list of numbers, got {_tname(v)}")
    if len(v) != dim:
        raise _Bad(DimensionMismatch, f"expected dim {dim}, got {len(v)}")
    return v


def _numeric(v: Any) -> None:
    ok = v.dtype.kind in "iuf" if isinstance(v, np.ndarray) else all(map(_is_num, v))
    if not ok:
        raise _Bad(FieldTypeError, f"expected numbers, got {sorted({_tname(x) for x in v})}")


def _bits(v: Any, dim: int) -> np.ndarray:
    """One binary vector as ``ceil(dim/8)`` packed bytes, most significant bit first."""
    nbytes = (dim + 7) // 8
    if isinstance(v, Bit):
        raw = v.to_binary()
        if (length := struct.unpack(">i", raw[:4])[0]) != dim:
            raise _Bad(DimensionMismatch, f"expected dim {dim}, got a Bit of {length} bits")
        return np.frombuffer(raw[4:], np.uint8)
    if isinstance(v, (bytes, bytearray, memoryview)):
        if len(v) != nbytes:
            raise _Bad(DimensionMismatch, f"expected dim {dim} ({nbytes} bytes), got "
                                          f"{len(v)} bytes")
        return np.frombuffer(bytes(v), np.uint8)
    if isinstance(v, str):
        if len(v) != dim:
            raise _Bad(DimensionMismatch, f"expected dim {dim}, got a bit string of {len(v)}")
        if v.strip("01"):
            raise _Bad(FieldTypeError, "a bit string may hold only '0' and '1'")
        return np.packbits(np.frombuffer(v.encode("ascii"), np.uint8) - 48)
    if isinstance(v, np.ndarray) and v.ndim == 1 and v.dtype == np.uint8 and len(v) == nbytes:
        return v  # already packed
    if not isinstance(v, (list, tuple, np.ndarray)):
        raise _Bad(FieldTypeError, f"expected bytes, a 0/1 list, a bit string or Bit, got "
                                   f"{_tname(v)}")
    if len(v) != dim:
        raise _Bad(DimensionMismatch, f"expected dim {dim} bits or {nbytes} packed bytes, got "
                                      f"{len(v)} items")
    a = np.asarray(v)
    if a.ndim != 1 or a.dtype.kind not in "biu" or not ((a == 0) | (a == 1)).all():
        raise _Bad(FieldTypeError, "a bit list may hold only 0/1 or booleans")
    return np.packbits(a.astype(np.uint8))


def _pad_bits(a: np.ndarray, dim: int) -> np.ndarray:
    """Zero the padding bits of the last byte, as Postgres does."""
    if dim % 8:
        a = a.copy()
        a[:, -1] &= np.uint8((0xFF << (8 - dim % 8)) & 0xFF)
    return a


def _sparse(v: Any, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """One sparse vector as sorted int32 indices and nonzero float32 values."""
    if isinstance(v, SparseVector):
        if v.dimensions() != dim:
            raise _Bad(DimensionMismatch, f"expected dim {dim}, got {v.dimensions()}")
        keys, vals = list(v.indices()), list(v.values())
    elif isinstance(v, Mapping):
        keys, vals = list(v.keys()), list(v.values())
    else:
        raise _Bad(FieldTypeError, f"expected a dict {{index: value}}, got {_tname(v)}")
    if not all(map(_is_int, keys)):
        raise _Bad(FieldTypeError, "sparse indices must be integers")
    if not all(map(_is_num, vals)):
        raise _Bad(FieldTypeError, "sparse values must be numbers")
    idx = np.array(keys, dtype=np.int64)
    with np.errstate(over="ignore"):  # overflow to inf is caught just below
        val = np.array(vals, dtype=np.float64).astype(np.float32)
    if (i := _first((idx < 0) | (idx >= dim))) is not None:
        raise _Bad(DimensionMismatch, f"index {idx[i]} is outside [0, {dim}), expected dim {dim}")
    if not np.isfinite(val).all():
        raise _Bad(InvalidVector, "the vector holds NaN or infinity")
    order = np.argsort(idx, kind="stable")
    idx, val = idx[order], val[order]
    if (np.diff(idx) == 0).any():
        raise _Bad(InvalidVector, "a sparse index appears twice")
    keep = val != 0  # pgvector's binary input rejects explicit zeros; zero means absent
    if keep.sum() > _SPARSE_MAX_NNZ:
        raise _Bad(InvalidVector, f"{keep.sum()} nonzero values; pgvector allows at most "
                                  f"{_SPARSE_MAX_NNZ}")
    return idx[keep].astype(np.int32), val[keep]

