"""Scalar indexes the user did not ask for: when searches keep filtering on a field that no
index serves, and the planner's cost model says an index would make them much cheaper,
vecpg builds one — off the query path, in a background thread of the client, with
``CREATE INDEX CONCURRENTLY`` (writes go on meanwhile).

Why an index rather than cheaper scans: in a Postgres heap the vectors sit inline in each
row (a 384-d float4 vector is 1.5 KB, under the 2 KB at which Postgres moves values out of
line; ``SET STORAGE EXTERNAL`` and ``toast_tuple_target`` do not lower that threshold), so a
sequential scan that only evaluates a filter reads the whole 108 MB table of the dev set
(measured 2026-12-02: ~30-80 searches/s at a 0.5% filter without an index, ~800 with a btree).

What is built, for each condition of the filter's top-level AND that an index can serve:

- a btree on a scalar column (``==``, ranges, ``in``): Milvus' STL_SORT for numbers,
  INVERTED otherwise;
- a GIN on an ARRAY column, for ``array_contains*``;
- a btree on the typed value at a JSON path (a JSON field's or a dynamic key's: the very
  expression the filter compiler emits for ``meta["k"] == 3`` or ``k > 3``), INVERTED with
  ``json_path`` and ``json_cast_type`` as Milvus records JSON path indexes; ANALYZE then
  gives the planner real statistics of that path.

Only the most selective condition (counted in a sample) is indexed, and only when it lets
through at most :data:`MAX_SELECTIVITY` of the rows. The index is recorded in
``vecpg.indexes`` with ``params.auto = true``: ``list_indexes`` and ``describe_collection``
show it and ``drop_index`` drops it. The collection property ``vecpg.auto_scalar_index``
(``false``) turns it off. Concurrent clients take a Postgres advisory lock per index, so
one of them builds it; a build that fails leaves nothing behind (an INVALID index is
dropped) and never fails a search.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from lark import Token, Tree
from psycopg import sql

from . import catalog, filters
from .catalog import CollectionInfo
from .indexes import pg_index_name
from .schema import DataType
from .session import Db

PROPERTY = "vecpg.auto_scalar_index"
AFTER = 20          # searches that would have gained before an index is built
MIN_ROWS = 2000     # smaller tables scan in about a millisecond (the planner's TINY_ROWS)
MAX_SELECTIVITY = 0.2  # a condition letting more rows through gains little from a btree
LOCK_CLASS = 0x76706169  # advisory lock namespace ("vpai"), with hashtext(index name)
log = logging.getLogger("vecpg")


def enabled(info: CollectionInfo) -> bool:
    """False when the collection's ``vecpg.auto_scalar_index`` property turns it off."""
    return info.switched_on(PROPERTY)


@dataclass(frozen=True)
class Target:
    """An index that would serve one condition of a filter."""

    name: str                    # the index name in the catalog (auto_<field>...)
    field_name: str              # the column, or the dynamic key
    index_type: str              # STL_SORT | INVERTED
    method: str                  # btree | gin
    expression: sql.Composable   # what is indexed (a column, or a JSON path's typed value)
    condition: str               # the condition's text in the filter
    params: dict[str, Any]       # recorded in the catalog

    @property
    def is_expression(self) -> bool:
        """An expression index (a JSON path), not a plain column."""
        return "json_path" in self.params


_CAST = {"num": "double", "str": "varchar", "bool": "bool"}


def targets(info: CollectionInfo, expression: str,
            params: dict[str, Any] | None = None) -> list[Target]:
    """The indexes that could serve conditions of ``expression``'s top-level AND (none for
    what no index serves: ``or``, ``not``, arithmetic, ``like``)."""
    if not expression or not expression.strip():
        return []
    try:
        tree = filters._parser.parse(expression)
    except Exception:  # noqa: BLE001 - the search compiled it; anything odd: no advice
        return []
    conds: list[Any] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, Tree) and node.data == "and_":
            stack.extend(c for c in node.children if not isinstance(c, Token))
        else:
            conds.append(node)
    out: dict[str, Target] = {}
    for c in conds:
        t = _target(info, expression, c, params or {})
        if t is not None:
            out.setdefault(t.name, t)
    return list(out.values())


def _path(node: Any) -> Tree | None:
    return node if isinstance(node, Tree) and node.data == "path" else None


