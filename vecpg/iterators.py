"""Iterators over a collection on one consistent snapshot: pymilvus' ``QueryIterator`` and
``SearchIterator`` (``Client.query_iterator`` / ``Client.search_iterator``).

An iterator holds one pooled connection for its whole life, in a ``REPEATABLE READ, READ
ONLY`` transaction begun when it is made, and reads every batch there: rows others write
or delete meanwhile are not seen, and no row comes twice or is skipped. Batches are
keyset pages, so each costs what its rows cost, however far the iterator has gone:

- :class:`QueryIterator`: rows in primary-key order, ``WHERE pk > last ORDER BY pk``;
- :class:`SearchIterator`: hits of one query vector closest first, an exact scan paged by
  ``(distance, pk) > (last distance, last pk)`` on pgvector's ordering key (ascending for
  every metric: IP's key is the negated product, COSINE's ``1 - cos``), so the batches
  put together are exact search's hits, ties in primary-key order, with the distances
  :meth:`Client.search` returns.

``next()`` returns a batch (a list of dicts; a :class:`~vecpg.results.Hits`) and an empty
one once everything has come; the connection goes back to the pool then, or on
``close()``, leaving a ``with`` block, or when the iterator is garbage-collected::

    with client.query_iterator("docs", batch_size=500, filter="year > 2000") as it:
        while batch := it.next():
            handle(batch)

Each open iterator holds a connection: at most ``pool_size`` are open at once (another
waits, then raises :class:`~vecpg.errors.PoolTimeout`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

import psycopg
from psycopg import sql

from . import args, rows
from .errors import InvalidArgument, ServerUnavailable, VecpgError, translate
from .query import Estimate, SearchPlan, prepare_query, query_vectors
from .results import Hit, Hits, round_distances, select_fields
from .session import Db, Session

MAX_BATCH_SIZE = 16384  # pymilvus' bound on batch_size
UNLIMITED = -1

B = TypeVar("B", list[dict[str, Any]], Hits)
S = TypeVar("S", bound="_Batches[Any]")

_BEGIN = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"


class _Snapshot:
    """A pooled connection held across calls, in a ``REPEATABLE READ, READ ONLY``
    transaction whose snapshot is taken when it opens.

    Taken from the session's pool directly rather than through ``Session.lease()``: a lease
    is shared by every call its thread makes while it is open, so the client's own calls
    between two batches (an insert, a search) would run inside this read-only
    transaction."""

    __slots__ = ("_db", "_session")

    def __init__(self, session: Session) -> None:
        self._session = session
        self._db: Db | None = None
        for attempt in (1, 2):
            self._db = session._take()  # raises vecpg errors (PoolTimeout, ServerUnavailable)
            try:
                # the first statement takes the snapshot: rows committed after it are unseen
                self.rows(_BEGIN)
                self.rows("SELECT 1")
                return
            except ServerUnavailable:  # the pooled connection had died (nothing read yet):
                if attempt == 2:         # once more, on a new one
                    raise

    def rows(self, stmt: str | sql.Composed, params: list[Any] | None = None
             ) -> list[tuple[Any, ...]]:
        """The rows of one statement run in the snapshot. Any error ends it (the
        transaction cannot go on) and gives the connection back."""
        db = self._db
        if db is None:
            raise VecpgError("the iterator's snapshot has ended")
        try:
            with translate():
                # never prepared: a generic plan could ignore the filter values' selectivity
                cur = db.execute(stmt, params, prepare=False)
                return cur.fetchall() if cur.description is not None else []
        except BaseException as e:
            self.close()
            if isinstance(e, ServerUnavailable):
                self._session.lost()  # the other idle connections are likely gone too
            raise

    def close(self) -> None:
        """End the transaction and give the connection back (idempotent)."""
        db, self._db = self._db, None
        if db is None:
            return
        with contextlib.suppress(psycopg.Error):  # a broken connection: the pool drops it
            db.execute("COMMIT", prepare=False)
        self._session._give(db)


class _Batches(Generic[B]):
    """What both iterators share: batch size and total limit, the snapshot, closing."""

    def __init__(self, batch_size: Any, limit: Any) -> None:
        self._snapshot: _Snapshot | None = None
        self._failed: BaseException | None = None
        self._batch = args.integer(batch_size, "batch_size", 1, MAX_BATCH_SIZE)
        limit = UNLIMITED if limit is None else args.integer(limit, "limit", -1)
        self._left: int | None = None if limit == UNLIMITED else limit  # None: no limit

    def _open(self, session: Session) -> None:
        if self._left != 0:  # limit 0: nothing to read, no connection to hold
            # on the standby a routed call reads from (vecpg.replicas), if any
            self._snapshot = _Snapshot(session.routed())

    def _rows(self, stmt: sql.Composed, params: list[Any]) -> list[tuple[Any, ...]]:
        if self._snapshot is None:
            raise VecpgError("the iterator is closed")
        return self._snapshot.rows(stmt, params)

    def _empty(self) -> B:
        raise NotImplementedError

    def _take(self, n: int) -> tuple[B, bool]:
        """Up to ``n`` more items, and whether nothing comes after them."""
        raise NotImplementedError

    def next(self) -> B:
        """The next batch: ``batch_size`` items (fewer at the end or at ``limit``), empty
        once everything has come (the connection is given back then)."""
        if self._failed is not None:  # not an empty batch: that would say "all done"
            raise VecpgError(f"the iterator stopped at an error ({self._failed}); make a "
                             "new one to start again")
        if self._snapshot is None:
            return self._empty()
        n = self._batch if self._left is None else min(self._batch, self._left)
        try:
            batch, last = self._take(n)
        except BaseException as e:
            self._failed = e
            self.close()
            raise
        if self._left is not None:
            self._left -= len(batch)
        if last or self._left == 0:
            self.close()
        return batch

    def __iter__(self) -> Iterator[B]:
        """Every non-empty batch, in order: ``for batch in it: ...``."""
        while batch := self.next():
            yield batch

    def close(self) -> None:
        """End the snapshot and give the connection back; later ``next()`` calls return an
        empty batch. Idempotent."""
        snapshot, self._snapshot = self._snapshot, None
        if snapshot is not None:
            snapshot.close()

    def __enter__(self: S) -> S:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # at garbage collection no caller to tell
            self.close()


class QueryIterator(_Batches[list[dict[str, Any]]]):
    """The rows of ``collection_name`` matching ``filter`` (and ``partition_names``), in
    primary-key order, ``batch_size`` at a time, ``limit`` in all (-1: every row), after
    skipping ``offset``; each row a dict of ``output_fields`` (default: every scalar field
    and dynamic key), as :meth:`Client.query` gives it. ``filter_params``: values for the
    filter's ``{name}`` placeholders.

    >>> it = QueryIterator(client, "docs", batch_size=100, filter="year > 2000")
    >>> it.next()[0]
    {'id': 3, 'year': 2004, ...}
    """

    def __init__(self, client: Any, collection_name: str, batch_size: int = 1000,
                 limit: int = UNLIMITED, filter: str = "",
                 output_fields: list[str] | None = None,
                 partition_names: list[str] | None = None, *, offset: int = 0,
                 filter_params: dict[str, Any] | None = None) -> None:
        super().__init__(batch_size, limit)
        self._offset = args.integer(0 if offset is None else offset, "offset")
        info = client._info(collection_name)
        filter = args.text(filter, "filter")
        fields = args.names(output_fields, "output_fields")
        if fields is not None and "count(*)" in fields:
            raise InvalidArgument("query_iterator cannot count: use query(output_fields="
                                  "['count(*)']) or count()")
        fp = args.mapping(filter_params, "filter_params") or None
        parts = client._catalog.partitions(info, partition_names)
        where, self._params = rows.row_filter(info, None, filter, parts, fp)
        self._sel = select_fields(info.schema, fields, default_all=True)
        self._pk = info.schema.primary_field.name
        pk = sql.Identifier(self._pk)
        head = sql.SQL("SELECT {} FROM {} WHERE {}").format(
            sql.SQL(", ").join(self._sel.select_list()), info.table, where)
        self._first = sql.SQL("{} ORDER BY {} LIMIT %s OFFSET %s").format(head, pk)
        self._after = sql.SQL("{} AND {} > %s ORDER BY {} LIMIT %s").format(head, pk, pk)
        self._last: Any = None  # the primary key of the last row returned
        self._open(client._session)

    def _empty(self) -> list[dict[str, Any]]:
        return []

    def _take(self, n: int) -> tuple[list[dict[str, Any]], bool]:
        if self._last is None:
            got = self._rows(self._first, [*self._params, n, self._offset])
        else:
            got = self._rows(self._after, [*self._params, self._last, n])
        batch = [self._sel.to_dict(r) for r in got]
        if batch:
            self._last = batch[-1][self._pk]
        return batch, len(batch) < n


class SearchIterator(_Batches[Hits]):
    """The hits of one query vector ``data`` in ``collection_name``, closest first (the
    smallest distance; the largest similarity for IP and COSINE), ``batch_size`` at a
    time, ``limit`` in all (-1: every row that matches), as :meth:`Client.search` shapes
    them. An exact scan over the snapshot, so the batches put together equal
    ``search(..., search_params={"exact": True})``, rows at equal distance in primary-key
    order. ``search_params`` as search's: ``metric_type``, ``radius`` / ``range_filter``
    (a range search); index knobs (``ef``, ``nprobe``) have no effect. ``filter``,
    ``filter_params``, ``output_fields``, ``partition_names``, ``anns_field`` and
    ``round_decimal`` as search's. ``external_filter_func``: called with each page of hits,
    returns the ones to keep (pymilvus' client-side filter); batches are still filled to
    ``batch_size``.

    >>> it = SearchIterator(client, "docs", [query], batch_size=50, limit=200)
    >>> [h.id for h in it.next()]
    [17, 4, ...]
    """

    def __init__(self, client: Any, collection_name: str, data: Any, batch_size: int = 1000,
                 filter: str = "", limit: int = UNLIMITED,
                 output_fields: list[str] | None = None,
                 search_params: dict[str, Any] | None = None,
                 partition_names: list[str] | None = None, anns_field: str | None = None,
                 round_decimal: int = -1, *, offset: int = 0,
                 filter_params: dict[str, Any] | None = None,
                 external_filter_func: Callable[[Hits], Any] | None = None) -> None:
        super().__init__(batch_size, limit)
        if args.integer(0 if offset is None else offset, "offset") != 0:
            raise InvalidArgument(f"search_iterator does not take an offset (pymilvus' "
                                  f"neither), got {offset!r}; skip the first batches instead")
        self._digits = args.round_decimal(round_decimal)
        if external_filter_func is not None and not callable(external_filter_func):
            raise InvalidArgument(f"external_filter_func must be callable, got "
                                  f"{external_filter_func!r}")
        self._keep = external_filter_func
        info = client._info(collection_name)
        f = info.vector_field(args.optional_name(anns_field or None, "anns_field"))
        sel = select_fields(info.schema, args.names(output_fields, "output_fields"),
                            default_all=False)
        parts = client._catalog.partitions(info, partition_names)
        fp = args.mapping(filter_params, "filter_params") or None
        query = prepare_query(info, f, limit=self._batch, offset=0,
                              expr=args.text(filter, "filter"), selection=sel,
                              partitions=parts, search_params=search_params, filter_params=fp)
        if query.offset:
            raise InvalidArgument(f"search_iterator does not take an offset, got "
                                  f"search_params offset {query.offset}")
        vectors = query_vectors(f, data)
        if len(vectors) != 1:
            raise InvalidArgument(f"search_iterator takes one query vector, got {len(vectors)}")
        # the exact plan's row shape and distance conversion (squared L2, similarities)
        self._plan = SearchPlan(query, "exact", "", {}, {}, Estimate())
        self._params = self._plan.bind(vectors)[0]
        pk = sql.Identifier(sel.columns[0])
        # "+ 0": no ANN index matches the key, so the scan is exact (Query.statement's way)
        scan = sql.SQL("SELECT {}, ({} + 0) AS _vecpg_d FROM {} WHERE {}").format(
            sql.SQL(", ").join(sel.select_list()), query.dist.order, query.table,
            sql.SQL(" AND ").join(query.where))
        self._first = sql.SQL("SELECT * FROM ({}) s ORDER BY _vecpg_d, {} LIMIT %s").format(
            scan, pk)
        self._after = sql.SQL("SELECT * FROM ({}) s WHERE (_vecpg_d, {}) > (%s::float8, %s) "
                              "ORDER BY _vecpg_d, {} LIMIT %s").format(scan, pk, pk)
        self._cursor: tuple[float, Any] | None = None  # (raw key, pk) of the last row read
        self._kept = Hits()  # hits external_filter_func kept beyond the last batch
        self._drained = False  # the database has no more rows
        self._open(client._session)

    def _empty(self) -> Hits:
        return Hits()

    @property
    def cursor(self) -> tuple[float, Any] | None:
        """Where the iterator stands: an opaque value (the last hit read's ordering key and
        primary key), None before the first hit. A new iterator over the same search goes on
        from there with :meth:`resume` (``vecpg serve`` pages pymilvus' iterators so)."""
        return self._cursor

    def resume(self, cursor: tuple[float, Any] | None) -> None:
        """Start the next batch after ``cursor`` (another iterator's :attr:`cursor` over
        the same collection, query, filter and metric): the batches of both put together
        are still exact search's hits, none twice or skipped (rows written in between
        excepted: each iterator has its own snapshot). Before the first ``next()`` only."""
        if self._cursor is not None or self._kept or self._drained:
            raise InvalidArgument("resume() goes before the iterator's first batch")
        if cursor is not None:
            if not isinstance(cursor, tuple) or len(cursor) != 2 or \
                    isinstance(cursor[0], bool) or not isinstance(cursor[0], (int, float)):
                raise InvalidArgument(f"resume() takes an iterator's cursor, got {cursor!r}")
            cursor = (float(cursor[0]), cursor[1])
        self._cursor = cursor

    def _read(self, n: int) -> Hits:
        """The next ``n`` hits from the database (fewer: the last ones)."""
        if self._cursor is None:
            got = self._rows(self._first, [*self._params, n])
        else:
            got = self._rows(self._after, [*self._params, *self._cursor, n])
        if len(got) < n:
            self._drained = True
        if got:
            self._cursor = (got[-1][-1], got[-1][0])
        hits = self._plan.to_hits(got)
        round_distances(hits, self._digits)
        return hits

    def _take(self, n: int) -> tuple[Hits, bool]:
        keep = self._keep
        if keep is None:
            hits = self._read(n)
            return hits, self._drained
        while len(self._kept) < n and not self._drained:
            kept = keep(self._read(self._batch))
            if not isinstance(kept, list) or not all(isinstance(h, Hit) for h in kept):
                raise InvalidArgument(f"external_filter_func must return a list of the hits "
                                      f"it keeps, got {type(kept).__name__}")
            self._kept.extend(kept)
        batch = Hits(self._kept[:n])
        del self._kept[:n]
        return batch, self._drained and not self._kept
