"""Collection and index DDL: creating, renaming and dropping collection tables, building,
rebuilding, describing and dropping indexes, each with its catalog rows in the same
transaction.

Functions take a :class:`~vecpg.session.Db` (an index build's progress watcher opens a
connection of its own, so it can read ``pg_stat_progress_create_index`` while the build
runs). The client forgets its cached catalog entries afterwards and calibrates new
indexes (:mod:`vecpg.calibrate`).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import psycopg
from psycopg import sql

from . import args, catalog, distributed, fulltext
from . import companion as cmp
from .catalog import CollectionInfo, IndexInfo
from .errors import AlreadyExists, InvalidArgument, NotFound, SchemaError
from .indexes import (
    Companion,
    Flat,
    Hnsw,
    config_params,
    create_index_sql,
    pg_index_name,
    popcount_index_name,
    request_kind,
)
from .metrics import Metric, check_metric, default_metric
from .schema import PARTITION_COLUMN, CollectionSchema, DataType, FieldSchema, check_name
from .session import Db

Progress = Callable[[dict[str, Any]], None]


# -- collections --------------------------------------------------------------------------

def ensure_schema(dsn: str, schema_name: str) -> None:
    """Create the Postgres schema that holds a client's collections, if it is missing (on a
    connection of its own: it runs before the client's pool opens)."""
    with psycopg.connect(dsn, autocommit=True) as c:
        row = c.execute("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = %s),"
                        " pg_is_in_recovery()", (schema_name,)).fetchone()
        if row is None or row[0]:
            return  # nothing to write: a role without CREATE can connect
        if row[1]:
            raise NotFound(f"schema {schema_name!r} does not exist on this standby; create "
                           "it on the primary (connect there once)")
        with c.transaction():
            # IF NOT EXISTS alone races: two processes can both find it missing
            c.execute("SELECT pg_advisory_xact_lock(hashtext(%s))",
                      (f"vecpg schema {schema_name}",))
            c.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                sql.Identifier(schema_name)))


def quick_schema(dimension: int | None, primary_field_name: str, id_type: str,
                 vector_field_name: str, auto_id: bool, max_length: int,
                 enable_dynamic_field: bool, description: str) -> CollectionSchema:
    """The schema of ``create_collection``'s quick form: a primary key, one float vector
    field, dynamic fields on (as pymilvus' quick setup)."""
    if dimension is None:
        raise InvalidArgument("create_collection needs dimension (quick form) or schema")
    args.integer(dimension, "dimension", 1, 64000)
    for value, what in ((primary_field_name, "primary_field_name"), (id_type, "id_type"),
                        (vector_field_name, "vector_field_name"), (description, "description")):
        args.text(value, what, optional=False)
    args.flag(auto_id, "auto_id")
    args.flag(enable_dynamic_field, "enable_dynamic_field")
    args.integer(max_length, "max_length", 1, 65535)
    schema = CollectionSchema(enable_dynamic_field=enable_dynamic_field, description=description)
    if id_type in ("int", "INT64", DataType.INT64):
        schema.add_field(primary_field_name, DataType.INT64, is_primary=True, auto_id=auto_id)
    elif id_type in ("str", "string", "VARCHAR", DataType.VARCHAR):
        schema.add_field(primary_field_name, DataType.VARCHAR, is_primary=True,
                         max_length=max_length)
    else:
        raise InvalidArgument(f"id_type must be 'int' or 'str', got {id_type!r}")
    schema.add_field(vector_field_name, DataType.FLOAT_VECTOR, dim=dimension)
    return schema


def field_metrics(schema: CollectionSchema, metric_type: str | None) -> dict[str, str]:
    """The metric of each vector field: ``metric_type`` where it fits the field's type
    (with several vector fields, a field it does not fit takes its type's default)."""
    metrics: dict[str, str] = {}
    for f in schema.vector_fields:
        m = Metric.parse(metric_type) if metric_type else default_metric(f.dtype)
        if metric_type and len(schema.vector_fields) > 1:
            try:
                check_metric(m, f.dtype, f.name)
            except InvalidArgument:
                m = default_metric(f.dtype)
        check_metric(m, f.dtype, f.name)
        metrics[f.name] = m.value
    return metrics


