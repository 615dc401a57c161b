"""Query and search iterators on a consistent snapshot, against a real Postgres: every row
exactly once across batches (filter, partitions, limit, offset, INT64 and VARCHAR keys),
other clients' writes unseen mid-iteration, search batches equal to exact search for
float and binary metrics (ties included), the pool never leaking, typed errors."""

from __future__ import annotations

import gc
import itertools
import weakref
from collections.abc import Iterator
from typing import Any

import numpy as np
import psycopg
import pytest

import vecpg
from vecpg import DataType
from vecpg.iterators import QueryIterator, SearchIterator
from vecpg.results import Hits

DIM = 8
N = 300


# The two ways in: through these helpers, so the tests switch to client.query_iterator /
# client.search_iterator by changing one line each.
def query_iterator(client: vecpg.Client, collection_name: str, **kwargs: Any) -> QueryIterator:
    return _made(client.query_iterator(collection_name, **kwargs))


def search_iterator(client: vecpg.Client, collection_name: str, data: Any,
                    **kwargs: Any) -> SearchIterator:
    return _made(client.search_iterator(collection_name, data, **kwargs))


# iterators a test made (weakly: a dropped one must go), closed before the fixtures drop
# its collections
_open: list[weakref.ref[Any]] = []


def _made(it: Any) -> Any:
    _open.append(weakref.ref(it))
    return it


def _close_made() -> None:
    # a failed test's iterators live on in its traceback; their snapshots would hold locks
    # that the fixtures' DROPs wait for
    while _open:
        it = _open.pop()()
        if it is not None:
            it.close()


@pytest.fixture
def schema_name(schema_name: str) -> Iterator[str]:
    yield schema_name
    _close_made()


@pytest.fixture
def client(client: vecpg.Client) -> Iterator[vecpg.Client]:
    yield client
    _close_made()


def _drain(it: Any, batch_size: int) -> list[Any]:
    """Every item of ``it``, checking pymilvus' batch shape: full batches, then a short one
    (possibly empty), then empty batches."""
    out: list[Any] = []
    while True:
        batch = it.next()
        assert len(batch) <= batch_size
        out += batch
        if len(batch) < batch_size:
            break
    assert it.next() == [] and it.next() == []
    return out


def _keys(int_keys: bool) -> list[Any]:
    rng = np.random.default_rng(7)
    if int_keys:  # spread over int64, negatives included, inserted out of order
        return [int(k) for k in rng.choice(np.arange(-10**6, 10**6), N, replace=False)]
    letters = np.array(list("aAbBzZ09_-"))
    return list(dict.fromkeys("".join(rng.choice(letters, 6)) for _ in range(N * 2)))[:N]


def _collection(client: vecpg.Client, name: str, *, int_keys: bool = True,
                metric: str = "L2", vectors: np.ndarray | None = None) -> list[Any]:
    """A collection of N rows (key, vector, tag, title, dynamic field), a third of them in
    partition p1; returns the keys in insertion order."""
    schema = client.create_schema(enable_dynamic_field=True)
    if int_keys:
        schema.add_field("pk", DataType.INT64, is_primary=True)
    else:
        schema.add_field("pk", DataType.VARCHAR, is_primary=True, max_length=16)
    schema.add_field("tag", DataType.INT64)
    schema.add_field("title", DataType.VARCHAR, max_length=32)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=DIM)
    client.create_collection(name, schema=schema, metric_type=metric)
    client.create_partition(name, "p1")
    keys = _keys(int_keys)
    if vectors is None:
        vectors = np.random.default_rng(1).normal(size=(N, DIM)).astype(np.float32)
    rows = [{"pk": k, "tag": i % 5, "title": f"t{i}", "vec": vectors[i], "extra": i}
            for i, k in enumerate(keys)]
    client.insert(name, [r for i, r in enumerate(rows) if i % 3])
    client.insert(name, [r for i, r in enumerate(rows) if not i % 3], partition_name="p1")
    return keys