def _value_kind(node: Any, params: dict[str, Any]) -> str | None:
    """num | str | bool for a literal (or a template's value), else None."""
    if isinstance(node, Tree) and node.data == "template":
        v = params.get(str(node.children[0]))
        if isinstance(v, bool):
            return "bool"
        return "num" if isinstance(v, (int, float)) else "str" if isinstance(v, str) else None
    if not (isinstance(node, Tree) and node.data == "literal"):
        return None
    tok = node.children[0]
    if not isinstance(tok, Token):
        return None
    if tok.type in ("TRUE", "FALSE"):
        return "bool"
    return "str" if tok.type in ("STRING", "RAW_STRING") else "num"


def _target(info: CollectionInfo, expr: str, node: Any, params: dict[str, Any]
            ) -> Target | None:
    if not isinstance(node, Tree) or node.meta.empty:
        return None
    text = expr[node.meta.start_pos:node.meta.end_pos]
    kids = [c for c in node.children if not isinstance(c, Token)]
    if node.data == "compare" and len(kids) == 2:
        ops = [str(c) for c in node.children if isinstance(c, Token)]
        if ops == ["!="]:
            return None
        path = _path(kids[0]) or _path(kids[1])
        other = kids[1] if path is kids[0] else kids[0]
        if path is None or _path(other) is not None:
            return None
        return _btree(info, expr, path, _value_kind(other, params), text)
    if node.data in ("compare",) and len(kids) == 3 and _path(kids[1]) is not None:
        return _btree(info, expr, kids[1], "num", text)  # a range: 1 < x < 5
    if node.data == "in_" and _path(kids[0]) is not None:
        return _btree(info, expr, kids[0], None, text, json_ok=False)
    if node.data == "call" and str(node.children[0]).lower().startswith("array_contains"):
        p = _path(kids[0]) if kids else None
        if p is None or len(p.children) != 1:
            return None
        f = info.schema.get(str(p.children[0]))
        if f is None or f.dtype is not DataType.ARRAY:
            return None
        return Target(f"auto_{f.name}", f.name, "INVERTED", "gin", sql.Identifier(f.name),
                      text, {"auto": True, "method": "gin"})
    return None


def _btree(info: CollectionInfo, expr: str, path: Tree, kind: str | None, text: str, *,
           json_ok: bool = True) -> Target | None:
    head, *steps = path.children
    if not isinstance(head, Token) or not all(isinstance(x, Token) for x in steps):
        return None
    name = str(head)
    f = info.schema.get(name) if head.type != "META" else None
    if f is not None and not steps:
        if f.dtype.is_vector or f.dtype in (DataType.JSON, DataType.ARRAY) or \
                f.is_function_output or f.is_primary:
            return None
        itype = "STL_SORT" if f.dtype.is_number else "INVERTED"
        return Target(f"auto_{f.name}", f.name, itype, "btree", sql.Identifier(f.name), text,
                      {"auto": True, "method": "btree"})
    # a JSON path: a JSON field with string keys, or a dynamic key
    if not json_ok or kind is None:
        return None
    if f is not None and f.dtype is not DataType.JSON:
        return None
    if f is None and not info.schema.enable_dynamic_field:
        return None
    if any(not isinstance(s, Token) or s.type not in ("STRING", "RAW_STRING") for s in steps):
        return None
    typed = _json_expression(info, expr, path, kind)
    if typed is None:
        return None
    c = filters._Compiler(expr, info.schema, None, {}, info.timezone)
    keys = [c._string(s) for s in steps if isinstance(s, Token)]
    if f is None:
        if head.type == "META":
            if not keys:
                return None
            field, keys = keys[0], keys[1:]
        else:
            field = name
    else:
        field = f.name
    json_path = field + "".join(f'["{k}"]' for k in keys)
    slug = hashlib.sha1(f"{json_path}:{kind}".encode()).hexdigest()[:8]
    return Target(f"auto_{_safe(field)}_{slug}", field, "INVERTED", "btree", typed, text,
                  {"auto": True, "method": "btree", "json_path": json_path,
                   "json_cast_type": _CAST[kind]})


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in name)[:40] or "key"


def _json_expression(info: CollectionInfo, expr: str, path: Tree, kind: str
                     ) -> sql.Composable | None:
    """The typed JSON value exactly as the filter compiler writes it in a comparison (so
    Postgres matches the index to the query), with its key parameters as literals."""
    c = filters._Compiler(expr, info.schema, None, {}, info.timezone)
    try:
        e = c.json_as(c.compile(path, 0), kind)
    except filters.FilterError:
        return None
    return _inline(e.sql, list(e.params))