def set_partition_key(schema: CollectionSchema, field_name: Any) -> None:
    """Make ``field_name`` the schema's partition key (create_collection's
    ``partition_key_field``)."""
    f = schema.field(args.name(field_name, "partition_key_field"))
    if f.is_primary or f.dtype not in (DataType.INT64, DataType.VARCHAR):
        raise SchemaError(f"partition key {f.name!r} must be a non-primary INT64 or VARCHAR field")
    f.is_partition_key = True


def collection_properties(schema: CollectionSchema, properties: Any,
                          num_partitions: Any) -> dict[str, Any]:
    """The catalog properties a new collection starts with: Milvus' ``properties`` as
    given, and ``num_partitions`` of a partition key (Milvus' default 16; kept for
    ``describe_collection``: rows are not split, the key's index finds them)."""
    props = dict(args.mapping(properties, "properties"))
    if num_partitions is not None:
        if schema.partition_key is None:
            raise InvalidArgument("num_partitions needs a partition key field")
        props["num_partitions"] = args.integer(num_partitions, "num_partitions", 1, 4096)
    elif schema.partition_key is not None:
        props["num_partitions"] = 16
    return props


def create_collection(db: Db, schema_name: str, name: str, schema: CollectionSchema,
                      properties: dict[str, Any]) -> None:
    """The collection's table, its partition index (and partition key index) and its
    catalog entry, at once."""
    table = sql.Identifier(schema_name, name)
    with db.transaction():
        db.lock(f"collection {schema_name}.{name}")
        if catalog.exists(db, schema_name, name):
            raise AlreadyExists(f"collection {name!r} already exists")
        if catalog.alias_target(db, schema_name, name) is not None:
            raise AlreadyExists(f"{name!r} is an alias of a collection; Milvus refuses a "
                                "collection of that name too")
        if db.value("SELECT to_regclass(%s)", (table.as_string(db.raw),)):
            raise AlreadyExists(f"a table {schema_name}.{name} exists already "
                                "and is not a vecpg collection")
        db.execute(schema.create_table_sql(table))
        for col in [PARTITION_COLUMN] + ([schema.partition_key.name] if schema.partition_key
                                         else []):
            db.execute(sql.SQL("CREATE INDEX {} ON {} ({})").format(
                sql.Identifier(pg_index_name(name, col)), table, sql.Identifier(col)))
        _create_fulltext(db, table, name, schema)
        catalog.add_collection(db, schema_name, name, schema, properties)


def _create_fulltext(db: Db, table: sql.Identifier, name: str,
                     schema: CollectionSchema) -> None:
    """A GIN index on each analyzed field's tsvector; for each BM25 input field, its
    statistics row and the statement triggers that keep it (``sql/006_fulltext.sql``)."""
    for f in schema.fields:
        if f.text_config is not None:
            db.execute(sql.SQL("CREATE INDEX {} ON {} USING gin ({})").format(
                sql.Identifier(pg_index_name(name, fulltext.tsv_column(f.name))), table,
                sql.Identifier(fulltext.tsv_column(f.name))))
    for fn in schema.functions:
        col = fn.input_field
        db.execute("SELECT vecpg.bm25_stats_init(%s::regclass, %s, %s)",
                   (table.as_string(db.raw), col, fulltext.len_column(col)))
        for event, refs in (("INSERT", "NEW TABLE AS vecpg_new"),
                            ("UPDATE", "OLD TABLE AS vecpg_old NEW TABLE AS vecpg_new"),
                            ("DELETE", "OLD TABLE AS vecpg_old")):
            db.execute(sql.SQL(
                "CREATE TRIGGER {} AFTER {} ON {} REFERENCING {} FOR EACH STATEMENT "
                "EXECUTE FUNCTION vecpg.bm25_stats_update({}, {})").format(
                sql.Identifier(f"vecpg_bm25_{event.lower()}_{fn.name}"[:63]), sql.SQL(event),
                table, sql.SQL(refs), sql.Literal(fulltext.len_column(col)), sql.Literal(col)))
        db.execute(sql.SQL("CREATE TRIGGER {} AFTER TRUNCATE ON {} FOR EACH STATEMENT "
                           "EXECUTE FUNCTION vecpg.bm25_stats_truncate()").format(
            sql.Identifier(f"vecpg_bm25_truncate_{fn.name}"[:63]), table))


