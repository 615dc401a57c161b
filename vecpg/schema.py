"""Collection schemas: data types, fields, naming rules and their Postgres column types.

A collection is one Postgres table. Each field is one column; dynamic fields (names not in
the schema) live together in the jsonb column ``_meta``; the partition of a row is the text
column ``_partition``. User field names may not start with ``_``, so those two never clash.

Example::

    schema = CollectionSchema(enable_dynamic_field=True)
    schema.add_field("id", DataType.INT64, is_primary=True, auto_id=True)
    schema.add_field("title", DataType.VARCHAR, max_length=200)
    schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=384)
"""

from __future__ import annotations

import datetime as _dt
import enum
import re
import zoneinfo
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from psycopg import sql

from .errors import InvalidArgument, InvalidName, NotSupported, SchemaError
from .fulltext import analyzer_config, len_column, tsv_column, tsvector_sql

META_COLUMN = "_meta"
PARTITION_COLUMN = "_partition"
DEFAULT_PARTITION = "_default"
SPARSE_MAX_DIM = 1_000_000_000  # pgvector's sparsevec limit: the dimension of "any"

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MAX_NAME = 63  # Postgres truncates identifiers beyond 63 bytes; refuse instead.


class DataType(str, enum.Enum):
    """Field types, named as in pymilvus."""

    BOOL = "BOOL"
    INT8 = "INT8"
    INT16 = "INT16"
    INT32 = "INT32"
    INT64 = "INT64"
    FLOAT = "FLOAT"
    DOUBLE = "DOUBLE"
    VARCHAR = "VARCHAR"
    JSON = "JSON"
    ARRAY = "ARRAY"
    TIMESTAMPTZ = "TIMESTAMPTZ"
    FLOAT_VECTOR = "FLOAT_VECTOR"
    FLOAT16_VECTOR = "FLOAT16_VECTOR"
    BFLOAT16_VECTOR = "BFLOAT16_VECTOR"
    INT8_VECTOR = "INT8_VECTOR"
    BINARY_VECTOR = "BINARY_VECTOR"
    SPARSE_FLOAT_VECTOR = "SPARSE_FLOAT_VECTOR"

    @classmethod
    def parse(cls, value: DataType | str) -> DataType:
        """A DataType from itself, pymilvus' ``DataType`` (same names: Milvus code passes
        its own enum) or a name in any case, with SQL-ish aliases (``"text"``, ``"bigint"``);
        anything else raises :class:`InvalidArgument` listing the known names."""
        if isinstance(value, DataType):
            return value
        if isinstance(value, enum.Enum):  # e.g. pymilvus.DataType.INT64: same names
            value = value.name
        if isinstance(value, str):
            key = value.strip().upper()
            aliases = {"STRING": "VARCHAR", "TEXT": "VARCHAR", "INT": "INT64",
                       "BIGINT": "INT64", "BOOLEAN": "BOOL", "FLOAT32": "FLOAT",
                       "FLOAT64": "DOUBLE", "BINARY": "BINARY_VECTOR"}
            key = aliases.get(key, key)
            if key in cls.__members__:
                return cls[key]
        raise InvalidArgument(f"unknown data type {value!r}; expected one of "
                              f"{', '.join(cls.__members__)}")

    @property
    def is_vector(self) -> bool:
        """True for the vector types (float, float16, bfloat16, int8, binary, sparse)."""
        return self in _VECTOR_TYPES

    @property
    def is_integer(self) -> bool:
        """True for INT8, INT16, INT32 and INT64."""
        return self in (DataType.INT8, DataType.INT16, DataType.INT32, DataType.INT64)

    @property
    def is_number(self) -> bool:
        """True for the integer types, FLOAT and DOUBLE: the fields filters treat as numbers."""
        return self.is_integer or self in (DataType.FLOAT, DataType.DOUBLE)


