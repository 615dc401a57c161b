"""The catalog: every statement on vecpg's own tables (``vecpg.collections``,
``vecpg.indexes``, ``vecpg.partitions``, ``vecpg.index_models`` and its parts).

Functions take a :class:`~vecpg.session.Db`; the caller owns the transaction.
:class:`CatalogCache` keeps what one process read for a short while (other processes may
change it). Companion indexes' own tables (codes, pending rows) are
:mod:`vecpg.companion`'s.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from . import args
from .errors import (
    CollectionNotFound,
    IndexNotFound,
    PartitionNotFound,
    SchemaError,
)
from .indexes import IndexConfig, IndexKind, kind_of
from .metrics import Metric, default_metric
from .schema import DEFAULT_PARTITION, CollectionSchema, FieldSchema, check_name
from .session import Db, Session


@dataclass(frozen=True)
class IndexInfo:
    """One row of ``vecpg.indexes``."""

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

    @property
    def kind(self) -> IndexKind:
        """The index kind (what it is built with, its knobs, its calibration grid)."""
        return kind_of(self.index_type)

    @property
    def config(self) -> IndexConfig:
        """The typed build configuration stored with the index."""
        return self.kind.from_catalog(self.params)

    @property
    def metric(self) -> Metric | None:
        """The metric a vector index serves (None for a scalar index)."""
        return Metric.parse(self.metric_type) if self.metric_type else None


@dataclass(frozen=True)
class CollectionInfo:
    """Everything the catalog knows of one collection, as read at one moment."""

    schema_name: str
    name: str
    schema: CollectionSchema
    properties: dict[str, Any] = field(default_factory=dict)
    indexes: tuple[IndexInfo, ...] = ()
    partitions: tuple[str, ...] = ()
    # Row-level security, for the role that read this: whether it sees every row (else
    # companion codes and models, trained on every row, are not its to read), and the
    # tenant values it sees when the collection has tenants (None: every row, or no tenants)
    sees_all: bool = True
    tenants: tuple[str, ...] | None = None

    @property
    def timezone(self) -> str | None:
        """The collection's ``timezone`` property (Milvus'): where naive TIMESTAMPTZ values
        are read and where they are shown (None: UTC)."""
        tz = self.properties.get("timezone")
        return str(tz) if tz else None

    def switched_on(self, name: str) -> bool:
        """Whether property ``name``, a switch that is on unless set, is on: ``false``,
        ``0``, ``off`` or ``no`` (any case, as a bool, number or string) turn it off."""
        value = self.properties.get(name, True)
        return str(value).strip().lower() not in ("false", "0", "off", "no")

    @property
    def tenant_field(self) -> str | None:
        """The scalar field whose value says which tenant a row belongs to, if any."""
        name = self.properties.get("tenant_field")
        return str(name) if name else None

    @property
    def table(self) -> sql.Identifier:
        """The collection's table, schema-qualified."""
        return sql.Identifier(self.schema_name, self.name)

    def metric(self, field_name: str) -> Metric:
        """The field's metric: set at creation or by its index; else the type's default."""
        m = self.properties.get("metrics", {}).get(field_name)
        return Metric.parse(m) if m else default_metric(self.schema.field(field_name).dtype)

    def vector_field(self, name: str | None) -> FieldSchema:
        """The vector field ``name``, or the only one when ``name`` is None."""
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

    def index(self, index_name: str) -> IndexInfo:
        """The index named ``index_name``; :class:`IndexNotFound` if there is none."""
        check_name(index_name, "index name")
        for ix in self.indexes:
            if ix.index_name == index_name:
                return ix
        raise IndexNotFound(f"index {index_name!r} does not exist on {self.name!r}")


# -- collections --------------------------------------------------------------------------

def load(db: Db, schema_name: str, name: str) -> CollectionInfo:
    """The catalog entry of collection ``name`` (or of the collection alias ``name``
    names); :class:`CollectionNotFound` if none."""
    target = alias_target(db, schema_name, name)
    if target is not None:
        name = target
    row = db.execute(
        "SELECT schema, properties, vecpg.sees_all(t), vecpg.my_tenants(t) FROM"
        " vecpg.collections, vecpg.collection_table(schema_name, name) t"
        " WHERE schema_name = %s AND name = %s", (schema_name, name)).fetchone()
    if row is None:
        raise CollectionNotFound(f"collection {name!r} does not exist")
    indexes = tuple(IndexInfo(*r) for r in db.execute(
        "SELECT index_name, field_name, index_type, metric_type, params, pg_index, state,"
        " version, id, calibration FROM vecpg.indexes WHERE schema_name = %s"
        " AND collection = %s ORDER BY created_at", (schema_name, name)))
    props = row[1] or {}
    tenants = tuple(row[3]) if row[3] is not None and props.get("tenant_field") else None
    return CollectionInfo(schema_name, name, CollectionSchema.from_dict(row[0]), props,
                          indexes, tuple(partitions(db, schema_name, name)), bool(row[2]),
                          tenants)