def add_field(db: Db, info: CollectionInfo, f: FieldSchema) -> None:
    """Add a nullable (or defaulted) scalar field to a collection's table and schema."""
    if f.dtype.is_vector or f.is_primary or f.is_partition_key or f.enable_analyzer:
        raise SchemaError("add_collection_field adds scalar fields (not vectors, keys, "
                          "partition keys or analyzed text)")
    if not f.nullable and f.default_value is None:
        raise SchemaError(f"field {f.name!r} added to existing rows must be nullable=True or "
                          "have a default_value")
    if info.schema.get(f.name) is not None:
        raise AlreadyExists(f"field {f.name!r} exists already")
    schema = CollectionSchema([*info.schema.fields, f], info.schema.enable_dynamic_field,
                              info.schema.description)
    col = [sql.Identifier(f.name), f.pg_type()]
    if f.default_value is not None:
        col.append(sql.SQL("DEFAULT {}").format(sql.Literal(f.default_value)))
    with db.transaction():
        db.lock(f"collection {info.schema_name}.{info.name}")
        db.execute(sql.SQL("ALTER TABLE {} ADD COLUMN {}").format(info.table,
                                                                sql.SQL(" ").join(col)))
        catalog.set_schema(db, info.schema_name, info.name, schema)


def rename_collection(db: Db, info: CollectionInfo, new_name: str) -> None:
    """Rename the table, its Postgres indexes and the catalog entry."""
    old, schema_name = info.name, info.schema_name
    with db.transaction():
        if catalog.exists(db, schema_name, new_name):
            raise AlreadyExists(f"collection {new_name!r} already exists")
        db.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(
            info.table, sql.Identifier(new_name)))
        renames = [(pg_index_name(old, PARTITION_COLUMN), PARTITION_COLUMN)]
        renames += [(ix.pg_index, ix.index_name) for ix in info.indexes if ix.pg_index]
        for ix in info.indexes:
            f = info.schema.get(ix.field_name)  # None: a dynamic key's (automatic) index
            if f is not None and f.dtype is DataType.BINARY_VECTOR:
                db.execute(sql.SQL("ALTER INDEX IF EXISTS {} RENAME TO {}").format(
                    sql.Identifier(schema_name, popcount_index_name(old, ix.index_name)),
                    sql.Identifier(popcount_index_name(new_name, ix.index_name))))
        new_pg: dict[str, str] = {}
        for old_pg, ix_name in renames:
            new_pg[ix_name] = pg_index_name(new_name, ix_name)
            db.execute(sql.SQL("ALTER INDEX {} RENAME TO {}").format(
                sql.Identifier(schema_name, old_pg), sql.Identifier(new_pg[ix_name])))
        for f in info.schema.fields:  # the GIN indexes of analyzed fields
            if f.text_config is not None:
                col = fulltext.tsv_column(f.name)
                db.execute(sql.SQL("ALTER INDEX IF EXISTS {} RENAME TO {}").format(
                    sql.Identifier(schema_name, pg_index_name(old, col)),
                    sql.Identifier(pg_index_name(new_name, col))))
        new_pg.pop(PARTITION_COLUMN)
        catalog.rename_collection(db, schema_name, old, new_name, new_pg)


def drop_collection(db: Db, schema_name: str, name: str) -> list[int]:
    """Drop the table, its companion indexes' objects and its catalog entry (no error if
    it does not exist). Returns the ids of the companion indexes dropped."""
    dropped: list[int] = []
    with db.transaction():
        if not catalog.exists(db, schema_name, name):
            return dropped
        info = catalog.load(db, schema_name, name)
        for ix in info.indexes:
            if ix.kind.companion and ix.id is not None:
                cmp.uninstall(db, ix.id)
                dropped.append(ix.id)
        db.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(schema_name, name)))
        if info.schema.functions:  # its statistics rows go with it
            db.execute("SELECT vecpg.bm25_stats_vacuum()")
        catalog.drop_collection(db, schema_name, name)
    return dropped


