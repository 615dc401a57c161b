"""The session: the only owner of database connections, and the one place every statement
goes through.

A :class:`Session` holds a pool of connections to one Postgres. Code inside vecpg borrows
one for a call with :meth:`Session.lease` and talks to it through a :class:`Db` handle,
which

- calls the tracer with ``(sql, params)`` for every statement (``Client(tracer=...)``),
- applies per-query settings (``hnsw.ef_search`` and friends), sent only when they differ
  from what that connection already has,
- and, at the end of the lease, translates psycopg errors into vecpg errors
  (:func:`vecpg.errors.translate`).

Users borrow a plain connection with :meth:`Session.lend` (``client.connection()``); it is
reset (as ``DISCARD ALL`` does) before anyone else uses it, so a ``SET`` made there never
reaches a later search.

Connections are reused most recently used first: the last one given back is the next one
taken, so one caller keeps talking to one warm backend (psycopg_pool, used before, hands
idle connections out in FIFO order: measured here, that cost 0.1-0.2 ms per HNSW search,
about 15%, since the backend that answers has gone cold). At most ``pool_size`` connections are out
at once; a caller waits up to ``timeout`` seconds for one, then gets :class:`PoolTimeout`.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ParamSpec, TypeVar

import psycopg
from pgvector.psycopg import register_vector
from psycopg import pq, sql

from .errors import PoolTimeout, ServerUnavailable, translate

Tracer = Callable[[str, Sequence[Any]], None]
P = ParamSpec("P")
R = TypeVar("R")
Query = str | sql.SQL | sql.Composed


class Db:
    """One pooled connection as vecpg code sees it: statements traced, settings cached.

    The psycopg connection is ``raw``; code that sends a statement calls :meth:`execute`,
    :meth:`executemany`, :meth:`copy`, :meth:`stream` or :meth:`run_many` instead, so the
    tracer sees it.
    """

    __slots__ = ("_session", "raw", "settings")

    def __init__(self, raw: psycopg.Connection, session: Session | None = None) -> None:
        self.raw = raw  # a plain connection without a session (tests, tools): no tracer
        self._session = session
        self.settings: dict[str, str] = {}  # session-level settings this connection has

    @property
    def _tracer(self) -> Tracer | None:
        return self._session.tracer if self._session is not None else None

    def _trace(self, query: Query, params: Any) -> None:
        tracer = self._tracer
        if tracer is not None:
            text = query.as_string(self.raw) if isinstance(query, sql.Composable) else query
            tracer(text, list(params or []))

    def execute(self, query: Query, params: Sequence[Any] | None = None, *,
                prepare: bool | None = None, binary: bool = False) -> psycopg.Cursor[Any]:
        """Run one statement; returns its cursor (``.fetchone()``, ``.fetchall()``).
        ``binary``: results in binary format (bytea without hex decoding)."""
        self._trace(query, params)
        return self.raw.execute(query, params, prepare=prepare, binary=binary)

    def value(self, query: Query, params: Sequence[Any] | None = None) -> Any:
        """The first column of the first row (None when there is no row)."""
        row = self.execute(query, params).fetchone()
        return None if row is None else row[0]

    def executemany(self, query: Query, params_seq: Sequence[Sequence[Any]]) -> None:
        """Run one statement for each parameter tuple, pipelined."""
        for p in params_seq:
            self._trace(query, p)
        with self.raw.cursor() as cur:
            cur.executemany(query, params_seq)

    def run_many(self, stmt: str, params: list[list[Any]]) -> list[list[tuple[Any, ...]]]:
        """The rows of ``stmt`` for each parameter list: one statement per query vector,
        all in one pipeline (``executemany(returning=True)``), so a batch of queries costs
        one round trip."""
        if self._tracer is not None:
            for p in params:
                self._trace(stmt, p)
        with self.raw.cursor() as cur:
            if len(params) == 1:
                return [cur.execute(stmt, params[0]).fetchall()]
            cur.executemany(stmt, params, returning=True)
            out = []
            while True:
                out.append(cur.fetchall())
                if not cur.nextset():
                    break
            return out

    @contextlib.contextmanager
    def copy(self, query: Query) -> Iterator[psycopg.Copy]:
        """``COPY ... FROM STDIN`` / ``TO STDOUT``: ``with db.copy(stmt) as cp: ...``."""
        self._trace(query, None)
        with self.raw.cursor() as cur, cur.copy(query) as cp:
            yield cp

    def stream(self, query: Query, params: Sequence[Any] | None = None,
               size: int = 10000) -> Iterator[list[tuple[Any, ...]]]:
        """The rows of a big result in batches of ``size``, through a server-side cursor
        (inside the caller's transaction)."""
        self._trace(query, params)
        with self.raw.cursor(name="vecpg_stream") as cur:
            cur.itersize = size
            cur.execute(query, params)
            while rows := cur.fetchmany(size):
                yield rows

    def transaction(self) -> contextlib.AbstractContextManager[psycopg.Transaction]:
        """A transaction (or a savepoint inside one): ``with db.transaction(): ...``."""
        return self.raw.transaction()

    def apply(self, settings: dict[str, str]) -> None:
        """Session-level settings for the next statements, sent only when they differ from
        what this connection has. Session level rather than ``SET LOCAL``: a search is then
        a single statement with no BEGIN/COMMIT round trips; the cache keeps every search's
        settings exact (a lent connection is reset, cache included, when it comes back)."""
        have = self.settings
        todo = {k: v for k, v in settings.items() if have.get(k) != v}
        if not todo:
            return
        calls = sql.SQL(", ").join(sql.SQL("set_config(%s, %s, false)") for _ in todo)
        params: list[Any] = []
        for k, v in todo.items():
            params += [k, v]
        self.execute(sql.SQL("SELECT {}").format(calls), params)
        have.update(todo)

    def lock(self, what: str) -> None:
        """Serialize a check-then-create on ``what`` across processes until the
        transaction ends."""
        self.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"vecpg {what}",))

    @property
    def backend_pid(self) -> int:
        """The server process serving this connection."""
        return int(self.raw.pgconn.backend_pid)

    @property
    def standby(self) -> bool:
        """Whether this connection is to a read-only standby (:mod:`vecpg.replicas`)."""
        return self._session is not None and self._session.standby