def exists(db: Db, schema_name: str, name: str) -> bool:
    """Whether collection ``name`` is in the catalog."""
    return db.execute("SELECT 1 FROM vecpg.collections WHERE schema_name = %s AND name = %s",
                      (schema_name, name)).fetchone() is not None


def names(db: Db, schema_name: str) -> list[str]:
    """The collections of one schema, by name."""
    return [r[0] for r in db.execute(
        "SELECT name FROM vecpg.collections WHERE schema_name = %s ORDER BY name", (schema_name,))]


def add_collection(db: Db, schema_name: str, name: str, schema: CollectionSchema,
                   properties: dict[str, Any]) -> None:
    """Record a new collection with its default partition."""
    db.execute("INSERT INTO vecpg.collections (schema_name, name, schema, properties)"
               " VALUES (%s, %s, %s, %s)",
               (schema_name, name, Jsonb(schema.to_dict()), Jsonb(properties)))
    add_partition(db, schema_name, name, DEFAULT_PARTITION)


def set_schema(db: Db, schema_name: str, name: str, schema: CollectionSchema) -> None:
    """Replace a collection's schema (a field was added)."""
    db.execute("UPDATE vecpg.collections SET schema = %s WHERE schema_name = %s AND name = %s",
               (Jsonb(schema.to_dict()), schema_name, name))


def set_properties(db: Db, schema_name: str, name: str, properties: dict[str, Any]) -> None:
    """Replace a collection's properties (metrics per field, recall target, ...)."""
    db.execute("UPDATE vecpg.collections SET properties = %s WHERE schema_name = %s AND name = %s",
               (Jsonb(properties), schema_name, name))


def set_metric(db: Db, info: CollectionInfo, field_name: str, metric: Metric) -> None:
    """Record the metric a field is searched with (an index build decides it)."""
    props = dict(info.properties)
    props["metrics"] = dict(props.get("metrics", {}), **{field_name: metric.value})
    set_properties(db, info.schema_name, info.name, props)


def rename_collection(db: Db, schema_name: str, old: str, new: str,
                      pg_indexes: dict[str, str]) -> None:
    """Rename a collection (its indexes and partitions follow by cascade) and record the
    new Postgres names of its indexes (``{index_name: pg_index}``)."""
    db.execute("UPDATE vecpg.collections SET name = %s WHERE schema_name = %s AND name = %s",
               (new, schema_name, old))
    for index_name, pg_index in pg_indexes.items():
        db.execute("UPDATE vecpg.indexes SET pg_index = %s WHERE schema_name = %s"
                   " AND collection = %s AND index_name = %s",
                   (pg_index, schema_name, new, index_name))


def drop_collection(db: Db, schema_name: str, name: str) -> None:
    """Forget a collection (its indexes and partitions go by cascade)."""
    db.execute("DELETE FROM vecpg.collections WHERE schema_name = %s AND name = %s",
               (schema_name, name))


# -- aliases and databases ----------------------------------------------------------------

def alias_target(db: Db, schema_name: str, alias: str) -> str | None:
    """The collection ``alias`` names, or None if it is no alias."""
    row = db.execute("SELECT collection FROM vecpg.aliases WHERE schema_name = %s AND alias = %s",
                     (schema_name, alias)).fetchone()
    return None if row is None else str(row[0])


def aliases_of(db: Db, schema_name: str, collection: str | None) -> list[str]:
    """The aliases of one collection (of every collection when None), by name."""
    if collection is None:
        return [r[0] for r in db.execute(
            "SELECT alias FROM vecpg.aliases WHERE schema_name = %s ORDER BY alias",
            (schema_name,))]
    return [r[0] for r in db.execute(
        "SELECT alias FROM vecpg.aliases WHERE schema_name = %s AND collection = %s"
        " ORDER BY alias", (schema_name, collection))]


def set_alias(db: Db, schema_name: str, alias: str, collection: str, *, create: bool) -> None:
    """Point ``alias`` at ``collection``: a new alias (``create``), else an existing one."""
    if create:
        db.execute("INSERT INTO vecpg.aliases (schema_name, alias, collection)"
                   " VALUES (%s, %s, %s)", (schema_name, alias, collection))
    else:
        db.execute("UPDATE vecpg.aliases SET collection = %s WHERE schema_name = %s"
                   " AND alias = %s", (collection, schema_name, alias))


