"""Result shapes and output-field selection, shared by search, query and get.

Every search returns a :class:`SearchResult`, a list of :class:`Hits` (one per query vector,
closest first) whatever the input shape; query and get return ``list[dict]``. Shapes and
values are pymilvus': vectors come back as lists of floats (binary, INT8 and BFLOAT16 ones as
the bytes pymilvus carries for them, sparse ones as ``{index: value}``) and TIMESTAMPTZ
values as Milvus' RFC 3339 strings (``"2025-01-01T00:00:00Z"``), so results go into JSON
as they are.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pgvector import Bit, HalfVector, SparseVector, Vector
from psycopg import sql

from .errors import SchemaError
from .schema import META_COLUMN, CollectionSchema, DataType, check_name, format_timestamp, time_zone


class Hit(dict[str, Any]):
    """One search result, as pymilvus shapes it: ``{<primary field>: key, "distance": d,
    "entity": {output fields}}``.

    A dict whose lookups fall back to the entity (``hit["title"]``, ``hit.get("title")``,
    ``hit.title``), with ``hit.id`` / ``hit.pk`` (the key), ``hit.distance`` / ``hit.score``
    and ``hit.entity`` (the hit itself, as in pymilvus; ``hit.fields`` is the entity dict).
    """

    __slots__ = ("_pk_name",)

    def __init__(self, pk_name: str, pk: Any, distance: float,
                 entity: dict[str, Any] | None = None) -> None:
        super().__init__(((pk_name, pk), ("distance", distance), ("entity", entity or {})))
        self._pk_name = pk_name

    def __getitem__(self, key: str) -> Any:
        try:
            return super().__getitem__(key)
        except KeyError:
            return super().__getitem__("entity")[key]

    def get(self, key: str, default: Any = None) -> Any:
        """``hit[key]``, else ``default``."""
        try:
            return self[key]
        except KeyError:
            return default

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __reduce__(self) -> Any:  # pickle (and copy) with the primary field's name
        return (Hit, (self._pk_name, self.id, self.distance, self.fields))

    @property
    def id(self) -> Any:
        """The row's primary key (an int, or a str for a VARCHAR key)."""
        return dict.__getitem__(self, self._pk_name)

    @property
    def pk(self) -> Any:
        """The row's primary key (pymilvus' alias of :attr:`id`)."""
        return self.id

    @property
    def distance(self) -> float:
        """The metric's value for this row: a distance, or a similarity for IP and COSINE
        (see :mod:`vecpg.metrics`); always exact, whatever index found the row."""
        return float(dict.__getitem__(self, "distance"))

    @property
    def score(self) -> float:
        """pymilvus' alias of :attr:`distance`."""
        return self.distance

    @property
    def entity(self) -> Hit:
        """The hit itself (pymilvus' ``hit.entity``: lookups reach the output fields)."""
        return self

    @property
    def fields(self) -> dict[str, Any]:
        """The requested ``output_fields`` of the row (may be empty)."""
        return dict.__getitem__(self, "entity")

    def to_dict(self) -> dict[str, Any]:
        """A plain dict copy: ``{<primary field>: key, "distance": d, "entity": {...}}``."""
        return {self._pk_name: self.id, "distance": self.distance, "entity": dict(self.fields)}


class Hits(list[Hit]):
    """One query's hits, closest first, with pymilvus' ``ids`` and ``distances``."""

    @property
    def ids(self) -> list[Any]:
        """The primary keys, in order."""
        return [h.id for h in self]

    @property
    def distances(self) -> list[float]:
        """The distances (or similarities), in order."""
        return [h.distance for h in self]


def round_distances(hits: Iterable[Hit], digits: int | None) -> None:
    """Round each hit's distance to ``digits`` places, in place (None: leave them)."""
    if digits is not None:
        for h in hits:
            dict.__setitem__(h, "distance", round(h.distance, digits))


class SearchResult(list[Hits]):
    """What a search returns: one :class:`Hits` per query vector (pymilvus' shape, with its
    ``extra`` and ``recalls`` attributes)."""

    def __init__(self, hits: Any = ()) -> None:
        super().__init__(hits)
        self.extra: dict[str, Any] = {}
        self.recalls: list[float] | None = None


