"""``vecpg serve``'s per-role client cache (a bounded LRU that closes what it evicts, never
under a request still using it), and the public client API the wire uses:
``Client.collection_schema`` and ``SearchIterator.cursor`` / ``resume``."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import psycopg
import pytest

pytest.importorskip("grpc")
pymilvus = pytest.importorskip("pymilvus")

import vecpg  # noqa: E402
from vecpg.errors import InvalidArgument  # noqa: E402
from vecpg.wire import serve  # noqa: E402
from vecpg.wire.service import ClientCache  # noqa: E402


def _backends(dsn: str, app: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as c:
        row = c.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                        (app,)).fetchone()
    return int(row[0]) if row else 0


@pytest.fixture
def apps(dsn: str) -> Iterator[tuple[str, Any]]:
    """A tag for this test's clients, and an opener of a client whose connections carry
    ``<tag>_<key>`` as application_name (so the test can count them)."""
    tag = "cache_" + uuid.uuid4().hex[:6]

    def opener(key: str) -> Any:
        return lambda: vecpg.Client(psycopg.conninfo.make_conninfo(
            dsn, application_name=f"{tag}_{key}"), pool_size=1)
    yield tag, opener


def test_lru_evicts_and_closes(dsn: str, apps: tuple[str, Any]) -> None:
    tag, opener = apps
    cache = ClientCache(max_clients=2)
    for k in ("a", "b"):
        with cache.request():
            cache.take((k,), opener(k)).list_collections()  # one pooled connection each
    assert _backends(dsn, f"{tag}_a") == 1 and _backends(dsn, f"{tag}_b") == 1
    with cache.request():
        a = cache.take(("a",), opener("a"))  # a hit: "a" becomes the most recent
        assert cache.opened == 2
        a.list_collections()
    with cache.request():
        cache.take(("c",), opener("c")).list_collections()
    # "b" was the least recently used: evicted, its connections closed
    assert cache.keys() == [("a",), ("c",)] and cache.closed == 1
    assert _backends(dsn, f"{tag}_b") == 0 and _backends(dsn, f"{tag}_a") == 1
    with cache.request():  # a key seen before and evicted: opened again
        cache.take(("b",), opener("b")).list_collections()
    assert len(cache) == 2 and cache.opened == 4 and cache.closed == 2
    cache.close()
    assert cache.closed == 4 and len(cache) == 0
    assert sum(_backends(dsn, f"{tag}_{k}") for k in "abc") == 0


def test_eviction_waits_for_the_request_in_flight(dsn: str, apps: tuple[str, Any]) -> None:
    tag, opener = apps
    cache = ClientCache(max_clients=1)
    inside, done = threading.Event(), threading.Event()
    seen: list[Any] = []

    def long_request() -> None:
        with cache.request():
            c = cache.take(("a",), opener("a"))
            c.list_collections()
            inside.set()
            done.wait(20)
            seen.append(c.list_collections())  # still usable after its eviction
    t = threading.Thread(target=long_request)
    t.start()
    assert inside.wait(20)
    with cache.request():
        cache.take(("b",), opener("b")).list_collections()  # evicts "a", held: not closed
    assert cache.keys() == [("b",)] and cache.closed == 0
    assert _backends(dsn, f"{tag}_a") == 1
    done.set()
    t.join(20)
    assert isinstance(seen[0], list)
    assert cache.closed == 1 and _backends(dsn, f"{tag}_a") == 0  # closed as it let go
    cache.close()
    with pytest.raises(InvalidArgument):
        ClientCache(max_clients=0)
    with pytest.raises(RuntimeError):  # a take outside a request would never be let go
        cache.take(("x",), opener("x"))


@pytest.fixture
def databases(dsn: str) -> Iterator[list[str]]:
    names = ["cache_db_" + uuid.uuid4().hex[:6] for _ in range(3)]
    yield names
    with psycopg.connect(dsn, autocommit=True) as c:
        for db in names:
            c.execute(psycopg.sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                psycopg.sql.Identifier(db)))
            c.execute("DELETE FROM vecpg.collections WHERE schema_name = %s", (db,))
            c.execute("DELETE FROM vecpg.databases WHERE schema_name = %s", (db,))


def test_server_bounds_its_clients(dsn: str, databases: list[str]) -> None:
    srv = serve("127.0.0.1", 0, dsn=dsn, workers=2, max_clients=2)
    uri = f"http://127.0.0.1:{srv.port}"
    admin = pymilvus.MilvusClient(uri=uri)
    clients = []
    try:
        for db in databases:
            admin.create_database(db)
        clients = [pymilvus.MilvusClient(uri=uri, db_name=db) for db in databases]
        for round_ in range(2):  # every database in turn, twice: each reopened on its turn
            for c in clients:
                if round_ == 0:
                    c.create_collection("t", dimension=2)
                    c.insert("t", [{"id": 1, "vector": [1.0, 0.0]}])
                assert c.query("t", filter="id == 1", output_fields=["id"]) == [{"id": 1}]
                assert len(srv.service.clients) <= 2
        cache = srv.service.clients
        assert cache.closed >= 4 and cache.opened - cache.closed == len(cache) == 2
    finally:
        for c in clients:
            c.close()
        admin.close()
        srv.stop(None)


def test_collection_schema_and_search_resume(client: vecpg.Client) -> None:
    client.create_collection("docs", dimension=4, metric_type="L2")
    rng = np.random.default_rng(4)
    client.insert("docs", [{"id": i, "vector": rng.random(4).astype(np.float32).tolist(),
                            "n": i % 3} for i in range(40)])
    schema = client.collection_schema("docs")
    assert schema.primary_field.name == "id" and [f.name for f in schema.vector_fields] == [
        "vector"]
    with pytest.raises(vecpg.errors.CollectionNotFound):
        client.collection_schema("nope")
    q = [[0.5, 0.5, 0.5, 0.5]]
    with client.search_iterator("docs", q, batch_size=40, filter="n != 1") as it:
        every = [h.id for h in it.next()]
    first = client.search_iterator("docs", q, batch_size=7, filter="n != 1")
    assert first.cursor is None
    got = [h.id for h in first.next()]
    cursor = first.cursor
    first.close()
    assert cursor is not None
    # a new iterator resumed there: the rest, none twice, none skipped
    with client.search_iterator("docs", q, batch_size=7, filter="n != 1") as second:
        second.resume(cursor)
        for batch in second:
            got.extend(h.id for h in batch)
        with pytest.raises(InvalidArgument):  # only before the first batch
            second.resume(cursor)
    assert got == every and len(every) == len(client.query("docs", filter="n != 1"))
    with client.search_iterator("docs", q, batch_size=7) as third:
        for bad in ("x", (1.0,), ("a", 1), [1.0, 1]):
            with pytest.raises(InvalidArgument):
                third.resume(bad)  # type: ignore[arg-type]
        third.resume(None)  # from the start
        assert len(third.next()) == 7