@pytest.mark.parametrize("int_keys", [True, False], ids=["int64", "varchar"])
@pytest.mark.parametrize("case", [
    {},
    {"filter": "tag in [1, 3] and extra >= 10"},
    {"partition_names": ["p1"]},
    {"filter": "tag != 2", "partition_names": ["_default"], "limit": 57},
    {"limit": 100, "offset": 33},
    {"offset": 250, "output_fields": ["title", "extra"]},
    {"offset": N + 5},
    {"limit": 0},
], ids=["all", "filter", "partition", "filter-partition-limit", "limit-offset",
        "offset-fields", "offset-past-end", "limit0"])
def test_query_iterator_returns_every_row_once(client: vecpg.Client, int_keys: bool,
                                               case: dict[str, Any]) -> None:
    _collection(client, "c", int_keys=int_keys)
    kw = dict(case)
    offset, limit = kw.pop("offset", 0), kw.pop("limit", -1)
    expected = client.query("c", limit=None if limit == -1 else limit, offset=offset,
                            output_fields=kw.get("output_fields"),
                            filter=kw.get("filter", ""),
                            partition_names=kw.get("partition_names"))
    for batch_size in (1, 7, 1000):
        it = query_iterator(client, "c", batch_size=batch_size, limit=limit, offset=offset,
                            **kw)
        got = _drain(it, batch_size)
        assert got == expected  # the same rows and fields, in primary-key order
        assert len({r["pk"] for r in got}) == len(got)
    if not case:
        assert len(expected) == N
    if case.get("filter", "").startswith("tag in"):
        assert expected and all(r["tag"] in (1, 3) and r["extra"] >= 10 for r in expected)


def test_query_iterator_fields_and_filter_params(client: vecpg.Client) -> None:
    _collection(client, "c")
    it = query_iterator(client, "c", batch_size=10, filter="tag == {t}",
                        filter_params={"t": 4}, output_fields=["vec"])
    got = _drain(it, 10)
    assert len(got) == N // 5
    assert set(got[0]) == {"pk", "vec"} and len(got[0]["vec"]) == DIM
    assert got == client.query("c", filter="tag == 4", output_fields=["vec"])


@pytest.mark.parametrize("int_keys", [True, False], ids=["int64", "varchar"])
def test_query_iterator_reads_one_snapshot(client: vecpg.Client, dsn: str,
                                           schema_name: str, int_keys: bool) -> None:
    keys = _collection(client, "c", int_keys=int_keys)
    before = client.query("c", output_fields=["title"])
    it = query_iterator(client, "c", batch_size=20, output_fields=["title"])
    new_key: Any = 10**7 if int_keys else "~new"
    with vecpg.connect(dsn, schema=schema_name) as other:
        # committed after the iterator began, before its first batch
        other.insert("c", [{"pk": new_key, "tag": 0, "title": "new", "vec": [0.0] * DIM}])
        first = it.next()
        # committed between batches: rows ahead of the cursor and behind it, deleted,
        # changed, added; and the iterator's own client writing meanwhile
        ahead = [r["pk"] for r in before[100:110]]
        other.delete("c", ids=ahead)
        other.upsert("c", [{"pk": before[150]["pk"], "tag": 9, "title": "changed",
                            "vec": [1.0] * DIM}])
        low: Any = -10**7 if int_keys else "!low"
        other.insert("c", [{"pk": low, "tag": 0, "title": "low", "vec": [0.0] * DIM}])
        client.insert("c", [{"pk": (new_key + 1) if int_keys else "~new2", "tag": 0,
                             "title": "mine", "vec": [0.0] * DIM}])
        rest = _drain(it, 20)
        assert first + rest == before  # exactly the rows as they were, each once
        # and the writes did happen
        assert other.count("c") == N + 3 - len(ahead)
    assert len(keys) == N


def _search_collection(client: vecpg.Client, metric: str, int_keys: bool = True) -> np.ndarray:
    """Float vectors with exact duplicates (rows 200.. repeat rows 0..), so distances tie."""
    vecs = np.random.default_rng(3).normal(size=(N, DIM)).astype(np.float32)
    vecs[200:260] = vecs[0:60]
    vecs[260:280] = vecs[0:20]
    _collection(client, "c", int_keys=int_keys, metric=metric, vectors=vecs)
    return vecs