_VECTOR_TYPES = frozenset({DataType.FLOAT_VECTOR, DataType.FLOAT16_VECTOR,
                           DataType.BFLOAT16_VECTOR, DataType.INT8_VECTOR,
                           DataType.BINARY_VECTOR, DataType.SPARSE_FLOAT_VECTOR})
# Vector types stored in pgvector's float32 ``vector``: their values are exactly float32
# values (int8 and bfloat16 are subsets), so the column holds them faithfully.
AS_FLOAT32 = frozenset({DataType.FLOAT_VECTOR, DataType.BFLOAT16_VECTOR, DataType.INT8_VECTOR})

# Scalar types as Postgres spells them. INT8 is a smallint with a range check.
_PG_SCALAR = {
    DataType.BOOL: "boolean",
    DataType.INT8: "smallint",
    DataType.INT16: "smallint",
    DataType.INT32: "integer",
    DataType.INT64: "bigint",
    DataType.FLOAT: "real",
    DataType.DOUBLE: "double precision",
    DataType.JSON: "jsonb",
    DataType.TIMESTAMPTZ: "timestamptz",
}
_PG_VECTOR = {
    DataType.FLOAT_VECTOR: "vector",
    DataType.BFLOAT16_VECTOR: "vector",
    DataType.INT8_VECTOR: "vector",
    DataType.FLOAT16_VECTOR: "halfvec",
    DataType.BINARY_VECTOR: "bit",
    DataType.SPARSE_FLOAT_VECTOR: "sparsevec",
}
INT_RANGES = {
    DataType.INT8: (-(2**7), 2**7 - 1),
    DataType.INT16: (-(2**15), 2**15 - 1),
    DataType.INT32: (-(2**31), 2**31 - 1),
    DataType.INT64: (-(2**63), 2**63 - 1),
}
# pgvector's limits on stored dimensions.
_MAX_DIM = {DataType.FLOAT_VECTOR: 16000, DataType.FLOAT16_VECTOR: 16000,
            DataType.BFLOAT16_VECTOR: 16000, DataType.INT8_VECTOR: 16000,
            DataType.BINARY_VECTOR: 83886080, DataType.SPARSE_FLOAT_VECTOR: 1_000_000_000}


# -- TIMESTAMPTZ values ---------------------------------------------------------------------
# Milvus keeps a TIMESTAMPTZ as UTC microseconds; Postgres' timestamptz is the same thing
# counted from 2000-01-01. Inputs are ISO 8601 strings (an offset or ``Z`` makes them
# absolute; naive ones are read in the collection's timezone, UTC by default), datetimes
# (naive ones likewise) and numpy datetime64 (a count from the Unix epoch in UTC, as numpy
# defines it). Output is Milvus' string: RFC 3339 in the target timezone, ``Z`` for a zero
# offset, microseconds without trailing zeros (``2025-01-01T08:00:00.5+08:00``).
UTC = _dt.timezone.utc
DEFAULT_TIMEZONE = "UTC"
UNIX_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=UTC)
PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 (Postgres' epoch) in Unix microseconds
_US = _dt.timedelta(microseconds=1)
MIN_TS_US = (_dt.datetime(1, 1, 2, tzinfo=UTC) - UNIX_EPOCH) // _US  # Python's range, with
MAX_TS_US = (_dt.datetime(9999, 12, 30, tzinfo=UTC) - UNIX_EPOCH) // _US  # room for offsets
_OFFSETS = (_dt.timedelta(hours=-12), _dt.timedelta(hours=14))  # Milvus' valid UTC offsets
_TS_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
                    r"(Z|[+-]\d{2}(?::?\d{2})?)?\Z")


def time_zone(name: str | None) -> _dt.tzinfo:
    """The IANA time zone called ``name`` (None: UTC); :class:`InvalidArgument` if unknown."""
    if name is None or name in ("UTC", "Z"):
        return UTC
    try:
        return zoneinfo.ZoneInfo(str(name))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        raise InvalidArgument(f"unknown timezone {name!r}; use an IANA name such as "
                              "'UTC' or 'Asia/Shanghai'") from None


