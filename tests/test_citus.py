"""Distributed collections on a Citus cluster: a coordinator and two workers in containers
(the ``citus`` image of tests/conftest.py, ``vecpg/citus:pg17`` from ``docker/images.sh`` by
default; skipped with the reason when no Docker engine answers or the image is missing).

Every result on the cluster is compared with the same rows in a plain (local) table on the
coordinator, and searches with numpy's exact answer.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import psycopg
import pytest

import vecpg
from vecpg import DataType
from vecpg.errors import InvalidArgument, NotSupported, UnsupportedServer


@pytest.fixture(scope="module")
def cluster(docker_postgres: Callable[..., Any]) -> Iterator[str]:
    """A coordinator and two workers on a docker network (the ``citus`` image of
    tests/conftest.py; skipped when it cannot run); the coordinator's DSN."""
    tag = uuid.uuid4().hex[:6]
    nodes = {n: docker_postgres(
        f"citus-{tag}-{n}", kind="citus", network=f"vecpg-citus-{tag}", wait=False,
        # no TLS between the nodes (the image makes no certificates); trust on the network
        args=["-c", "shared_preload_libraries=citus", "-c", "citus.node_conninfo=sslmode=disable"],
        env={"POSTGRES_HOST_AUTH_METHOD": "trust"}) for n in ("coord", "w1", "w2")}
    try:
        for node in nodes.values():  # started together, waited for in turn
            node.wait()
            with psycopg.connect(node.dsn, autocommit=True) as c:
                c.execute("CREATE EXTENSION IF NOT EXISTS citus")
        coord = nodes["coord"]
        with psycopg.connect(coord.dsn, autocommit=True) as c:
            c.execute("SELECT citus_set_coordinator_host(%s, 5432)", (coord.name,))
            for w in ("w1", "w2"):
                c.execute("SELECT citus_add_node(%s, 5432)", (nodes[w].name,))
            assert len(c.execute("SELECT * FROM citus_get_active_worker_nodes()").fetchall()) == 2
        yield coord.dsn
    finally:
        for node in nodes.values():
            node.remove()


@pytest.fixture(scope="module")
def cc(cluster: str) -> Iterator[vecpg.Client]:
    """A client on the coordinator (a schema of its own)."""
    with vecpg.connect(cluster, schema="citus_t") as client:
        yield client


def _shards(dsn: str, table: str) -> list[tuple[str, int]]:
    """(node, rows) of each shard of ``table``."""
    with psycopg.connect(dsn, autocommit=True) as c:
        return [(r[0], int(r[1])) for r in c.execute(
            "SELECT nodename, result FROM run_command_on_shards(%s, 'SELECT count(*) FROM %%s')"
            " JOIN citus_shards USING (shardid)", (table,)).fetchall()]


