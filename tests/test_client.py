"""The client API against a real Postgres: collections, data, partitions, indexes, search
shape, bad input and injection attempts."""

from __future__ import annotations

import contextlib

import numpy as np
import psycopg
import pytest
from psycopg import sql

import vecpg
from vecpg import DataType


def _docs(client, name: str = "docs", dim: int = 4, n: int = 50, seed: int = 0):
    rng = np.random.default_rng(seed)
    client.create_collection(name, dimension=dim, metric_type="L2")
    vecs = rng.normal(size=(n, dim)).astype(np.float32)
    rows = [{"id": i, "vector": vecs[i], "color": ["red", "green", "blue"][i % 3], "n": i}
            for i in range(n)]
    client.insert(name, rows)
    return vecs


def test_collection_lifecycle(client) -> None:
    assert client.list_collections() == []
    client.create_collection("docs", dimension=4)
    assert client.has_collection("docs")
    assert client.list_collections() == ["docs"]
    d = client.describe_collection("docs")
    assert d["primary_field"] == "id" and d["metrics"] == {"vector": "COSINE"}
    assert [f["name"] for f in d["fields"]] == ["id", "vector"]
    assert d["enable_dynamic_field"] is True and d["partitions"] == ["_default"]
    with pytest.raises(vecpg.AlreadyExists):
        client.create_collection("docs", dimension=4)
    client.insert("docs", [{"id": 1, "vector": [1, 0, 0, 0]}])
    # calls Milvus code makes, kept so it runs unchanged
    client.load_collection("docs")
    client.flush("docs")
    assert str(client.get_load_state("docs")["state"]).endswith("Loaded")  # pymilvus' enum
    assert client.get_collection_stats("docs") == {"row_count": 1}
    client.release_collection("docs")
    client.rename_collection("docs", "papers")
    assert client.list_collections() == ["papers"]
    assert client.count("papers") == 1
    with pytest.raises(vecpg.CollectionNotFound):
        client.count("docs")
    client.drop_collection("papers")
    client.drop_collection("papers")  # idempotent, as in Milvus
    assert not client.has_collection("papers")


def test_rename_keeps_indexes(client) -> None:
    _docs(client)
    client.create_index("docs", field_name="vector", index_type="HNSW", metric_type="L2")
    client.rename_collection("docs", "docs2")
    assert client.list_indexes("docs2") == ["vector"]
    assert client.describe_index("docs2", "vector")["total_bytes"] > 0
    client.create_collection("docs", dimension=4)  # the old name is free again
    client.create_index("docs", field_name="vector", index_type="HNSW", metric_type="L2")


def test_full_schema_roundtrip(client) -> None:
    schema = client.create_schema(enable_dynamic_field=True)
    schema.add_field("pk", DataType.VARCHAR, is_primary=True, max_length=20)
    schema.add_field("flag", DataType.BOOL)
    schema.add_field("i8", DataType.INT8)
    schema.add_field("i16", DataType.INT16)
    schema.add_field("i32", DataType.INT32)
    schema.add_field("i64", DataType.INT64)
    schema.add_field("f", DataType.FLOAT)
    schema.add_field("d", DataType.DOUBLE)
    schema.add_field("s", DataType.VARCHAR, max_length=10, nullable=True)
    schema.add_field("j", DataType.JSON)
    schema.add_field("tags", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=4,
                     max_length=10)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=3)
    schema.add_field("h", DataType.FLOAT16_VECTOR, dim=3)
    schema.add_field("b", DataType.BINARY_VECTOR, dim=16)
    schema.add_field("sp", DataType.SPARSE_FLOAT_VECTOR, dim=100)
    client.create_collection("all", schema=schema)
    row = {"pk": "a", "flag": True, "i8": -128, "i16": 300, "i32": -70000, "i64": 2**40,
           "f": 1.5, "d": 2.25, "s": None, "j": {"x": [1, 2], "y": "z"}, "tags": ["p", "q"],
           "v": [0.5, -1, 2], "h": [0.25, 0.5, 1], "b": b"\xf0\x0f", "sp": {3: 1.5, 97: -2.0},
           "extra": "dynamic", "score": 7}
    res = client.insert("all", [row])
    assert res == {"insert_count": 1, "ids": ["a"]}
    got = client.get("all", ["a"], output_fields=["*"])[0]
    for key in ("pk", "flag", "i8", "i16", "i32", "i64", "f", "d", "s", "j", "tags", "extra",
                "score"):
        assert got[key] == row[key], key
    np.testing.assert_array_equal(got["v"], np.array(row["v"], dtype=np.float32))
    np.testing.assert_array_equal(got["h"], np.array(row["h"], dtype=np.float32))
    assert got["b"] == row["b"]
    assert got["sp"] == row["sp"]
    # default output: scalars and dynamic keys, no vectors
    plain = client.query("all", 'pk == "a"')[0]
    assert "v" not in plain and plain["extra"] == "dynamic"