@dataclass(frozen=True)
class Selection:
    """Which columns to read and how to build each output row from them."""

    columns: list[str]          # schema columns, in SELECT order
    dynamic_keys: list[str]     # keys of _meta to output (empty: none)
    all_dynamic: bool           # output every dynamic key
    vector_types: dict[str, DataType]
    pk_requested: bool = False  # output_fields named the primary key (or "*"): in a hit's entity
    timestamp_fields: frozenset[str] = field(default_factory=frozenset)  # TIMESTAMPTZ columns
    timezone: str | None = None  # where TIMESTAMPTZ values are shown (None: UTC)

    def select_list(self, qualifier: str | None = None) -> list[sql.Composable]:
        """The columns to SELECT, then ``_meta`` when dynamic keys are output; with a
        ``qualifier`` (a table alias) each is ``"alias"."column"``, for joined queries."""

        def ident(c: str) -> sql.Identifier:
            return sql.Identifier(qualifier, c) if qualifier else sql.Identifier(c)
        cols: list[sql.Composable] = [ident(c) for c in self.columns]
        if self.dynamic_keys or self.all_dynamic:
            cols.append(ident(META_COLUMN))
        return cols

    @property
    def width(self) -> int:
        """How many values of a fetched row belong to :meth:`select_list`, so a caller that
        selected more (a distance, say) can slice them off."""
        return len(self.columns) + (1 if self.dynamic_keys or self.all_dynamic else 0)

    def to_dict(self, values: tuple[Any, ...] | list[Any]) -> dict[str, Any]:
        """One output row from the values of :meth:`select_list`: vectors as Milvus returns
        them (:func:`convert_vector`), TIMESTAMPTZ values as Milvus' strings in
        :attr:`timezone`, and the requested dynamic keys lifted out of _meta."""
        out: dict[str, Any] = {}
        for name, v in zip(self.columns, values):
            dt = self.vector_types.get(name)
            if v is None:
                out[name] = v
            elif dt is not None:
                out[name] = convert_vector(v, dt)
            elif name in self.timestamp_fields and isinstance(v, _dt.datetime):
                out[name] = format_timestamp(v, self.timezone)
            else:
                out[name] = v
        if self.dynamic_keys or self.all_dynamic:
            meta = values[len(self.columns)] or {}
            if self.all_dynamic:
                out.update({k: v for k, v in meta.items() if k not in out})
            for k in self.dynamic_keys:
                if k in meta:
                    out[k] = meta[k]
        return out


def convert_vector(v: Any, dtype: DataType | None = None) -> Any:
    """Vectors out of Postgres as pymilvus gives them: float vectors as lists of floats
    (float32 values), binary vectors as bytes, sparse vectors as ``{index: value}``; INT8
    vectors as ``dim`` int8 bytes and BFLOAT16 vectors as ``2 * dim`` little-endian
    bfloat16 bytes (pymilvus' buffers: ``np.frombuffer(b, np.int8)`` reads one back)."""
    if dtype is DataType.INT8_VECTOR and isinstance(v, Vector):
        return np.asarray(v.to_numpy(), dtype=np.float32).astype(np.int8).tobytes()
    if dtype is DataType.BFLOAT16_VECTOR and isinstance(v, Vector):
        bits = np.asarray(v.to_numpy(), dtype=np.float32).view(np.uint32) >> 16  # exact
        return bits.astype("<u2").tobytes()
    if isinstance(v, (Vector, HalfVector)):
        return np.asarray(v.to_numpy(), dtype=np.float32).tolist()
    if isinstance(v, np.ndarray):
        return v.astype(np.float32, copy=False).tolist()
    if isinstance(v, str):  # bit columns arrive as '0101...' text
        v = Bit(v)
    if isinstance(v, Bit):
        return v.to_binary()[4:]  # 4-byte length header, then the packed bits (MSB first)
    if isinstance(v, SparseVector):
        return {int(i): float(x) for i, x in zip(v.indices(), v.values())}
    return v


def select_fields(schema: CollectionSchema, output_fields: list[str] | None, *,
                  default_all: bool, timezone: str | None = None) -> Selection:
    """Resolve ``output_fields`` against the schema.

    ``None`` means all scalar fields and dynamic keys when ``default_all`` (query, get), else
    only the primary key (search). ``"*"`` means every field, vectors included. A name that
    is not a field is a dynamic key when the schema has dynamic fields, else an error.
    ``timezone`` (an IANA name, default UTC) is where TIMESTAMPTZ values are shown.
    """
    time_zone(timezone)  # an unknown name fails here, not at the first row
    pk = schema.primary_field.name
    vector_types = {f.name: f.dtype for f in schema.vector_fields}
    times = frozenset(f.name for f in schema.fields if f.dtype is DataType.TIMESTAMPTZ)
    if output_fields is None:
        if not default_all:
            return Selection([pk], [], False, vector_types, timestamp_fields=times,
                             timezone=timezone)
        cols = [f.name for f in schema.scalar_fields]
        return Selection(cols, [], schema.enable_dynamic_field, vector_types,
                         timestamp_fields=times, timezone=timezone)
    if isinstance(output_fields, str):
        output_fields = [output_fields]
    cols = [pk]
    keys: list[str] = []
    all_dynamic = False
    pk_requested = False
    for name in output_fields:
        if not isinstance(name, str):
            raise SchemaError(f"output_fields must be strings, got {name!r}")
        pk_requested = pk_requested or name in ("*", pk)
        if name == "*":
            cols += [f.name for f in schema.fields if f.name not in cols]
            all_dynamic = schema.enable_dynamic_field
        elif name == "$meta" and schema.enable_dynamic_field:  # Milvus: every dynamic field
            all_dynamic = True
        elif schema.get(name) is not None:
            if name not in cols:
                cols.append(name)
        elif schema.enable_dynamic_field and name != META_COLUMN:
            keys.append(check_name(name, "output field"))
        else:
            raise SchemaError(f"unknown output field {name!r}; fields are "
                              f"{[f.name for f in schema.fields]}")
    return Selection(cols, keys, all_dynamic, vector_types, pk_requested, times, timezone)