# -- indexes ------------------------------------------------------------------------------

def create_index(db: Db, info: CollectionInfo, req: Mapping[str, Any], dsn: str,
                 progress: Progress | None) -> str | None:
    """Build one index from a request (``field_name``, ``index_type``, ``index_name``,
    ``metric_type``, ``params``). Returns the index's name when it is a vector index with
    a knob to calibrate, else None."""
    f = info.schema.get(str(req.get("field_name")))
    if f is None:
        raise SchemaError(f"unknown field {req.get('field_name')!r} in {info.name!r}")
    name = check_name(req.get("index_name") or f.name, "index name", allow_underscore=False)
    if any(ix.index_name == name for ix in info.indexes):
        raise AlreadyExists(f"index {name!r} exists on {info.name!r}")
    if f.is_function_output:
        _create_bm25_index(db, info, f, name, req)
        return None
    metric: Metric | None = None
    if f.dtype.is_vector:
        metric = Metric.parse(req["metric_type"]) if req.get("metric_type") else info.metric(f.name)
        check_metric(metric, f.dtype, f.name)
    kind = request_kind(req.get("index_type"), f)
    cfg = kind.build_config(req.get("params"), f, metric)
    if f.dtype.is_vector and info.index_on(f.name) is not None:
        raise AlreadyExists(f"field {f.name!r} has a vector index already; drop it first")
    if isinstance(cfg, Companion) and metric is not None:
        distributed.refuse_companion(info, cfg.kind)
        _create_companion(db, info, f, name, cfg, metric, progress)
        return name
    pg_name = None if isinstance(cfg, Flat) else pg_index_name(info.name, name)
    ddl = create_index_sql(cfg, info.schema_name, info.name, pg_name or "", f, metric)
    stop = threading.Event()
    watcher = None
    if progress is not None and ddl is not None:
        watcher = threading.Thread(target=_watch_build, args=(dsn, db.backend_pid, progress, stop),
                                   daemon=True)
    try:
        with db.transaction():
            if ddl is not None:
                # Builds are much faster when the graph fits in memory (pgvector says
                # "hnsw graph no longer fits into maintenance_work_mem" and slows down)
                db.execute("SELECT set_config('maintenance_work_mem', %s, true)",
                           (f"{build_memory_mb(db, info, f, cfg)}MB",))
                if watcher is not None:
                    watcher.start()
                _build(db, ddl)
            if f.dtype is DataType.BINARY_VECTOR:
                # popcount bounds screen SUBSTRUCTURE/SUPERSTRUCTURE and Tanimoto range
                # searches before the exact bit test (see metrics.distance_sql)
                db.execute(sql.SQL("CREATE INDEX {} ON {} ((vecpg.popcount({})))").format(
                    sql.Identifier(popcount_index_name(info.name, name)), info.table,
                    sql.Identifier(f.name)))
            if ddl is not None or f.dtype is DataType.BINARY_VECTOR:
                db.execute(sql.SQL("ANALYZE {}").format(info.table))
            catalog.add_index(db, info, name, f.name, cfg.kind, metric, config_params(cfg),
                              pg_name)
            if metric is not None:
                catalog.set_metric(db, info, f.name, metric)
    finally:
        stop.set()
        if watcher is not None and watcher.is_alive():
            watcher.join()
    return name if metric is not None and pg_name is not None else None


def _create_bm25_index(db: Db, info: CollectionInfo, f: FieldSchema, name: str,
                       req: Mapping[str, Any]) -> None:
    """The index of a BM25 output field: the GIN index on its input's terms exists
    already; this records ``bm25_k1`` and ``bm25_b`` (metric BM25) for its searches."""
    metric = str(req.get("metric_type") or "BM25")
    if metric.upper() != "BM25":
        raise SchemaError(f"field {f.name!r} is a BM25 function output: its metric is BM25, "
                          f"not {metric!r}")
    kind = request_kind(req.get("index_type"), f)
    params = kind.check_params(dict(req.get("params") or {}))
    if info.index_on(f.name) is not None or any(ix.field_name == f.name
                                                 for ix in info.indexes):
        raise AlreadyExists(f"field {f.name!r} has an index already; drop it first")
    stored = {**fulltext.check_bm25_params(params),
              **{k: v for k, v in params.items() if k not in ("bm25_k1", "bm25_b")}}
    with db.transaction():
        catalog.add_index(db, info, name, f.name, kind.name, None, stored, None)


