"""Rows in and out of a collection table: writes (insert, upsert) with their companion
index codes in the same transaction, deletes, and scalar reads (query, get, count).

Validation happens before anything is sent (:mod:`vecpg.ingest`); every write here is one
transaction, so a batch is all or nothing.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import psycopg
from psycopg import sql

from . import args, distributed
from .args import INT64_MAX
from .catalog import CollectionInfo
from .companion import Companions, Target
from .errors import DuplicateKey, InvalidArgument
from .filters import compile_filter
from .ingest import Batch, copy_batch
from .results import Selection
from .schema import META_COLUMN, PARTITION_COLUMN, DataType
from .session import Db


def write(db: Db, info: CollectionInfo, batch: Batch, targets: list[Target],
          companions: Companions, *, upsert: bool, partial: bool = False) -> list[Any]:
    """Insert (or upsert, ``partial``: only the fields given) a validated batch, auto ids
    drawn first, companion codes written in the same transaction; returns the primary keys
    in row order."""
    pk = info.schema.primary_field
    table = info.table
    given_ids = batch.pk_values is not None
    with db.transaction():
        if batch.pk_values is None:
            batch.set_ids([r[0] for r in db.execute(
                "SELECT nextval(%s::regclass) FROM generate_series(1, %s)",
                (key_sequence(db, info), batch.n))])
        encoding = companions.before_write(db, targets) if targets else []
        if distributed.unique_by_delete(info) and not partial:
            # sharded by another field, the table's key is (pk, shard key): a key stored
            # under another shard-key value would stay, so the batch's keys go first
            _replace(db, info, batch)
        elif upsert or distributed.of(info) is not None:
            # (Citus reports a duplicate key in a COPY as an internal error, XX000: an insert
            # into a distributed table replaces by ON CONFLICT from the start)
            _upsert(db, info, batch, partial=partial)
        else:
            try:
                # in a savepoint: a key that exists already turns the insert into a replace,
                # as in Milvus (where the newest row of a key is the one every read sees)
                with db.transaction():
                    if info.sees_all:
                        copy_batch(db, table, batch)
                    else:  # Postgres refuses COPY FROM under row-level security
                        _insert(db, info, batch)
            except (psycopg.errors.UniqueViolation, DuplicateKey):
                _upsert(db, info, batch)
        for t, version in encoding:
            companions.encode_rows(db, t, version, batch.pk_values or [],
                                   batch.column(t.vec.name).values)
        seq = key_sequence(db, info) if pk.auto_id and given_ids else None
        if seq is not None:
            # keys given for an auto_id key (allow_insert_auto_id, upsert): the identity
            # moves past them, so a generated key never collides with a stored one
            db.execute(sql.SQL("SELECT setval(%s::regclass, greatest((SELECT max({pk}) FROM {t}),"
                               " (SELECT last_value FROM {seq})))").format(
                pk=sql.Identifier(pk.name), t=table, seq=sql.SQL(seq)), (seq,))
    return list(batch.pk_values or [])


def key_sequence(db: Db, info: CollectionInfo) -> str | None:
    """The sequence an auto_id key draws from (None for a key without one)."""
    seq = db.value("SELECT pg_get_serial_sequence(%s, %s)",
                   (info.table.as_string(db.raw), info.schema.primary_field.name))
    return None if seq is None else str(seq)


def _staged(db: Db, info: CollectionInfo, batch: Batch) -> sql.Identifier:
    """COPY the batch into a temporary table with the batch's columns (typed as the
    collection's, without its constraints: a partial update gives only some of them)."""
    tmp = sql.Identifier("_vecpg_staged")
    db.execute(sql.SQL("CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA")
               .format(tmp, _idents(batch.columns), info.table))
    copy_batch(db, tmp, batch)
    return tmp


def _idents(names: list[str]) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(c) for c in names)


def _insert(db: Db, info: CollectionInfo, batch: Batch) -> None:
    """COPY into a temporary table, then one INSERT (which row-level security checks)."""
    tmp = _staged(db, info, batch)
    cols = _idents(batch.columns)
    db.execute(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(
        info.table, cols, cols, tmp))