def _assert_equals_exact(got: list[Any], exact: list[Any], metric: str) -> None:
    """Same distances in the same order and the same rows; rows at equal distance in
    primary-key order (exact search leaves their order open)."""
    assert [h.distance for h in got] == [h.distance for h in exact]
    assert sorted(map(str, (h.id for h in got))) == sorted(map(str, (h.id for h in exact)))
    d = [h.distance for h in got]
    if metric in ("IP", "COSINE"):  # similarities: largest first
        d = [-x for x in d]
    assert all(a <= b for a, b in itertools.pairwise(d))
    ties = 0
    for a, b in itertools.pairwise(got):
        if a.distance == b.distance:
            ties += 1
            assert a.id < b.id
    assert ties > 0  # the duplicates made some


@pytest.mark.parametrize("metric", ["L2", "IP", "COSINE"])
def test_search_iterator_equals_exact_search(client: vecpg.Client, metric: str) -> None:
    vecs = _search_collection(client, metric)
    # an ANN index on the field must not make the iterator approximate
    client.create_index("c", field_name="vec", index_type="HNSW", metric_type=metric,
                        params={"M": 4, "efConstruction": 8})
    q = vecs[5] + np.float32(0.01)
    exact = client.search("c", [q], limit=N, search_params={"exact": True},
                          output_fields=["title"])[0]
    for batch_size in (1, 13, 1000):
        got = _drain(search_iterator(client, "c", [q], batch_size=batch_size,
                                     output_fields=["title"]), batch_size)
        assert len(got) == N
        _assert_equals_exact(got, exact, metric)
        assert [h["title"] for h in got] == [h.fields["title"] for h in got]
        assert {h.id: h["title"] for h in got} == {h.id: h["title"] for h in exact}
    if metric == "L2":  # squared, as search returns it
        top = got[0]
        row = np.asarray(client.get("c", top.id, output_fields=["vec"])[0]["vec"])
        assert top.distance == pytest.approx(float(((row - q) ** 2).sum()), rel=1e-5)


def test_search_iterator_filter_limit_partitions_varchar(client: vecpg.Client) -> None:
    vecs = _search_collection(client, "COSINE", int_keys=False)
    q = vecs[0]
    kw: dict[str, Any] = {"filter": "tag in [0, 1, 2]", "partition_names": ["_default"]}
    exact = client.search("c", [q], limit=N, search_params={"exact": True}, **kw)[0]
    got = _drain(search_iterator(client, "c", q, batch_size=9, **kw), 9)
    _assert_equals_exact(got, exact, "COSINE")
    assert isinstance(got[0].id, str)
    # limit: the first hits, in batches of batch_size then the rest
    it = search_iterator(client, "c", [q], batch_size=9, limit=40, **kw)
    sizes = []
    while batch := it.next():
        assert isinstance(batch, Hits)
        sizes.append(len(batch))
        assert batch.distances == [h.distance for h in batch]
    assert sizes == [9, 9, 9, 9, 4]
    assert it.next() == []


def test_search_iterator_range_round_and_external_filter(client: vecpg.Client) -> None:
    vecs = _search_collection(client, "L2")
    q = vecs[7]
    sp = {"metric_type": "L2", "params": {"radius": 20.0, "range_filter": 1.0}}
    exact = client.search("c", [q], limit=N, search_params={**sp, "exact": True})[0]
    got = _drain(search_iterator(client, "c", [q], batch_size=5, search_params=sp), 5)
    assert 0 < len(got) < N
    assert [h.distance for h in got] == [h.distance for h in exact]
    assert all(1.0 <= h.distance < 20.0 for h in got)
    rounded = _drain(search_iterator(client, "c", [q], batch_size=50, round_decimal=2), 50)
    assert all(h.distance == round(h.distance, 2) for h in rounded)
    # a client-side filter: batches are still full, the kept hits in order
    odd = search_iterator(client, "c", [q], batch_size=10,
                          external_filter_func=lambda hits: [h for h in hits if h.id % 2])
    every = _drain(search_iterator(client, "c", [q], batch_size=1000), 1000)
    assert [h.id for h in _drain(odd, 10)] == [h.id for h in every if h.id % 2]