def _create_companion(db: Db, info: CollectionInfo, f: Any, name: str, cfg: Companion,
                      metric: Metric, progress: Progress | None) -> None:
    """Register a companion index with its triggers (committed first, so rows written
    during the build are listed as pending), then train and encode it."""
    with db.transaction():
        index_id = catalog.add_index(db, info, name, f.name, cfg.kind, metric,
                                     config_params(cfg), None, building=True)
        cmp.install(db, info.table, info.schema.primary_field, f, index_id)
        catalog.set_metric(db, info, f.name, metric)
    target = cmp.Target(index_id, info.table, info.schema.primary_field, f, metric, cfg)
    try:
        cmp.build(db, target, progress)
    except Exception:
        # A first build that fails leaves nothing behind (a killed one stays 'building'
        # and is ignored by searches until rebuilt or dropped).
        with db.transaction():
            cmp.uninstall(db, index_id)
            catalog.drop_index_by_id(db, index_id)
        raise


def _watch_build(dsn: str, pid: int, progress: Progress, stop: threading.Event) -> None:
    """Report a pgvector build's progress every half second until ``stop`` is set."""
    with psycopg.connect(dsn, autocommit=True) as c:
        while not stop.wait(0.5):
            row = c.execute(
                "SELECT phase, blocks_done, blocks_total, tuples_done, tuples_total"
                " FROM pg_stat_progress_create_index WHERE pid = %s", (pid,)).fetchone()
            if row:
                progress(dict(zip(("phase", "blocks_done", "blocks_total", "tuples_done",
                                   "tuples_total"), row)))


def companion_target(info: CollectionInfo, ix: IndexInfo) -> cmp.Target:
    """What companion index ``ix`` covers."""
    cfg = ix.config
    if not isinstance(cfg, Companion) or ix.id is None:
        raise InvalidArgument(f"index {ix.index_name!r} is {ix.index_type}, not a companion "
                              "index")
    return cmp.Target(ix.id, info.table, info.schema.primary_field,
                      info.schema.field(ix.field_name), Metric.parse(ix.metric_type or "L2"),
                      cfg)


# pgvector's HNSW build keeps the whole graph in maintenance_work_mem: per element the
# vector, 2*M neighbour slots at level 0 (16 bytes each) and ~250 bytes of bookkeeping
# (measured: 64MB held 52,684 elements of 128 dims at M=16, 1,274 bytes each). Past the
# budget it writes the graph out and inserts the rest one by one: 100k x 128 built in 205 s
# at 64MB against 82 s with the graph in memory (docs/benchmarks.md, 2026-12-02).
BUILD_MEM_MAX_MB = int(os.environ.get("VECPG_BUILD_MEM_MAX_MB", "4096"))


def build_memory_mb(db: Db, info: CollectionInfo, f: FieldSchema, cfg: Any) -> int:
    """maintenance_work_mem (MB) for building ``cfg`` on ``f``: the HNSW graph's estimated
    size for the table's rows, at least 1GB and the session's own setting, at most
    ``$VECPG_BUILD_MEM_MAX_MB`` (default 4096)."""
    (current,) = db.execute("SELECT pg_size_bytes(current_setting('maintenance_work_mem'))"
                            " / 1048576").fetchone() or (0,)
    floor = max(1024, int(current))
    if not isinstance(cfg, Hnsw) or not f.dtype.is_vector:
        return floor
    (rows,) = db.execute("SELECT c.reltuples::bigint FROM pg_class c JOIN pg_namespace n"
                         " ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
                         (info.schema_name, info.name)).fetchone() or (None,)
    if rows is None or rows < 0:  # never analyzed
        (rows,) = db.execute(sql.SQL("SELECT count(*) FROM {}").format(info.table)
                             ).fetchone() or (0,)
    return max(floor, min(hnsw_graph_mb(int(rows), int(f.dim or 0), f.dtype, cfg.M),
                          BUILD_MEM_MAX_MB))


