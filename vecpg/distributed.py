"""Distributed collections on Citus: a collection's table becomes a Citus distributed
table (``create_distributed_table``), its rows hashed by a shard key over the workers.

vecpg writes no distribution layer of its own; what it adds is what Citus does not do by
itself for vector search (each point measured on Citus 14.0.1 + pgvector 0.8.0, a
coordinator and two workers):

- **Per-query settings reach the workers.** A session ``SET`` (or ``set_config(..., false)``,
  what vecpg uses on one node) stays on the coordinator: HNSW recall@10 on 20k x 64-d
  random rows was 0.72 at ``hnsw.ef_search`` 1 and at 200 alike (the workers' default 40).
  ``set_config(..., true)`` is not propagated either. ``SET LOCAL`` inside a transaction
  with ``citus.propagate_set_commands = 'local'`` is: 0.08 at ef 1, 0.94 at ef 200.
  So a search on a distributed collection runs as ``BEGIN; SET LOCAL ...; <search>;
  COMMIT`` (:func:`worker_settings`), and calibration sets its knob the same way.
- **Each shard returns its own top k**: Citus pushes ``ORDER BY distance LIMIT k`` into
  every shard's query and merges the shards' rows on the coordinator, so a shard's HNSW
  scan needs ``ef_search >= k`` (the planner sets it) and the merge is exact.
- **A filter on the shard key goes to one shard** (Citus' router planner; ``key IN (...)``
  to the shards of those values), which :func:`explain_tasks` shows.

What Citus refuses, refused here first with :class:`~vecpg.errors.NotSupported`:
companion indexes (IVF_SQ8, IVF_PQ, ANNOY) and BM25 functions keep themselves current with
statement triggers on the collection table ("triggers are not supported on distributed
tables"); tenancy relies on row-level security, which vecpg does not set up on shards.

The shard key is the primary key or the partition key (Milvus' ``partition_key`` is the
natural one: a tenant's rows stay on one shard). Citus requires a primary key to include
the distribution column, so with the partition key as shard key the table's key becomes
``(pk, partition key)``; vecpg keeps the primary key unique itself: an insert or upsert
first deletes the rows of the batch's keys (:func:`unique_by_delete`).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import pq, sql

from . import args, catalog
from .catalog import CollectionInfo
from .errors import InvalidArgument, NotSupported, UnsupportedServer
from .schema import CollectionSchema, DataType, FieldSchema
from .session import Db

PROPERTY = "distribution"  # the collection property holding {"shard_key", "shard_count"}
# the settings a plan may send to the workers: names of Postgres/pgvector settings only
_SETTING = re.compile(r"^[a-z_]+(\.[a-z_]+)?$")


@dataclass(frozen=True)
class Distribution:
    """How a collection's rows are spread: the shard key and the number of shards."""

    shard_key: str
    shard_count: int

    def as_dict(self) -> dict[str, Any]:
        """As stored in the collection's properties."""
        return {"shard_key": self.shard_key, "shard_count": self.shard_count}


def of(info: CollectionInfo) -> Distribution | None:
    """The collection's distribution (None: a table on one node)."""
    d = info.properties.get(PROPERTY)
    if not isinstance(d, dict):
        return None
    return Distribution(str(d["shard_key"]), int(d["shard_count"]))


def citus_version(db: Db) -> str | None:
    """The Citus extension's version in this database (None without Citus)."""
    v = db.value("SELECT extversion FROM pg_extension WHERE extname = 'citus'")
    return None if v is None else str(v)


def check_shard_key(schema: CollectionSchema, shard_key: Any) -> str:
    """The shard key for ``schema``: ``shard_key`` if given (the primary key or the
    partition key), else the partition key if there is one, else the primary key."""
    pk = schema.primary_field
    part = schema.partition_key
    if shard_key is None:
        return part.name if part is not None else pk.name
    name = args.name(shard_key, "shard_key")
    f = schema.get(name)
    if f is None:
        raise InvalidArgument(f"shard_key {name!r} is not a field of the collection")
    if not (f.is_primary or f.is_partition_key):
        allowed = [pk.name] + ([part.name] if part is not None else [])
        raise InvalidArgument(f"shard_key must be the primary key or the partition key "
                              f"({' or '.join(map(repr, allowed))}), got {name!r}")
    return name


