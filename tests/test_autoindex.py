"""Automatic scalar indexes (vecpg.autoindex): searches whose filter no index serves, where
the planner's cost model says one would pay off, get one built in the background; explain
says what it would gain; the catalog shows it; a collection property turns it off.

The calibration's latencies are the stated ones (conftest), so whether an index "pays off"
does not depend on the machine's load."""

from __future__ import annotations

import threading
import uuid

import numpy as np
import psycopg
import pytest
from psycopg import sql

import vecpg
from vecpg import DataType, autoindex

N = 10000
DIM = 16


@pytest.fixture(scope="module")
def world(dsn: str, state_latencies):
    """``w``: N rows, HNSW on ``v``; ``a``, ``b``, ``c``, ``d`` INT64 fields with no index,
    each 1 on 0.25% of rows (different rows), and a dynamic key ``j`` (1 on 0.3% of rows)."""
    schema_name = "ai_" + uuid.uuid4().hex[:10]
    rng = np.random.default_rng(5)
    data = rng.normal(size=(N, DIM)).astype(np.float32)
    ids = np.arange(N)
    cols = {name: (ids % 400 == k).astype(np.int64) for k, name in enumerate("abcd")}
    j = (ids % 333 == 7).astype(np.int64)
    with vecpg.connect(dsn, schema=schema_name) as builder:
        schema = builder.create_schema(enable_dynamic_field=True)
        schema.add_field("id", DataType.INT64, is_primary=True)
        for name in cols:
            schema.add_field(name, DataType.INT64)
        schema.add_field("v", DataType.FLOAT_VECTOR, dim=DIM)
        builder.create_collection("w", schema=schema, metric_type="L2")
        builder.insert("w", [{"id": int(i), "v": data[i], "j": int(j[i]),
                              **{n: int(c[i]) for n, c in cols.items()}} for i in ids])
        builder.create_index("w", field_name="v", index_type="HNSW", metric_type="L2",
                             params={"M": 16, "efConstruction": 64})
    state_latencies(dsn, schema_name, "w", "v")
    with vecpg.connect(dsn, schema=schema_name) as client:
        yield client, data, cols, j
        client.drop_collection("w")
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema_name)))


def _exact(data: np.ndarray, q: np.ndarray, mask: np.ndarray, k: int = 10) -> list[int]:
    d = ((data - q) ** 2).sum(axis=1)
    d[~mask] = np.inf
    return [int(i) for i in np.argsort(d, kind="stable")[:k]]


def _warm_up(client, expr: str, data: np.ndarray) -> None:
    for i in range(autoindex.AFTER):
        client.search("w", [data[i]], limit=10, filter=expr)
    client._auto_indexes.wait(120)


def test_explain_says_what_a_missing_index_costs(world):
    client, *_ = world
    plan = client.explain("w", limit=10, filter="c == 1")
    assert plan["filter_access"] == "seq"
    miss = plan["missing_index"]
    assert miss["strategy_with_index"] == "filter_first"
    assert miss["estimated_cost_ms_with_index"] * 1.5 < miss["estimated_cost_ms"]
    assert miss["auto_index"].startswith(f"built after {autoindex.AFTER} more")
    # a filter an index cannot serve better (most rows match) gets no advice
    assert "missing_index" not in client.explain("w", limit=10, filter="c == 0")


def test_a_btree_is_built_after_searches_and_shown(world):
    client, data, cols, _ = world
    _warm_up(client, "a == 1", data)
    assert "auto_a" in client.list_indexes("w")
    desc = client.describe_index("w", "auto_a")
    assert desc["index_type"] == "STL_SORT" and desc["params"]["auto"] is True
    assert "auto_a" in client.describe_collection("w")["indexes"]
    plan = client.explain("w", limit=10, filter="a == 1")
    assert plan["filter_access"] == "index" and "missing_index" not in plan
    assert plan["strategy"] == "filter_first"
    got = [h.id for h in client.search("w", [data[3]], limit=10, filter="a == 1")[0]]
    assert got == _exact(data, data[3], cols["a"] == 1)
    client.drop_index("w", "auto_a")
    assert "auto_a" not in client.list_indexes("w")


def test_the_property_turns_it_off(world):
    client, data, *_ = world
    client.alter_collection_properties("w", {autoindex.PROPERTY: False})
    try:
        assert client.explain("w", limit=10, filter="b == 1")["missing_index"][
            "auto_index"].startswith("off")
        _warm_up(client, "b == 1", data)
        assert "auto_b" not in client.list_indexes("w")
    finally:
        client.alter_collection_properties("w", {autoindex.PROPERTY: True})


def test_a_json_path_gets_an_expression_index_the_planner_uses(world):
    client, data, _, j = world
    _warm_up(client, "j == 1", data)
    names = [x for x in client.list_indexes("w") if x.startswith("auto_j")]
    assert len(names) == 1, client.list_indexes("w")
    params = client.describe_index("w", names[0])["params"]
    assert params["json_path"] == "j" and params["json_cast_type"] == "double"
    plan = client.explain("w", limit=10, filter="j == 1")
    assert plan["filter_access"] == "index"
    got = [h.id for h in client.search("w", [data[5]], limit=10, filter="j == 1")[0]]
    assert got == _exact(data, data[5], j == 1)
    client.drop_index("w", names[0])


def test_concurrent_builders_make_one_index(world, dsn):
    client, *_ = world
    info = client._info("w", fresh=True)
    out: list[str] = []
    threads = [threading.Thread(target=lambda: out.append(
        autoindex.build(dsn, info, "c == 1 and a == 1", None))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sum(o.startswith("built") for o in out) >= 1, out
    # a client arriving once the build is done: one selective index serves the filter
    late = autoindex.build(dsn, info, "c == 1 and a == 1", None)
    assert late.startswith("skipped: an index serves"), late
    with psycopg.connect(dsn, autocommit=True) as c:
        n = c.execute("SELECT count(*) FROM vecpg.indexes WHERE schema_name = %s AND"
                      " collection = 'w' AND params ? 'auto'", (info.schema_name,)).fetchone()
        assert n is not None and n[0] == 1
        pg = c.execute("SELECT count(*) FROM pg_indexes WHERE schemaname = %s AND"
                       " indexname LIKE 'w__auto_%%'", (info.schema_name,)).fetchone()
        assert pg is not None and pg[0] == 1
    for name in client.list_indexes("w"):
        if name.startswith("auto_"):
            client.drop_index("w", name)


def test_targets_only_what_an_index_serves(world):
    client, *_ = world
    info = client._info("w")
    names = {t.name for t in autoindex.targets(info, 'a == 1 and (b == 1 or c == 1) and '
                                                  'j > 3 and id < 5 and a + 1 > 2')}
    assert "auto_a" in names and "auto_b" not in names and "auto_c" not in names
    assert any(n.startswith("auto_j_") for n in names)
    assert not autoindex.targets(info, "a != 1")


def test_queries_count_too(world):
    client, _, cols, _ = world
    for _ in range(autoindex.AFTER):
        got = client.query("w", filter="d == 1", output_fields=["id"])
    client._auto_indexes.wait(120)
    assert sorted(r["id"] for r in got) == [int(i) for i in np.flatnonzero(cols["d"] == 1)]
    assert "auto_d" in client.list_indexes("w")
    client.drop_index("w", "auto_d")
