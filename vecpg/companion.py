"""Companion indexes: IVF_SQ8, IVF_PQ and ANNOY beside a collection's table.

pgvector has no quantized index, so vecpg trains one in numpy (:mod:`vecpg.quantize`),
keeps the model and one code per row in Postgres (so they are in every backup and replica),
holds them in process memory, and uses them only to *propose* candidates: the final answer
is always an exact re-rank in SQL over the stored vectors, with the filter applied there.
Postgres stays the source of truth:

- A statement trigger on the collection lists rows that plain SQL inserts or whose vector it
  updates in ``vecpg."cmp_<id>_pending"``; searches scan those rows exactly.
- Rows written through the API are encoded in the same transaction (a codes-table row with
  a fresh ``seq``); codes newer than what this process has loaded are scanned exactly too,
  until the process loads them.
- Deleted rows simply vanish in the re-rank; updated vectors are pending until encoded.
- A (re)build trains and encodes inside one REPEATABLE READ transaction that writes a new
  codes table and swaps the catalog version at commit: a killed build leaves the old
  version serving, and rows committed after its snapshot stay pending.

Loading codes into memory races with writers whose ``seq`` values commit out of order; an
advisory lock makes loading and encoding exclusive (writers share it), so the high-water mark
a process loaded under the lock covers every code below it.

Objects per index (``<id>`` is ``vecpg.indexes.id``, stable across collection renames):
``vecpg.cmp_<id>_pending`` (rows to scan exactly), ``vecpg.cmp_<id>_seq`` (code order),
``vecpg.cmp_<id>_v<version>`` (codes), ``vecpg.cmp_<id>_mark()`` (the trigger function)
and triggers ``_vecpg_cmp_<id>_{ins,upd,trunc}`` on the collection table.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from psycopg import pq, sql
from psycopg.adapt import Dumper

from . import catalog, quantize
from .errors import IndexNotReady, InvalidArgument, PermissionDenied
from .indexes import Companion, int_param
from .metrics import Metric
from .schema import DataType, FieldSchema
from .session import Db

LOCK_NAMESPACE = 0x76656370 & 0x7FFFFFFF  # advisory lock class id: "vecp"
# held (session level) by a build for its whole run: a writer that finds build_started set
# but can take this lock knows the build died, and encodes again
BUILD_NAMESPACE = LOCK_NAMESPACE + 1
REFRESH_SECONDS = 1.0   # how stale a process's view of newly encoded rows may get
DEFAULT_RERANK = 10     # candidates per wanted result, re-ranked exactly (IVF_PQ, ANNOY)
# IVF_SQ8's approximate distances are close to exact: on the dev set recall@10 was the same
# with 2, 3 and 10 candidates per result at nprobe 24, 32 and 48, and 2 ran 1.27x the QPS
# of 10 (python -m vecpg.bench.companions, 2026-12-02); 3 keeps a margin for coarser data.
SQ8_RERANK = 3
MODEL_PART = 64 << 20   # bytes per stored part of a model (a bytea value caps at 1 GB)
DEFAULT_NPROBE = 32     # recall@10 ~0.96 on the dev set at nlist 256 (SQ8 and PQ m=48)


def _ident(index_id: int, suffix: str) -> sql.Identifier:
    return sql.Identifier("vecpg", f"cmp_{index_id}_{suffix}")


def codes_table(index_id: int, version: int) -> sql.Identifier:
    """The table holding the codes of one version of a companion index."""
    return _ident(index_id, f"v{version}")


def _pk_type_name(pk: FieldSchema) -> str:
    return "bigint" if pk.dtype is DataType.INT64 else "text"


def _pk_type(pk: FieldSchema) -> sql.SQL:
    return sql.SQL(_pk_type_name(pk))


def _skip_flag(index_id: int) -> str:
    """The transaction-local setting that tells the trigger the API encodes the rows."""
    return f"vecpg.encoding_{index_id}"


def _next_seq(index_id: int) -> sql.Composed:
    return sql.SQL("nextval({})").format(sql.Literal(f"vecpg.cmp_{index_id}_seq"))


# -- objects ---------------------------------------------------------------------------------

def install(conn: Db, table: sql.Identifier, pk: FieldSchema,
            vec: FieldSchema, index_id: int) -> None:
    """Create the pending list, the code sequence and the triggers that keep the pending
    list complete. Runs in the caller's transaction."""
    pending, fn = _ident(index_id, "pending"), _ident(index_id, "mark")
    seq = _ident(index_id, "seq")
    conn.execute(sql.SQL(
        "CREATE TABLE {} (pk {} NOT NULL, seq bigint GENERATED ALWAYS AS IDENTITY)").format(
        pending, _pk_type(pk)))
    conn.execute(sql.SQL("CREATE INDEX ON {} (pk)").format(pending))
    conn.execute(sql.SQL("CREATE SEQUENCE {}").format(seq))
    pkc, vc = sql.Identifier(pk.name), sql.Identifier(vec.name)
    skip = _skip_flag(index_id)
    # The API sets the skip flag when it encodes the rows itself in the same transaction;
    # the flag is honoured only for a writer that may encode (anyone can set a setting, and a
    # tenant that skipped its rows would hide them from other roles' index searches).
    body = sql.SQL("""
BEGIN
  IF vecpg.sees_all(TG_RELID, session_user) AND coalesce(
       current_setting({skip}, true), '') = 'on' THEN
    RETURN NULL;
  END IF;
  IF TG_OP = 'INSERT' THEN
    INSERT INTO {pending} (pk) SELECT {pk} FROM new_rows;
  ELSIF TG_OP = 'UPDATE' THEN
    INSERT INTO {pending} (pk)
      SELECT n.{pk} FROM new_rows n LEFT JOIN old_rows o ON o.{pk} = n.{pk}
      WHERE o.{pk} IS NULL OR n.{vec} IS DISTINCT FROM o.{vec};
  ELSIF TG_OP = 'TRUNCATE' THEN
    DELETE FROM {pending};
  END IF;
  RETURN NULL;
END""").format(skip=sql.Literal(skip), pending=pending, pk=pkc, vec=vc)
    # It runs as its owner: tenants write rows of the collection but have no rights on the
    # pending list (which, like the codes, only roles that see every row may read).
    # (with a fixed search path, as a definer's function must have: pgvector's schema for
    # the vector comparison)
    ext = conn.value("SELECT n.nspname FROM pg_extension e JOIN pg_namespace n"
                     " ON n.oid = e.extnamespace WHERE e.extname = 'vector'")
    conn.execute(sql.SQL("CREATE FUNCTION {}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER"
                         " SET search_path = pg_catalog, {}, pg_temp AS {}").format(
        fn, sql.Identifier(str(ext)), sql.Literal(body.as_string(conn.raw))))
    protect(conn, pending, table)
    trig = f"_vecpg_cmp_{index_id}"
    conn.execute(sql.SQL("CREATE TRIGGER {} AFTER INSERT ON {} REFERENCING NEW TABLE AS new_rows "
                         "FOR EACH STATEMENT EXECUTE FUNCTION {}()").format(
        sql.Identifier(trig + "_ins"), table, fn))
    conn.execute(sql.SQL("CREATE TRIGGER {} AFTER UPDATE ON {} REFERENCING OLD TABLE AS old_rows "
                         "NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {}()").format(
        sql.Identifier(trig + "_upd"), table, fn))
    conn.execute(sql.SQL("CREATE TRIGGER {} AFTER TRUNCATE ON {} FOR EACH STATEMENT "
                         "EXECUTE FUNCTION {}()").format(sql.Identifier(trig + "_trunc"),
                                                         table, fn))