def refuse_unsupported(schema: CollectionSchema, info: CollectionInfo | None = None) -> None:
    """Raise :class:`NotSupported` for what a distributed collection cannot have."""
    if schema.functions:
        raise NotSupported("a collection with BM25 functions cannot be distributed: their "
                           "statistics are kept by statement triggers, which Citus does not "
                           "support on distributed tables")
    if info is None:
        return
    for ix in info.indexes:
        if ix.kind.companion:
            raise NotSupported(f"collection {info.name!r} has the companion index "
                               f"{ix.index_name!r} ({ix.index_type}); drop it before "
                               "distributing: companion indexes use triggers, which Citus "
                               "does not support on distributed tables (HNSW and IVF_FLAT "
                               "are built on every shard)")
    if info.tenant_field is not None:
        raise NotSupported(f"collection {info.name!r} has tenancy (row-level security) "
                           "enabled; vecpg does not set up row-level security on shards")


def refuse_companion(info: CollectionInfo, index_type: str) -> None:
    """Raise :class:`NotSupported` when ``info`` is distributed: a companion index keeps
    its pending list with statement triggers on the table, which Citus refuses."""
    if of(info) is not None:
        raise NotSupported(f"{index_type} is a companion index, which needs triggers on the "
                           f"collection table; {info.name!r} is distributed (Citus supports no "
                           "triggers on distributed tables): use HNSW or IVF_FLAT, which "
                           "pgvector builds on every shard")


def refuse_tenancy(info: CollectionInfo) -> None:
    """Raise :class:`NotSupported` when ``info`` is distributed (see the module doc)."""
    if of(info) is not None:
        raise NotSupported(f"tenancy on distributed collection {info.name!r} is not supported: "
                           "vecpg does not set up row-level security on shards")


def distribute(db: Db, info: CollectionInfo, shard_key: Any = None,
               shard_count: Any = None) -> Distribution:
    """Make ``info``'s table a Citus distributed table (rows it has move to the shards) and
    record it in the catalog. Runs in the caller's transaction."""
    if of(info) is not None:
        raise InvalidArgument(f"collection {info.name!r} is distributed already "
                              f"(shard key {of(info).shard_key!r})")  # type: ignore[union-attr]
    if citus_version(db) is None:
        raise UnsupportedServer("distributing a collection needs the Citus extension in this "
                                "database (CREATE EXTENSION citus, on the coordinator)")
    refuse_unsupported(info.schema, info)
    key = check_shard_key(info.schema, shard_key)
    count = None if shard_count is None else args.integer(shard_count, "shard_count", 1, 64000)
    table = info.table
    qualified = table.as_string(db.raw)
    pk = info.schema.primary_field.name
    if key != pk:
        # Citus: a primary key must include the distribution column
        name = db.value("SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass"
                        " AND contype = 'p'", (qualified,))
        if name is not None:
            db.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                table, sql.Identifier(str(name))))
        db.execute(sql.SQL("ALTER TABLE {} ADD PRIMARY KEY ({}, {})").format(
            table, sql.Identifier(pk), sql.Identifier(key)))
    had_rows = db.value(sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(table))
    if count is None:
        db.execute("SELECT create_distributed_table(%s, %s)", (qualified, key))
    else:
        db.execute("SELECT create_distributed_table(%s, %s, shard_count => %s)",
                   (qualified, key, count))
    if had_rows:  # the coordinator's copy: unreachable now, only taking space
        db.execute("SELECT truncate_local_data_after_distributing_table(%s)", (qualified,))
    got = int(db.value("SELECT shard_count FROM citus_tables WHERE table_name = %s::regclass",
                       (qualified,)))
    dist = Distribution(key, got)
    catalog.set_properties(db, info.schema_name, info.name,
                           {**info.properties, PROPERTY: dist.as_dict()})
    return dist


def unique_by_delete(info: CollectionInfo) -> bool:
    """True when writes must delete a batch's keys first to keep the primary key unique:
    the shard key is not the primary key, so the table's key is (pk, shard key)."""
    d = of(info)
    return d is not None and d.shard_key != info.schema.primary_field.name


# -- searches -----------------------------------------------------------------------------