def test_auto_id_and_upsert(client) -> None:
    client.create_collection("auto", dimension=2, auto_id=True)
    res = client.insert("auto", [{"vector": [1, 2]}, {"vector": [3, 4]}])
    assert res["insert_count"] == 2 and len(set(res["ids"])) == 2
    more = client.insert("auto", {"vector": np.ones((3, 2), dtype=np.float32)})
    assert not set(more["ids"]) & set(res["ids"])
    assert client.count("auto") == 5
    first = res["ids"][0]
    up = client.upsert("auto", [{"id": first, "vector": [9, 9], "note": "x"},
                                {"id": 10**9, "vector": [0, 1]}])
    assert up["upsert_count"] == 2
    assert client.count("auto") == 6
    row = client.get("auto", [first], output_fields=["vector", "note"])[0]
    assert list(row["vector"]) == [9, 9] and row["note"] == "x"


def test_columnar_insert_takes_a_range_of_keys(client) -> None:
    client.create_collection("cols", dimension=2)
    res = client.insert("cols", {"id": range(5, 8), "vector": np.ones((3, 2), np.float32)})
    assert res["ids"] == [5, 6, 7]
    assert sorted(r["id"] for r in client.query("cols", "id >= 0")) == [5, 6, 7]


def test_query_get_delete(client) -> None:
    _docs(client, n=30)
    assert client.count("docs") == 30
    red = client.query("docs", 'color == "red"', output_fields=["color", "n"])
    assert [r["id"] for r in red] == list(range(0, 30, 3))
    assert red[0] == {"id": 0, "color": "red", "n": 0}
    page = client.query("docs", "n >= 10", output_fields=["n"], limit=5, offset=5)
    assert [r["id"] for r in page] == [15, 16, 17, 18, 19]
    assert [r["id"] for r in client.get("docs", [3, 1, 999])] == [1, 3]
    assert client.query("docs", "n < 3", output_fields=["count(*)"]) == [{"count(*)": 3}]
    assert client.delete("docs", ids=[0, 1, 2])["delete_count"] == 3
    assert client.delete("docs", filter='color == "blue"')["delete_count"] == 9
    assert client.count("docs") == 18
    with pytest.raises(vecpg.InvalidArgument):
        client.delete("docs")  # neither ids nor filter: refuse rather than delete everything


def test_search_shape_and_fields(client) -> None:
    vecs = _docs(client)
    one = client.search("docs", vecs[7], limit=3, output_fields=["color"])
    assert len(one) == 1 and len(one[0]) == 3
    hit = one[0][0]
    assert hit.id == 7 and hit.distance == pytest.approx(0.0, abs=1e-6)
    assert hit.fields == {"color": ["red", "green", "blue"][7 % 3]}
    assert hit["id"] == 7  # dict access, as in pymilvus
    assert hit["color"] == hit.get("color") == hit.color == hit.entity["color"]  # the entity's
    assert hit.get("nope", 5) == 5 and one[0].ids[0] == 7 and one[0].distances[0] == hit.distance
    many = client.search("docs", vecs[:5], limit=4, filter='color == "red"')
    assert len(many) == 5 and all(len(h) == 4 for h in many)
    assert all(client.get("docs", [h.id], output_fields=["color"])[0]["color"] == "red"
               for hits in many for h in hits)
    ds = [h.distance for h in many[0]]
    assert ds == sorted(ds)
    page = client.search("docs", vecs[:1], limit=3, offset=2)[0]
    full = client.search("docs", vecs[:1], limit=5)[0]
    assert [h.id for h in page] == [h.id for h in full[2:5]]
    # a filter nothing satisfies: an empty list per query, not an error
    assert client.search("docs", vecs[:2], limit=3, filter="n > 1000") == [[], []]


