"""Rows in and out of a collection table: writes (insert, upsert) with their companion
index codes in the same transaction, deletes, and scalar reads (query, get, count).

Validation happens before anything is sent (:mod:`vecpg.ingest`); every write here is one
transaction, so a batch is all or nothing.
"""

from __future__ import annotations

from typing import Any

from psycopg import sql

from . import args
from .args import INT64_MAX
from .catalog import CollectionInfo
from .companion import Companions, Target
from .errors import InvalidArgument
from .filters import compile_filter
from .ingest import Batch, copy_batch
from .results import Selection
from .schema import META_COLUMN, PARTITION_COLUMN, DataType
from .session import Db


def write(db: Db, info: CollectionInfo, batch: Batch, targets: list[Target],
          companions: Companions, *, upsert: bool) -> list[Any]:
    """Insert (or upsert) a validated batch, auto ids drawn first, companion codes written
    in the same transaction; returns the primary keys in row order."""
    pk = info.schema.primary_field
    table = info.table
    with db.transaction():
        if batch.pk_values is None:
            seq = db.value("SELECT pg_get_serial_sequence(%s, %s)",
                           (table.as_string(db.raw), pk.name))
            batch.set_ids([r[0] for r in db.execute(
                "SELECT nextval(%s::regclass) FROM generate_series(1, %s)", (seq, batch.n))])
        encoding = companions.before_write(db, targets) if targets else []
        if upsert:
            _upsert(db, info, batch)
        elif not info.sees_all:
            _insert(db, info, batch)  # Postgres refuses COPY FROM under row-level security
        else:
            copy_batch(db, table, batch)
        for t, version in encoding:
            companions.encode_rows(db, t, version, batch.pk_values or [],
                                   batch.column(t.vec.name).values)
    return list(batch.pk_values or [])


def _staged(db: Db, info: CollectionInfo, batch: Batch) -> tuple[sql.Identifier, list[str]]:
    """COPY the batch into a temporary table like the collection's; returns it and the
    columns to carry over."""
    tmp = sql.Identifier("_vecpg_staged")
    db.execute(sql.SQL("CREATE TEMP TABLE {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DROP")
               .format(tmp, info.table))
    copy_batch(db, tmp, batch)
    cols = [f.name for f in info.schema.fields] + [PARTITION_COLUMN]
    if info.schema.enable_dynamic_field:
        cols.append(META_COLUMN)
    return tmp, cols


def _insert(db: Db, info: CollectionInfo, batch: Batch) -> None:
    """COPY into a temporary table, then one INSERT (which row-level security checks)."""
    tmp, cols = _staged(db, info, batch)
    ident = sql.SQL(", ").join(sql.Identifier(c) for c in cols)
    db.execute(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(
        info.table, ident, ident, tmp))


def _upsert(db: Db, info: CollectionInfo, batch: Batch) -> None:
    """COPY into a temporary table, then one INSERT ... ON CONFLICT that replaces whole
    rows (as Milvus does)."""
    tmp, cols = _staged(db, info, batch)
    pk = info.schema.primary_field.name
    ident = sql.SQL(", ").join(sql.Identifier(c) for c in cols)
    sets = sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c))
                              for c in cols if c != pk)
    db.execute(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT ({}) "
                       "DO UPDATE SET {}").format(info.table, ident, ident, tmp,
                                                  sql.Identifier(pk), sets))


def id_list(ids: Any, dtype: DataType) -> list[Any]:
    """Primary key values as a list, each checked to be of the key's type (and an int64)."""
    if isinstance(ids, (str, int, bytes, dict)) or not hasattr(ids, "__iter__"):
        ids = [ids]
    out: list[Any] = []
    for v in ids:
        if dtype is DataType.INT64:
            out.append(args.integer(v, "a primary key value", -INT64_MAX - 1, INT64_MAX))
        else:
            if not isinstance(v, str):
                raise InvalidArgument(f"primary key values must be strings, got {v!r}")
            out.append(v)
    return out


def row_filter(info: CollectionInfo, ids: Any, expr: str, partitions: list[str] | None
               ) -> tuple[sql.Composable, list[Any]]:
    """The WHERE clause (and its parameters) selecting rows by key, filter and partition."""
    parts: list[sql.Composable] = []
    params: list[Any] = []
    if ids is not None:
        pk = info.schema.primary_field
        cast = sql.SQL("bigint[]" if pk.dtype is DataType.INT64 else "text[]")
        parts.append(sql.SQL("{} = ANY(%s::{})").format(sql.Identifier(pk.name), cast))
        params.append(id_list(ids, pk.dtype))
    expr = args.text(expr, "filter")
    if expr.strip():
        frag = compile_filter(expr, info.schema)
        parts.append(sql.SQL("({})").format(frag.sql))
        params += frag.params
    if partitions:
        parts.append(sql.SQL("{} = ANY(%s)").format(sql.Identifier(PARTITION_COLUMN)))
        params.append(partitions)
    if not parts:
        return sql.SQL("TRUE"), []
    return sql.SQL(" AND ").join(parts), params


def delete_rows(db: Db, info: CollectionInfo, where: sql.Composable, params: list[Any]) -> int:
    """Delete the rows ``where`` selects; returns how many."""
    return db.execute(sql.SQL("DELETE FROM {} WHERE {}").format(info.table, where),
                      params).rowcount


def delete_partition_rows(db: Db, table: sql.Identifier, partition: str) -> None:
    """Delete every row of one partition."""
    db.execute(sql.SQL("DELETE FROM {} WHERE {} = %s").format(
        table, sql.Identifier(PARTITION_COLUMN)), [partition])


def count_rows(db: Db, info: CollectionInfo, where: sql.Composable, params: list[Any]) -> int:
    """How many rows ``where`` selects."""
    return int(db.value(sql.SQL("SELECT count(*) FROM {} WHERE {}").format(info.table, where),
                        params))


def select_rows(db: Db, info: CollectionInfo, sel: Selection, where: sql.Composable,
                params: list[Any], limit: int | None, offset: int) -> list[dict[str, Any]]:
    """The selected fields of the rows ``where`` selects, in primary-key order."""
    stmt = sql.SQL("SELECT {} FROM {} WHERE {} ORDER BY {} LIMIT %s OFFSET %s").format(
        sql.SQL(", ").join(sel.select_list()), info.table, where,
        sql.Identifier(info.schema.primary_field.name))
    return [sel.to_dict(r) for r in db.execute(stmt, [*params, limit, offset]).fetchall()]