# What DISCARD ALL does, less DEALLOCATE ALL: psycopg prepares statements itself and does
# not notice a second DISCARD ALL on a connection (it checks a statement's result only the
# first time it sees the statement), so its cache would name statements the server dropped
# ("prepared statement _pg3_1 does not exist"). Statements the borrower PREPAREd by hand
# survive; everything else a borrower can change is reset.
_RESET = ("CLOSE ALL", "SET SESSION AUTHORIZATION DEFAULT", "RESET ALL", "UNLISTEN *",
          "SELECT pg_advisory_unlock_all()", "DISCARD PLANS", "DISCARD TEMP",
          "DISCARD SEQUENCES")


class _Lease:
    """One call's hold on a pooled connection; a call made inside another call of the same
    thread shares the outer one (so it sees the outer transaction). A class rather than a
    generator-based context manager: it wraps every search, and the generator form cost
    ~4 µs a call."""

    __slots__ = ("_db", "_session", "_translate")

    def __init__(self, session: Session) -> None:
        self._session = session
        self._db: Db | None = None
        self._translate = translate()

    def __enter__(self) -> Db:
        local = self._session._local
        outer: Db | None = getattr(local, "db", None)
        if outer is not None:
            return outer
        db = self._db = self._session._take()
        local.db = db
        return db

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        db = self._db
        if db is not None:
            self._session._local.db = None
            if self._session.after_lease is not None:
                self._session.after_lease(db)
            self._session._give(db)
        if exc is not None:
            if isinstance(exc, ServerUnavailable):  # translated further in already
                self._session.lost()
                return
            try:
                self._translate.__exit__(exc_type, exc, tb)
            except ServerUnavailable:
                self._session.lost()  # the others are likely gone too
                raise


