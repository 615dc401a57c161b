"""pymilvus' search iterator (``SearchIteratorV2``) over the wire, on vecpg's own.

pymilvus pages a search iterator with plain Search RPCs: the first carries
``search_iter_v2`` and ``search_iter_batch_size`` (the page size), and the server answers
with a token and the page's last distance (``search_iter_last_bound``); every later page
sends that token back, with the previous page's bound. Milvus resumes from the bound.

Here each page is one batch of a :class:`vecpg.iterators.SearchIterator` (an exact
search, keyset-paged by ``(distance, pk)``), resumed (``SearchIterator.resume``) at the
cursor the token's previous page ended at, so the pages put together are exactly
``search(..., search_params={"exact": True})``'s hits, ties in primary-key order, none
twice or skipped. Nothing is held between pages (no connection, no snapshot, no lock a
DROP would wait for): a token is only the cursor, forgotten after ``max_tokens`` newer
ones (an unknown token starts again).
Unlike vecpg's own iterator, each page sees the rows committed when it runs.

pymilvus probes with a one-hit page before it starts and drops that token; its iterator
then starts again with a first page of its own.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from ..results import Hits


class SearchPages:
    """Tokens of search iterators and their cursors (thread-safe)."""

    def __init__(self, max_tokens: int = 10000) -> None:
        self.max_tokens = max_tokens
        self._cursors: OrderedDict[str, tuple[Any, int]] = OrderedDict()  # cursor, hits sent
        self._lock = threading.Lock()
        self._serial = itertools.count(1)

    def first(self, make: Callable[[], Any]) -> tuple[str, Hits]:
        """A new token and its first page: one batch of ``make()``'s SearchIterator."""
        token = f"{uuid.uuid4().hex}-{next(self._serial)}"
        return token, self._page(token, make, None)

    def next(self, token: str, make: Callable[[], Any]) -> Hits:
        """The token's next page (from the start for a token not known)."""
        with self._lock:
            state = self._cursors.get(token)
        return self._page(token, make, state)

    def _page(self, token: str, make: Callable[[], Any], state: tuple[Any, int] | None) -> Hits:
        cursor, sent = state if state is not None else (None, 0)
        if state is not None and cursor is None:  # the previous page was the last
            return Hits()
        it = make()
        try:
            it.resume(cursor)
            hits = it.next()
            after = it.cursor if hits else None
        finally:
            it.close()
        with self._lock:
            self._cursors[token] = (after, sent + len(hits))
            self._cursors.move_to_end(token)
            while len(self._cursors) > self.max_tokens:
                self._cursors.popitem(last=False)
        return hits

    def close(self) -> None:
        """Forget every token."""
        with self._lock:
            self._cursors.clear()