def test_partitions(client) -> None:
    client.create_collection("p", dimension=2)
    client.create_partition("p", "eu")
    assert client.list_partitions("p") == ["_default", "eu"]
    assert client.has_partition("p", "eu") and not client.has_partition("p", "us")
    client.insert("p", [{"id": 1, "vector": [1, 0]}])
    client.insert("p", [{"id": 2, "vector": [1, 0.1]}], partition_name="eu")
    hits = client.search("p", [[1, 0]], limit=5, partition_names=["eu"])[0]
    assert [h.id for h in hits] == [2]
    assert [r["id"] for r in client.query("p", partition_names=["_default"])] == [1]
    with pytest.raises(vecpg.PartitionNotFound):
        client.insert("p", [{"id": 3, "vector": [0, 1]}], partition_name="us")
    with pytest.raises(vecpg.AlreadyExists):
        client.create_partition("p", "eu")
    client.drop_partition("p", "eu")
    assert client.list_partitions("p") == ["_default"] and client.count("p") == 1
    with pytest.raises(vecpg.InvalidArgument):
        client.drop_partition("p", "_default")


def test_index_lifecycle_and_settings(client) -> None:
    vecs = _docs(client, n=200, dim=8)
    seen: list[tuple[str, list]] = []
    client.tracer = lambda q, p: seen.append((q, p))
    params = client.prepare_index_params()
    params.add_index("vector", index_type="HNSW", metric_type="L2", params={"M": 8,
                                                                           "efConstruction": 32})
    params.add_index("id", index_type="STL_SORT", index_name="id_sort")
    client.create_index("docs", params)
    assert sorted(client.list_indexes("docs")) == ["id_sort", "vector"]
    d = client.describe_index("docs", "vector")
    assert d["index_type"] == "HNSW" and d["metric_type"] == "L2"
    assert d["params"] == {"M": 8, "efConstruction": 32}
    assert d["total_bytes"] > 0 and d["bytes_per_vector"] > 0
    seen.clear()
    client.search("docs", vecs[:2], limit=50, search_params={"params": {"ef": 20}})
    text = " ".join(q for q, _ in seen)
    # ef_search is raised to the limit: pgvector returns at most ef_search rows
    assert any(p[:2] == ["hnsw.ef_search", "50"] for _, p in seen), seen
    assert "ORDER BY _vecpg_d" in text
    with pytest.raises(vecpg.AlreadyExists):
        client.create_index("docs", field_name="vector", index_type="IVF_FLAT")
    client.drop_index("docs", "vector")
    client.drop_index("docs", "vector")  # not there: no error, as in Milvus
    assert "vector" not in client.list_indexes("docs")
    client.create_index("docs", field_name="vector", index_type="IVF_FLAT",
                        params={"nlist": 4}, metric_type="L2")
    seen.clear()
    hits = client.search("docs", vecs[:1], limit=5, search_params={"nprobe": 4})
    assert hits[0][0].id == 0
    assert any(p[:2] == ["ivfflat.probes", "4"] for _, p in seen), seen
    with pytest.raises(vecpg.InvalidArgument):
        client.create_index("docs", field_name="id", index_type="HNSW")
    with pytest.raises(vecpg.InvalidArgument):
        client.create_index("docs", field_name="vector", index_type="NOPE", index_name="x")