class Session:
    """A pool of connections to ``dsn`` (at most ``pool_size`` open; callers wait up to
    ``timeout`` seconds for a free one) and the tracer that sees every statement.

    ``standby``: the server is a read-only streaming standby. Read replicas
    (:mod:`vecpg.replicas`) send a call's leases of the primary's session to a standby's
    session with :meth:`reading_from`; :meth:`own_lease` is never redirected (the catalog,
    companion code loads, writes). ``after_lease`` is called with the connection at the end
    of each outermost lease (the replicas record the primary's WAL position there)."""

    def __init__(self, dsn: str, *, pool_size: int = 10, timeout: float = 30.0,
                 tracer: Tracer | None = None,
                 on_lost: Callable[[], object] | None = None, standby: bool = False) -> None:
        self.dsn = dsn
        self.tracer = tracer
        self.on_lost = on_lost  # called when a connection to the server is found dead
        self.standby = standby
        self.after_lease: Callable[[Db], None] | None = None
        self.timeout = timeout
        self.size = pool_size
        self._idle: list[Db] = []
        self._out = 0  # connections open (idle or in use)
        self._cond = threading.Condition()
        self._local = threading.local()
        self._closed = False
        self._give(self._take())  # one connection now: a wrong DSN fails here, typed

    def lease(self) -> _Lease:
        """A pooled connection for one call: ``with session.lease() as db: ...``; psycopg
        errors raised inside become vecpg errors. Inside :meth:`reading_from` the
        connection is the other session's."""
        to = getattr(self._local, "reads", None)
        return _Lease(self if to is None else to)

    def own_lease(self) -> _Lease:
        """:meth:`lease`, never redirected by :meth:`reading_from`."""
        return _Lease(self)

    @contextlib.contextmanager
    def reading_from(self, other: Session) -> Iterator[None]:
        """Within the block, this thread's :meth:`lease` calls lease from ``other``."""
        before = getattr(self._local, "reads", None)
        self._local.reads = other
        try:
            yield
        finally:
            self._local.reads = before

    def routed(self) -> Session:
        """The session this thread's :meth:`lease` calls use now (see :meth:`reading_from`)."""
        to = getattr(self._local, "reads", None)
        return self if to is None else to

    def leased(self) -> bool:
        """Whether this thread holds a lease of this session now."""
        return getattr(self._local, "db", None) is not None

    @contextlib.contextmanager
    def lend(self) -> Iterator[psycopg.Connection]:
        """A plain pooled connection for the caller's own SQL (autocommit, pgvector types
        registered). Reset when it comes back (settings, role, temporary tables, cursors,
        advisory locks, LISTENs: see ``_RESET``), so none of them reach later calls."""
        with translate():
            db = self._take()
        try:
            yield db.raw
        finally:
            if self.after_lease is not None:  # the borrower may have written
                self.after_lease(db)
            self._reset(db)
            self._give(db)

    def lost(self) -> None:
        """The server went away (a connection died): close the idle connections too, so
        each does not fail one more call, and let ``on_lost`` act (for the embedded server:
        start it again). New connections are opened as calls need them."""
        self._close_idle()
        if self.on_lost is not None:
            self.on_lost()

    def _reset(self, db: Db) -> None:
        conn = db.raw
        db.settings.clear()
        if conn.closed:
            return
        try:
            if conn.pgconn.transaction_status != pq.TransactionStatus.IDLE:
                conn.rollback()
            conn.autocommit = True  # the borrower may have turned it off
            with conn.pipeline():  # one round trip
                for stmt in _RESET:
                    conn.execute(stmt, prepare=False)
        except psycopg.Error:
            conn.close()  # _give sees it closed and frees its slot

    def _take(self) -> Db:
        deadline = time.monotonic() + self.timeout
        with self._cond:
            while not self._idle and self._out >= self.size:
                left = deadline - time.monotonic()
                if left <= 0 or not self._cond.wait(left):
                    raise PoolTimeout(
                        f"no free connection within {self.timeout:.0f} s: all {self.size} "
                        "(pool_size) are in use; raise pool_size or return connections "
                        "borrowed with client.connection() sooner")
            if self._idle:
                return self._idle.pop()
            self._out += 1
        try:
            return Db(self._connect(deadline), self)
        except BaseException:
            self._release_slot()
            raise

    def _connect(self, deadline: float) -> psycopg.Connection:
        """A new connection. Opened here rather than by a pool library: a pool that lost
        its server retries in the background with a growing backoff, so calls waited
        seconds after the server was back; here a call that finds the server down fails
        at once (ServerUnavailable) and the next one connects as soon as it is up."""
        # Statements are prepared after 2 runs (measured: ~5% more search QPS than never
        # preparing); a search with a filter sets plan_cache_mode = force_custom_plan, since
        # a generic plan can ignore a filter value's selectivity (see DESIGN.md).
        wait = max(1, int(deadline - time.monotonic()))
        try:
            raw = psycopg.connect(self.dsn, autocommit=True, prepare_threshold=2,
                                  connect_timeout=wait)
        except psycopg.OperationalError as e:
            self.lost()
            raise ServerUnavailable(f"could not connect to the server ({_first_line(e)}): "
                                    "is it running?") from e
        try:
            with translate():
                register_vector(raw)
        except BaseException:
            raw.close()
            raise
        return raw

    def _give(self, db: Db) -> None:
        conn = db.raw
        status = conn.pgconn.transaction_status  # not conn.info: it builds an object a call
        if self._closed or conn.closed or status == pq.TransactionStatus.UNKNOWN:
            self._discard(conn)  # broken (or the session closed): a later call opens another
            return
        if status != pq.TransactionStatus.IDLE:
            try:
                conn.rollback()  # never hand on an open transaction
            except psycopg.Error:
                self._discard(conn)
                return
        with self._cond:
            self._idle.append(db)
            self._cond.notify()

    def _discard(self, conn: psycopg.Connection) -> None:
        conn.close()
        self._release_slot()

    def _release_slot(self) -> None:
        with self._cond:
            self._out -= 1
            self._cond.notify()

    def _close_idle(self) -> None:
        with self._cond:
            idle, self._idle = self._idle, []
            self._out -= len(idle)
            self._cond.notify_all()
        for db in idle:
            db.raw.close()

    def close(self) -> None:
        """Close every connection (idle ones now, those in use when they come back)."""
        self._closed = True
        self._close_idle()


def retried(method: Callable[P, R]) -> Callable[P, R]:
    """For reads: try once more when the connection turned out dead (the server restarted,
    or dropped the connection). The session has then closed the other idle connections
    and, for the embedded server, started it again, so the second try opens a fresh
    connection. Writes are not retried: whether a write that lost its connection was
    committed is not known, and the caller decides."""
    @functools.wraps(method)
    def read(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except ServerUnavailable:
            return method(*args, **kwargs)
    return read


def _first_line(e: BaseException) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