@pytest.mark.parametrize("metric", ["HAMMING", "JACCARD"])
def test_search_iterator_binary_metric_equals_exact_search(client: vecpg.Client,
                                                           metric: str) -> None:
    bits = np.random.default_rng(5).random((N, 32)) < 0.3
    schema = client.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("fp", DataType.BINARY_VECTOR, dim=32)
    client.create_collection("b", schema=schema, metric_type=metric)
    client.insert("b", {"id": np.arange(N), "fp": np.packbits(bits, axis=1)})
    client.create_index("b", field_name="fp", index_type="BIN_FLAT", metric_type=metric)
    q = np.packbits(bits[3:4], axis=1)
    exact = client.search("b", q, limit=N, search_params={"exact": True})[0]
    got = _drain(search_iterator(client, "b", q, batch_size=16), 16)
    assert len(got) == N
    _assert_equals_exact(got, exact, metric)


def test_search_iterator_reads_one_snapshot(client: vecpg.Client, dsn: str,
                                            schema_name: str) -> None:
    vecs = _search_collection(client, "L2")
    q = vecs[0]
    before = client.search("c", [q], limit=N, search_params={"exact": True})[0]
    it = search_iterator(client, "c", [q], batch_size=25)
    with vecpg.connect(dsn, schema=schema_name) as other:
        first = it.next()
        # the closest row possible, a row ahead of the cursor gone
        other.insert("c", [{"pk": 10**8, "tag": 0, "title": "x", "vec": q}])
        other.delete("c", ids=[before[100].id])
        rest = _drain(it, 25)
    _assert_equals_exact(first + rest, before, "L2")


def test_closing_gives_the_connection_back(dsn: str, schema_name: str) -> None:
    statements: list[str] = []
    with vecpg.connect(dsn, schema=schema_name, pool_size=2, pool_timeout=1.0,
                       tracer=lambda s, p: statements.append(s)) as c:
        vecs = _search_collection(c, "L2")
        for _ in range(3):  # close()
            it = query_iterator(c, "c", batch_size=10)
            assert len(it.next()) == 10
            it.close()
            it.close()
            assert it.next() == []
        for _ in range(3):  # a with block
            with search_iterator(c, "c", [vecs[0]], batch_size=10) as s:
                assert len(s.next()) == 10
        for _ in range(3):  # exhausted, never closed
            assert len(_drain(query_iterator(c, "c", batch_size=N), N)) == N
        for _ in range(3):  # dropped
            it = query_iterator(c, "c", batch_size=10)
            it.next()
            del it
            gc.collect()
        # two open iterators hold both connections: a third waits, then a typed error
        a, b = query_iterator(c, "c"), search_iterator(c, "c", [vecs[0]])
        with pytest.raises(vecpg.PoolTimeout):
            query_iterator(c, "c")
        a.close()
        b.close()
        assert c.count("c") == N
        assert list(query_iterator(c, "c", batch_size=100, limit=250)) != []
    begins = [s for s in statements if s.startswith("BEGIN")]
    assert begins and set(begins) == {"BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"}
    assert statements.count("COMMIT") >= len(begins) - 1  # the last one: client closed


def test_a_lost_connection_is_a_typed_error(client: vecpg.Client, dsn: str) -> None:
    _collection(client, "c")
    it = query_iterator(client, "c", batch_size=10)
    assert it._snapshot is not None and it._snapshot._db is not None
    pid = it._snapshot._db.backend_pid
    it.next()
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    with pytest.raises(vecpg.ServerUnavailable):
        it.next()
    with pytest.raises(vecpg.VecpgError, match="stopped at an error"):
        it.next()
    assert len(_drain(query_iterator(client, "c", batch_size=100), 100)) == N