def test_index_serves_search_like_plain_sql(client, conn: psycopg.Connection,
                                            schema_name: str) -> None:
    """The collection is a plain table: the same nearest neighbours come from plain SQL."""
    vecs = _docs(client, n=300, dim=8)
    client.create_index("docs", field_name="vector", index_type="HNSW", metric_type="L2")
    from pgvector.psycopg import register_vector

    register_vector(conn)
    # distances as Milvus returns them: squared L2
    rows = conn.execute(sql.SQL("SELECT id, (vector <-> %s) ^ 2 AS d FROM {} ORDER BY d LIMIT 5")
                        .format(sql.Identifier(schema_name, "docs")), (vecs[3],)).fetchall()
    hits = client.search("docs", [vecs[3]], limit=5, search_params={"exact": True})[0]
    assert [r[0] for r in rows] == [h.id for h in hits]
    np.testing.assert_allclose([r[1] for r in rows], [h.distance for h in hits], atol=1e-6)


def test_binary_index_types(client) -> None:
    schema = client.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("fp", DataType.BINARY_VECTOR, dim=64)
    client.create_collection("fps", schema=schema, metric_type="HAMMING")
    rng = np.random.default_rng(1)
    bits = rng.integers(0, 256, size=(100, 8), dtype=np.uint8)
    client.insert("fps", [{"id": i, "fp": bits[i].tobytes()} for i in range(100)])
    client.create_index("fps", field_name="fp", index_type="BIN_IVF_FLAT", params={"nlist": 4})
    hits = client.search("fps", [bits[5].tobytes()], limit=1, search_params={"nprobe": 4})[0]
    assert hits[0].id == 5 and hits[0].distance == 0
    with pytest.raises(vecpg.MetricMismatch):
        client.create_index("fps", field_name="fp", index_type="BIN_IVF_FLAT",
                            metric_type="JACCARD", index_name="j")
    with pytest.raises(vecpg.MetricMismatch):
        client.search("fps", [bits[0].tobytes()], search_params={"metric_type": "L2"})


# -- bad input ------------------------------------------------------------------------------

@pytest.mark.parametrize("row, error", [
    ({"id": 100, "vector": [1, 2, 3]}, vecpg.DimensionMismatch),
    ({"id": 100, "vector": [1, 2, float("nan"), 4]}, vecpg.InvalidVector),
    ({"id": 100, "vector": [1, 2, float("inf"), 4]}, vecpg.InvalidVector),
    ({"id": 100, "vector": ["a", 2, 3, 4]}, vecpg.SchemaError),
    ({"id": "x", "vector": [1, 2, 3, 4]}, vecpg.FieldTypeError),
    ({"id": 1.5, "vector": [1, 2, 3, 4]}, vecpg.FieldTypeError),
    ({"vector": [1, 2, 3, 4]}, vecpg.SchemaError),          # missing primary key
    ({"id": 100}, vecpg.SchemaError),                        # missing vector
    ({"id": 100, "vector": [1, 2, 3, 4], "title": "x" * 11}, vecpg.ValueTooLong),
    ({"id": 100, "vector": [1, 2, 3, 4], "title": 5}, vecpg.FieldTypeError),
    ({"id": 100, "vector": [1, 2, 3, 4], "nope": 5}, vecpg.SchemaError),  # unknown field
])
def test_bad_row_leaves_data_unchanged(client, row, error) -> None:
    schema = client.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=4)
    schema.add_field("title", DataType.VARCHAR, max_length=10, nullable=True)
    client.create_collection("strict", schema=schema)
    client.insert("strict", [{"id": 1, "vector": [0, 0, 0, 1]}])
    good = [{"id": 50 + i, "vector": [i, 0, 0, 0]} for i in range(5)]
    with pytest.raises(error):
        client.insert("strict", good[:2] + [row] + good[2:])
    assert client.count("strict") == 1
    assert client.query("strict", output_fields=["title"]) == [{"id": 1, "title": None}]