def protect(conn: Db, rel: sql.Identifier, table: sql.Identifier) -> None:
    """Row-level security on a codes table or pending list: only roles that see every row
    of ``table`` read or write it (a tenant would otherwise read other tenants' keys and
    approximate vectors)."""
    conn.execute(sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(rel))
    conn.execute(sql.SQL("CREATE POLICY vecpg_sees_all ON {} USING "
                         "((SELECT vecpg.sees_all({}::regclass)))").format(
        rel, sql.Literal(table.as_string(conn.raw))))


def uninstall(conn: Db, index_id: int) -> None:
    """Drop everything of one companion index (its triggers go with the function)."""
    conn.execute(sql.SQL("DROP FUNCTION IF EXISTS {}() CASCADE").format(_ident(index_id, "mark")))
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'vecpg' AND c.relkind = 'r' AND c.relname LIKE %s",
        (f"cmp\\_{index_id}\\_%",)).fetchall()
    for (rel,) in rows:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier("vecpg", rel)))
    conn.execute(sql.SQL("DROP SEQUENCE IF EXISTS {}").format(_ident(index_id, "seq")))


# -- build -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Target:
    """What a companion index covers: one vector field of one collection table."""

    index_id: int
    table: sql.Identifier
    pk: FieldSchema
    vec: FieldSchema
    metric: Metric
    cfg: Companion


def build_running(conn: Db, index_id: int) -> bool:
    """Whether a build of the index is running now (in any process): its build lock is
    held. Taking the lock shared for one statement (autocommit) tells, without waiting."""
    return not conn.value("SELECT pg_try_advisory_xact_lock_shared(%s, %s)",
                          (BUILD_NAMESPACE, index_id))


def _lock_exclusive(conn: Db, index_id: int) -> None:
    conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_NAMESPACE, index_id))


def _lock_shared(conn: Db, index_id: int) -> None:
    conn.execute("SELECT pg_advisory_xact_lock_shared(%s, %s)", (LOCK_NAMESPACE, index_id))