@pytest.mark.parametrize("kwargs, error", [
    ({"batch_size": 0}, vecpg.InvalidArgument),
    ({"batch_size": -5}, vecpg.InvalidArgument),
    ({"batch_size": 16385}, vecpg.InvalidArgument),
    ({"batch_size": "10"}, vecpg.InvalidArgument),
    ({"batch_size": True}, vecpg.InvalidArgument),
    ({"limit": -2}, vecpg.InvalidArgument),
    ({"limit": 2.5}, vecpg.InvalidArgument),
    ({"offset": -1}, vecpg.InvalidArgument),
    ({"offset": np.array([1, 2])}, vecpg.InvalidArgument),
    ({"filter": 3}, vecpg.InvalidArgument),
    ({"filter": "tag >"}, vecpg.FilterError),
    ({"filter": "tag == {t}", "filter_params": [1]}, vecpg.InvalidArgument),
    ({"output_fields": ["count(*)"]}, vecpg.InvalidArgument),
    ({"output_fields": "nosuch-field"}, vecpg.InvalidArgument),
    ({"output_fields": [1]}, vecpg.InvalidArgument),
    ({"partition_names": ["nope"]}, vecpg.PartitionNotFound),
    ({"partition_names": 5}, vecpg.InvalidArgument),
])
def test_query_iterator_bad_arguments(dsn: str, schema_name: str, kwargs: dict[str, Any],
                                      error: type[Exception]) -> None:
    with vecpg.connect(dsn, schema=schema_name, pool_size=1, pool_timeout=1.0) as c:
        _collection(c, "c")
        with pytest.raises(error):
            query_iterator(c, "c", **kwargs)
        # nothing held: the only connection is free
        assert len(query_iterator(c, "c", batch_size=5).next()) == 5


@pytest.mark.parametrize("kwargs, error", [
    ({"data": [[0.0] * DIM, [1.0] * DIM]}, vecpg.InvalidArgument),
    ({"data": []}, vecpg.InvalidArgument),
    ({"data": [[0.0] * (DIM + 1)]}, vecpg.DimensionMismatch),
    ({"data": [[float("nan")] * DIM]}, vecpg.InvalidVector),
    ({"batch_size": 0}, vecpg.InvalidArgument),
    ({"limit": -3}, vecpg.InvalidArgument),
    ({"offset": 5}, vecpg.InvalidArgument),
    ({"search_params": {"offset": 5}}, vecpg.InvalidArgument),
    ({"search_params": {"metric_type": "TANIMOTO"}}, vecpg.MetricMismatch),
    ({"search_params": {"metric_type": "NOPE"}}, vecpg.InvalidArgument),
    ({"search_params": {"params": {"radius": 1.0, "range_filter": 2.0}}},
     vecpg.InvalidArgument),
    ({"search_params": {"no_such_knob": 1}}, vecpg.InvalidArgument),
    ({"search_params": "fast"}, vecpg.InvalidArgument),
    ({"round_decimal": 16}, vecpg.InvalidArgument),
    ({"round_decimal": "2"}, vecpg.InvalidArgument),
    ({"anns_field": "nope"}, vecpg.InvalidArgument),
    ({"filter": "title like"}, vecpg.FilterError),
    ({"partition_names": ["nope"]}, vecpg.PartitionNotFound),
    ({"external_filter_func": 3}, vecpg.InvalidArgument),
])
def test_search_iterator_bad_arguments(dsn: str, schema_name: str, kwargs: dict[str, Any],
                                       error: type[Exception]) -> None:
    with vecpg.connect(dsn, schema=schema_name, pool_size=1, pool_timeout=1.0) as c:
        _collection(c, "c")
        kw = dict(kwargs)
        data = kw.pop("data", [[0.5] * DIM])
        with pytest.raises(error):
            search_iterator(c, "c", data, **kw)
        assert len(search_iterator(c, "c", [[0.5] * DIM], batch_size=5).next()) == 5


def test_missing_collection_and_bad_external_filter(client: vecpg.Client) -> None:
    with pytest.raises(vecpg.CollectionNotFound):
        query_iterator(client, "nope")
    with pytest.raises(vecpg.CollectionNotFound):
        search_iterator(client, "nope", [[0.0] * DIM])
    _collection(client, "c")
    it = search_iterator(client, "c", [[0.0] * DIM], batch_size=5,
                         external_filter_func=lambda hits: len(hits))
    with pytest.raises(vecpg.InvalidArgument, match="external_filter_func"):
        it.next()
