"""The catalog: reading and writing ``vecpg.collections``, ``vecpg.indexes`` and
``vecpg.partitions``. Every function takes an open connection; the caller owns the
transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from .errors import CollectionNotFound
from .metrics import Metric, default_metric
from .schema import DEFAULT_PARTITION, CollectionSchema, FieldSchema


@dataclass(frozen=True)
class IndexInfo:
    index_name: str
    field_name: str
    index_type: str
    metric_type: str | None
    params: dict[str, Any]
    pg_index: str | None
    state: str
    version: int
    id: int | None = None  # vecpg.indexes.id: names a companion index's tables
    # measured recall/latency per search setting (vecpg.calibrate), None until calibrated
    calibration: dict[str, Any] | None = field(default=None, compare=False)


@dataclass
class CollectionInfo:
    """Everything the catalog knows of one collection."""

    schema_name: str
    name: str
    schema: CollectionSchema
    properties: dict[str, Any] = field(default_factory=dict)
    indexes: list[IndexInfo] = field(default_factory=list)
    partitions: list[str] = field(default_factory=list)
    # search plans built from this snapshot of the catalog, keyed by the search arguments
    plans: dict[Any, Any] = field(default_factory=dict, repr=False)

    def metric(self, field_name: str) -> Metric:
        """The field's metric: set at creation or by its index; else the type's default."""
        m = self.properties.get("metrics", {}).get(field_name)
        return Metric.parse(m) if m else default_metric(self.schema.field(field_name).dtype)

    def vector_field(self, name: str | None) -> FieldSchema:
        from .errors import SchemaError

        vfs = self.schema.vector_fields
        if name is None:
            if len(vfs) > 1:
                raise SchemaError(f"collection {self.name!r} has several vector fields "
                                  f"{[f.name for f in vfs]}; pass anns_field")
            return vfs[0]
        f = self.schema.field(name)
        if not f.dtype.is_vector:
            raise SchemaError(f"field {name!r} is not a vector field")
        return f

    def index_on(self, field_name: str) -> IndexInfo | None:
        """The vector index that serves searches on ``field_name``, if any."""
        for ix in self.indexes:
            if ix.field_name == field_name and ix.metric_type is not None and ix.state == "ready":
                return ix
        return None


def load(conn: psycopg.Connection, schema_name: str, name: str) -> CollectionInfo:
    row = conn.execute(
        "SELECT schema, properties FROM vecpg.collections WHERE schema_name = %s AND name = %s",
        (schema_name, name)).fetchone()
    if row is None:
        raise CollectionNotFound(f"collection {name!r} does not exist")
    info = CollectionInfo(schema_name, name, CollectionSchema.from_dict(row[0]), row[1] or {})
    info.indexes = [IndexInfo(*r) for r in conn.execute(
        "SELECT index_name, field_name, index_type, metric_type, params, pg_index, state, version,"
        " id, calibration FROM vecpg.indexes WHERE schema_name = %s AND collection = %s ORDER BY created_at",
        (schema_name, name))]
    info.partitions = partitions(conn, schema_name, name)
    return info


def exists(conn: psycopg.Connection, schema_name: str, name: str) -> bool:
    return conn.execute("SELECT 1 FROM vecpg.collections WHERE schema_name = %s AND name = %s",
                        (schema_name, name)).fetchone() is not None


def names(conn: psycopg.Connection, schema_name: str) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT name FROM vecpg.collections WHERE schema_name = %s ORDER BY name", (schema_name,))]


def insert(conn: psycopg.Connection, schema_name: str, name: str, schema: CollectionSchema,
           properties: dict[str, Any]) -> None:
    conn.execute("INSERT INTO vecpg.collections (schema_name, name, schema, properties)"
                 " VALUES (%s, %s, %s, %s)",
                 (schema_name, name, Jsonb(schema.to_dict()), Jsonb(properties)))
    conn.execute("INSERT INTO vecpg.partitions (schema_name, collection, name) VALUES (%s, %s, %s)",
                 (schema_name, name, DEFAULT_PARTITION))


def set_properties(conn: psycopg.Connection, schema_name: str, name: str,
                   properties: dict[str, Any]) -> None:
    conn.execute("UPDATE vecpg.collections SET properties = %s WHERE schema_name = %s AND name = %s",
                 (Jsonb(properties), schema_name, name))


def partitions(conn: psycopg.Connection, schema_name: str, name: str) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT name FROM vecpg.partitions WHERE schema_name = %s AND collection = %s"
        " ORDER BY created_at, name", (schema_name, name))]
