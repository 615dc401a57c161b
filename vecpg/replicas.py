"""Read replicas: searches and queries on streaming-replication standbys, with Milvus'
consistency levels mapped onto WAL positions.

``vecpg.connect(primary_dsn, replicas=[standby_dsn, ...])`` keeps the primary for writes,
DDL and the catalog, and sends ``search``, ``hybrid_search``, ``query``, ``get``, ``count``
and the iterators to a standby that can give the consistency level the call asks for
(``consistency_level=``, else the collection's, from ``create_collection``, else Milvus'
default, Bounded):

- **Strong**: every write committed before the call. A standby qualifies once it has replayed
  the primary's ``pg_current_wal_lsn()`` read at the start of the call (waiting up to
  :attr:`ReplicaPolicy.wait` seconds), else the primary answers.
- **Session**: this client's own writes (read-your-writes). After each call that used the
  primary, the client records ``pg_current_wal_insert_lsn()``, which is past the commit of
  everything that call wrote; a standby qualifies once ``pg_last_wal_replay_lsn()`` reaches
  it (waiting as for Strong).
- **Bounded**: a standby no more than :attr:`ReplicaPolicy.max_staleness` seconds behind.
  Staleness is measured on the standby: zero when it has replayed all it received and its
  WAL receiver runs, else ``now() - pg_last_xact_replay_timestamp()``, the age of the last
  commit it replayed (an upper bound; alone it would call an idle primary's standby stale,
  which is why the received and replayed positions are compared first). A measurement at
  time t with staleness s bounds the staleness at t + d by s + d, so most calls measure
  nothing.
- **Eventually**: any standby that answers.

Whatever the level, a standby that is down, lagging or fails the call is skipped: the next
standby is tried, and the primary answers last, so a standby costs no failed call and no
answer the level does not allow. A standby that failed to connect is not tried again for
:attr:`ReplicaPolicy.retry_after` seconds. Customized (pymilvus' guarantee timestamps) is
read as Strong.

What runs where: the catalog (collection and index entries) is read on the primary;
companion indexes load their codes from the primary too (its locks order the codes, see
:mod:`vecpg.companion`), and re-rank on the standby. Calibration is measured and stored on
the primary. A client connected straight to a standby (no replicas given) reads there,
never migrates it or writes to it, and returns calibrations without storing them.

Example::

    client = vecpg.connect("postgresql://db1/app", replicas=["postgresql://db2/app"],
                           replica_policy=vecpg.ReplicaPolicy(max_staleness=2.0))
    client.insert("docs", rows)
    client.search("docs", [q], limit=10, consistency_level="Session")  # sees the insert
    client.replica_status()   # which server served how many reads, lag, state
"""

from __future__ import annotations

import functools
import itertools
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import psycopg
from psycopg import pq

from .errors import InvalidArgument, ServerError, ServerUnavailable, VecpgError
from .session import Db, Session

_log = logging.getLogger("vecpg")
R = TypeVar("R")

# pymilvus' ConsistencyLevel numbers (common.proto)
LEVELS = ("Strong", "Session", "Bounded", "Eventually", "Customized")
DEFAULT_LEVEL = "Bounded"  # Milvus' default for a collection

_POSITION = ("SELECT pg_is_in_recovery(), pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0'),"
             " pg_wal_lsn_diff(pg_last_wal_receive_lsn(), '0/0'),"
             " extract(epoch FROM now() - pg_last_xact_replay_timestamp()),"
             " EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE pid IS NOT NULL)")


def level_name(value: Any) -> str | None:
    """A consistency level's name (``"Strong"``, ...) from a name, pymilvus'
    ``ConsistencyLevel`` or its number; None for None."""
    if value is None:
        return None
    name = getattr(value, "name", value)
    if isinstance(name, int) and not isinstance(name, bool) and 0 <= name < len(LEVELS):
        return LEVELS[name]
    if isinstance(name, str) and name.capitalize() in LEVELS:
        return name.capitalize()
    raise InvalidArgument(f"consistency_level must be one of {', '.join(LEVELS)}, got {value!r}")