def test_a_key_given_again_keeps_its_last_row(client) -> None:
    """As in Milvus (where the newest row of a key is the one reads see): a key repeated
    in a batch, or inserted again, keeps its last row; upsert alike."""
    client.create_collection("d", dimension=2, metric_type="L2")
    client.insert("d", [{"id": 1, "vector": [0, 1], "n": 1}, {"id": 1, "vector": [1, 0], "n": 2}])
    assert client.query("d", ids=[1], output_fields=["vector", "n"]) == [
        {"id": 1, "vector": [1.0, 0.0], "n": 2}]
    client.insert("d", {"id": 1, "vector": [0.5, 0.5], "n": 3})  # one row as a dict
    assert client.get("d", 1, output_fields=["n"]) == [{"id": 1, "n": 3}]
    client.upsert("d", [{"id": 2, "vector": [1, 1]}, {"id": 2, "vector": [2, 2], "n": 4}])
    assert client.count("d") == 2 and client.get("d", 2)[0]["n"] == 4


@pytest.mark.parametrize("name", ["", "1abc", "a-b", "a b", "x" * 64, 'x"; DROP TABLE t; --',
                                  "dröp", None, 5])
def test_invalid_names(client, name) -> None:
    with pytest.raises(vecpg.InvalidName):
        client.create_collection(name, dimension=2)
    schema = client.create_schema()
    with pytest.raises((vecpg.InvalidName, vecpg.SchemaError)):
        schema.add_field(name, DataType.INT64, is_primary=True)


def test_numpy_query_vectors_take_the_fast_path_exactly(client) -> None:
    """float32 numpy queries are sent pre-encoded (QueryVector); they must find what the
    same values given as Python floats find, and bad values still raise."""
    from pgvector import Vector

    from vecpg.query import QueryVector

    vecs = _docs(client, n=80)
    qs = vecs[:6] + np.float32(0.01)
    for q, v in zip(QueryVector.batch(qs), qs):
        assert q.to_binary() == Vector(v).to_binary() and q.to_text() == Vector(v).to_text()
    as_lists = client.search("docs", qs.tolist(), limit=5)
    for data in (qs, list(qs)):
        got = client.search("docs", data, limit=5)
        assert [[h.id for h in hits] for hits in got] == [[h.id for h in hits] for hits in as_lists]
        np.testing.assert_allclose([[h.distance for h in hits] for hits in got],
                                   [[h.distance for h in hits] for hits in as_lists], rtol=1e-6)
    one = client.search("docs", qs[2], limit=5)
    assert [h.id for h in one[0]] == [h.id for h in as_lists[2]]
    bad = qs.copy()
    bad[3, 1] = np.inf
    with pytest.raises(vecpg.InvalidVector, match="row 3"):
        client.search("docs", bad)


def test_search_bad_input(client) -> None:
    _docs(client)
    with pytest.raises(vecpg.DimensionMismatch):
        client.search("docs", [[1, 2]])
    with pytest.raises(vecpg.InvalidVector):
        client.search("docs", [[1, 2, float("nan"), 0]])
    with pytest.raises(vecpg.FilterError):
        client.search("docs", [[1, 2, 3, 4]], filter="color ==")
    with pytest.raises(vecpg.InvalidArgument):
        client.search("docs", [[1, 2, 3, 4]], limit=0)
    with pytest.raises(vecpg.MetricMismatch):
        client.search("docs", [[1, 2, 3, 4]], search_params={"metric_type": "TANIMOTO"})
    with pytest.raises(vecpg.InvalidArgument):
        client.search("docs", [[1, 2, 3, 4]], search_params={"metric_type": "EUCLID"})
    with pytest.raises(vecpg.SchemaError):
        client.search("docs", [[1, 2, 3, 4]], output_fields=["_meta"])
    with pytest.raises(vecpg.CollectionNotFound):
        client.search("nope", [[1, 2, 3, 4]])


