"""Pooled connections, reused most-recently-used first.

psycopg_pool hands idle connections out in FIFO order, so the calls of one thread land on a
different backend each time. Measured here, that cost 0.1-0.2 ms per HNSW search (about 15%):
the backend that answers has gone cold. :class:`WarmPool` keeps the connections it has taken
from a ``ConnectionPool`` on a stack: the last one given back is the next one taken, so a
caller doing one call after another keeps talking to one warm backend. At most
``pool.max_size`` connections are out at once; a caller waits while all are busy.
"""

from __future__ import annotations

import threading
import time

import psycopg
from psycopg import pq
from psycopg_pool import ConnectionPool

from .errors import ServerError


class WarmPool:
    """``take()`` / ``give()`` connections of ``pool``, last given first taken."""

    def __init__(self, pool: ConnectionPool, *, timeout: float = 30.0) -> None:
        self.pool = pool
        self.timeout = timeout
        self._idle: list[psycopg.Connection] = []
        self._out = 0  # taken from ``pool`` and not returned to it (idle or in use)
        self._cond = threading.Condition()

    def take(self) -> psycopg.Connection:
        deadline = time.monotonic() + self.timeout
        with self._cond:
            while not self._idle and self._out >= self.pool.max_size:
                left = deadline - time.monotonic()
                if left <= 0 or not self._cond.wait(left):
                    raise ServerError(f"no free connection within {self.timeout:.0f}s: all "
                                      f"{self.pool.max_size} (pool_size) are busy")
            if self._idle:
                return self._idle.pop()
            self._out += 1
        try:
            return self.pool.getconn(timeout=self.timeout)
        except BaseException:
            self._release_slot()
            raise

    def give(self, conn: psycopg.Connection) -> None:
        status = conn.pgconn.transaction_status  # not conn.info: it builds an object a call
        if conn.closed or status == pq.TransactionStatus.UNKNOWN:
            self.pool.putconn(conn)  # broken: the pool discards it and opens another
            self._release_slot()
            return
        if status != pq.TransactionStatus.IDLE:
            conn.rollback()  # never hand on an open transaction
        with self._cond:
            self._idle.append(conn)
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            idle, self._idle = self._idle, []
            self._out -= len(idle)
        for conn in idle:
            self.pool.putconn(conn)
        self.pool.close()

    def _release_slot(self) -> None:
        with self._cond:
            self._out -= 1
            self._cond.notify()