def parse_timestamp(value: Any, timezone: str | None = None) -> _dt.datetime:
    """A TIMESTAMPTZ value as an aware datetime, e.g. ``parse_timestamp("2025-05-01
    23:59:59+08:00")``. ``timezone`` places naive strings and datetimes (default UTC).
    Raises :class:`InvalidArgument` for anything else, a malformed string, an offset
    outside -12:00..+14:00 (as Milvus) or a time outside years 1-9999."""
    if isinstance(value, np.datetime64):
        if np.isnat(value):
            raise InvalidArgument("NaT is not a time (give None for a null)")
        us = int(value.astype("datetime64[us]").astype(np.int64))
        if not MIN_TS_US <= us <= MAX_TS_US:
            raise InvalidArgument(f"{value} is outside years 1-9999")
        return UNIX_EPOCH + _dt.timedelta(microseconds=us)
    if isinstance(value, _dt.datetime):
        out = value
        if value.tzinfo is None or value.utcoffset() is None:
            out = value.replace(tzinfo=time_zone(timezone))
    elif isinstance(value, str):
        m = _TS_RE.match(value.strip())
        if m is None:
            raise InvalidArgument(f"{value!r} is not an ISO 8601 time such as "
                                  "'2025-01-01T00:00:00Z' or '2025-01-01 08:00:00+08:00'")
        y, mo, d, h, mi, sec, frac, off = m.groups()
        us = int((frac or "")[:6].ljust(6, "0"))  # Milvus keeps microseconds, truncated
        if off is None:
            tz = time_zone(timezone)
        elif off == "Z":
            tz = UTC
        else:
            digits = off[1:].replace(":", "")
            delta = _dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:] or 0))
            tz = _dt.timezone(-delta if off[0] == "-" else delta)
        try:
            out = _dt.datetime(int(y), int(mo), int(d), int(h), int(mi), int(sec), us,
                               tzinfo=tz)
        except ValueError as e:
            raise InvalidArgument(f"{value!r} is not a valid time: {e}") from None
    else:
        raise InvalidArgument(f"expected an ISO 8601 string, a datetime or a numpy "
                              f"datetime64, got {type(value).__name__}")
    offset = out.utcoffset() or _dt.timedelta(0)
    if not _OFFSETS[0] <= offset <= _OFFSETS[1]:
        raise InvalidArgument(f"{value!r}: UTC offset {offset} is outside -12:00..+14:00")
    try:
        us = (out - UNIX_EPOCH) // _US
    except OverflowError:
        us = MIN_TS_US - 1
    if not MIN_TS_US <= us <= MAX_TS_US:
        raise InvalidArgument(f"{value!r} is outside years 1-9999")
    return out


def timestamp_us(value: Any, timezone: str | None = None) -> int:
    """A TIMESTAMPTZ value (see :func:`parse_timestamp`) as Unix microseconds (UTC)."""
    return (parse_timestamp(value, timezone) - UNIX_EPOCH) // _US