def _rows(n: int, dim: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return [{"id": i, "vector": x[i].tolist(), "tag": f"t{i % 5}", "n": i % 7}
            for i in range(n)]


def _pair(cc: vecpg.Client, name: str, rows: list[dict[str, Any]], metric: str,
          **dist: Any) -> tuple[str, str]:
    """The same rows in a distributed collection and a local one."""
    dim = len(rows[0]["vector"])
    for n in (name, name + "_local"):
        cc.drop_collection(n)
    cc.create_collection(name, dimension=dim, metric_type=metric, **dist)
    cc.create_collection(name + "_local", dimension=dim, metric_type=metric)
    for n in (name, name + "_local"):
        cc.insert(n, rows)
    return name, name + "_local"


def _ids(result: Any) -> list[list[Any]]:
    return [[h["id"] for h in hits] for hits in result]


def _dists(result: Any) -> np.ndarray:
    return np.array([[h["distance"] for h in hits] for hits in result])


# -- tests --------------------------------------------------------------------------------

def test_rows_and_reads_match_one_node(cc: vecpg.Client, cluster: str) -> None:
    """insert, upsert, delete, get, query, count and filtered exact search give what the
    same calls give on a local table; the rows are spread over both workers."""
    rows = _rows(300, 8)
    d, local = _pair(cc, "crud", rows, "L2", shard_key="id", shard_count=4)
    assert cc.describe_collection(d)["properties"]["distribution"] == {
        "shard_key": "id", "shard_count": 4}
    shards = _shards(cluster, "citus_t.crud")
    assert len(shards) == 4 and sum(n for _, n in shards) == 300
    assert len({node for node, _ in shards}) == 2
    for n in (d, local):
        cc.upsert(n, [{"id": 3, "vector": [0.5] * 8, "tag": "new", "n": 99},
                      {"id": 1000, "vector": [0.1] * 8, "tag": "new", "n": 98}])
        cc.insert(n, [{"id": 4, "vector": [0.25] * 8, "tag": "again", "n": 97}])  # replaces
        assert cc.delete(n, filter='tag == "t2"') == {"delete_count": 60}
        cc.delete(n, ids=[5, 6])
        cc.upsert(n, [{"id": 8, "n": 55}], partial_update=True)
        cc.upsert(n, [{"id": 1001, "n": 56, "vector": [0.3] * 8, "tag": "p"}],
                  partial_update=True)
    keys = [3, 4, 1000, 9, 8, 1001]
    got = cc.get(d, keys, output_fields=["*"])
    assert got == cc.get(local, keys, output_fields=["*"]) and len(got) == 6
    assert [r["n"] for r in got if r["id"] in (8, 1001)] == [55, 56]
    for expr in ('tag in ["t1", "new"]', "n > 3 and n < 99", ""):
        kw: dict[str, Any] = {"filter": expr, "output_fields": ["tag", "n"], "limit": 500}
        got = cc.query(d, **kw)
        assert got == cc.query(local, **kw) and got
    assert cc.query(d, output_fields=["count(*)"]) == cc.query(local, output_fields=["count(*)"])
    q = np.random.default_rng(1).standard_normal((5, 8)).tolist()
    for expr in ("", 'tag == "t1"', "n >= 5"):
        a = cc.search(d, q, limit=10, filter=expr, output_fields=["tag"])
        b = cc.search(local, q, limit=10, filter=expr, output_fields=["tag"])
        assert _ids(a) == _ids(b)
        assert np.allclose(_dists(a), _dists(b), rtol=1e-5)
    # each shard returns its top limit + offset; the coordinator's merge skips the offset
    a = cc.search(d, q, limit=5, offset=7)
    assert _ids(a) == _ids(cc.search(local, q, limit=5, offset=7))


@pytest.mark.parametrize("metric", ["L2", "IP", "COSINE"])
def test_exact_search_every_float_metric(cc: vecpg.Client, metric: str) -> None:
    """Exact search on the cluster equals the local table's, ids and distances."""
    d, local = _pair(cc, f"m_{metric.lower()}", _rows(400, 16, seed=2), metric,
                     shard_key="id", shard_count=3)
    q = np.random.default_rng(3).standard_normal((8, 16)).tolist()
    a = cc.search(d, q, limit=10, search_params={"params": {"exact": True}})
    b = cc.search(local, q, limit=10, search_params={"params": {"exact": True}})
    assert _ids(a) == _ids(b)
    assert np.allclose(_dists(a), _dists(b), rtol=1e-5)


def _binary_pair(cc: vecpg.Client, name: str, rows: list[dict[str, Any]],
                 metric: str) -> list[str]:
    """``rows`` (id, 64-bit ``fp``, and ``k`` if they have it) in a collection distributed by
    id over 2 shards and in a local twin; their names."""
    names = [name, name + "_local"]
    for n, dist in zip(names, ({"shard_key": "id", "shard_count": 2}, {}), strict=True):
        cc.drop_collection(n)
        s = cc.create_schema()
        s.add_field("id", DataType.INT64, is_primary=True)
        s.add_field("fp", DataType.BINARY_VECTOR, dim=64)
        if "k" in rows[0]:
            s.add_field("k", DataType.INT64)
        cc.create_collection(n, schema=s, metric_type=metric, **dist)
        cc.insert(n, rows)
    return names


@pytest.mark.parametrize("metric", ["HAMMING", "JACCARD"])
def test_binary_metrics(cc: vecpg.Client, metric: str) -> None:
    """Binary vectors with HAMMING and JACCARD: the same neighbours and distances as on
    one node (exact, and through a BIN_IVF_FLAT / HNSW index built on every shard)."""
    rng = np.random.default_rng(4)
    bits = rng.integers(0, 2, (300, 64), dtype=np.uint8)
    rows = [{"id": i, "fp": np.packbits(bits[i]).tobytes(), "k": i % 3} for i in range(300)]
    names = _binary_pair(cc, f"b_{metric.lower()}", rows, metric)
    q = [np.packbits(rng.integers(0, 2, 64, dtype=np.uint8)).tobytes() for _ in range(5)]
    for expr in ("", "k == 1"):
        a = cc.search(names[0], q, limit=8, filter=expr)
        b = cc.search(names[1], q, limit=8, filter=expr)
        assert np.allclose(_dists(a), _dists(b))  # ties may order differently
        assert [sorted(x) for x in _ids(a)] == [sorted(x) for x in _ids(b)] or \
            np.allclose(_dists(a), _dists(b))
    kind = "BIN_IVF_FLAT" if metric == "HAMMING" else "HNSW"
    params = {"nlist": 4} if kind == "BIN_IVF_FLAT" else {}
    cc.create_index(names[0], cc.prepare_index_params("fp", index_type=kind, metric_type=metric,
                                                      params=params))
    got = cc.search(names[0], q, limit=8, search_params={"params": {"exact": True}})
    assert np.allclose(_dists(got), _dists(cc.search(names[1], q, limit=8)))


@pytest.mark.parametrize("metric", ["TANIMOTO", "SUBSTRUCTURE", "SUPERSTRUCTURE"])
def test_fingerprint_metrics(cc: vecpg.Client, metric: str) -> None:
    """vecpg's own binary metrics (SQL functions in schema vecpg, which must exist on the
    workers): exact search gives the same neighbours and distances as on one node."""
    rng = np.random.default_rng(6)
    bits = (rng.random((300, 64)) < 0.3).astype(np.uint8)
    rows = [{"id": i, "fp": np.packbits(bits[i]).tobytes()} for i in range(300)]
    names = _binary_pair(cc, f"f_{metric.lower()}", rows, metric)
    # queries are sub- and supersets of stored fingerprints, so both containment metrics
    # find rows
    q = [np.packbits(bits[i] & (rng.random(64) < 0.5)).tobytes() for i in range(3)] + \
        [np.packbits(bits[i] | (rng.random(64) < 0.2)).tobytes() for i in range(3, 6)]
    a = cc.search(names[0], q, limit=8)
    b = cc.search(names[1], q, limit=8)
    assert sum(map(len, b)) > 0
    assert [len(x) for x in a] == [len(x) for x in b]
    for got, want in zip(a, b, strict=True):  # ties may order differently
        assert np.allclose([h["distance"] for h in got], [h["distance"] for h in want])


def test_hnsw_settings_reach_the_workers(cc: vecpg.Client, cluster: str) -> None:
    """HNSW is built on every shard; ef set per search changes recall on the cluster (so
    it reached the workers: a session SET would not), and the planner's choice meets
    recall@10 >= 0.95 against numpy's exact answer."""
    rng = np.random.default_rng(5)
    n, dim = 4000, 48
    x = rng.standard_normal((n, dim)).astype(np.float32)
    cc.drop_collection("hn")
    cc.create_collection("hn", dimension=dim, metric_type="L2", shard_count=2)
    cc.insert("hn", {"id": np.arange(n), "vector": x})
    cc.create_index("hn", cc.prepare_index_params(
        "vector", index_type="HNSW", metric_type="L2", params={"M": 8, "efConstruction": 32}))
    with psycopg.connect(cluster, autocommit=True) as c:
        per_shard = c.execute(
            "SELECT result FROM run_command_on_shards('citus_t.hn', $$SELECT count(*) FROM "
            "pg_indexes WHERE indexdef LIKE '%%USING hnsw%%' AND tablename = "
            "split_part('%s', '.', 2)$$)").fetchall()
    assert [r[0] for r in per_shard] == ["1", "1"]
    assert cc.describe_index("hn", "vector")["total_bytes"] > n * dim * 4 / 2  # the shards'
    with psycopg.connect(cluster, autocommit=True) as c:
        (cal,) = c.execute("SELECT calibration FROM vecpg.indexes WHERE schema_name = 'citus_t'"
                           " AND collection = 'hn'").fetchone()
    # measured through the coordinator with the knob reaching the shards: recall rises with
    # ef (with the knob stuck at the workers' default the curve would be flat)
    measured = [p["recall_measured"] for p in cal["curve"]]
    assert measured[0] < measured[-1] - 0.1, cal["curve"]
    q = rng.standard_normal((40, dim)).astype(np.float32)
    truth = [set(np.argsort(((x - v) ** 2).sum(1))[:10].tolist()) for v in q]

    def recall(**kw: Any) -> float:
        got = cc.search("hn", q, limit=10, **kw)
        return float(np.mean([len(t & set(ids)) / 10 for t, ids in zip(truth, _ids(got))]))

    low = recall(search_params={"params": {"ef": 10}})
    high = recall(search_params={"params": {"ef": 400}})
    assert high >= 0.98 and low <= high - 0.15, (low, high)
    # the planner's ef for recall 0.95 (from the calibration measured on the cluster)
    e = cc.explain("hn", limit=10, strategy="hnsw")
    assert e["strategy"] == "hnsw" and e["distribution"]["task_count"] == 2
    assert recall(strategy="hnsw") >= 0.95
    assert recall() >= 0.95  # whatever it picks (exact on a loaded machine)


def test_ivfflat_probes_reach_the_workers(cc: vecpg.Client) -> None:
    """IVF_FLAT on every shard: nprobe 1 finds less than probing every list."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3000, 16)).astype(np.float32)
    cc.drop_collection("ivf")
    cc.create_collection("ivf", dimension=16, metric_type="L2", shard_count=2)
    cc.insert("ivf", {"id": np.arange(3000), "vector": x})
    cc.create_index("ivf", cc.prepare_index_params("vector", index_type="IVF_FLAT",
                                                   metric_type="L2", params={"nlist": 16}))
    q = rng.standard_normal((30, 16)).astype(np.float32)
    truth = [set(np.argsort(((x - v) ** 2).sum(1))[:10].tolist()) for v in q]

    def recall(nprobe: int) -> float:
        got = cc.search("ivf", q, limit=10, search_params={"params": {"nprobe": nprobe}})
        return float(np.mean([len(t & set(ids)) / 10 for t, ids in zip(truth, _ids(got))]))

    one, every = recall(1), recall(16)
    assert every == 1.0 and one < 0.8, (one, every)


def test_partition_key_shards_and_routes(cc: vecpg.Client, cluster: str) -> None:
    """The partition key is the shard key by default: the table's key becomes (id, key),
    yet an id stays unique through upsert and insert; a filter on the key is routed to one
    shard (EXPLAIN: one task), other filters fan out to all."""
    cc.drop_collection("pk")
    s = cc.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("tenant", DataType.VARCHAR, max_length=16, is_partition_key=True)
    s.add_field("vector", DataType.FLOAT_VECTOR, dim=4)
    cc.create_collection("pk", schema=s, metric_type="L2", shard_count=4)
    assert cc.describe_collection("pk")["properties"]["distribution"]["shard_key"] == "tenant"
    cc.insert("pk", [{"id": i, "tenant": f"u{i % 4}", "vector": [float(i)] * 4}
                     for i in range(40)])
    cc.upsert("pk", [{"id": 1, "tenant": "u3", "vector": [9.0] * 4}])  # moves to u3
    cc.insert("pk", [{"id": 2, "tenant": "u0", "vector": [8.0] * 4}])  # replaces
    assert cc.get("pk", [1, 2], output_fields=["tenant"]) == [
        {"id": 1, "tenant": "u3"}, {"id": 2, "tenant": "u0"}]
    assert cc.query("pk", output_fields=["count(*)"]) == [{"count(*)": 40}]
    hits = cc.search("pk", [[1.0] * 4], limit=3, filter='tenant == "u1"')
    assert [h["id"] for h in hits[0]] == [5, 9, 13]
    routed = cc.explain("pk", [[1.0] * 4], limit=3, filter='tenant == "u1"')
    assert routed["distribution"]["task_count"] == 1
    assert cc.explain("pk", [[1.0] * 4], limit=3, filter="id < 10")[
        "distribution"]["task_count"] == 4
    with psycopg.connect(cluster, autocommit=True) as c:  # Citus' own EXPLAIN agrees
        plan = "\n".join(r[0] for r in c.execute(
            "EXPLAIN SELECT id FROM citus_t.pk WHERE tenant = 'u1' "
            "ORDER BY vector <-> '[1,1,1,1]' LIMIT 3").fetchall())
    assert "Task Count: 1" in plan


def test_distribute_later_keeps_rows_and_indexes(cc: vecpg.Client, cluster: str) -> None:
    """A local collection with rows, an auto_id key and an HNSW index becomes distributed:
    rows move to the shards (none left on the coordinator), the index is on every shard,
    new rows get fresh keys, searches answer as before."""
    cc.drop_collection("later")
    cc.create_collection("later", dimension=8, metric_type="COSINE", auto_id=True)
    rows = [{"vector": v["vector"], "tag": v["tag"]} for v in _rows(200, 8, seed=7)]
    ids = cc.insert("later", rows)["ids"]
    cc.create_index("later", cc.prepare_index_params("vector", index_type="HNSW",
                                                     metric_type="COSINE"))
    q = np.random.default_rng(8).standard_normal((4, 8)).tolist()
    before = cc.search("later", q, limit=5, search_params={"params": {"exact": True}})
    assert cc.distribute_collection("later", shard_count=2) == {"shard_key": "id",
                                                                 "shard_count": 2}
    assert sum(n for _, n in _shards(cluster, "citus_t.later")) == 200
    after = cc.search("later", q, limit=5, search_params={"params": {"exact": True}})
    assert _ids(after) == _ids(before)
    new = cc.insert("later", [{"vector": [1.0] * 8, "tag": "x"}])["ids"]
    assert new[0] not in ids
    with pytest.raises(InvalidArgument, match="distributed already"):
        cc.distribute_collection("later")


def test_companion_indexes_and_bm25_refused(cc: vecpg.Client) -> None:
    """Companion indexes need triggers, which Citus refuses: a typed error, nothing
    changed (the collection stays as it was, searchable)."""
    d, _ = _pair(cc, "cmp", _rows(100, 8, seed=9), "L2", shard_count=2)
    for kind in ("IVF_SQ8", "IVF_PQ", "ANNOY"):
        with pytest.raises(NotSupported, match="companion index"):
            cc.create_index(d, cc.prepare_index_params("vector", index_type=kind,
                                                       metric_type="L2"))
    assert cc.list_indexes(d) == []
    local = "cmp_local"
    cc.create_index(local, cc.prepare_index_params("vector", index_type="IVF_SQ8",
                                                   metric_type="L2", params={"nlist": 4}))
    with pytest.raises(NotSupported, match="drop it before distributing"):
        cc.distribute_collection(local)
    assert "distribution" not in cc.describe_collection(local)["properties"]
    assert len(cc.search(local, [[0.0] * 8], limit=3)[0]) == 3
    with pytest.raises(NotSupported, match="tenancy"):
        cc.enable_tenancy(d, "tag")
    s = cc.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("text", DataType.VARCHAR, max_length=100, enable_analyzer=True)
    s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    s.add_function(vecpg.Function("bm25", vecpg.FunctionType.BM25, input_field_names=["text"],
                                  output_field_names=["sparse"]))
    with pytest.raises(NotSupported, match="BM25"):
        cc.create_collection("bm", schema=s, shard_key="id")
    assert not cc.has_collection("bm")
    with pytest.raises(InvalidArgument, match="shard_key"):
        cc.create_collection("bad", dimension=4, shard_key="vector")
    assert not cc.has_collection("bad")


def test_without_citus_a_typed_error(client: vecpg.Client) -> None:
    """On a server without Citus, distributing says so (and the collection stays)."""
    client.create_collection("plain", dimension=4)
    with pytest.raises(UnsupportedServer, match="Citus"):
        client.distribute_collection("plain")
    with pytest.raises(UnsupportedServer, match="Citus"):
        client.create_collection("plain2", dimension=4, shard_key="id")
    assert client.has_collection("plain") and not client.has_collection("plain2")