def _upsert(db: Db, info: CollectionInfo, batch: Batch, *, partial: bool = False) -> None:
    """COPY into a temporary table, then one INSERT ... ON CONFLICT that replaces whole rows
    (as Milvus does: the fields a batch leaves out get their default), or with ``partial``
    only the fields the batch gives (dynamic fields merged into the row's)."""
    tmp = _staged(db, info, batch)
    pk = info.schema.primary_field.name
    given = [c for c in batch.columns if c != pk]
    if partial:
        _partial_update(db, info, batch, tmp, given)
        return
    sets: list[sql.Composable] = [
        sql.SQL("{0} = {1}.{0} || EXCLUDED.{0}").format(sql.Identifier(c), info.table)
        if partial and c == META_COLUMN else sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c))
        for c in given]
    if not partial:
        everything = [f.name for f in info.schema.fields if not f.is_primary]
        if info.schema.enable_dynamic_field:
            everything.append(META_COLUMN)
        sets += [sql.SQL("{} = DEFAULT").format(sql.Identifier(c))
                 for c in everything if c not in given]
    cols = _idents(batch.columns)
    db.execute(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT ({}) "
                       "DO UPDATE SET {}").format(info.table, cols, cols, tmp,
                                                  sql.Identifier(pk), sql.SQL(", ").join(sets)))


def _replace(db: Db, info: CollectionInfo, batch: Batch) -> None:
    """Delete the rows of the batch's keys, then insert the batch: an upsert replacing
    whole rows, for a table whose unique key is not the primary key alone."""
    tmp = _staged(db, info, batch)
    pk = sql.Identifier(info.schema.primary_field.name)
    db.execute(sql.SQL("DELETE FROM {} WHERE {} IN (SELECT {} FROM {})").format(
        info.table, pk, pk, tmp))
    cols = _idents(batch.columns)
    db.execute(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(
        info.table, cols, cols, tmp))


def _partial_update(db: Db, info: CollectionInfo, batch: Batch, tmp: sql.Identifier,
                    given: list[str]) -> None:
    """Update the given fields of rows that exist, then insert the rows that do not (which
    must give every required field): an INSERT ... ON CONFLICT would check the required
    fields the batch leaves out before deciding to update."""
    pk = sql.Identifier(info.schema.primary_field.name)
    t = info.table
    if given:
        sets = sql.SQL(", ").join(
            sql.SQL("{0} = {1}.{0} || s.{0}").format(sql.Identifier(c), t) if c == META_COLUMN
            else sql.SQL("{0} = s.{0}").format(sql.Identifier(c)) for c in given)
        db.execute(sql.SQL("UPDATE {t} SET {sets} FROM {tmp} s WHERE {t}.{pk} = s.{pk}").format(
            t=t, sets=sets, tmp=tmp, pk=pk))
    cols = _idents(batch.columns)
    if distributed.of(info) is not None:
        # Citus joins no local (temporary) table with a distributed one in INSERT ... SELECT:
        # the keys that exist are looked up first
        have = [r[0] for r in db.execute(sql.SQL("SELECT {} FROM {} WHERE {} = ANY(%s)").format(
            pk, t, pk), (list(batch.pk_values or []),)).fetchall()]
        db.execute(sql.SQL("INSERT INTO {t} ({cols}) SELECT {cols} FROM {tmp} s "
                           "WHERE s.{pk} <> ALL(%s)").format(t=t, cols=cols, tmp=tmp, pk=pk),
                   (have,))
        return
    db.execute(sql.SQL("INSERT INTO {t} ({cols}) SELECT {cols} FROM {tmp} s WHERE NOT EXISTS "
                       "(SELECT 1 FROM {t} x WHERE x.{pk} = s.{pk})").format(
        t=t, cols=cols, tmp=tmp, pk=pk))


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


def row_filter(info: CollectionInfo, ids: Any, expr: str, partitions: list[str] | None,
               filter_params: dict[str, Any] | None = None
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
        frag = compile_filter(expr, info.schema, params=filter_params, timezone=info.timezone)
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
                params: list[Any], limit: int | None, offset: int,
                order_by: list[tuple[str, bool]] | None = None) -> list[dict[str, Any]]:
    """The selected fields of the rows ``where`` selects, ordered by ``order_by`` (field,
    descending) and then by primary key."""
    stmt = sql.SQL("SELECT {} FROM {} WHERE {} ORDER BY {} LIMIT %s OFFSET %s").format(
        sql.SQL(", ").join(sel.select_list()), info.table, where, _order(info, order_by))
    return [sel.to_dict(r) for r in db.execute(stmt, [*params, limit, offset]).fetchall()]