def drop_alias(db: Db, schema_name: str, alias: str) -> None:
    """Forget an alias (no error if there is none)."""
    db.execute("DELETE FROM vecpg.aliases WHERE schema_name = %s AND alias = %s",
               (schema_name, alias))


def schemas_with_collections(db: Db) -> list[str]:
    """Schemas that hold collections this role may see."""
    return [r[0] for r in db.execute(
        "SELECT DISTINCT schema_name FROM vecpg.collections ORDER BY 1")]


def databases(db: Db) -> list[str]:
    """Schemas recorded as databases (``create_database``), by name."""
    return [r[0] for r in db.execute("SELECT schema_name FROM vecpg.databases ORDER BY 1")]


def database_properties(db: Db, schema_name: str) -> dict[str, Any] | None:
    """A recorded database's properties, None if it is not recorded."""
    row = db.execute("SELECT properties FROM vecpg.databases WHERE schema_name = %s",
                     (schema_name,)).fetchone()
    return None if row is None else dict(row[0] or {})


def add_database(db: Db, schema_name: str, properties: dict[str, Any]) -> None:
    """Record a database (its schema exists)."""
    db.execute("INSERT INTO vecpg.databases (schema_name, properties) VALUES (%s, %s)"
               " ON CONFLICT (schema_name) DO UPDATE SET properties = EXCLUDED.properties",
               (schema_name, Jsonb(properties)))


def drop_database(db: Db, schema_name: str) -> None:
    """Forget a database."""
    db.execute("DELETE FROM vecpg.databases WHERE schema_name = %s", (schema_name,))


# -- partitions ---------------------------------------------------------------------------

def partitions(db: Db, schema_name: str, name: str) -> list[str]:
    """A collection's partitions, oldest first."""
    return [r[0] for r in db.execute(
        "SELECT name FROM vecpg.partitions WHERE schema_name = %s AND collection = %s"
        " ORDER BY created_at, name", (schema_name, name))]


def add_partition(db: Db, schema_name: str, name: str, partition: str) -> None:
    """Record a partition."""
    db.execute("INSERT INTO vecpg.partitions (schema_name, collection, name) VALUES (%s, %s, %s)",
               (schema_name, name, partition))


def drop_partition(db: Db, schema_name: str, name: str, partition: str) -> None:
    """Forget a partition."""
    db.execute("DELETE FROM vecpg.partitions WHERE schema_name = %s AND collection = %s"
               " AND name = %s", (schema_name, name, partition))


# -- indexes ------------------------------------------------------------------------------

def add_index(db: Db, info: CollectionInfo, index_name: str, field_name: str, kind: str,
              metric: Metric | None, params: dict[str, Any], pg_index: str | None, *,
              building: bool = False) -> int:
    """Record an index; returns its id. ``building``: a companion index whose first build
    has not finished (version 0, searches ignore it)."""
    row = db.execute(
        "INSERT INTO vecpg.indexes (schema_name, collection, index_name, field_name,"
        " index_type, metric_type, params, pg_index, state, version, build_started)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, CASE WHEN %s THEN now() END)"
        " RETURNING id",
        (info.schema_name, info.name, index_name, field_name, kind,
         metric.value if metric else None, Jsonb(params), pg_index,
         "building" if building else "ready", 0 if building else 1, building)).fetchone()
    assert row is not None  # RETURNING always returns the row
    return int(row[0])


def drop_index(db: Db, schema_name: str, collection: str, index_name: str) -> None:
    """Forget one index (its companion model rows go by cascade)."""
    db.execute("DELETE FROM vecpg.indexes WHERE schema_name = %s AND collection = %s"
               " AND index_name = %s", (schema_name, collection, index_name))


def drop_index_by_id(db: Db, index_id: int) -> None:
    """Forget the index with id ``index_id``."""
    db.execute("DELETE FROM vecpg.indexes WHERE id = %s", (index_id,))


def set_calibration(db: Db, info: CollectionInfo, index: IndexInfo,
                    calibration: dict[str, Any] | None) -> None:
    """Store an index's calibration document (None clears it)."""
    db.execute("UPDATE vecpg.indexes SET calibration = %s WHERE schema_name = %s"
               " AND collection = %s AND index_name = %s",
               (None if calibration is None else Jsonb(calibration), info.schema_name,
                info.name, index.index_name))


# -- companion index builds ---------------------------------------------------------------