def level_number(name: str | None) -> int:
    """pymilvus' number of a level (Milvus' default, Bounded, for None)."""
    return LEVELS.index(name or DEFAULT_LEVEL)


@dataclass(frozen=True)
class ReplicaPolicy:
    """How reads use replicas.

    ``max_staleness``: seconds a Bounded read may lag the primary. ``wait``: seconds a
    Strong or Session read waits for a standby to catch up before the primary answers.
    ``retry_after``: seconds a standby that failed to connect is left alone.
    ``read_primary``: the primary also takes its turn at Bounded, Session and Eventually
    reads (spreading them over every server rather than keeping the primary for writes).
    """

    max_staleness: float = 5.0
    wait: float = 0.5
    retry_after: float = 5.0
    read_primary: bool = False

    def __post_init__(self) -> None:
        for name in ("max_staleness", "wait", "retry_after"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0:
                raise InvalidArgument(f"ReplicaPolicy.{name} must be a number >= 0, got {v!r}")
        if not isinstance(self.read_primary, bool):
            raise InvalidArgument(f"ReplicaPolicy.read_primary must be a bool, "
                                  f"got {self.read_primary!r}")


@dataclass
class Standby:
    """One standby as the router knows it. ``replay_lsn`` is a lower bound of what it has
    replayed; ``lag`` an upper bound of its staleness (seconds) at ``measured``."""

    dsn: str
    session: Session | None = None
    replay_lsn: int = 0
    lag: float = math.inf
    measured: float = -math.inf
    down_until: float = 0.0
    reads: int = 0
    failures: int = 0
    last_error: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def staleness(self, now: float) -> float:
        """An upper bound of how far behind the primary it is now."""
        return self.lag + (now - self.measured)


class Replicas:
    """The standbys of one client and the choice of the server for each read."""

    def __init__(self, primary: Session, dsns: Sequence[str], policy: ReplicaPolicy, *,
                 pool_size: int = 10, timeout: float = 30.0) -> None:
        check(dsns, policy)
        self.primary = primary
        self.policy = policy
        self.standbys = [Standby(d) for d in dsns]
        self._pool_size = pool_size
        # a standby's pool (and its connection attempts) wait less than the primary's: when
        # it is saturated or unreachable, another server answers
        self._timeout = min(timeout, 2.0)
        self._write_lsn = 0
        self._write_unknown = False  # a call ended where its writes' position was not read
        self._lock = threading.Lock()
        self._local = threading.local()
        self._turn = itertools.count()
        self.primary_reads = 0
        primary.after_lease = self._note_position

    # -- the router ------------------------------------------------------------------------
    def read(self, level: str, call: Callable[[], R]) -> R:
        """``call()`` on a server that gives ``level``: a standby if one qualifies, else the
        primary. A nested read, or one inside a lease of the primary (a transaction), runs
        where it is."""
        if getattr(self._local, "active", False) or self.primary.leased():
            return call()
        self._local.active = True
        try:
            for standby in self._candidates(level):
                session = standby.session
                assert session is not None
                session.tracer = self.primary.tracer
                try:
                    with self.primary.reading_from(session):
                        out = call()
                except VecpgError as e:
                    self._failed(standby, e)
                    if not isinstance(e, ServerError):
                        break  # an error of the call (or of the standby's lag): the primary's
                        # answer is the one that counts
                    continue  # the standby's fault (gone, recovery conflict): the next one
                with standby.lock:
                    standby.reads += 1
                return out
            with self._lock:
                self.primary_reads += 1
            return call()
        finally:
            self._local.active = False

    def _failed(self, standby: Standby, e: VecpgError) -> None:
        with standby.lock:
            standby.failures += 1
            standby.last_error = f"{type(e).__name__}: {e}"
            if isinstance(e, ServerUnavailable):
                standby.down_until = time.monotonic() + self.policy.retry_after
                standby.lag = math.inf
        _log.info("standby %s failed a read (%s); another server answers", _redact(standby.dsn),
                  standby.last_error)

    def _candidates(self, level: str) -> Any:
        """The standbys that give ``level`` now, in this call's turn order (measured as
        needed); a Strong or Session read waits up to ``policy.wait`` for one."""
        order = self._ordered()
        if not order:
            return
        if level == "Eventually":
            yield from order
            return
        if level == "Bounded":
            for s in order:
                if self._fresh(s):
                    yield s
            return
        target = self._target(level)
        if target is None:
            return  # the primary's position is unknown: it answers
        deadline = time.monotonic() + self.policy.wait
        pause = 0.002
        while order:
            waiting = []
            for s in order:
                if self._replayed(s, target):
                    yield s  # tried once: if it fails the call, it is not tried again
                else:
                    waiting.append(s)
            if time.monotonic() + pause > deadline:
                return
            time.sleep(pause)
            pause = min(pause * 2, 0.05)
            order = [s for s in waiting if self._usable(s)]

    def _ordered(self) -> list[Standby]:
        """The usable standbys, starting at this call's turn (with ``read_primary``, the
        primary's turn comes as an empty list: it answers)."""
        n = len(self.standbys) + (1 if self.policy.read_primary else 0)
        start = next(self._turn) % n
        if start == len(self.standbys):
            return []
        ring = self.standbys[start:] + self.standbys[:start]
        return [s for s in ring if self._usable(s)]

    def _usable(self, s: Standby) -> bool:
        if s.down_until > time.monotonic():
            return False
        if s.session is None:
            with s.lock:
                if s.session is None:
                    try:
                        s.session = self._open(s.dsn)
                    except VecpgError as e:
                        s.down_until = time.monotonic() + self.policy.retry_after
                        s.failures += 1
                        s.last_error = f"{type(e).__name__}: {e}"
                        _log.warning("standby %s unusable: %s", _redact(s.dsn), s.last_error)
                        return False
        return True

    def _open(self, dsn: str) -> Session:
        session = Session(dsn, pool_size=self._pool_size, timeout=self._timeout,
                          tracer=self.primary.tracer, standby=True)
        with session.own_lease() as db:
            if not db.value("SELECT pg_is_in_recovery()"):
                session.close()
                # a promoted standby (or a wrong DSN) serves another history than the primary's
                raise ServerError("it is not in recovery (promoted, or not a standby)")
        return session

    # -- what each level needs -------------------------------------------------------------
    def _measure(self, s: Standby) -> None:
        """Read the standby's replay position and staleness."""
        session = s.session
        assert session is not None
        t0 = time.monotonic()
        with session.own_lease() as db:
            row = db.execute(_POSITION).fetchone()
        assert row is not None
        recovering, replay, receive, age, receiving = row
        if not recovering:
            raise ServerError("the standby is not in recovery any more (promoted)")
        replay = int(replay or 0)
        if receive is not None and replay >= int(receive) and receiving:
            lag = 0.0  # replayed all it received, and its WAL receiver runs
        else:
            lag = math.inf if age is None else max(0.0, float(age))
        with s.lock:
            s.replay_lsn = max(s.replay_lsn, replay)
            s.lag, s.measured = lag, t0

    def _checked(self, s: Standby, ok: Callable[[], bool]) -> bool:
        """``ok()`` after a fresh measurement when it fails on the remembered one; a standby
        that cannot be measured is marked down."""
        if ok():
            return True
        try:
            self._measure(s)
        except VecpgError as e:
            self._failed(s, e)
            return False
        return ok()

    def _fresh(self, s: Standby) -> bool:
        limit = self.policy.max_staleness
        return self._checked(s, lambda: s.staleness(time.monotonic()) <= limit)

    def _replayed(self, s: Standby, target: int) -> bool:
        return self._checked(s, lambda: s.replay_lsn >= target)

    def _target(self, level: str) -> int | None:
        """The WAL position a Strong or Session read needs replayed."""
        if level == "Session":
            with self._lock:
                if not self._write_unknown:
                    return self._write_lsn
        try:  # Strong (or Session after a call whose position was not read): the primary's now
            with self.primary.own_lease() as db:
                return int(db.value("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')"))
        except VecpgError:
            return None

    def _note_position(self, db: Db) -> None:
        """At the end of a call that used the primary (``Session.after_lease``): the WAL
        insert position, past the commit of whatever the call wrote. Reads routed here
        write nothing and are not measured."""
        if getattr(self._local, "active", False):
            return
        raw = db.raw
        lsn = None
        if not raw.closed and raw.pgconn.transaction_status == pq.TransactionStatus.IDLE:
            try:
                lsn = db.value("SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')")
            except psycopg.Error:
                lsn = None
        with self._lock:
            if lsn is None:
                self._write_unknown = True  # the next Session read asks the primary
            else:
                self._write_lsn = max(self._write_lsn, int(lsn))
                self._write_unknown = False

    # -- for users and tests ---------------------------------------------------------------
    def status(self) -> list[dict[str, Any]]:
        """Each server: ``dsn`` (password hidden), ``role``, ``reads`` served, and for a
        standby ``up``, ``replay_lsn``, ``staleness`` (seconds, upper bound; None before
        the first measurement), ``failures``, ``last_error``."""
        now = time.monotonic()
        out: list[dict[str, Any]] = [{"dsn": _redact(self.primary.dsn), "role": "primary",
                                      "reads": self.primary_reads}]
        for s in self.standbys:
            st = s.staleness(now)
            out.append({"dsn": _redact(s.dsn), "role": "standby", "reads": s.reads,
                        "up": s.down_until <= now, "replay_lsn": s.replay_lsn,
                        "staleness": None if math.isinf(st) else round(st, 3),
                        "failures": s.failures, "last_error": s.last_error})
        return out

    def close(self) -> None:
        """Close every standby's connections."""
        for s in self.standbys:
            if s.session is not None:
                s.session.close()


def check(dsns: Any, policy: Any) -> None:
    """``replicas`` and ``replica_policy`` as a client takes them (None for either: none)."""
    if dsns is not None and (isinstance(dsns, (str, bytes)) or not isinstance(dsns, Sequence)
                             or not all(isinstance(d, str) and d for d in dsns)):
        raise InvalidArgument(f"replicas must be a list of DSNs, got {dsns!r}")
    if policy is not None and not isinstance(policy, ReplicaPolicy):
        raise InvalidArgument(f"replica_policy must be a ReplicaPolicy, got {policy!r}")


def routed(method: Callable[..., R]) -> Callable[..., R]:
    """For a client's read method whose first argument is the collection: run it where its
    consistency level allows (``consistency_level=``, else the collection's)."""
    @functools.wraps(method)
    def read(self: Any, *args: Any, **kwargs: Any) -> R:
        router: Replicas | None = self._replicas
        if router is None:
            return method(self, *args, **kwargs)
        level = level_name(kwargs.get("consistency_level"))
        if level is None:
            name = args[0] if args else kwargs.get("collection_name")
            try:
                level = level_name(self._info(name).properties.get("consistency_level"))
            except VecpgError:
                level = None  # the call itself says what is wrong with the name
        level = level or DEFAULT_LEVEL
        if level == "Customized":
            level = "Strong"
        return router.read(level, lambda: method(self, *args, **kwargs))
    return read


def in_recovery(session: Session) -> bool:
    """Whether the session's server is a standby (read-only, replaying WAL)."""
    with session.own_lease() as db:
        return bool(db.value("SELECT pg_is_in_recovery()"))


def _redact(dsn: str) -> str:
    import re

    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", re.sub(r"password=\S+", "password=***", dsn))
