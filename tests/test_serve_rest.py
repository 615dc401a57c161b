"""``vecpg serve --rest-port``: Milvus' RESTful API v2 over plain HTTP (urllib, as any REST
client), each answer compared with the same call in-process and with the gRPC side."""

from __future__ import annotations

import json
import urllib.request
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


@pytest.fixture(scope="module")
def server(dsn: str) -> Iterator[Any]:
    srv = serve("127.0.0.1", 0, dsn=dsn, workers=4, rest_port=0)
    yield srv
    srv.stop(None)


@pytest.fixture(scope="module")
def local(dsn: str) -> Iterator[vecpg.Client]:
    with vecpg.connect(dsn) as c:
        yield c


@pytest.fixture
def name(local: vecpg.Client) -> Iterator[str]:
    n = "rest_" + uuid.uuid4().hex[:10]
    yield n
    local.drop_collection(n)


def post(server: Any, path: str, body: dict[str, Any] | None = None,
         token: str = "") -> dict[str, Any]:
    req = urllib.request.Request(f"http://127.0.0.1:{server.rest_port}/v2/vectordb/{path}",
                                 data=json.dumps(body or {}).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.status == 200
        out: dict[str, Any] = json.loads(r.read())
    return out


def ok(answer: dict[str, Any]) -> Any:
    assert answer["code"] == 0, answer
    return answer["data"]


def test_quick_collection_crud_and_search(server: Any, local: vecpg.Client, name: str) -> None:
    ok(post(server, "collections/create", {"collectionName": name, "dimension": 4,
                                           "metricType": "L2"}))
    assert name in ok(post(server, "collections/list"))
    assert ok(post(server, "collections/has", {"collectionName": name})) == {"has": True}
    d = ok(post(server, "collections/describe", {"collectionName": name}))
    assert d["collectionName"] == name and d["enableDynamicField"] is True
    assert [(f["name"], f["type"], f["primaryKey"]) for f in d["fields"]] == [
        ("id", "Int64", True), ("vector", "FloatVector", False)]
    assert {"key": "dim", "value": "4"} in d["fields"][1]["params"]
    assert d["indexes"] and d["indexes"][0]["metricType"] == "L2"
    rng = np.random.default_rng(2)
    vecs = rng.random((30, 4)).astype(np.float32)
    rows = [{"id": i, "vector": vecs[i].tolist(), "tag": f"t{i % 3}", "n": i}
            for i in range(30)]
    assert ok(post(server, "entities/insert", {"collectionName": name, "data": rows})) == {
        "insertCount": 30, "insertIds": list(range(30))}
    assert ok(post(server, "collections/get_stats", {"collectionName": name})) == {
        "rowCount": 30}
    q = (vecs[:2] + 0.01).tolist()
    for body in ({"limit": 3}, {"limit": 4, "filter": "n > {m}", "exprParams": {"m": 10},
                                "outputFields": ["tag", "n"]},
                 {"limit": 50, "searchParams": {"params": {"radius": 0.3}}}):
        hits = ok(post(server, "entities/search", {"collectionName": name, "data": q, **body}))
        mine = local.search(name, q, limit=body["limit"], filter=body.get("filter", ""),
                            filter_params=body.get("exprParams"),
                            output_fields=body.get("outputFields"),
                            search_params=body.get("searchParams"))
        flat = [h for hs in mine for h in hs]
        assert [h["id"] for h in hits] == [h.id for h in flat]
        np.testing.assert_allclose([h["distance"] for h in hits], [h.distance for h in flat],
                                   rtol=1e-5)
        for h, m in zip(hits, flat):
            assert {k: v for k, v in h.items() if k not in ("id", "distance")} == \
                dict.__getitem__(m, "entity")
    got = ok(post(server, "entities/query", {"collectionName": name, "filter": "tag == 't1'",
                                             "outputFields": ["n"], "limit": 5}))
    assert got == local.query(name, filter="tag == 't1'", output_fields=["n"], limit=5)
    assert ok(post(server, "entities/query", {"collectionName": name, "filter": "",
                                              "outputFields": ["count(*)"]})) == [
        {"count(*)": 30}]
    got = ok(post(server, "entities/get", {"collectionName": name, "id": [3, 1],
                                           "outputFields": ["vector", "tag"]}))
    assert [r["id"] for r in got] == [1, 3] and got[0]["tag"] == "t1"
    np.testing.assert_allclose(got[0]["vector"], vecs[1], rtol=1e-6)
    assert ok(post(server, "entities/upsert", {"collectionName": name, "data": [
        {"id": 1, "vector": [0.0] * 4, "tag": "new", "n": 1}]})) == {
        "upsertCount": 1, "upsertIds": [1]}
    assert local.get(name, [1], output_fields=["tag"])[0]["tag"] == "new"
    assert ok(post(server, "entities/delete", {"collectionName": name,
                                               "filter": "n >= {m}",
                                               "exprParams": {"m": 25}})) == {"deleteCount": 5}
    assert local.count(name) == 25
    ok(post(server, "collections/drop", {"collectionName": name}))
    assert not local.has_collection(name)


def test_schema_indexes_partitions_aliases(server: Any, local: vecpg.Client,
                                           name: str) -> None:
    schema = {"autoID": False, "enableDynamicField": False, "fields": [
        {"fieldName": "pk", "dataType": "VarChar", "isPrimary": True,
         "elementTypeParams": {"max_length": 16}},
        {"fieldName": "emb", "dataType": "FloatVector", "elementTypeParams": {"dim": 3}},
        {"fieldName": "bits", "dataType": "BinaryVector", "elementTypeParams": {"dim": 16}},
        {"fieldName": "sp", "dataType": "SparseFloatVector"},
        {"fieldName": "tags", "dataType": "Array", "elementDataType": "Int64",
         "elementTypeParams": {"max_capacity": 4}},
        {"fieldName": "score", "dataType": "Double", "nullable": True}]}
    ok(post(server, "collections/create", {
        "collectionName": name, "schema": schema, "indexParams": [
            {"fieldName": "emb", "indexName": "emb_hnsw", "indexType": "HNSW",
             "metricType": "COSINE", "params": {"M": 8, "efConstruction": 32}}]}))
    fields = {f["name"]: f for f in local.describe_collection(name)["fields"]}
    assert fields["pk"]["params"]["max_length"] == 16 and fields["score"]["nullable"]
    assert ok(post(server, "indexes/list", {"collectionName": name})) == ["emb_hnsw"]
    d = ok(post(server, "indexes/describe", {"collectionName": name,
                                             "indexName": "emb_hnsw"}))
    assert d[0]["indexType"] == "HNSW" and d[0]["metricType"] == "COSINE"
    assert d[0]["fieldName"] == "emb" and d[0]["indexState"] == "Finished"
    ok(post(server, "partitions/create", {"collectionName": name, "partitionName": "p1"}))
    assert sorted(ok(post(server, "partitions/list", {"collectionName": name}))) == [
        "_default", "p1"]
    rows = [{"pk": f"k{i}", "emb": [float(i), 1.0, 0.5], "bits": [i, 255 - i],
             "sp": {str(i): 1.0, "40": 0.5}, "tags": [i, i + 1], "score": None if i % 2 else i}
            for i in range(8)]
    ok(post(server, "entities/insert", {"collectionName": name, "data": rows[:4],
                                        "partitionName": "p1"}))
    ok(post(server, "entities/insert", {"collectionName": name, "data": rows[4:]}))
    assert ok(post(server, "partitions/get_stats", {"collectionName": name,
                                                    "partitionName": "p1"})) == {"rowCount": 4}
    got = ok(post(server, "entities/query", {"collectionName": name, "filter": "",
                                             "outputFields": ["*"], "limit": 10}))
    by = {r["pk"]: r for r in got}
    assert by["k2"]["bits"] == [2, 253] and by["k2"]["sp"] == {"2": 1.0, "40": 0.5}
    assert by["k3"]["score"] is None and by["k2"]["tags"] == [2, 3]
    for field, q, metric in (("emb", [[1.0, 1.0, 0.5]], "COSINE"),
                             ("bits", [[3, 250]], "HAMMING"), ("sp", [{"3": 1.0}], "IP")):
        hits = ok(post(server, "entities/search", {
            "collectionName": name, "data": q, "annsField": field, "limit": 3,
            "searchParams": {"metricType": metric}, "partitionNames": ["p1"]}))
        local_q = [bytes(q[0])] if field == "bits" else (
            [{3: 1.0}] if field == "sp" else q)
        mine = local.search(name, local_q, anns_field=field, limit=3,
                            search_params={"metric_type": metric}, partition_names=["p1"])[0]
        assert [h["pk"] for h in hits] == [h.id for h in mine]
    hy = ok(post(server, "entities/hybrid_search", {
        "collectionName": name, "limit": 3, "outputFields": ["tags"],
        "rerank": {"strategy": "weighted", "params": {"weights": [0.6, 0.4]}},
        "search": [{"data": [[1.0, 1.0, 0.5]], "annsField": "emb", "limit": 5,
                    "metricType": "COSINE"},
                   {"data": [{"3": 1.0, "40": 0.2}], "annsField": "sp", "limit": 5,
                    "filter": "pk != 'k0'"}]}))
    want = local.hybrid_search(name, [
        vecpg.AnnSearchRequest([[1.0, 1.0, 0.5]], "emb", {"metric_type": "COSINE"}, 5),
        vecpg.AnnSearchRequest([{3: 1.0, 40: 0.2}], "sp", {}, 5, expr="pk != 'k0'")],
        vecpg.WeightedRanker(0.6, 0.4), limit=3, output_fields=["tags"])[0]
    assert [h["pk"] for h in hy] == [h.id for h in want]
    assert [h["tags"] for h in hy] == [h["tags"] for h in want]
    alias = name + "_al"
    ok(post(server, "aliases/create", {"collectionName": name, "aliasName": alias}))
    assert ok(post(server, "aliases/describe", {"aliasName": alias}))["collectionName"] == name
    assert alias in ok(post(server, "aliases/list", {"collectionName": name}))
    ok(post(server, "aliases/drop", {"aliasName": alias}))
    ok(post(server, "indexes/drop", {"collectionName": name, "indexName": "emb_hnsw"}))
    assert local.list_indexes(name) == []
    ok(post(server, "partitions/drop", {"collectionName": name, "partitionName": "p1"}))
    assert local.count(name) == 4


def test_errors_auth_and_databases(server: Any, dsn: str, name: str) -> None:
    e = post(server, "collections/describe", {"collectionName": "no_such_one"})
    assert e["code"] == 100 and "collection not found" in e["message"]
    e = post(server, "entities/query", {"collectionName": "no_such_one", "filter": "id > 0"})
    assert e["code"] == 100
    e = post(server, "collections/create", {"collectionName": name})
    assert e["code"] == 1100 and "dimension" in e["message"]
    post(server, "collections/create", {"collectionName": name, "dimension": 2})
    e = post(server, "entities/query", {"collectionName": name, "filter": "id >>> 1"})
    assert e["code"] == 1100
    e = post(server, "entities/insert", {"collectionName": name, "data": "not rows"})
    assert e["code"] == 1100
    assert post(server, "no/such")["code"] == 1100
    # a Bearer token logs in as that role; an unknown one is refused
    e = post(server, "collections/list", token="nobody_" + uuid.uuid4().hex[:6] + ":pw")
    assert e["code"] == 1800 and "auth" in e["message"]
    db = "rest_db_" + uuid.uuid4().hex[:6]
    try:
        ok(post(server, "databases/create", {"dbName": db}))
        assert db in ok(post(server, "databases/list"))
        ok(post(server, "collections/create", {"dbName": db, "collectionName": "inside",
                                               "dimension": 2}))
        assert ok(post(server, "collections/list", {"dbName": db})) == ["inside"]
        with vecpg.connect(dsn, schema=db) as there:
            assert there.list_collections() == ["inside"]
        mc = pymilvus.MilvusClient(uri=f"http://127.0.0.1:{server.port}", db_name=db)
        try:  # the gRPC side sees what REST made
            assert mc.list_collections() == ["inside"]
        finally:
            mc.close()
        ok(post(server, "collections/drop", {"dbName": db, "collectionName": "inside"}))
        ok(post(server, "databases/drop", {"dbName": db}))
        assert db not in ok(post(server, "databases/list"))
    finally:
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute(psycopg.sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                psycopg.sql.Identifier(db)))
            c.execute("DELETE FROM vecpg.collections WHERE schema_name = %s", (db,))
            c.execute("DELETE FROM vecpg.databases WHERE schema_name = %s", (db,))
    with urllib.request.urlopen(f"http://127.0.0.1:{server.rest_port}/healthz",
                                timeout=10) as r:
        assert json.loads(r.read()) == {"code": 0, "data": {}}