def build(conn: Db, t: Target,
          progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Train, encode and swap in a new version of companion index ``t``.

    ``conn`` must be in autocommit mode and not in a transaction. Writers that start after
    the build has announced itself leave their rows pending; the build then reads one
    consistent snapshot, so every row is either encoded by it or still pending.
    """
    started = time.monotonic()
    # One build at a time per index, and a mark that outlives nothing: Postgres releases a
    # session lock when the process holding it dies.
    conn.execute("SELECT pg_advisory_lock(%s, %s)", (BUILD_NAMESPACE, t.index_id))
    try:
        return _build(conn, t, progress, started)
    finally:
        if not conn.raw.closed:
            conn.execute("SELECT pg_advisory_unlock(%s, %s)", (BUILD_NAMESPACE, t.index_id))


def _build(conn: Db, t: Target, progress: Callable[[dict[str, Any]], None] | None,
           started: float) -> dict[str, Any]:
    """:func:`build`, with the build lock held."""

    def report(p: dict[str, Any]) -> None:
        # the same keys as pgvector builds report (pg_stat_progress_create_index), so one
        # progress bar serves both
        if progress is not None:
            if "rows" in p:
                p = {**p, "tuples_done": p["rows"], "tuples_total": p.get("of", p["rows"])}
            progress(p)
    # 1. Announce the build, once every writer already encoding has committed.
    with conn.transaction():
        _lock_exclusive(conn, t.index_id)
        catalog.mark_build_started(conn, t.index_id)
    # 2. Everything else in one snapshot, all or nothing.
    conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
    try:
        stats = _build_in_snapshot(conn, t, report)
        conn.execute("COMMIT")
    except BaseException:
        if not conn.raw.closed:
            conn.execute("ROLLBACK")
        raise
    stats["build_seconds"] = round(time.monotonic() - started, 3)
    with conn.transaction():
        catalog.add_model_stats(conn, t.index_id, stats["version"],
                                {"build_seconds": stats["build_seconds"]})
    report({"phase": "done", **stats})
    return stats


def _build_in_snapshot(conn: Db, t: Target,
                       report: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    old = catalog.companion_state(conn, t.index_id, for_update=True)
    if old is None:
        raise IndexNotReady(f"index {t.index_id} vanished during its build")
    version = old[0] + 1
    if not conn.value("SELECT vecpg.sees_all(%s::regclass)", (t.table.as_string(conn.raw),)):
        # row-level security would train the model on the rows this role sees
        raise PermissionDenied("a companion index is built by a role that sees every row "
                               "of the collection (its owner, or one with BYPASSRLS)")
    pks, x = read_vectors(conn, t, report)
    if len(pks) == 0:
        raise InvalidArgument("cannot train a companion index on an empty collection; "
                              "insert rows first")
    t0 = time.monotonic()
    report({"phase": "training", "rows": len(pks)})
    try:
        model = quantize.train(
            t.cfg.kind, x, t.metric.value, t.cfg.train_params(), seed=t.cfg.seed,
            progress=lambda i, n: report({"phase": "training", "step": i, "of": n}))
    except ValueError as e:  # parameters that do not fit the data, e.g. nlist > rows
        raise InvalidArgument(f"{t.cfg.kind}: {e}") from None
    train_s = time.monotonic() - t0
    report({"phase": "encoding", "rows": len(pks)})
    lists, codes = _encode_all(model, x, t.cfg.trees)
    codes_t = codes_table(t.index_id, version)
    conn.execute(sql.SQL("CREATE TABLE {} (pk {} PRIMARY KEY, list int4 NOT NULL, "
                         "code bytea NOT NULL, seq bigint NOT NULL DEFAULT {})").format(
        codes_t, _pk_type(t.pk), _next_seq(t.index_id)))
    protect(conn, codes_t, t.table)
    _copy_codes(conn, codes_t, t.pk, pks, lists, codes, report)
    conn.execute(sql.SQL("CREATE INDEX ON {} (seq)").format(codes_t))
    # Rows this snapshot saw are now encoded; entries committed after it stay pending.
    conn.execute(sql.SQL("DELETE FROM {}").format(_ident(t.index_id, "pending")))
    blob = model.to_bytes()
    stats = {"version": version, "rows": len(pks), "train_seconds": round(train_s, 3),
             "code_size": int(model.code_size), "model_memory_bytes": int(model.model_bytes()),
             "float_bytes_per_vector": 4 * int(t.vec.dim or 0)}
    catalog.add_model(conn, t.index_id, version, blob, stats, MODEL_PART)
    catalog.swap_version(conn, t.index_id, version)
    if version > 1:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(
            codes_table(t.index_id, version - 1)))
    return stats


def read_vectors(conn: Db, t: Target,
                 report: Callable[[dict[str, Any]], None] | None = None
                 ) -> tuple[list[Any], np.ndarray]:
    """All primary keys and vectors of the target table (in the caller's snapshot)."""
    if t.pk.dtype is DataType.INT64:
        return _read_fixed(conn, t, report)
    return _read_rows(conn, t, report)


def _read_fixed(conn: Db, t: Target,
                report: Callable[[dict[str, Any]], None] | None) -> tuple[list[Any], np.ndarray]:
    """Binary COPY out of (bigint, vector) rows: every row has the same layout, so numpy
    reads the whole stream at once (55k x 384: 3.4 s against 23.6 s a row at a time)."""
    dim = int(t.vec.dim or 0)
    row = np.dtype([("nf", ">i2"), ("l1", ">i4"), ("pk", ">i8"), ("l2", ">i4"),
                    ("dim", ">i2"), ("unused", ">i2"), ("v", ">f4", (dim,))])
    chunks: list[bytes] = []
    got = 0
    stmt = sql.SQL("COPY (SELECT {}, {} FROM {} WHERE {} IS NOT NULL) TO STDOUT (FORMAT BINARY)"
                   ).format(sql.Identifier(t.pk.name), sql.Identifier(t.vec.name), t.table,
                            sql.Identifier(t.vec.name))
    with conn.copy(stmt) as cp:
        for data in cp:
            chunks.append(bytes(data))
            got += len(data)
            if report is not None and len(chunks) % 2000 == 0:
                report({"phase": "reading", "rows": got // row.itemsize})
    buf = b"".join(chunks)
    header = 19 + int.from_bytes(buf[15:19], "big")  # signature, flags, extension length
    body = buf[header:len(buf) - 2]                     # the trailer is int16 -1
    rows = np.frombuffer(body, dtype=row)
    if len(rows) and not ((rows["nf"] == 2).all() and (rows["l1"] == 8).all()
                          and (rows["dim"] == dim).all()):
        raise IndexNotReady("unexpected COPY layout while reading vectors")
    if report is not None:
        report({"phase": "reading", "rows": len(rows), "of": len(rows)})
    return rows["pk"].astype(np.int64).tolist(), rows["v"].astype(np.float32)


def _read_rows(conn: Db, t: Target,
               report: Callable[[dict[str, Any]], None] | None) -> tuple[list[Any], np.ndarray]:
    row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(t.table)).fetchone()
    n = int(row[0]) if row else 0
    dim = int(t.vec.dim or 0)
    x = np.empty((n, dim), dtype=np.float32)
    pks: list[Any] = []
    # any primary key type: a row at a time through a server-side cursor
    i = 0
    for rows in conn.stream(sql.SQL("SELECT {}, {} FROM {} WHERE {} IS NOT NULL").format(
            sql.Identifier(t.pk.name), sql.Identifier(t.vec.name), t.table,
            sql.Identifier(t.vec.name))):
        for pk, v in rows:
            if i >= n:  # cannot happen in one snapshot; keep the arrays consistent anyway
                break
            pks.append(pk)
            x[i] = v.to_numpy() if hasattr(v, "to_numpy") else v
            i += 1
        if report is not None:
            report({"phase": "reading", "rows": i, "of": n})
    return pks, x[:len(pks)]


def _encode_all(model: Any, x: np.ndarray, trees: bool) -> tuple[np.ndarray, np.ndarray]:
    if trees:  # the trees hold the vectors; the item number is the "list"
        return np.arange(len(x), dtype=np.int32), np.zeros((len(x), 0), dtype=np.uint8)
    lists_out, codes_out = [], []
    for s in range(0, len(x), 20000):
        lists, codes = model.encode(x[s:s + 20000])
        lists_out.append(lists)
        codes_out.append(codes)
    return np.concatenate(lists_out).astype(np.int32), np.concatenate(codes_out)


def _copy_codes(conn: Db, codes_t: sql.Identifier, pk: FieldSchema,
                pks: Sequence[Any], lists: np.ndarray, codes: np.ndarray,
                report: Callable[[dict[str, Any]], None] | None = None) -> None:
    types = [_pk_type_name(pk), "int4", "bytea"]
    with conn.copy(sql.SQL("COPY {} (pk, list, code) FROM STDIN (FORMAT BINARY)"
                           ).format(codes_t)) as cp:
        cp.set_types(types)
        lists_l = lists.tolist()
        for i, pkv in enumerate(pks):
            cp.write_row((pkv, lists_l[i], codes[i].tobytes()))
            if report is not None and i % 20000 == 19999:
                report({"phase": "writing codes", "rows": i + 1, "of": len(pks)})


# -- per-process state -----------------------------------------------------------------------

@dataclass
class Loaded:
    """One version of a companion index in memory."""

    index_id: int
    version: int
    trees: bool                   # ANNOY: immutable trees, not lists of codes
    model: Any
    searcher: Any
    pks: list[Any] | None         # key (position) -> primary key; None: keys are the bigint pks
    item_keys: np.ndarray | None  # ANNOY: item number -> key
    loaded_seq: int
    refreshed: float
    lock: threading.Lock = field(default_factory=threading.Lock)
    shared: str | None = None     # the cache entry whose memory maps the searcher reads

    def memory_bytes(self) -> int:
        """Bytes held for the version (searcher, model, key map; memory maps included)."""
        return int(self.searcher.nbytes()) + int(self.model.model_bytes()) + \
            8 * len(self.pks or ())


class Companions:
    """The companion indexes one :class:`~vecpg.client.Client` has loaded, by index id."""

    def __init__(self) -> None:
        self._loaded: dict[int, Loaded] = {}
        self._models: dict[tuple[int, int], Any] = {}
        self._lock = threading.Lock()
        # with read replicas, a lease of the primary: codes searched on a standby load from
        # the primary, whose advisory locks order them against writers (a standby's locks
        # are its own); the high-water mark then covers every code below it, and the
        # standby's re-rank scans what it has and the codes loaded lack
        self.primary: Callable[[], contextlib.AbstractContextManager[Db]] | None = None

    def forget(self, index_id: int) -> None:
        """Drop what is loaded of an index (dropped, or rebuilt elsewhere)."""
        with self._lock:
            self._loaded.pop(index_id, None)
            for key in [k for k in self._models if k[0] == index_id]:
                del self._models[key]

    def loaded_now(self, index_id: int) -> Loaded | None:
        """What this process holds of index ``index_id`` (None if it has not loaded it)."""
        return self._loaded.get(index_id)

    def model(self, conn: Db, index_id: int, version: int) -> Any:
        """The trained model of one version (cached)."""
        key = (index_id, version)
        m = self._models.get(key)
        if m is None:
            parts = catalog.model_parts(conn, index_id, version)
            if not parts:
                raise IndexNotReady(f"companion index {index_id} has no model version {version}")
            root = cache_root()
            m = quantize.model_from_bytes(b"".join(parts),
                                          None if root is None else root / "annoy")
            with self._lock:
                self._models[key] = m
        return m

    def loaded(self, conn: Db, index_id: int, version: int, trees: bool) -> Loaded:
        """The codes of ``version`` in memory, refreshed with newly encoded rows at most
        every :data:`REFRESH_SECONDS` (rows encoded since are scanned exactly meanwhile)."""
        cur = self._loaded.get(index_id)
        if cur is None or cur.version != version:
            with self._loader(conn) as c:
                cur = self._load(c, index_id, version, trees)
            with self._lock:
                self._loaded[index_id] = cur
        elif not trees and time.monotonic() - cur.refreshed > REFRESH_SECONDS:
            with self._loader(conn) as c:
                self._refresh(c, cur)
        return cur

    def _loader(self, conn: Db) -> contextlib.AbstractContextManager[Db]:
        """Where codes load from: the primary when ``conn`` is a standby's and the primary
        is known, else ``conn``."""
        if conn.standby and self.primary is not None:
            return self.primary()
        return contextlib.nullcontext(conn)

    def _load(self, conn: Db, index_id: int, version: int, trees: bool) -> Loaded:
        model = self.model(conn, index_id, version)
        entry = None
        with conn.transaction():
            _lock_exclusive(conn, index_id)
            if not trees:
                entry, top = _cache_entry(conn, index_id, version)
                searcher = _map_entry(entry, model)
                if searcher is not None:
                    return Loaded(index_id, version, False, model, searcher, None, None, top,
                                  time.monotonic(), shared=str(entry))
            rows = _fetch_codes(conn, index_id, version, after=None)
        pks, lists, codes, seqs = rows
        top = int(seqs.max()) if len(seqs) else 0
        if entry is not None:  # bigint keys: the searcher's keys are the primary keys
            searcher = quantize.Searcher(model, lists, codes, np.asarray(pks, dtype=np.int64))
            mapped = _save_entry(entry, searcher)
            return Loaded(index_id, version, False, model, mapped or searcher, None, None, top,
                          time.monotonic(), shared=str(entry) if mapped else None)
        keys = np.arange(len(pks), dtype=np.int64)
        item_keys = None
        if trees:
            searcher = model
            item_keys = np.empty(len(pks), dtype=np.int64)
            item_keys[lists] = keys
        else:
            searcher = quantize.Searcher(model, lists, codes, keys)
        return Loaded(index_id, version, trees, model, searcher, list(pks), item_keys, top,
                      time.monotonic())

    def _refresh(self, conn: Db, cur: Loaded) -> None:
        if not cur.lock.acquire(blocking=False):
            return  # another thread refreshes it
        try:
            with conn.transaction():
                got = conn.execute("SELECT pg_try_advisory_xact_lock(%s, %s)",
                                   (LOCK_NAMESPACE, cur.index_id)).fetchone()
                if not got or not got[0]:
                    return  # a writer is encoding: try again next time
                pks, lists, codes, seqs = _fetch_codes(conn, cur.index_id, cur.version,
                                                       after=cur.loaded_seq)
            if len(pks):
                if cur.pks is None:
                    cur.searcher.add(lists, codes, np.asarray(pks, dtype=np.int64))
                else:
                    keys = np.arange(len(cur.pks), len(cur.pks) + len(pks), dtype=np.int64)
                    cur.searcher.add(lists, codes, keys)
                    cur.pks.extend(pks)
                cur.loaded_seq = int(seqs.max())
            cur.refreshed = time.monotonic()
        finally:
            cur.lock.release()

    # -- writes through the API ------------------------------------------------------------
    def before_write(self, conn: Db, targets: list[Target]) -> list[
            tuple[Target, int]]:
        """Called in the writing transaction before rows are written: returns the targets
        this transaction encodes itself (and tells their triggers to skip these rows)."""
        out = []
        for t in targets:
            if t.cfg.trees:
                continue  # trees are immutable: new rows stay pending until a rebuild
            _lock_shared(conn, t.index_id)
            row = catalog.companion_state(conn, t.index_id)
            if row is None or row[1] != "ready":
                continue  # no model yet: leave rows pending
            if row[2] is not None and not conn.value(
                    "SELECT pg_try_advisory_xact_lock_shared(%s, %s)",
                    (BUILD_NAMESPACE, t.index_id)):
                continue  # a live build is reading a snapshot: leave rows pending
            # (build_started with no build holding its lock: the build died; encode)
            conn.execute("SELECT set_config(%s, 'on', true)", (_skip_flag(t.index_id),))
            out.append((t, int(row[0])))
        return out

    def encode_rows(self, conn: Db, t: Target, version: int,
                    pks: Sequence[Any], vectors: np.ndarray) -> None:
        """Write codes for rows the caller just wrote (same transaction), then turn the
        trigger's skip flag off again for the rest of the transaction."""
        model = self.model(conn, t.index_id, version)
        lists, codes = model.encode(np.asarray(vectors, dtype=np.float32))
        conn.execute(sql.SQL(
            "INSERT INTO {t} (pk, list, code) SELECT * FROM unnest(%s::{pk}[], %s::int4[],"
            " %s::bytea[]) ON CONFLICT (pk) DO UPDATE SET list = EXCLUDED.list,"
            " code = EXCLUDED.code, seq = {seq}").format(
            t=codes_table(t.index_id, version), pk=_pk_type(t.pk), seq=_next_seq(t.index_id)),
            (list(pks), lists.astype(np.int32).tolist(), [c.tobytes() for c in codes]))
        conn.execute("SELECT set_config(%s, 'off', true)", (_skip_flag(t.index_id),))


# -- codes shared between the processes of one machine --------------------------------------
# A version's codes up to a seq never change (a re-encoded row gets a new seq), so the sorted
# arrays loaded at (index, version, max seq, count) are saved once under the cache directory
# and every process memory-maps the same files: one copy per machine in the page cache
# instead of one per client process. Rows encoded later go to each process's small buffer.

def cache_root() -> Path | None:
    """Where shared codes live: ``$VECPG_CACHE_DIR`` ("off" disables sharing), else the
    user's cache directory (``.../vecpg/companions``)."""
    env = os.environ.get("VECPG_CACHE_DIR")
    if env is not None:
        return None if env.strip().lower() in ("", "off", "0", "none") else Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("vecpg")) / "companions"


def _cache_entry(conn: Db, index_id: int, version: int) -> tuple[Path | None, int]:
    """The cache directory for the codes visible now (None when sharing is off or the keys
    are not bigint) and their highest seq. Called under the index's exclusive lock."""
    codes = codes_table(index_id, version)
    row = conn.execute(sql.SQL(
        "SELECT coalesce(max(seq), 0), count(*), current_database(),"
        " pg_postmaster_start_time()::text, (SELECT atttypid = 'bigint'::regtype FROM"
        " pg_attribute WHERE attrelid = {}::regclass AND attname = 'pk') FROM {}").format(
        sql.Literal(codes.as_string(conn.raw)), codes)).fetchone()
    assert row is not None
    top, count, db, started, bigint = row
    root = cache_root()
    if root is None or not bigint:
        return None, int(top)
    # the server (database + postmaster start) keys the directory: index ids repeat
    # across databases and servers
    server = hashlib.sha256(f"{db}@{started}".encode()).hexdigest()[:16]
    return root / server / f"{index_id}_v{version}_s{top}_n{count}", int(top)


def _map_entry(entry: Path | None, model: Any) -> Any:
    """A searcher over the memory-mapped arrays of ``entry``, or None if it is not there
    (or is unreadable, e.g. removed meanwhile by a newer version's writer)."""
    if entry is None or not entry.is_dir():
        return None
    try:
        arrays = {n: np.load(entry / f"{n}.npy", mmap_mode="r", allow_pickle=False)
                  for n in quantize.Searcher.ARRAYS if (entry / f"{n}.npy").exists()}
        return quantize.Searcher.from_arrays(model, arrays)
    except (OSError, ValueError, KeyError):
        return None


def _save_entry(entry: Path, searcher: Any) -> Any:
    """Save ``searcher``'s arrays as ``entry`` (atomically: written aside, then renamed),
    drop older entries of the index, and return a searcher over the mapped files (None
    when the cache directory is not writable: the caller keeps its private copy)."""
    tmp = entry.with_name(f"{entry.name}.tmp{os.getpid()}_{threading.get_ident()}")
    try:
        tmp.mkdir(parents=True, exist_ok=True)
        for n, a in searcher.arrays().items():
            np.save(tmp / f"{n}.npy", np.ascontiguousarray(a), allow_pickle=False)
        try:
            os.rename(tmp, entry)
        except OSError:  # another process saved it first: use theirs
            shutil.rmtree(tmp, ignore_errors=True)
        index = entry.name.split("_v")[0]
        for old in entry.parent.glob(f"{index}_v*"):
            if old != entry and ".tmp" not in old.name:
                shutil.rmtree(old, ignore_errors=True)  # mapped pages outlive the unlink
        prune_cache(entry.parent.parent, keep=entry.parent)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        return None
    return _map_entry(entry, searcher.model)


CACHE_MAX_AGE = 6 * 3600  # seconds a server's cache directory may go unwritten


def prune_cache(root: Path, keep: Path | None = None, max_age: float = CACHE_MAX_AGE) -> None:
    """Remove cache entries nobody wrote for ``max_age`` seconds: other servers' directories
    (a server restarted gets a new one; test servers come and go) and ANNOY forests. Safe
    at any time: a process keeps its mapping of a removed file, and a new process that finds
    nothing loads from Postgres and saves again."""
    cutoff = time.time() - max_age
    try:
        for d in root.iterdir():
            if d == keep:
                continue
            if d.name == "annoy":
                for f in d.glob("*.annoy"):
                    if f.stat().st_mtime < cutoff:
                        f.unlink(missing_ok=True)
            elif d.is_dir() and d.stat().st_mtime < cutoff:
                shutil.rmtree(d, ignore_errors=True)
    except OSError:
        pass


def _fetch_codes(conn: Db, index_id: int, version: int, after: int | None
                 ) -> tuple[list[Any], np.ndarray, np.ndarray, np.ndarray]:
    q = sql.SQL("SELECT pk, list, code, seq FROM {}").format(codes_table(index_id, version))
    params: list[Any] = []
    if after is not None:
        q = sql.SQL("{} WHERE seq > %s").format(q)
        params.append(after)
    rows = conn.execute(sql.SQL("{} ORDER BY seq").format(q), params, binary=True).fetchall()
    if not rows:
        return [], np.zeros(0, np.int32), np.zeros((0, 0), np.uint8), np.zeros(0, np.int64)
    pks = [r[0] for r in rows]
    lists = np.fromiter((r[1] for r in rows), dtype=np.int32, count=len(rows))
    width = len(rows[0][2])
    codes = np.frombuffer(b"".join(bytes(r[2]) for r in rows), dtype=np.uint8).reshape(
        len(rows), width) if width else np.zeros((len(rows), 0), np.uint8)
    seqs = np.fromiter((r[3] for r in rows), dtype=np.int64, count=len(rows))
    return pks, lists, codes, seqs


# -- search ----------------------------------------------------------------------------------

def default_rerank(cfg: Companion) -> int:
    """Candidates per wanted result re-ranked exactly when the search does not say
    (``rerank``); a filtered search the planner sets up takes ``DEFAULT_RERANK /
    selectivity`` whatever the kind."""
    return SQ8_RERANK if cfg.kind == "IVF_SQ8" else DEFAULT_RERANK


@dataclass(frozen=True)
class Knobs:
    """A companion search's knobs, validated: lists probed, ANNOY's search_k, and the
    candidates per result that are re-ranked exactly."""

    nprobe: int
    search_k: int
    rerank: int

    @staticmethod
    def parse(knobs: dict[str, Any], cfg: Companion) -> Knobs:
        """The knobs from search parameters (defaults for those not given)."""
        nprobe = int_param(knobs, ("nprobe",), DEFAULT_NPROBE, 1, 65536,
                           what="search parameter")
        search_k = int_param(knobs, ("search_k",), -1, -1, 1 << 30, what="search parameter")
        if search_k == 0:
            raise InvalidArgument("search parameter search_k must be -1 (annoy's default) or >= 1")
        rerank = int_param(knobs, ("rerank", "reorder_k"), default_rerank(cfg), 1, 1000,
                           what="search parameter")
        return Knobs(min(nprobe, cfg.nlist) if cfg.nlist else nprobe, search_k, rerank)


class KeyArray:
    """Candidate bigint keys in Postgres' binary ``int8[]`` form, laid out by numpy: psycopg
    dumps a Python list of 100 ints element by element (~80 us a query, a tenth of the
    client's time in a companion search)."""

    __slots__ = ("keys", "wire")
    _ELEM = np.dtype([("len", ">i4"), ("value", ">i8")])

    def __init__(self, keys: np.ndarray) -> None:
        self.keys = keys
        elems = np.empty(len(keys), dtype=self._ELEM)
        elems["len"] = 8
        elems["value"] = keys
        # ndim, has nulls, element type (int8), then the one dimension's length and lower bound
        head = np.array([1, 0, 20, len(keys), 1], dtype=">i4").tobytes()
        self.wire = head + elems.tobytes()


class _KeyArrayDumper(Dumper):
    format = pq.Format.BINARY
    oid = 1016  # int8[]

    def dump(self, obj: Any) -> bytes:
        return obj.wire


# Registered on psycopg's global adapters (copied by every connection made later): the type
# is vecpg's own, so no other value changes how it is sent.
psycopg.adapters.register_dumper(KeyArray, _KeyArrayDumper)


def candidates(state: Loaded, queries: np.ndarray, n: int, knobs: Knobs
               ) -> list[list[Any] | KeyArray]:
    """The primary keys of up to ``n`` approximate nearest rows per query (bigint keys as a
    :class:`KeyArray`)."""
    if state.trees:
        items, _ = state.searcher.search(queries, n, {"search_k": knobs.search_k})
        assert state.item_keys is not None
        keys = [state.item_keys[row[row >= 0]] for row in np.atleast_2d(items)]
    else:
        found, _ = state.searcher.search(queries, n, {"nprobe": knobs.nprobe})
        keys = [row[row >= 0] for row in np.atleast_2d(found)]
    pks = state.pks
    if pks is None:
        return [KeyArray(row) for row in keys]
    return [[pks[k] for k in row.tolist()] for row in keys]


def rerank_sql(table: sql.Identifier, index_id: int, version: int, pk: FieldSchema,
               select: sql.Composable, order: sql.Composable, where: sql.Composable,
               k: int) -> sql.Composed:
    """Exact distances over the candidates, the pending rows and the rows encoded after this
    process's load; params: query vector(s) of ``order``, candidates, loaded seq, then the
    filter's."""
    pkc = sql.Identifier(pk.name)
    return sql.SQL(
        "SELECT {cols}, {order} AS _vecpg_d FROM {table} WHERE {pk} = ANY("
        "%b::{pkt}[] || ARRAY(SELECT pk FROM {pending}) || "
        "ARRAY(SELECT pk FROM {codes} WHERE seq > %s)) AND {where} "
        "ORDER BY _vecpg_d LIMIT {k}").format(
        cols=select, order=order, table=table, pk=pkc, pkt=_pk_type(pk),
        pending=_ident(index_id, "pending"), codes=codes_table(index_id, version), where=where,
        k=sql.Literal(k))


def coverage(conn: Db, table: sql.Identifier, pk: FieldSchema, index_id: int,
             version: int) -> dict[str, int]:
    """Rows in the table, rows with a current code, pending rows and stale codes."""
    codes = codes_table(index_id, version)
    row = conn.execute(sql.SQL(
        "SELECT (SELECT count(*) FROM {t}), "
        "(SELECT count(*) FROM {c} c WHERE EXISTS (SELECT 1 FROM {t} x WHERE x.{pk} = c.pk)), "
        "(SELECT count(DISTINCT pk) FROM {p}), "
        "(SELECT count(*) FROM {c} c WHERE NOT EXISTS (SELECT 1 FROM {t} x WHERE x.{pk} = c.pk))"
    ).format(t=table, c=codes, pk=sql.Identifier(pk.name),
             p=_ident(index_id, "pending"))).fetchone()
    assert row is not None
    return {"rows": int(row[0]), "encoded": int(row[1]), "pending": int(row[2]),
            "stale_codes": int(row[3])}


@dataclass(frozen=True)
class CompanionPlan:
    """A search through a companion index: candidates from the codes in memory, then the
    re-rank statement (params per query: vector, candidates, loaded seq, the filter's, and
    the vector again for each time the filter binds it). A query that gets fewer than k rows
    back is answered exactly by the planner's fallback, like any approximate plan."""

    index_id: int
    version: int
    trees: bool
    knobs: Knobs
    k: int
    where_params: list[Any]
    vector_in_where: int = 0  # times the filter binds the query vector (range search)

    def bind(self, conn: Db, companions: Companions, queries: np.ndarray,
             vectors: list[Any]) -> list[list[Any]]:
        """The re-rank statement's parameters for each query vector."""
        state = companions.loaded(conn, self.index_id, self.version, self.trees)
        cands = candidates(state, queries, self.k * self.knobs.rerank, self.knobs)
        more = self.vector_in_where
        return [[v, c, state.loaded_seq, *self.where_params, *([v] * more)]
                for v, c in zip(vectors, cands)]


def plan(ix_id: int, version: int, cfg: Companion, knobs: dict[str, Any],
         table: sql.Identifier, pk: FieldSchema, select: sql.Composable, order: sql.Composable,
         where: sql.Composable, where_params: list[Any], k: int,
         where_vectors: int = 0) -> tuple[CompanionPlan, sql.Composed]:
    """A companion search and its re-rank statement (see :class:`CompanionPlan`)."""
    cp = CompanionPlan(ix_id, version, cfg.trees, Knobs.parse(knobs, cfg), k,
                       list(where_params), where_vectors)
    return cp, rerank_sql(table, ix_id, version, pk, select, order, where, k)