def hnsw_graph_mb(rows: int, dim: int, dtype: DataType, m: int) -> int:
    """Estimated size (MB) of pgvector's in-memory HNSW graph for ``rows`` vectors."""
    width = dim // 8 if dtype is DataType.BINARY_VECTOR else (
        2 * dim if dtype is DataType.FLOAT16_VECTOR else 4 * dim)
    per_row = width + 16 * 2 * m + 250
    return int(rows * per_row * 1.25) // 2**20 + 64


def companion_targets(info: CollectionInfo) -> list[cmp.Target]:
    """Every companion index of the collection (writes through the API encode for them;
    a role that does not see every row leaves its rows to the pending list instead)."""
    if not info.sees_all:
        return []
    return [companion_target(info, ix) for ix in info.indexes
            if ix.kind.companion and ix.id is not None]


def rebuild_index(db: Db, info: CollectionInfo, ix: IndexInfo,
                  progress: Progress | None) -> dict[str, Any]:
    """Build an index again from the current rows: a companion index is re-trained and
    swapped in when done (the old version serves until then); a pgvector index is rebuilt
    concurrently. Returns build statistics."""
    started = time.monotonic()
    stats: dict[str, Any] = {}
    if ix.kind.companion:
        stats = cmp.build(db, companion_target(info, ix), progress)
    elif ix.pg_index:
        # CONCURRENTLY: a new index is built beside the old one and swapped in, so searches
        # (and writes) go on meanwhile; a plain REINDEX locks them out for the whole build
        # a killed earlier rebuild leaves its unfinished copy behind (invalid, unused)
        _drop_unfinished_copies(db, info, ix)
        db.execute("SELECT set_config('maintenance_work_mem', %s, false)",
                   (f"{build_memory_mb(db, info, info.schema.field(ix.field_name), ix.config)}MB",))
        reindex = sql.SQL("REINDEX INDEX CONCURRENTLY {}").format(
            sql.Identifier(info.schema_name, ix.pg_index))
        try:
            try:
                db.execute(reindex)
            except psycopg.errors.DiskFull as e:
                if not _shm_full(e):
                    raise
                # the failed copy is left invalid: drop it, build again without workers
                _drop_unfinished_copies(db, info, ix)
                db.execute("SET max_parallel_maintenance_workers = 0")
                try:
                    db.execute(reindex)
                finally:
                    db.execute("RESET max_parallel_maintenance_workers")
        finally:
            db.execute("RESET maintenance_work_mem")
    return {"build_seconds": round(time.monotonic() - started, 3), **stats}


def _shm_full(e: Exception) -> bool:
    return "shared memory segment" in str(e)


def _build(db: Db, ddl: Any) -> None:
    """Run an index build. A parallel build keeps its graph in a shared memory segment of
    maintenance_work_mem; where /dev/shm is smaller (Docker's default is 64 MB, as in the
    pgvector images) Postgres fails it with "could not resize shared memory segment": the
    build runs again without parallel workers (slower, but it fits in local memory)."""
    try:
        with db.transaction():  # a savepoint: only the failed build is undone
            db.execute(ddl)
    except psycopg.errors.DiskFull as e:
        if not _shm_full(e):
            raise
        db.execute("SELECT set_config('max_parallel_maintenance_workers', '0', true)")
        db.execute(ddl)


def _drop_unfinished_copies(db: Db, info: CollectionInfo, ix: IndexInfo) -> None:
    """Drop the invalid ``_ccnew`` copies a failed or killed REINDEX CONCURRENTLY left."""
    assert ix.pg_index is not None
    for (left,) in db.execute(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s"
            " AND NOT i.indisvalid AND c.relname LIKE %s",
            (info.schema_name, ix.pg_index.replace("_", "\\_") + "\\_ccnew%")).fetchall():
        db.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(
            sql.Identifier(info.schema_name, left)))