def _inline(s: sql.Composable, params: list[Any]) -> sql.Composed | None:
    """``s`` with each ``%s`` replaced by its parameter as a quoted literal (an index
    definition takes no parameters; psycopg quotes the literal)."""
    out: list[sql.Composable] = []
    for part in filters._flatten(s):
        if isinstance(part, sql.SQL):
            pieces = part.as_string(None).split("%s")
            for i, piece in enumerate(pieces):
                if i:
                    if not params:
                        return None
                    out.append(sql.Literal(params.pop(0)))
                out.append(sql.SQL(piece))
        else:
            out.append(part)
    return sql.Composed(out) if not params else None


class AutoIndexer:
    """One client's bookkeeping: how many searches wanted an index, and the builds it runs
    (one at a time, in a daemon thread with its own connection)."""

    def __init__(self, dsn: str, on_built: Callable[[str], None]) -> None:
        self.dsn = dsn
        self.on_built = on_built
        self._lock = threading.Lock()
        self._wanted: dict[tuple[str, str], int] = {}   # (table, filter text) -> searches
        self._done: dict[tuple[str, str], str] = {}     # -> built | skipped: why | failed
        self._thread: threading.Thread | None = None
        self.closed = False

    def status(self, info: CollectionInfo, expression: str) -> str:
        """What happens about the missing index of searches with ``expression`` (explain)."""
        if not enabled(info):
            return f"off: collection property {PROPERTY} is false"
        key = (info.table.as_string(None), expression)
        with self._lock:
            if key in self._done:
                return self._done[key]
            n = self._wanted.get(key, 0)
        if n >= AFTER:
            return "building"
        return f"built after {AFTER - n} more such searches (CREATE INDEX CONCURRENTLY)"

    def note(self, info: CollectionInfo, expression: str, params: dict[str, Any] | None,
             explain: dict[str, Any] | None, searches: int) -> None:
        """Count ``searches`` that ran without an index that would have paid off (the
        plan's ``missing_index``); start a build when there were enough."""
        if not explain or not explain.get("missing_index") or self.closed or \
                not enabled(info):
            return
        key = (info.table.as_string(None), expression)
        with self._lock:
            if key in self._done:
                return
            n = self._wanted[key] = self._wanted.get(key, 0) + searches
            if n < AFTER or (self._thread is not None and self._thread.is_alive()):
                return
            self._done[key] = "building"
            self._thread = threading.Thread(target=self._build, args=(info, expression,
                                                                    params, key), daemon=True,
                                            name="vecpg-auto-index")
            self._thread.start()

    def note_query(self, info: CollectionInfo, expression: str,
                   params: dict[str, Any] | None) -> None:
        """Count a ``query`` with this filter (no cost model there: the build itself checks
        that the condition is selective and the collection not tiny)."""
        if expression and expression.strip():
            self.note(info, expression, params, {"missing_index": "query"}, 1)

    def wait(self, timeout: float | None = None) -> None:
        """Wait for a running build to end (tests, benchmarks, closing)."""
        t = self._thread
        if t is not None:
            t.join(timeout)

    def close(self) -> None:
        """No new builds; a running one finishes on its own (its thread is a daemon)."""
        self.closed = True

    def _build(self, info: CollectionInfo, expression: str, params: dict[str, Any] | None,
               key: tuple[str, str]) -> None:
        try:
            outcome = build(self.dsn, info, expression, params)
        except Exception as e:  # noqa: BLE001 - a background build must never surface
            log.warning("vecpg: automatic index for %r on %s failed: %s", expression,
                        info.name, e)
            outcome = f"failed: {e}"
        with self._lock:
            self._done[key] = outcome
        if outcome.startswith("built"):
            try:
                self.on_built(info.name)
            except Exception as e:  # noqa: BLE001 - as above
                log.warning("vecpg: after building an automatic index: %s", e)