def format_timestamp(value: _dt.datetime, timezone: str | None = None) -> str:
    """A time as Milvus returns a TIMESTAMPTZ: RFC 3339 in ``timezone`` (default UTC),
    ``Z`` for a zero offset, microseconds without trailing zeros."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    t = value.astimezone(time_zone(timezone))
    text = (f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:"
            f"{t.second:02d}")
    if t.microsecond:
        text += "." + f"{t.microsecond:06d}".rstrip("0")
    off = int((t.utcoffset() or _dt.timedelta(0)).total_seconds()) // 60  # Go drops seconds
    if off == 0:
        return text + "Z"
    sign, off = ("-", -off) if off < 0 else ("+", off)
    return f"{text}{sign}{off // 60:02d}:{off % 60:02d}"


def check_name(name: Any, what: str = "name", *, allow_underscore: bool = True) -> str:
    """Return ``name`` if it is a valid identifier, else raise :class:`InvalidName`.

    Valid: ASCII letters, digits and ``_``, not starting with a digit, at most 63 characters.
    """
    if not isinstance(name, str):
        raise InvalidName(f"{what} must be a string, got {type(name).__name__}")
    if not name or len(name) > _MAX_NAME or not _NAME_RE.match(name):
        raise InvalidName(f"invalid {what} {name!r}: use 1-{_MAX_NAME} ASCII letters, digits or "
                          "'_', not starting with a digit")
    if not allow_underscore and name.startswith("_"):
        raise InvalidName(f"invalid {what} {name!r}: names starting with '_' are reserved")
    return name


@dataclass
class FieldSchema:
    """One field (column) of a collection."""

    name: str
    dtype: DataType
    is_primary: bool = False
    auto_id: bool = False
    max_length: int | None = None
    dim: int | None = None
    element_type: DataType | None = None
    max_capacity: int | None = None
    nullable: bool = False
    default_value: Any = None
    description: str = ""
    # Milvus' partition key: rows are told apart (tenants, say) by this INT64/VARCHAR field;
    # vecpg indexes it and refuses explicit partitions on the collection, as Milvus does
    is_partition_key: bool = False
    # full-text search (VARCHAR): analyzed into a generated tsvector column with a GIN
    # index (see vecpg.fulltext); enable_match allows text_match/phrase_match on it
    enable_analyzer: bool = False
    analyzer_params: dict[str, Any] | None = None
    enable_match: bool = False
    # computed by a function of the schema (a BM25 output): never given on insert
    is_function_output: bool = False
    # Milvus options with no meaning here, kept for describe_collection
    mmap_enabled: bool | None = None
    is_clustering_key: bool = False

    def __post_init__(self) -> None:
        check_name(self.name, "field name", allow_underscore=False)
        self.dtype = DataType.parse(self.dtype)
        if self.element_type is not None:
            self.element_type = DataType.parse(self.element_type)
        d = self.dtype
        if self.is_primary:
            if d not in (DataType.INT64, DataType.VARCHAR):
                raise SchemaError(f"primary key {self.name!r} must be INT64 or VARCHAR,"
                                  f" not {d.value}")
            if self.auto_id and d is not DataType.INT64:
                raise SchemaError("auto_id needs an INT64 primary key")
            if self.nullable:
                raise SchemaError("a primary key cannot be nullable")
        elif self.auto_id:
            raise SchemaError(f"auto_id is only for the primary key, not {self.name!r}")
        if self.is_partition_key and (self.is_primary or d not in (DataType.INT64,
                                                                    DataType.VARCHAR)):
            raise SchemaError(f"partition key {self.name!r} must be a non-primary INT64 or "
                              "VARCHAR field")
        if d is DataType.VARCHAR:
            if self.max_length is None:
                self.max_length = 65535
            _positive_int(self.max_length, f"max_length of {self.name!r}")
        if d is DataType.TIMESTAMPTZ and self.default_value is not None:
            # stored as an absolute time in UTC, so the DDL's DEFAULT never depends on the
            # session's TimeZone (a naive default is UTC, the default collection timezone)
            try:
                self.default_value = format_timestamp(parse_timestamp(self.default_value))
            except InvalidArgument as e:
                raise SchemaError(f"default_value of {self.name!r}: {e}") from None
        if self.enable_analyzer or self.enable_match or self.analyzer_params is not None:
            if d is not DataType.VARCHAR:
                raise SchemaError(f"enable_analyzer/enable_match/analyzer_params are for "
                                  f"VARCHAR fields; {self.name!r} is {d.value}")
            if not self.enable_analyzer:
                raise SchemaError(f"field {self.name!r}: enable_match and analyzer_params "
                                  "need enable_analyzer=True")
            if self.analyzer_params is not None:
                self.analyzer_params = dict(self.analyzer_params)
            analyzer_config(self.analyzer_params)  # SchemaError if it maps onto nothing
        if d.is_vector:
            if self.dim is None and d is not DataType.SPARSE_FLOAT_VECTOR:
                raise SchemaError(f"vector field {self.name!r} needs dim")
            if self.dim is not None:
                _positive_int(self.dim, f"dim of {self.name!r}")
            if self.dim is not None and self.dim > _MAX_DIM[d]:
                raise SchemaError(f"dim of {self.name!r} is {self.dim}; {d.value} allows at most "
                                  f"{_MAX_DIM[d]}")
            if self.nullable or self.is_primary:
                raise SchemaError(f"vector field {self.name!r} cannot be nullable or primary")
        if d is DataType.ARRAY:
            et = self.element_type
            if et is None or et.is_vector or et in (DataType.JSON, DataType.ARRAY,
                                                    DataType.TIMESTAMPTZ):
                raise SchemaError(f"array field {self.name!r} needs a scalar element_type")
            if et is DataType.VARCHAR and self.max_length is None:
                self.max_length = 65535
            if self.max_capacity is not None:
                _positive_int(self.max_capacity, f"max_capacity of {self.name!r}")

    @property
    def text_config(self) -> str | None:
        """The Postgres text search configuration of an analyzed field (None otherwise)."""
        return analyzer_config(self.analyzer_params) if self.enable_analyzer else None

    @property
    def vector_dim(self) -> int:
        """The dimension vectors of this field have: ``dim``, or pgvector's largest sparse
        dimension for a sparse field without one (Milvus needs no dim for sparse vectors),
        0 for scalars."""
        if self.dim is None and self.dtype is DataType.SPARSE_FLOAT_VECTOR:
            return SPARSE_MAX_DIM
        return int(self.dim or 0)

    # -- Postgres -----------------------------------------------------------------------
    def pg_type(self) -> sql.Composable:
        """The column type, e.g. ``vector(384)``, ``varchar(200)``, ``bigint[]``."""
        d = self.dtype
        if d.is_vector:
            if self.dim is None:  # a sparse vector of any dimension (Milvus needs none)
                return sql.SQL(_PG_VECTOR[d])
            return sql.SQL("{}({})").format(sql.SQL(_PG_VECTOR[d]), sql.Literal(int(self.dim)))
        if d is DataType.VARCHAR:
            return sql.SQL("varchar({})").format(sql.Literal(int(self.max_length or 0)))
        if d is DataType.ARRAY:
            assert self.element_type is not None
            inner = FieldSchema(self.name, self.element_type, max_length=self.max_length)
            return sql.SQL("{}[]").format(inner.pg_type())
        return sql.SQL(_PG_SCALAR[d])

    def pg_type_name(self) -> str:
        """The type's name as psycopg's COPY wants it (no modifiers)."""
        d = self.dtype
        if d.is_vector:
            return _PG_VECTOR[d]
        if d is DataType.VARCHAR:
            return "varchar"
        if d is DataType.ARRAY:
            assert self.element_type is not None
            return FieldSchema(self.name, self.element_type).pg_type_name() + "[]"
        return _PG_SCALAR[d]

    def to_dict(self) -> dict[str, Any]:
        """The field as stored in the catalog and shown by ``describe_collection``: type
        names as strings, unset options left out."""
        out = asdict(self)
        out["dtype"] = self.dtype.value
        out["element_type"] = self.element_type.value if self.element_type else None
        return {k: v for k, v in out.items() if v not in (None, False, "") or k == "name"}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FieldSchema:
        """The inverse of :meth:`to_dict` (validated again, as any new field is)."""
        return cls(**d)


def _positive_int(v: Any, what: str) -> None:
    if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
        raise SchemaError(f"{what} must be a positive integer, got {v!r}")


class FunctionType(str, enum.Enum):
    """Function kinds, named as in pymilvus (only BM25 is computed by vecpg)."""

    BM25 = "BM25"
    TEXTEMBEDDING = "TEXTEMBEDDING"
    RERANK = "RERANK"

    @classmethod
    def parse(cls, value: Any) -> FunctionType:
        """From itself, pymilvus' ``FunctionType`` (same names) or a name in any case."""
        if isinstance(value, FunctionType):
            return value
        if isinstance(value, enum.Enum):
            value = value.name
        if isinstance(value, str) and value.strip().upper() in cls.__members__:
            return cls[value.strip().upper()]
        raise SchemaError(f"unknown function type {value!r}; expected one of "
                          f"{', '.join(cls.__members__)}")