def _set_local(settings: dict[str, str]) -> sql.Composed:
    """``SET LOCAL name = 'value'; ...`` (SET takes no parameters; the names are the
    planner's own, checked; the values are quoted literals)."""
    parts: list[sql.Composable] = [sql.SQL("SET LOCAL citus.propagate_set_commands = 'local'")]
    for k, v in settings.items():
        if not _SETTING.match(k):
            raise InvalidArgument(f"not a setting name: {k!r}")
        parts.append(sql.SQL("SET LOCAL {} = {}").format(sql.SQL(k), sql.Literal(str(v))))
    return sql.SQL("; ").join(parts)


def set_local(db: Db, name: str, value: str) -> None:
    """One ``SET LOCAL`` that reaches the workers too (inside the caller's transaction)."""
    db.execute(_set_local({name: value}), prepare=False)


def coordinator_settings(dist: Distribution) -> dict[str, str]:
    """Session settings of the coordinator's connection for searches on ``dist``: keep a
    connection per shard (up to 8) to each worker open between transactions. Citus keeps
    one by default, so a search fanning out to several shards of a worker opened new
    connections each time: measured on the dev set (55k rows, 8 shards, 2 workers, a loaded
    2-core machine), 773 ms a search in a SET LOCAL transaction, 386 ms with 8 kept."""
    return {"citus.max_cached_conns_per_worker": str(min(dist.shard_count, 8))}


@contextlib.contextmanager
def worker_settings(db: Db, settings: dict[str, str]) -> Iterator[None]:
    """Run the block in a transaction whose ``settings`` reach the workers (``SET LOCAL``
    propagated by Citus, see the module doc). Inside a transaction already, the settings
    last until it ends. BEGIN and the settings are one round trip."""
    outer = db.raw.pgconn.transaction_status != pq.TransactionStatus.IDLE
    stmt = _set_local(settings)
    db.execute(stmt if outer else sql.SQL("BEGIN; {}").format(stmt), prepare=False)
    if outer:
        yield
        return
    try:
        yield
    except BaseException:
        if not db.raw.closed:
            with contextlib.suppress(psycopg.Error):
                db.execute("ROLLBACK", prepare=False)
        raise
    db.execute("COMMIT", prepare=False)


def explain_tasks(db: Db, statement: str, params: list[Any]) -> dict[str, Any]:
    """How Citus runs ``statement``: the number of shard tasks (1: routed to one shard by a
    filter on the shard key) and the remote plan of one task's first node."""
    row = db.execute(sql.SQL("EXPLAIN (FORMAT JSON) {}").format(sql.SQL(statement)),
                     params, prepare=False).fetchone()
    doc = row[0] if row else None
    if isinstance(doc, str):
        doc = json.loads(doc)
    out: dict[str, Any] = {"task_count": None, "remote_node": None}
    stack = [doc[0]["Plan"]] if doc else []
    while stack:
        node = stack.pop()
        job = node.get("Distributed Query", {}).get("Job")
        if job is not None:
            out["task_count"] = int(job["Task Count"])
            tasks = job.get("Tasks") or []
            remote = tasks[0].get("Remote Plan") if tasks else None
            if remote:
                out["remote_node"] = remote[0][0]["Plan"].get("Node Type")
            break
        stack.extend(node.get("Plans", []))
    return out


def probe(f: FieldSchema) -> Any:
    """A query vector for ``f`` that only EXPLAIN sees (explain without data)."""
    dim = int(f.dim or 1)
    if f.dtype is DataType.BINARY_VECTOR:
        return bytes(max(1, dim // 8))
    if f.dtype is DataType.SPARSE_FLOAT_VECTOR:
        return {0: 1.0}
    return [1.0] * dim


def citus_remote_plan(doc: Any) -> tuple[dict[str, Any], int] | None:
    """From an ``EXPLAIN (FORMAT JSON)`` of a query on a distributed table: one task's
    remote plan and the task count (Citus' own top node estimates 100,000 rows whatever the
    filter, so the shards' estimates must be read); None when the plan is not Citus'."""
    plan = doc[0]["Plan"]
    job = plan.get("Distributed Query", {}).get("Job")
    if not str(plan.get("Custom Plan Provider", "")).startswith("Citus") or job is None:
        return None
    tasks = job.get("Tasks") or []
    if not tasks or not tasks[0].get("Remote Plan"):
        return None
    return tasks[0]["Remote Plan"][0][0]["Plan"], int(job["Task Count"])