def build(dsn: str, info: CollectionInfo, expression: str,
          params: dict[str, Any] | None) -> str:
    """Build the index for the most selective condition of ``expression`` that has none
    (see the module's docstring); returns what happened ("built <name>", "skipped: ...")."""
    cands = targets(info, expression, params)
    if not cands:
        return "skipped: no condition an index serves"
    with psycopg.connect(dsn, autocommit=True) as raw:
        db = Db(raw)
        # (counted up to MIN_ROWS + 1: reltuples is -1 until the table is analyzed)
        rows = db.value(sql.SQL("SELECT count(*) FROM (SELECT 1 FROM {} LIMIT %s) s").format(
            info.table), (MIN_ROWS + 1,))
        if rows is None or int(rows) <= MIN_ROWS:
            return f"skipped: at most {MIN_ROWS} rows"
        have = {r[0] for r in db.execute(
            "SELECT index_name FROM vecpg.indexes WHERE schema_name = %s AND collection = %s",
            (info.schema_name, info.name)).fetchall()}
        scored = []
        for t in cands:
            indexed = t.name in have or (not t.is_expression and _column_indexed(db, info, t))
            share = _share(db, info, t, params)
            if share is None or share > MAX_SELECTIVITY:
                continue
            if indexed:
                # one selective index serves the filter (a client that decided to build
                # while another's build of it ran must not add a second one)
                return f"skipped: an index serves {t.condition!r} already"
            scored.append((share, t))
        if not scored:
            return "skipped: no unindexed condition selective enough"
        share, t = min(scored, key=lambda x: x[0])
        pg_name = pg_index_name(info.name, t.name)
        got = db.execute("SELECT pg_try_advisory_lock(%s, hashtext(%s))",
                         (LOCK_CLASS, f"{info.schema_name}.{pg_name}")).fetchone()
        if not got or not got[0]:
            return "skipped: another client is building it"
        try:
            return _create(db, info, t, pg_name, share)
        finally:
            db.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))",
                       (LOCK_CLASS, f"{info.schema_name}.{pg_name}"))


def _column_indexed(db: Db, info: CollectionInfo, t: Target) -> bool:
    """True when some valid index (made by anyone, in SQL too) leads with the column."""
    row = db.execute(
        "SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid"
        " AND a.attnum = i.indkey[0] WHERE i.indrelid = %s::regclass AND a.attname = %s"
        " AND i.indisvalid LIMIT 1", (info.table.as_string(None), t.field_name)).fetchone()
    return row is not None


def _share(db: Db, info: CollectionInfo, t: Target, params: dict[str, Any] | None
           ) -> float | None:
    """The share of rows the condition lets through, counted in a ~10,000-row sample."""
    try:
        frag = filters.compile_filter(t.condition, info.schema, params=params,
                                      timezone=info.timezone)
    except filters.FilterError:
        return None
    # REPEATABLE: clients building at once count the same blocks, so they pick the same
    # condition (and meet at its advisory lock) instead of one index each
    row = db.execute(sql.SQL("SELECT count(*) FILTER (WHERE {}), count(*) FROM {} "
                             "TABLESAMPLE SYSTEM (least(100, 100 * 10000 / greatest("
                             "(SELECT reltuples FROM pg_class WHERE oid = %s::regclass),"
                             " 1))) REPEATABLE (0)").format(frag.sql, info.table),
                     [*frag.params, info.table.as_string(None)], prepare=False).fetchone()
    if not row or not row[1]:
        return None
    return float(row[0]) / float(row[1])


def _create(db: Db, info: CollectionInfo, t: Target, pg_name: str, share: float) -> str:
    target = sql.Identifier(info.schema_name, pg_name)
    state = db.execute("SELECT i.indisvalid FROM pg_class c JOIN pg_index i ON"
                       " i.indexrelid = c.oid WHERE c.oid = to_regclass(%s)",
                       (target.as_string(None),)).fetchone()
    if state is not None and not state[0]:  # a build killed half way: start over
        db.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(target))
        state = None
    if state is None:
        try:
            db.execute(sql.SQL("CREATE INDEX CONCURRENTLY IF NOT EXISTS {} ON {} USING {} "
                               "(({}))").format(sql.Identifier(pg_name), info.table,
                                                sql.SQL(t.method), t.expression))
        except psycopg.Error:
            db.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(target))
            raise
        db.execute(sql.SQL("ANALYZE {}").format(info.table))  # statistics of the expression
    with db.transaction():
        exists = db.execute("SELECT 1 FROM vecpg.indexes WHERE schema_name = %s AND"
                            " collection = %s AND index_name = %s",
                            (info.schema_name, info.name, t.name)).fetchone()
        if exists is None:
            catalog.add_index(db, info, t.name, t.field_name, t.index_type, None,
                              {**t.params, "selectivity": round(share, 6)}, pg_name)
    log.info("vecpg: built automatic index %s on %s (%s)", t.name, info.name, t.condition)
    return f"built {t.name}"