def _order(info: CollectionInfo, order_by: list[tuple[str, bool]] | None) -> sql.Composable:
    keys: list[sql.Composable] = [
        sql.SQL("{} {}").format(sql.Identifier(f), sql.SQL("DESC NULLS LAST" if desc
                                                           else "ASC NULLS LAST"))
        for f, desc in order_by or []]
    return sql.SQL(", ").join([*keys, sql.Identifier(info.schema.primary_field.name)])


def order_fields(info: CollectionInfo, value: Any) -> list[tuple[str, bool]]:
    """pymilvus' ``order_by_fields``: ``"f"``, ``"f:desc"``, ``{"field": f, "order":
    "desc"}`` or a list of them, on scalar fields."""
    items = value if isinstance(value, (list, tuple)) else [value]
    out = []
    for item in items:
        if isinstance(item, dict):
            name, direction = item.get("field"), str(item.get("order", "asc"))
        elif isinstance(item, str):
            name, _, direction = item.partition(":")
        else:
            raise InvalidArgument(f"order_by_fields items are 'field[:asc|desc]' or "
                                  f"{{'field': ..., 'order': ...}}, got {item!r}")
        f = info.schema.field(args.name(name, "order_by field"))
        if f.dtype.is_vector or f.dtype in (DataType.JSON, DataType.ARRAY):
            raise InvalidArgument(f"cannot order by {f.dtype.value} field {f.name!r}")
        if direction.strip().lower() not in ("", "asc", "desc"):
            raise InvalidArgument(f"order must be asc or desc, got {direction!r}")
        out.append((f.name, direction.strip().lower() == "desc"))
    return out


_AGGREGATES = {"count": "count", "sum": "sum", "min": "min", "max": "max", "avg": "avg"}


def aggregate_rows(db: Db, info: CollectionInfo, group_by: list[str], outputs: list[str],
                   where: sql.Composable, params: list[Any], limit: int | None, offset: int,
                   order_by: list[tuple[str, bool]] | None = None) -> list[dict[str, Any]]:
    """``query(group_by_fields=..., output_fields=[fields..., "count(*)", "sum(f)", ...])``:
    one row per group, with the group's fields and the aggregates named as asked."""
    cols: list[sql.Composable] = []
    names: list[str] = []
    for out in outputs:
        head, _, rest = out.partition("(")
        fn = _AGGREGATES.get(head.strip().lower()) if rest.endswith(")") else None
        if fn is not None:
            arg = rest[:-1].strip()
            if arg == "*" and fn == "count":
                cols.append(sql.SQL("count(*)"))
            else:
                f = info.schema.field(args.name(arg, "aggregated field"))
                if fn != "count" and not f.dtype.is_number:
                    raise InvalidArgument(f"{fn}() needs a number field, {f.name!r} is "
                                          f"{f.dtype.value}")
                cols.append(sql.SQL("{}({})").format(sql.SQL(fn), sql.Identifier(f.name)))
        elif out in group_by:
            cols.append(sql.Identifier(out))
        else:
            raise InvalidArgument(f"with group_by_fields, output_fields are the group fields "
                                  f"and aggregates (count(*), sum(f), ...); got {out!r}")
        names.append(out)
    groups = [sql.Identifier(info.schema.field(args.name(g, "group_by field")).name)
              for g in group_by]
    order = sql.SQL(", ").join([*(sql.SQL("{} {}").format(sql.Identifier(f), sql.SQL(
        "DESC" if d else "ASC")) for f, d in order_by or []), *groups])
    stmt = sql.SQL("SELECT {} FROM {} WHERE {} GROUP BY {} ORDER BY {} LIMIT %s OFFSET %s"
                   ).format(sql.SQL(", ").join(cols), info.table, where,
                            sql.SQL(", ").join(groups), order)
    rows = db.execute(stmt, [*params, limit, offset]).fetchall()
    return [{n: _number(v, n) for n, v in zip(names, r)} for r in rows]


def _number(v: Any, name: str) -> Any:
    """Postgres' numeric aggregates as Python numbers: an int where the value is whole
    (a sum of integers), a float otherwise (an average)."""
    if isinstance(v, Decimal):
        return int(v) if v == v.to_integral_value() and not name.startswith("avg") else float(v)
    return v