def coverage_share(db: Db, info: CollectionInfo, ix: IndexInfo
                   ) -> tuple[float, dict[str, int] | None]:
    """The share of rows a companion index does not cover (pending rows and stale codes of
    deleted rows; 1 before its first build) and its coverage counts."""
    t = companion_target(info, ix)
    cov = cmp.coverage(db, t.table, t.pk, t.index_id, ix.version) if ix.version else None
    share = 1.0 if cov is None else (cov["pending"] + cov["stale_codes"]) / max(1, cov["rows"])
    return share, cov


_MILVUS_STATE = {"ready": "Finished", "building": "InProgress", "failed": "Failed"}


def describe_index(db: Db, info: CollectionInfo, ix: IndexInfo,
                   companions: cmp.Companions) -> dict[str, Any]:
    """Type, metric, parameters, state and size of one index (see
    ``Client.describe_index``)."""
    n = int(db.value(sql.SQL("SELECT count(*) FROM {}").format(info.table)))
    # pymilvus' keys first: the build settings flattened, rows, a Milvus state name
    out: dict[str, Any] = {
        **{k: v for k, v in ix.params.items() if k not in ("index_type", "metric_type")},
        "index_type": ix.index_type,
        "metric_type": ix.metric_type or ("BM25" if info.schema.function_for(ix.field_name)
                                          else None),
        "field_name": ix.field_name, "index_name": ix.index_name,
        "total_rows": n, "indexed_rows": n, "pending_index_rows": 0,
        "state": _MILVUS_STATE.get(ix.state, ix.state),
        "params": ix.params, "build_state": ix.state, "pg_index": ix.pg_index}
    if not ix.kind.companion:
        size = 0
        if ix.pg_index:
            # Citus: the shards' indexes (the coordinator's own is empty)
            size_of = "citus_relation_size" if distributed.of(info) else "pg_relation_size"
            size = int(db.value(sql.SQL("SELECT {}(%s::regclass)").format(sql.SQL(size_of)),
                                (sql.Identifier(info.schema_name, ix.pg_index).as_string(db.raw),)))
        return {**out, "total_bytes": size, "bytes_per_vector": (size / n) if n else None}
    out["version"] = ix.version
    if ix.id is not None:
        # a killed build leaves state 'ready' (the old version serves) and nothing running
        out["build_running"] = cmp.build_running(db, ix.id)
    if not ix.version or ix.id is None:
        return out
    t = companion_target(info, ix)
    codes_bytes = int(db.value("SELECT pg_total_relation_size(%s::regclass)",
                               (cmp.codes_table(ix.id, ix.version).as_string(db.raw),)))
    stats, model_bytes = catalog.model_info(db, ix.id, ix.version) or ({}, 0)
    state = companions.loaded_now(ix.id)
    rows = max(1, int(stats.get("rows", 0)))
    assert isinstance(ix.config, Companion)
    out.update({
        "total_bytes": codes_bytes + model_bytes,
        # ANNOY's trees hold the vectors themselves: its cost per vector is the forest's
        "bytes_per_vector": (round(model_bytes / rows, 1) if ix.config.trees
                             else stats.get("code_size")),
        "float_bytes_per_vector": stats.get("float_bytes_per_vector"),
        "model_bytes": model_bytes, "codes_table_bytes": codes_bytes,
        "memory_bytes": state.memory_bytes() if state and state.version == ix.version else None,
        "build": stats, "coverage": cmp.coverage(db, t.table, t.pk, ix.id, ix.version)})
    out["pending_index_rows"] = out["coverage"]["pending"]
    out["indexed_rows"] = out["coverage"]["encoded"]
    return out


def drop_index(db: Db, info: CollectionInfo, ix: IndexInfo) -> int | None:
    """Drop an index with its popcount btree and companion objects; returns the companion
    index id dropped, if any."""
    with db.transaction():
        if ix.pg_index:
            db.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(
                sql.Identifier(info.schema_name, ix.pg_index)))
        db.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(
            sql.Identifier(info.schema_name, popcount_index_name(info.name, ix.index_name))))
        dropped = None
        if ix.kind.companion and ix.id is not None:
            cmp.uninstall(db, ix.id)
            dropped = ix.id
        catalog.drop_index(db, info.schema_name, info.name, ix.index_name)
    return dropped