def companion_state(db: Db, index_id: int, *, for_update: bool = False
                    ) -> tuple[int, str, Any] | None:
    """``(version, state, build_started)`` of a companion index, None if it is gone."""
    stmt = "SELECT version, state, build_started FROM vecpg.indexes WHERE id = %s"
    row = db.execute(stmt + (" FOR UPDATE" if for_update else ""), (index_id,)).fetchone()
    return None if row is None else (int(row[0]), str(row[1]), row[2])


def mark_build_started(db: Db, index_id: int) -> None:
    """Announce a build: from now on writers leave their rows pending."""
    db.execute("UPDATE vecpg.indexes SET build_started = now() WHERE id = %s", (index_id,))


def add_model(db: Db, index_id: int, version: int, blob: bytes, stats: dict[str, Any],
              part_size: int) -> None:
    """Store one trained version of a companion model, in parts of ``part_size`` bytes
    (a bytea value caps at 1 GB)."""
    db.execute("INSERT INTO vecpg.index_models (index_id, version, model_bytes, stats)"
               " VALUES (%s, %s, %s, %s)", (index_id, version, len(blob), Jsonb(stats)))
    db.executemany("INSERT INTO vecpg.index_model_parts (index_id, version, part, data)"
                   " VALUES (%s, %s, %s, %s)",
                   [(index_id, version, i, blob[s:s + part_size])
                    for i, s in enumerate(range(0, len(blob), part_size))])


def swap_version(db: Db, index_id: int, version: int) -> None:
    """Make ``version`` the one searches use and drop the models of older ones."""
    db.execute("UPDATE vecpg.indexes SET version = %s, state = 'ready', build_started = NULL"
               " WHERE id = %s", (version, index_id))
    db.execute("DELETE FROM vecpg.index_models WHERE index_id = %s AND version < %s",
               (index_id, version))


def add_model_stats(db: Db, index_id: int, version: int, stats: dict[str, Any]) -> None:
    """Merge ``stats`` into a stored model's build statistics."""
    db.execute("UPDATE vecpg.index_models SET stats = stats || %s"
               " WHERE index_id = %s AND version = %s", (Jsonb(stats), index_id, version))


def model_parts(db: Db, index_id: int, version: int) -> list[bytes]:
    """The stored parts of one model version, in order."""
    return [bytes(r[0]) for r in db.execute(
        "SELECT data FROM vecpg.index_model_parts WHERE index_id = %s AND version = %s"
        " ORDER BY part", (index_id, version))]


def model_info(db: Db, index_id: int, version: int) -> tuple[dict[str, Any], int] | None:
    """``(build stats, stored model bytes)`` of one model version."""
    row = db.execute("SELECT stats, model_bytes FROM vecpg.index_models WHERE index_id = %s"
                     " AND version = %s", (index_id, version)).fetchone()
    return None if row is None else (dict(row[0] or {}), int(row[1]))


# -- the per-process cache ----------------------------------------------------------------

class CatalogCache:
    """Collection entries one process read, trusted for ``ttl`` seconds (other processes
    may change the catalog; a process's own DDL forgets what it changed at once)."""

    def __init__(self, session: Session, schema_name: str, ttl: float = 2.0) -> None:
        self._session = session
        self.schema_name = schema_name
        self.ttl = ttl
        self._entries: dict[str, tuple[float, CollectionInfo]] = {}
        self._lock = threading.Lock()

    def get(self, name: str, *, fresh: bool = False) -> CollectionInfo:
        """The entry of collection ``name`` (read again when ``fresh`` or expired)."""
        if type(name) is not str:
            check_name(name, "collection name")  # raises, saying what it got
        now = time.monotonic()
        hit = self._entries.get(name) if not fresh else None
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]  # only checked names are cached
        check_name(name, "collection name")
        # on the primary even when the call reads on a standby (vecpg.replicas): an entry
        # read on a lagging standby would be cached for the writes that follow
        with self._session.own_lease() as db:
            info = load(db, self.schema_name, name)
        with self._lock:
            self._entries[name] = (now, info)
        return info

    def partitions(self, info: CollectionInfo, names: Any) -> list[str] | None:
        """Partition names checked against the catalog (None: no restriction); a name
        not in ``info`` is looked up afresh, since another process may have created it."""
        names = args.names(names, "partition names")
        if not names:
            return None
        if any(p not in info.partitions for p in names):
            info = self.get(info.name, fresh=True)
        for p in names:
            if p not in info.partitions:
                raise PartitionNotFound(f"partition {p!r} of {info.name!r} does not exist")
        return list(names)

    def forget(self, *names: str) -> None:
        """Drop cached entries (after DDL on them)."""
        with self._lock:
            for name in names:
                self._entries.pop(name, None)