@dataclass
class Function:
    """A function of a collection's fields, as pymilvus' ``Function``: BM25 turns one
    analyzed VARCHAR field into the SPARSE_FLOAT_VECTOR field that BM25 searches rank::

        schema.add_function(Function("bm25", FunctionType.BM25, ["text"], ["sparse"]))
    """

    name: str
    function_type: FunctionType | str = FunctionType.BM25
    input_field_names: list[str] | str = field(default_factory=list)
    output_field_names: list[str] | str = field(default_factory=list)
    description: str = ""
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_name(self.name, "function name")
        self.function_type = FunctionType.parse(self.function_type)
        if self.function_type is not FunctionType.BM25:
            raise NotSupported(f"{self.function_type.value} functions are not supported; "
                               "compute the vectors before inserting them (BM25 is built in)")
        for attr in ("input_field_names", "output_field_names"):
            v = getattr(self, attr)
            names = [v] if isinstance(v, str) else list(v or [])
            if len(names) != 1 or not all(isinstance(x, str) for x in names):
                raise SchemaError(f"a BM25 function takes one field name in {attr}, "
                                  f"got {v!r}")
            setattr(self, attr, names)
        if not isinstance(self.params, dict):
            raise SchemaError(f"function params must be a dict, got {self.params!r}")

    @property
    def input_field(self) -> str:
        """The (analyzed VARCHAR) input field."""
        return str(self.input_field_names[0])

    @property
    def output_field(self) -> str:
        """The (SPARSE_FLOAT_VECTOR) output field."""
        return str(self.output_field_names[0])

    def to_dict(self) -> dict[str, Any]:
        """The function as the catalog stores it."""
        assert isinstance(self.function_type, FunctionType)
        return {"name": self.name, "function_type": self.function_type.value,
                "input_field_names": list(self.input_field_names),
                "output_field_names": list(self.output_field_names),
                "description": self.description, "params": dict(self.params)}


