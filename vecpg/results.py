"""Result shapes and output-field selection, shared by search, query and get.

Every search returns ``list[list[Hit]]`` (one list per query vector, closest first), whatever
the input shape; query and get return ``list[dict]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from pgvector import Bit, HalfVector, SparseVector, Vector
from psycopg import sql

from .errors import SchemaError
from .schema import META_COLUMN, CollectionSchema, DataType, check_name


class Hit(dict[str, Any]):
    """One search result: ``{"id": ..., "distance": ..., "entity": {...}}``.

    A dict (as in pymilvus), with attribute access: ``hit.id``, ``hit.distance``,
    ``hit.entity``.
    """

    @property
    def id(self) -> Any:
        """The row's primary key (an int, or a str for a VARCHAR key)."""
        return self["id"]

    @property
    def distance(self) -> float:
        """The metric's value for this row: a distance, or a similarity for IP and COSINE
        (see :mod:`vecpg.metrics`); always exact, whatever index found the row."""
        return float(self["distance"])

    @property
    def entity(self) -> dict[str, Any]:
        """The requested ``output_fields`` of the row (may be empty)."""
        return self["entity"]


@dataclass(frozen=True)
class Selection:
    """Which columns to read and how to build each output row from them."""

    columns: list[str]          # schema columns, in SELECT order
    dynamic_keys: list[str]     # keys of _meta to output (empty: none)
    all_dynamic: bool           # output every dynamic key
    vector_types: dict[str, DataType]

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
        them (:func:`convert_vector`) and the requested dynamic keys lifted out of _meta."""
        out: dict[str, Any] = {}
        for name, v in zip(self.columns, values):
            dt = self.vector_types.get(name)
            out[name] = convert_vector(v) if dt is not None and v is not None else v
        if self.dynamic_keys or self.all_dynamic:
            meta = values[len(self.columns)] or {}
            if self.all_dynamic:
                out.update({k: v for k, v in meta.items() if k not in out})
            for k in self.dynamic_keys:
                if k in meta:
                    out[k] = meta[k]
        return out


def convert_vector(v: Any) -> Any:
    """Vectors out of Postgres as Milvus users get them: float vectors as numpy float32
    arrays, binary vectors as bytes, sparse vectors as ``{index: value}``."""
    if isinstance(v, (Vector, HalfVector)):
        return np.asarray(v.to_numpy(), dtype=np.float32)
    if isinstance(v, np.ndarray):
        return v.astype(np.float32, copy=False)
    if isinstance(v, str):  # bit columns arrive as '0101...' text
        v = Bit(v)
    if isinstance(v, Bit):
        return v.to_binary()[4:]  # 4-byte length header, then the packed bits (MSB first)
    if isinstance(v, SparseVector):
        return {int(i): float(x) for i, x in zip(v.indices(), v.values())}
    return v


def select_fields(schema: CollectionSchema, output_fields: list[str] | None, *,
                  default_all: bool) -> Selection:
    """Resolve ``output_fields`` against the schema.

    ``None`` means all scalar fields and dynamic keys when ``default_all`` (query, get), else
    only the primary key (search). ``"*"`` means every field, vectors included. A name that
    is not a field is a dynamic key when the schema has dynamic fields, else an error.
    """
    pk = schema.primary_field.name
    vector_types = {f.name: f.dtype for f in schema.vector_fields}
    if output_fields is None:
        if not default_all:
            return Selection([pk], [], False, vector_types)
        cols = [f.name for f in schema.scalar_fields]
        return Selection(cols, [], schema.enable_dynamic_field, vector_types)
    if isinstance(output_fields, str):
        output_fields = [output_fields]
    cols = [pk]
    keys: list[str] = []
    all_dynamic = False
    for name in output_fields:
        if not isinstance(name, str):
            raise SchemaError(f"output_fields must be strings, got {name!r}")
        if name == "*":
            cols += [f.name for f in schema.fields if f.name not in cols]
            all_dynamic = schema.enable_dynamic_field
        elif schema.get(name) is not None:
            if name not in cols:
                cols.append(name)
        elif schema.enable_dynamic_field and name != META_COLUMN:
            keys.append(check_name(name, "output field"))
        else:
            raise SchemaError(f"unknown output field {name!r}; fields are "
                              f"{[f.name for f in schema.fields]}")
    return Selection(cols, keys, all_dynamic, vector_types)
