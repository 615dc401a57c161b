"""``vecpg serve``: an unmodified pymilvus ``MilvusClient`` over Milvus' gRPC protocol, against
a real Postgres; each answer is compared with the same call made in-process on
``vecpg.Client``."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import psycopg
import pytest

pytest.importorskip("grpc")
pymilvus = pytest.importorskip("pymilvus")

import vecpg  # noqa: E402
from vecpg.wire import serve  # noqa: E402

DataType = pymilvus.DataType
MilvusException = pymilvus.MilvusException


@pytest.fixture(scope="module")
def server(dsn: str) -> Iterator[Any]:
    srv = serve("127.0.0.1", 0, dsn=dsn, workers=8)
    yield srv
    srv.stop(None)


@pytest.fixture(scope="module")
def mc(server: Any) -> Iterator[Any]:
    c = pymilvus.MilvusClient(uri=f"http://127.0.0.1:{server.port}")
    yield c
    c.close()


@pytest.fixture(scope="module")
def local(dsn: str) -> Iterator[vecpg.Client]:
    with vecpg.connect(dsn) as c:
        yield c


@pytest.fixture
def name(local: vecpg.Client) -> Iterator[str]:
    n = "serve_" + uuid.uuid4().hex[:10]
    yield n
    local.drop_collection(n)


def _same_rows(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert set(x) == set(y), (x, y)
        for k in x:
            if isinstance(x[k], float) or isinstance(y[k], float):
                assert x[k] == pytest.approx(y[k], rel=1e-6)
            elif isinstance(x[k], (list, np.ndarray)) and len(x[k]) and isinstance(
                    x[k][0], (float, np.floating)):
                np.testing.assert_allclose(np.asarray(x[k], float), np.asarray(y[k], float),
                                           rtol=1e-6)
            else:
                assert x[k] == y[k], (k, x[k], y[k])


def _same_hits(remote: Any, mine: Any) -> None:
    assert len(remote) == len(mine)
    for rh, mh in zip(remote, mine):
        assert [h.id for h in rh] == [h.id for h in mh]
        np.testing.assert_allclose([h["distance"] for h in rh], [h.distance for h in mh],
                                   rtol=1e-5, atol=1e-6)
        _same_rows([dict(h["entity"]) for h in rh],
                   [dict(dict.__getitem__(h, "entity")) for h in mh])


def test_server_calls(mc: Any) -> None:
    assert mc.get_server_version()
    assert isinstance(mc.list_collections(), list)


def test_quick_collection_flow(mc: Any, local: vecpg.Client, name: str) -> None:
    rng = np.random.default_rng(1)
    mc.create_collection(name, dimension=8, metric_type="L2")
    assert mc.has_collection(name) and name in mc.list_collections()
    assert local.has_collection(name)
    rows = [{"id": i, "vector": rng.random(8).astype(np.float32).tolist(), "color": f"c{i % 3}",
             "n": i} for i in range(50)]
    res = mc.insert(name, rows)
    assert res["insert_count"] == 50 and list(res["ids"]) == list(range(50))
    assert mc.get_collection_stats(name)["row_count"] == 50
    q = rng.random((2, 8)).astype(np.float32)
    # query: filters, templates, output fields, limit/offset, count(*)
    for kw in ({"filter": "n < 10", "output_fields": ["color", "n"]},
               {"filter": "color == {c} and n >= {m}", "filter_params": {"c": "c1", "m": 20},
                "output_fields": ["n"]},
               {"filter": "n in {ids}", "filter_params": {"ids": [3, 5, 7]},
                "output_fields": ["*"]},
               {"filter": "n >= 0", "limit": 5, "offset": 10, "output_fields": ["color"]}):
        _same_rows(list(mc.query(name, **kw)), local.query(name, **kw))
    assert mc.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"] == 50
    assert mc.query(name, filter="n > 1000", output_fields=["n"]) == []
    # pymilvus asks for "*" when no output_fields are given: every field, vectors too
    _same_rows(list(mc.get(name, ids=[4, 2])), local.get(name, ids=[4, 2], output_fields=["*"]))
    # search: filter, output fields, offset, templates
    for kw in ({"limit": 5}, {"limit": 4, "filter": "n > 10", "output_fields": ["color", "n"]},
               {"limit": 3, "offset": 2, "output_fields": ["n"]},
               {"limit": 3, "filter": "color == {c}", "filter_params": {"c": "c2"}}):
        _same_hits(mc.search(name, q.tolist(), **kw), local.search(name, q, **kw))
    # upsert and delete
    up = mc.upsert(name, [{"id": 1, "vector": [0.0] * 8, "color": "new", "n": 1}])
    assert up["upsert_count"] == 1
    assert mc.get(name, ids=[1], output_fields=["color"])[0]["color"] == "new"
    assert mc.delete(name, ids=[1, 2])["delete_count"] == 2
    assert mc.delete(name, filter="n >= {m}", filter_params={"m": 45})["delete_count"] == 5
    assert local.count(name) == 43
    # indexes and load state
    assert mc.list_indexes(name) == ["vector"]
    d = mc.describe_index(name, "vector")
    assert d["index_type"] and d["metric_type"] == "L2" and d["field_name"] == "vector"
    mc.release_collection(name)
    mc.load_collection(name)
    assert str(mc.get_load_state(name)["state"]) == str(pymilvus.client.types.LoadState.Loaded)
    mc.flush(name)
    mc.drop_index(name, "vector")
    assert mc.list_indexes(name) == []
    mc.create_index(name, _index(mc, "vector", "HNSW", "L2", M=8, efConstruction=32))
    assert mc.describe_index(name, "vector")["index_type"] == "HNSW"
    _same_hits(mc.search(name, q.tolist(), limit=5), local.search(name, q, limit=5))
    mc.drop_collection(name)
    assert not mc.has_collection(name)


def _index(mc: Any, field: str, kind: str, metric: str, **params: Any) -> Any:
    ip = mc.prepare_index_params()
    ip.add_index(field_name=field, index_type=kind, metric_type=metric, params=params)
    return ip


def test_custom_schema_round_trip(mc: Any, local: vecpg.Client, name: str) -> None:
    s = mc.create_schema(auto_id=False, enable_dynamic_field=True)
    s.add_field("pk", DataType.VARCHAR, is_primary=True, max_length=32)
    s.add_field("i8", DataType.INT8)
    s.add_field("i16", DataType.INT16)
    s.add_field("i32", DataType.INT32, nullable=True)
    s.add_field("i64", DataType.INT64, default_value=7)
    s.add_field("b", DataType.BOOL)
    s.add_field("f", DataType.FLOAT)
    s.add_field("d", DataType.DOUBLE)
    s.add_field("title", DataType.VARCHAR, max_length=100)
    s.add_field("meta", DataType.JSON)
    s.add_field("tags", DataType.ARRAY, element_type=DataType.INT64, max_capacity=4)
    s.add_field("tenant", DataType.INT64, is_partition_key=True)
    s.add_field("emb", DataType.FLOAT_VECTOR, dim=4)
    s.add_field("half", DataType.FLOAT16_VECTOR, dim=4)
    s.add_field("bits", DataType.BINARY_VECTOR, dim=16)
    s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    mc.create_collection(name, schema=s, consistency_level="Session")
    remote = mc.describe_collection(name)
    mine = local.describe_collection(name)
    # the collection's read default travels both ways (vecpg.replicas uses it)
    assert remote["consistency_level"] == mine["consistency_level"] == 1  # Session
    assert [(f["name"], f["type"]) for f in remote["fields"]] == \
        [(f["name"], f["type"]) for f in mine["fields"]]
    by = {f["name"]: f for f in remote["fields"]}
    assert by["pk"]["is_primary"] and by["pk"]["params"]["max_length"] == 32
    assert by["emb"]["params"]["dim"] == 4 and by["bits"]["params"]["dim"] == 16
    assert by["tags"]["element_type"] == DataType.INT64
    assert by["tags"]["params"]["max_capacity"] == 4
    assert by["i32"].get("nullable") and by["tenant"].get("is_partition_key")
    assert remote["enable_dynamic_field"]
    rng = np.random.default_rng(2)
    rows = []
    for i in range(20):
        rows.append({"pk": f"k{i:02d}", "i8": i - 10, "i16": i * 100, "i32": None if i % 4 == 0
                     else i, "b": i % 2 == 0, "f": i / 4, "d": i / 3, "title": f"t{i}",
                     "meta": {"x": i, "y": [i, "s"]}, "tags": list(range(i % 4)), "tenant": i % 2,
                     "emb": rng.random(4).astype(np.float32).tolist(),
                     "half": rng.random(4).astype(np.float16),
                     "bits": bytes(rng.integers(0, 256, 2, dtype=np.uint8)),
                     "sparse": {int(j): float(j + 1) for j in rng.choice(50, 3, replace=False)},
                     "extra": f"dyn{i}"})
        if i % 5:  # the others take the default
            rows[-1]["i64"] = i
    assert mc.insert(name, rows)["insert_count"] == 20
    out = ["i8", "i16", "i32", "i64", "b", "f", "d", "title", "meta", "tags", "tenant",
           "extra"]
    _same_rows(list(mc.query(name, filter="i16 >= 0", output_fields=out)),
               local.query(name, filter="i16 >= 0", output_fields=out))
    got = {r["pk"]: r for r in mc.query(name, filter='pk in ["k00", "k01"]',
                                        output_fields=["i64", "i32", "extra", "half", "bits",
                                                       "sparse"])}
    assert got["k00"]["i64"] == 7 and got["k00"]["i32"] is None and got["k01"]["i64"] == 1
    assert got["k01"]["extra"] == "dyn1"
    assert bytes(got["k01"]["bits"][0]) == rows[1]["bits"]
    assert got["k01"]["sparse"] == pytest.approx(rows[1]["sparse"])
    for field, metric, qv in (
            ("emb", "COSINE", rng.random((1, 4)).astype(np.float32).tolist()),
            ("bits", "HAMMING", [bytes(rng.integers(0, 256, 2, dtype=np.uint8))]),
            ("sparse", "IP", [{3: 1.0, 7: 0.5, 11: 2.0}]),
            ("half", "L2", [rng.random(4).astype(np.float16)])):
        kw = {"anns_field": field, "limit": 5, "output_fields": ["title", "extra"],
              "search_params": {"metric_type": metric}, "filter": "i16 >= 100"}
        _same_hits(mc.search(name, qv, **kw), local.search(name, qv, **kw))
    # hybrid search, both rankers
    reqs = [pymilvus.AnnSearchRequest(rng.random((1, 4)).astype(np.float32).tolist(), "emb",
                                      {"metric_type": "COSINE"}, 8),
            pymilvus.AnnSearchRequest([{3: 1.0, 9: 1.0}], "sparse", {"metric_type": "IP"}, 8,
                                      expr="i16 > {v}", expr_params={"v": 300})]
    for ranker in (pymilvus.RRFRanker(30), pymilvus.WeightedRanker(0.7, 0.3)):
        _same_hits(mc.hybrid_search(name, reqs, ranker, limit=5, output_fields=["title"]),
                   local.hybrid_search(name, reqs, ranker, limit=5, output_fields=["title"]))
    # a partition key refuses explicit partitions, as in Milvus
    with pytest.raises(MilvusException):
        mc.create_partition(name, "p1")


def test_partitions(mc: Any, local: vecpg.Client, name: str) -> None:
    mc.create_collection(name, dimension=2, auto_id=True)
    mc.create_partition(name, "p1")
    assert mc.has_partition(name, "p1") and not mc.has_partition(name, "p2")
    assert sorted(mc.list_partitions(name)) == sorted(local.list_partitions(name))
    res = mc.insert(name, [{"vector": [1.0, 0.0], "k": 1}, {"vector": [0.0, 1.0], "k": 2}],
                    partition_name="p1")
    assert res["insert_count"] == 2 and len(res["ids"]) == 2
    mc.insert(name, [{"vector": [1.0, 1.0], "k": 3}])
    assert mc.get_partition_stats(name, "p1")["row_count"] == 2
    got = mc.query(name, filter="k > 0", output_fields=["k"], partition_names=["p1"])
    assert sorted(r["k"] for r in got) == [1, 2]
    hits = mc.search(name, [[1.0, 0.0]], limit=5, partition_names=["p1"], output_fields=["k"])
    assert sorted(h["entity"]["k"] for h in hits[0]) == [1, 2]
    mc.load_partitions(name, ["p1"])
    mc.release_partitions(name, ["p1"])
    mc.drop_partition(name, "p1")
    assert not mc.has_partition(name, "p1")
    assert mc.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"] == 1


def test_errors(mc: Any) -> None:
    with pytest.raises(MilvusException) as e:
        mc.describe_collection("no_such_collection")
    assert e.value.code == 100 and "collection not found" in e.value.message
    assert not mc.has_collection("no_such_collection")
    with pytest.raises(MilvusException) as e:
        mc.query("no_such_collection", filter="id > 0")
    assert e.value.code == 100
    with pytest.raises(MilvusException) as e:
        mc.get_collection_stats("no_such_collection")
    assert e.value.code == 100


def test_bad_filter_and_unimplemented(mc: Any, name: str) -> None:
    mc.create_collection(name, dimension=2)
    mc.insert(name, [{"id": 1, "vector": [1.0, 0.0]}])
    with pytest.raises(MilvusException) as e:
        mc.query(name, filter="id >>> 1")
    assert e.value.code == 1100
    # an RPC of a method vecpg does not support: its NotSupported as Milvus' status 10,
    # saying what to do instead (the RPCs with no such method: UNIMPLEMENTED, see
    # test_serve_stubs)
    with pytest.raises(MilvusException) as e:
        mc.list_resource_groups()
    assert e.value.code == 10 and "list_resource_groups" in e.value.message
    assert "replication" in e.value.message


@pytest.fixture
def role(dsn: str, local: vecpg.Client, name: str) -> Iterator[tuple[str, str]]:
    user, password = "serve_" + uuid.uuid4().hex[:8], "pw-" + uuid.uuid4().hex[:8]
    local.create_collection(name, dimension=2)
    local.insert(name, [{"id": i, "vector": [float(i), 1.0]} for i in range(5)])
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(psycopg.sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
            psycopg.sql.Identifier(user), psycopg.sql.Literal(password)))
        c.execute(psycopg.sql.SQL("GRANT USAGE ON SCHEMA vecpg, public TO {}").format(
            psycopg.sql.Identifier(user)))
        c.execute(psycopg.sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA vecpg TO {}").format(
            psycopg.sql.Identifier(user)))
        c.execute(psycopg.sql.SQL("GRANT SELECT ON {} TO {}").format(
            psycopg.sql.Identifier("public", name), psycopg.sql.Identifier(user)))
    yield user, password
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(psycopg.sql.SQL("DROP OWNED BY {}").format(psycopg.sql.Identifier(user)))
        c.execute(psycopg.sql.SQL("DROP ROLE {}").format(psycopg.sql.Identifier(user)))


def test_token_login_as_role(server: Any, role: tuple[str, str], name: str) -> None:
    user, password = role
    uri = f"http://127.0.0.1:{server.port}"
    c = pymilvus.MilvusClient(uri=uri, token=f"{user}:{password}")
    try:
        assert c.query(name, filter="id < 3", output_fields=["id"]) == [
            {"id": 0}, {"id": 1}, {"id": 2}]
        with pytest.raises(MilvusException) as e:  # read-only role: Postgres refuses
            c.insert(name, [{"id": 9, "vector": [0.0, 0.0]}])
        assert e.value.code == 1401
    finally:
        c.close()
    # a login Postgres refuses (an unknown role: the embedded server trusts local
    # passwords) fails the connect, as a bad token does against Milvus
    with pytest.raises(MilvusException):
        pymilvus.MilvusClient(uri=uri, token=f"{user}_nobody:{password}", timeout=5)


def test_cli_serve_stops_on_sigterm(dsn: str) -> None:
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "vecpg.cli", "--dsn", dsn, "serve",
                             "--port", str(port)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        assert proc.stdout is not None
        assert f"127.0.0.1:{port}" in proc.stdout.readline()
        c = pymilvus.MilvusClient(uri=f"http://127.0.0.1:{port}")
        assert isinstance(c.list_collections(), list)
        c.close()
        time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0


def _rows(n: int, dim: int = 4, seed: int = 3) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    return [{"id": i, "vector": rng.random(dim).astype(np.float32).tolist(), "n": i % 7,
             "tag": f"t{i % 3}"} for i in range(n)]


def test_aliases(mc: Any, local: vecpg.Client, name: str) -> None:
    other = name + "_b"
    mc.create_collection(name, dimension=4)
    mc.create_collection(other, dimension=4)
    try:
        mc.insert(name, _rows(5))
        alias = name + "_al"
        mc.create_alias(name, alias)
        assert mc.describe_alias(alias) == local.describe_alias(alias)
        assert mc.describe_alias(alias)["collection_name"] == name
        assert mc.list_aliases(name)["aliases"] == local.list_aliases(name)["aliases"] == [alias]
        assert alias in mc.describe_collection(name)["aliases"]
        # data calls through the alias reach the collection
        assert mc.query(alias, filter="", output_fields=["count(*)"])[0]["count(*)"] == 5
        mc.alter_alias(other, alias)
        assert local.describe_alias(alias)["collection_name"] == other
        assert mc.list_aliases(name)["aliases"] == []
        assert mc.list_aliases(other)["aliases"] == [alias]
        mc.drop_alias(alias)
        assert local.list_aliases(other)["aliases"] == []
        with pytest.raises(MilvusException):
            mc.describe_alias(alias)
    finally:
        local.drop_collection(other)


@pytest.fixture
def database(dsn: str, local: vecpg.Client) -> Iterator[str]:
    db = "serve_db_" + uuid.uuid4().hex[:8]
    yield db
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(psycopg.sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
            psycopg.sql.Identifier(db)))
        c.execute("DELETE FROM vecpg.collections WHERE schema_name = %s", (db,))
        c.execute("DELETE FROM vecpg.databases WHERE schema_name = %s", (db,))


def test_databases(mc: Any, server: Any, dsn: str, local: vecpg.Client, database: str) -> None:
    mc.create_database(database, properties={"database.max.collections": 5})
    assert database in mc.list_databases()
    assert mc.list_databases() == local.list_databases()
    assert mc.describe_database(database) == {"name": database,
                                              "database.max.collections": "5"}
    mc.alter_database_properties(database, {"owner": "me"})
    mc.drop_database_properties(database, ["database.max.collections"])
    assert mc.describe_database(database) == {"name": database, "owner": "me"}
    assert local.describe_database(database) == {"name": database, "owner": "me"}
    # a client on that database: its collections live in that schema
    c = pymilvus.MilvusClient(uri=f"http://127.0.0.1:{server.port}", db_name=database)
    try:
        c.create_collection("inside", dimension=4)
        c.insert("inside", _rows(6))
        assert c.list_collections() == ["inside"]
        assert "inside" not in mc.list_collections()
        with vecpg.connect(dsn, schema=database) as there:
            assert there.count("inside") == 6
            q = np.asarray(_rows(1, seed=9)[0]["vector"], np.float32)
            _same_hits(c.search("inside", [q.tolist()], limit=3), there.search("inside", [q],
                                                                              limit=3))
        mc.use_database(database)  # switching an existing client sends its requests there
        assert mc.list_collections() == ["inside"]
        mc.use_database("default")
        with pytest.raises(MilvusException):  # not empty: refused, as Milvus does
            mc.drop_database(database)
        c.drop_collection("inside")
    finally:
        c.close()
    mc.drop_database(database)
    assert database not in mc.list_databases()


def test_collection_maintenance(mc: Any, local: vecpg.Client, name: str) -> None:
    new = name + "_r"
    mc.create_collection(name, dimension=4)
    mc.insert(name, _rows(10))
    mc.rename_collection(name, new)
    try:
        assert not local.has_collection(name) and local.count(new) == 10
        mc.alter_collection_properties(new, {"mmap.enabled": True, "recall": 0.9,
                                             "collection.ttl.seconds": 60})
        props = mc.describe_collection(new)["properties"]
        assert props == {k: str(v) for k, v in
                         local.describe_collection(new)["properties"].items()}
        assert props["mmap.enabled"] == "True" and props["collection.ttl.seconds"] == "60"
        mc.drop_collection_properties(new, ["collection.ttl.seconds"])
        assert "collection.ttl.seconds" not in local.describe_collection(new)["properties"]
        # a new field: nullable, and one with a default existing rows then hold
        mc.add_collection_field(new, "note", DataType.VARCHAR, max_length=20, nullable=True)
        mc.add_collection_field(new, "score", DataType.INT64, default_value=3, nullable=True)
        fields = {f["name"]: f for f in local.describe_collection(new)["fields"]}
        assert fields["note"]["params"]["max_length"] == 20 and fields["note"]["nullable"]
        assert fields["score"]["default_value"] == 3
        mc.insert(new, [{"id": 100, "vector": [0.0] * 4, "n": 1, "note": "hi", "score": 9}])
        _same_rows(list(mc.query(new, filter="id >= 8", output_fields=["note", "score"])),
                   local.query(new, filter="id >= 8", output_fields=["note", "score"]))
        assert mc.get(new, ids=[100], output_fields=["note", "score"])[0] == {
            "id": 100, "note": "hi", "score": 9}
        # a field's parameters cannot change: vecpg's NotSupported, as Milvus' status
        with pytest.raises(MilvusException) as e:
            mc.alter_collection_field(new, "note", {"max_length": 40})
        assert e.value.code == 10 and "ALTER TABLE" in e.value.message
        job = mc.compact(new)
        assert str(mc.get_compaction_state(job)) == "Completed"
        mc.truncate_collection(new)
        assert local.count(new) == 0 and mc.has_collection(new)
        assert mc.list_indexes(new) == local.list_indexes(new) != []
    finally:
        local.drop_collection(new)


@pytest.fixture
def rbac_names(dsn: str) -> Iterator[tuple[str, str]]:
    user, role = "serve_u_" + uuid.uuid4().hex[:8], "serve_r_" + uuid.uuid4().hex[:8]
    yield user, role
    with psycopg.connect(dsn, autocommit=True) as c:
        for r in (user, role):
            if c.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (r,)).fetchone():
                c.execute(psycopg.sql.SQL("DROP OWNED BY {}").format(psycopg.sql.Identifier(r)))
                c.execute(psycopg.sql.SQL("DROP ROLE {}").format(psycopg.sql.Identifier(r)))


def test_users_roles_privileges(mc: Any, server: Any, local: vecpg.Client, name: str,
                                rbac_names: tuple[str, str]) -> None:
    user, role = rbac_names
    mc.create_collection(name, dimension=2)
    mc.insert(name, [{"id": i, "vector": [float(i), 1.0]} for i in range(4)])
    mc.create_user(user, "pw-1-secret")
    assert user in mc.list_users() and sorted(mc.list_users()) == sorted(local.list_users())
    mc.update_password(user, "pw-1-secret", "pw-2-secret")
    mc.create_role(role)
    assert role in mc.list_roles() and mc.list_roles() == local.list_roles()
    mc.grant_role(user, role)
    assert mc.describe_user(user) == {**local.describe_user(user), "roles": (role,)}
    mc.grant_privilege_v2(role, "Query", name)
    mc.grant_privilege(role, "Collection", "Search", name)
    remote, mine = mc.describe_role(role), local.describe_role(role)
    assert remote["role"] == role
    assert sorted(map(sorted, (p.items() for p in remote["privileges"]))) == \
        sorted(map(sorted, (p.items() for p in mine["privileges"])))
    assert {"Query", "Search"} <= {p["privilege"] for p in remote["privileges"]
                                   if p["object_name"] == name}
    # the user logs in with the new password and reads through the granted role
    c = pymilvus.MilvusClient(uri=f"http://127.0.0.1:{server.port}",
                              token=f"{user}:pw-2-secret")
    try:
        assert [r["id"] for r in c.query(name, filter="id < 2", output_fields=["id"])] == [0, 1]
    finally:
        c.close()
    mc.revoke_privilege_v2(role, "Query", name)
    mc.revoke_privilege(role, "Collection", "Search", name)
    assert [p for p in local.describe_role(role)["privileges"]
            if p["object_name"] == name] == []
    # descriptions: update_user (UpdateCredential without passwords) and alter_role
    mc.update_user(user, "reads the catalog")
    mc.alter_role(role, "catalog readers")
    assert local.describe_user(user)["description"] == "reads the catalog"
    assert mc.describe_role(role)["description"] == "catalog readers" == \
        local.describe_role(role)["description"]
    mc.update_user(user, "")  # empty: none
    assert local.describe_user(user)["description"] == ""
    with pytest.raises(MilvusException) as e:
        mc.update_user(user + "_nobody", "x")
    assert e.value.code == 1100 and "does not exist" in e.value.message
    mc.revoke_role(user, role)
    assert mc.describe_user(user)["roles"] == ()
    assert {g["privilege_group"] for g in mc.list_privilege_groups()} == {
        g["privilege_group"] for g in local.list_privilege_groups()}
    with pytest.raises(MilvusException):  # it still holds the schema grants v2 gave it
        mc.drop_role(role)
    mc.drop_role(role, force_drop=True)
    mc.drop_user(user)
    assert user not in local.list_users() and role not in local.list_roles()


def test_query_iterator(mc: Any, local: vecpg.Client, name: str) -> None:
    mc.create_collection(name, dimension=4)
    mc.insert(name, _rows(103))
    for kw in ({"batch_size": 10}, {"batch_size": 7, "filter": "n > 2",
                                    "output_fields": ["n", "tag"]},
               {"batch_size": 25, "limit": 60, "output_fields": ["tag"]},
               {"batch_size": 9, "offset": 5, "filter": "tag == 't1'"}):
        it = mc.query_iterator(name, **kw)
        got, sizes = [], []
        while batch := it.next():
            sizes.append(len(batch))
            got.extend(batch)
        it.close()
        want = local.query(name, filter=kw.get("filter", ""),
                           output_fields=kw.get("output_fields"),
                           limit=kw.get("limit", -1), offset=kw.get("offset", 0))
        _same_rows(got, want)
        assert all(n == kw["batch_size"] for n in sizes[:-1])


def test_search_iterator(mc: Any, local: vecpg.Client, name: str) -> None:
    mc.create_collection(name, dimension=4, metric_type="L2")
    rows = _rows(120)
    for r in rows[:10]:  # ties: the same vector ten times
        r["vector"] = [0.5] * 4
    mc.insert(name, rows)
    q = [0.5, 0.5, 0.5, 0.4]
    for kw in ({"batch_size": 7}, {"batch_size": 16, "filter": "n > 1",
                                   "output_fields": ["n", "tag"]},
               {"batch_size": 10, "limit": 35}):
        it = mc.search_iterator(name, [q], search_params={"metric_type": "L2"}, **kw)
        pages = []
        while True:
            page = it.next()
            if page is None or len(page) == 0:  # None: pymilvus reached the limit
                break
            pages.append(page)
        it.close()
        got = [h for page in pages for h in page]
        # in-process: vecpg's own iterator (ties in primary-key order, as here) ...
        with local.search_iterator(name, [q], search_params={"metric_type": "L2"},
                                   **kw) as mine:
            want = [h for batch in mine for h in batch]
        # ... and exact search's distances
        exact = local.search(name, [q], limit=min(kw.get("limit", 120), 120),
                             filter=kw.get("filter", ""),
                             search_params={"metric_type": "L2", "exact": True})[0]
        matching = len(local.query(name, filter=kw.get("filter", ""), output_fields=["id"]))
        assert len(got) == min(kw.get("limit", matching), matching)
        assert len({h.id for h in got}) == len(got)  # none twice
        assert [h.id for h in got] == [h.id for h in want]
        np.testing.assert_allclose([h.distance for h in got], [h.distance for h in want],
                                   rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose([h.distance for h in got],
                                   [h.distance for h in exact][:len(got)], rtol=1e-5, atol=1e-6)
        _same_rows([dict(h["entity"]) for h in got],
                   [dict(dict.__getitem__(h, "entity")) for h in want])
        assert all(len(p) == kw["batch_size"] for p in pages[:-1])


def test_bm25_full_text(mc: Any, local: vecpg.Client, name: str) -> None:
    s = mc.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("text", DataType.VARCHAR, max_length=500, enable_analyzer=True,
                enable_match=True, analyzer_params={"type": "english"})
    s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    s.add_function(pymilvus.Function("bm25", pymilvus.FunctionType.BM25, ["text"], ["sparse"]))
    ip = mc.prepare_index_params()
    ip.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
    mc.create_collection(name, schema=s, index_params=ip)
    remote = mc.describe_collection(name)
    fn = remote["functions"][0]
    assert fn["name"] == "bm25" and fn["type"] == pymilvus.FunctionType.BM25
    assert fn["input_field_names"] == ["text"] and fn["output_field_names"] == ["sparse"]
    text = next(f for f in remote["fields"] if f["name"] == "text")
    assert text["params"]["enable_analyzer"] and text["params"]["enable_match"]
    # JSON text, as pymilvus shows Milvus' own answer
    assert json.loads(text["params"]["analyzer_params"]) == {"type": "english"}
    sparse = next(f for f in remote["fields"] if f["name"] == "sparse")
    assert sparse.get("is_function_output")
    schema = local.collection_schema(name)
    assert schema.field("text").analyzer_params == {"type": "english"}
    assert [f.output_field for f in schema.functions] == ["sparse"]
    docs = ["the cat sat on the mat", "dogs chase cats in the garden",
            "a garden of roses and tulips", "the stock market fell sharply today",
            "cats and dogs living together", "roses are red and violets are blue"]
    # pymilvus leaves the function's output out of the rows: vecpg computes it
    assert mc.insert(name, [{"id": i, "text": t} for i, t in enumerate(docs)])[
        "insert_count"] == len(docs)
    queries = ["cats", "garden roses", "market"]
    for kw in ({"limit": 3}, {"limit": 2, "output_fields": ["text"], "filter": "id > 0"}):
        _same_hits(mc.search(name, queries, anns_field="sparse",
                             search_params={"metric_type": "BM25"}, **kw),
                   local.search(name, queries, anns_field="sparse",
                                search_params={"metric_type": "BM25"}, **kw))
    got = mc.query(name, filter="text_match(text, 'roses')", output_fields=["id"])
    assert sorted(r["id"] for r in got) == [2, 5]