def test_injection_attempts(client, conn: psycopg.Connection, schema_name: str) -> None:
    _docs(client, n=9)
    evil = "x'); DROP TABLE docs; --"
    client.insert("docs", [{"id": 100, "vector": [1, 1, 1, 1], "color": evil, "n": 1}])
    assert client.query("docs", f'color == "{evil}"', output_fields=["color"]) == \
        [{"id": 100, "color": evil}]
    for expr in ['color == "a" or 1 == 1; DROP TABLE docs', "n == 1) OR (1=1",
                 'color == "\\" OR 1=1 --"', "pg_sleep(1) == 0"]:
        with contextlib.suppress(vecpg.FilterError):
            client.query("docs", expr)
    with pytest.raises(vecpg.InvalidArgument):
        client.query("docs", output_fields=['color" FROM docs; --'])
    with pytest.raises(vecpg.InvalidName):
        client.create_partition("docs", "p'; DROP TABLE docs; --")
    assert conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
        sql.Identifier(schema_name, "docs"))).fetchone()[0] == 10


def test_threads_share_a_client(client) -> None:
    """Concurrent searches from several threads return the same answers as one thread."""
    import concurrent.futures

    vecs = _docs(client, n=200, dim=8)
    want = [[h.id for h in hits] for hits in client.search("docs", vecs[:40], limit=5)]

    def one(i: int) -> list[int]:
        return [h.id for h in client.search("docs", [vecs[i]], limit=5)[0]]

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as ex:
        got = list(ex.map(one, range(40)))
    assert got == want


def test_repeated_filtered_search_follows_filter_values(client) -> None:
    """Prepared statements must not freeze a plan chosen for another filter value."""
    schema = client.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("grp", DataType.INT64)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=8)
    client.create_collection("g", schema=schema, metric_type="L2")
    rng = np.random.default_rng(3)
    n = 30000  # more rows than pgvector's hnsw.max_scan_tuples (20,000)
    grp = np.where(np.arange(n) < 10, 1, 0)  # group 1 is tiny (10 rows), group 0 is the rest
    client.insert("g", {"id": np.arange(n), "grp": grp,
                        "v": rng.normal(size=(n, 8)).astype(np.float32)})
    client.create_index("g", field_name="v", index_type="HNSW", metric_type="L2",
                        params={"M": 4, "efConstruction": 8})
    client.create_index("g", field_name="grp", index_type="STL_SORT", index_name="grp_idx")
    q = rng.normal(size=(1, 8)).astype(np.float32)
    for _ in range(8):  # past psycopg's prepare threshold, alternating selectivity
        assert len(client.search("g", q, limit=10, filter="grp == 0")[0]) == 10
        hits = client.search("g", q, limit=10, filter="grp == 1")[0]
        assert sorted(h.id for h in hits) == list(range(10))


def test_hnsw_rebuild_is_concurrent_and_recalibrates(client) -> None:
    """REINDEX CONCURRENTLY: searches in another thread keep answering while the rebuild
    runs; the index is calibrated again afterwards."""
    import threading

    rng = np.random.default_rng(4)
    x = rng.normal(size=(3000, 16)).astype(np.float32)
    client.create_collection("r", dimension=16, metric_type="L2")
    client.insert("r", {"id": np.arange(3000), "vector": x})
    client.create_index("r", field_name="vector", index_type="HNSW", metric_type="L2")
    first = client.explain("r")["index"]["calibrated_at"]
    seen: list[str] = []
    errors: list[BaseException] = []
    answered = [0]
    stop = threading.Event()

    def searching() -> None:
        while not stop.is_set():
            try:
                hits = client.search("r", x[:1], limit=5, strategy="hnsw")
                answered[0] += len(hits[0]) == 5
            except BaseException as e:  # noqa: BLE001 - the test counts them
                errors.append(e)
    t = threading.Thread(target=searching)
    t.start()
    try:
        client.tracer = lambda s, p: seen.append(s)
        client.rebuild_index("r", "vector")
    finally:
        client.tracer = None
        stop.set()
        t.join()
    assert not errors and answered[0] > 0
    assert any("REINDEX INDEX CONCURRENTLY" in s for s in seen)
    e = client.explain("r")
    assert e["index"]["calibrated_at"] is not None and e["cost_source"] == "calibration"
    assert first is not None