# FieldSchema options Milvus (pymilvus) takes; enable_tokenizer is enable_analyzer's old name
_FIELD_OPTIONS = frozenset(f for f in FieldSchema.__dataclass_fields__ if f not in (
    "name", "dtype", "is_function_output"))
_FIELD_ALIASES = {"enable_tokenizer": "enable_analyzer", "tokenizer_params": "analyzer_params"}


def field_options(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``add_field``'s keywords: Milvus' old names read as the new ones; a keyword vecpg
    does not know raises :class:`SchemaError` naming the accepted ones."""
    out: dict[str, Any] = {}
    for key, value in kwargs.items():
        key = _FIELD_ALIASES.get(key, key)
        if key not in _FIELD_OPTIONS:
            raise SchemaError(f"unknown field option {key!r}; accepted: "
                              f"{', '.join(sorted(_FIELD_OPTIONS))}")
        out[key] = value
    return out


@dataclass
class CollectionSchema:
    """The fields of a collection. Exactly one primary key and at least one vector field."""

    fields: list[FieldSchema] = field(default_factory=list)
    enable_dynamic_field: bool = False
    description: str = ""
    auto_id: bool | None = None  # default for add_field(is_primary=True), as in pymilvus
    functions: list[Function] = field(default_factory=list)

    def add_field(self, field_name: str, datatype: DataType | str,
                  **kwargs: Any) -> CollectionSchema:
        """Append a field; keyword arguments are those of :class:`FieldSchema` (and
        Milvus' ``enable_tokenizer``, the old name of ``enable_analyzer``)."""
        kwargs = field_options(kwargs)
        if kwargs.get("is_primary") and "auto_id" not in kwargs and self.auto_id is not None:
            kwargs["auto_id"] = self.auto_id
        f = FieldSchema(field_name, DataType.parse(datatype), **kwargs)
        if any(x.name == f.name for x in self.fields):
            raise SchemaError(f"field {f.name!r} is defined twice")
        self.fields.append(f)
        return self

    def add_function(self, function: Any) -> CollectionSchema:
        """Add a function (vecpg's or pymilvus' :class:`Function`; only BM25): its input
        must be an analyzed VARCHAR field, its output a SPARSE_FLOAT_VECTOR field, both
        added already; the output is then computed, never given on insert."""
        if not isinstance(function, Function):
            kind = getattr(function, "type", None) or getattr(function, "function_type", None)
            function = Function(getattr(function, "name", None) or "", kind or "",
                                list(getattr(function, "input_field_names", []) or []),
                                list(getattr(function, "output_field_names", []) or []),
                                str(getattr(function, "description", "") or ""),
                                dict(getattr(function, "params", {}) or {}))
        if any(fn.name == function.name for fn in self.functions):
            raise SchemaError(f"function {function.name!r} is defined twice")
        self._check_function(function)
        self.functions.append(function)
        self.field(function.output_field).is_function_output = True
        return self

    def _check_function(self, fn: Function) -> None:
        src, out = self.get(fn.input_field), self.get(fn.output_field)
        if src is None or out is None:
            raise SchemaError(f"function {fn.name!r} names fields {fn.input_field!r} and "
                              f"{fn.output_field!r}; add them to the schema first")
        if src.dtype is not DataType.VARCHAR or not src.enable_analyzer:
            raise SchemaError(f"BM25 input {src.name!r} must be a VARCHAR field with "
                              "enable_analyzer=True")
        if out.dtype is not DataType.SPARSE_FLOAT_VECTOR or out.is_primary:
            raise SchemaError(f"BM25 output {out.name!r} must be a SPARSE_FLOAT_VECTOR field")
        if any(f.output_field == out.name for f in self.functions if f is not fn):
            raise SchemaError(f"field {out.name!r} is the output of another function")

    def function_for(self, output_field: str) -> Function | None:
        """The BM25 function whose output is ``output_field``, if any."""
        return next((fn for fn in self.functions if fn.output_field == output_field), None)

    def validate(self) -> None:
        """Raise :class:`SchemaError` unless names are unique, there is exactly one primary
        key and at least one vector field; checked before any table is created."""
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise SchemaError(f"duplicate field names in {names}")
        pks = [f for f in self.fields if f.is_primary]
        if len(pks) != 1:
            raise SchemaError(f"a collection needs exactly one primary key field, got {len(pks)}")
        if sum(f.is_partition_key for f in self.fields) > 1:
            raise SchemaError("a collection has at most one partition key field")
        if not self.vector_fields:
            raise SchemaError("a collection needs at least one vector field")
        for fn in self.functions:
            self._check_function(fn)
        for f in self.fields:
            if f.is_function_output and self.function_for(f.name) is None:
                raise SchemaError(f"field {f.name!r} is marked as a function output, but no "
                                  "function computes it")

    @property
    def primary_field(self) -> FieldSchema:
        """The primary key field; :class:`SchemaError` if the schema has none yet."""
        for f in self.fields:
            if f.is_primary:
                return f
        raise SchemaError("schema has no primary key")

    @property
    def partition_key(self) -> FieldSchema | None:
        """The partition key field, if the schema has one."""
        return next((f for f in self.fields if f.is_partition_key), None)

    @property
    def vector_fields(self) -> list[FieldSchema]:
        """The vector fields, in schema order (a search names one when there are several)."""
        return [f for f in self.fields if f.dtype.is_vector]

    @property
    def scalar_fields(self) -> list[FieldSchema]:
        """Every field that is not a vector, primary key included, in schema order."""
        return [f for f in self.fields if not f.dtype.is_vector]

    def field(self, name: str) -> FieldSchema:
        """The field called ``name``; :class:`SchemaError` naming the fields if none is."""
        for f in self.fields:
            if f.name == name:
                return f
        raise SchemaError(f"unknown field {name!r}; fields are {[f.name for f in self.fields]}")

    def get(self, name: str) -> FieldSchema | None:
        """The field called ``name``, or None (e.g. a dynamic key)."""
        for f in self.fields:
            if f.name == name:
                return f
        return None

    def to_dict(self) -> dict[str, Any]:
        """The schema as the catalog stores it (JSON); :meth:`from_dict` reads it back."""
        out: dict[str, Any] = {"fields": [f.to_dict() for f in self.fields],
                               "enable_dynamic_field": self.enable_dynamic_field,
                               "description": self.description}
        if self.functions:
            out["functions"] = [fn.to_dict() for fn in self.functions]
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CollectionSchema:
        """A schema from :meth:`to_dict`'s form, e.g. a catalog row."""
        return cls(fields=[FieldSchema.from_dict(f) for f in d["fields"]],
                   enable_dynamic_field=bool(d.get("enable_dynamic_field")),
                   description=d.get("description", ""),
                   functions=[Function(**fn) for fn in d.get("functions", [])])

    # -- DDL ----------------------------------------------------------------------------
    def create_table_sql(self, table: sql.Composable) -> sql.Composed:
        """``CREATE TABLE`` for this schema; ``table`` is a (qualified) Identifier."""
        self.validate()
        cols: list[sql.Composable] = []
        for f in self.fields:
            col = sql.Identifier(f.name)
            parts: list[sql.Composable] = [col, f.pg_type()]
            if f.is_function_output:
                # a BM25 output is scored from the input's tsvector: the column stays NULL
                parts.append(sql.SQL("CHECK ({} IS NULL)").format(col))
            elif f.is_primary:
                if f.auto_id:
                    parts.append(sql.SQL("GENERATED BY DEFAULT AS IDENTITY"))
                parts.append(sql.SQL("PRIMARY KEY"))
            elif not f.nullable:
                parts.append(sql.SQL("NOT NULL"))
            if f.default_value is not None:
                # DDL takes no parameters; Literal quotes the value through psycopg's adapter.
                parts.append(sql.SQL("DEFAULT {}").format(sql.Literal(f.default_value)))
            if f.dtype is DataType.INT8:
                parts.append(sql.SQL("CHECK ({} BETWEEN -128 AND 127)").format(col))
            if f.dtype is DataType.ARRAY and f.max_capacity:
                parts.append(sql.SQL("CHECK (cardinality({}) <= {})").format(
                    col, sql.Literal(int(f.max_capacity))))
            cols.append(sql.SQL(" ").join(parts))
        bm25_inputs = {fn.input_field for fn in self.functions}
        for f in self.fields:
            cfg = f.text_config
            if cfg is None:
                continue
            # generated here, so rows written by plain SQL are analyzed too
            cols.append(sql.SQL("{} tsvector GENERATED ALWAYS AS ({}) STORED").format(
                sql.Identifier(tsv_column(f.name)), tsvector_sql(cfg, f.name)))
            if f.name in bm25_inputs:
                cols.append(sql.SQL("{} integer GENERATED ALWAYS AS "
                                    "(vecpg.tsvector_length({})) STORED").format(
                    sql.Identifier(len_column(f.name)), tsvector_sql(cfg, f.name)))
        cols.append(sql.SQL("{} text NOT NULL DEFAULT {}").format(
            sql.Identifier(PARTITION_COLUMN), sql.Literal(DEFAULT_PARTITION)))
        if self.enable_dynamic_field:
            cols.append(sql.SQL("{} jsonb NOT NULL DEFAULT '{{}}'::jsonb").format(
                sql.Identifier(META_COLUMN)))
        return sql.SQL("CREATE TABLE {} ({})").format(table, sql.SQL(", ").join(cols))
