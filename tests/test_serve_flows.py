"""``vecpg serve``, flow by flow: every field type, every index type, range / grouped /
hybrid searches, templates, partitions and iterators, each through an unmodified pymilvus
``MilvusClient`` and compared with what was inserted or with the same call in-process."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pytest

pytest.importorskip("grpc")
pymilvus = pytest.importorskip("pymilvus")

import test_serve  # noqa: E402

import vecpg  # noqa: E402

# test_serve's fixtures (a server per module, pymilvus on it, the in-process client)
server, mc, local, name = test_serve.server, test_serve.mc, test_serve.local, test_serve.name
_same_hits, _same_rows = test_serve._same_hits, test_serve._same_rows

DataType = pymilvus.DataType
MilvusException = pymilvus.MilvusException


def _bf16(v: np.ndarray) -> bytes:
    """bfloat16 bytes of float32 values (their top 16 bits), as pymilvus sends them."""
    return (np.asarray(v, np.float32).view(np.uint32) >> 16).astype("<u2").tobytes()


def _from_bf16(b: bytes) -> np.ndarray:
    return (np.frombuffer(b, "<u2").astype(np.uint32) << 16).view(np.float32)


def test_every_field_type(mc: Any, local: vecpg.Client, name: str) -> None:
    s = mc.create_schema(auto_id=False, enable_dynamic_field=True)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("b", DataType.BOOL, nullable=True)
    s.add_field("i8", DataType.INT8, default_value=-3)
    s.add_field("i16", DataType.INT16)
    s.add_field("i32", DataType.INT32)
    s.add_field("i64", DataType.INT64, nullable=True)
    s.add_field("f", DataType.FLOAT, default_value=0.5)
    s.add_field("d", DataType.DOUBLE)
    s.add_field("s", DataType.VARCHAR, max_length=64, default_value="none")
    s.add_field("j", DataType.JSON, nullable=True)
    s.add_field("ai", DataType.ARRAY, element_type=DataType.INT64, max_capacity=5)
    s.add_field("as_", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=5,
                max_length=16)
    s.add_field("af", DataType.ARRAY, element_type=DataType.DOUBLE, max_capacity=5)
    s.add_field("ab", DataType.ARRAY, element_type=DataType.BOOL, max_capacity=5)
    s.add_field("ts", DataType.TIMESTAMPTZ, nullable=True)
    s.add_field("fv", DataType.FLOAT_VECTOR, dim=4)
    s.add_field("hv", DataType.FLOAT16_VECTOR, dim=4)
    s.add_field("bv", DataType.BFLOAT16_VECTOR, dim=4)
    s.add_field("iv", DataType.INT8_VECTOR, dim=4)
    s.add_field("bin", DataType.BINARY_VECTOR, dim=16)
    s.add_field("sp", DataType.SPARSE_FLOAT_VECTOR)
    mc.create_collection(name, schema=s)
    remote = {f["name"]: f for f in mc.describe_collection(name)["fields"]}
    mine = {f["name"]: f for f in local.describe_collection(name)["fields"]}
    assert [(n, f["type"]) for n, f in remote.items()] == [(n, f["type"]) for n, f in
                                                          mine.items()]
    # pymilvus shows a default as Milvus sends it: a ValueField message
    assert remote["i8"]["default_value"].int_data == -3
    assert remote["s"]["default_value"].string_data == "none"
    assert remote["f"]["default_value"].float_data == 0.5
    assert remote["as_"]["element_type"] == DataType.VARCHAR
    rng = np.random.default_rng(5)
    rows = []
    for i in range(12):
        fv = rng.random(4).astype(np.float32)
        r: dict[str, Any] = {
            "id": i, "b": None if i % 3 == 0 else i % 2 == 0, "i16": -i * 50, "i32": i * 1000,
            "i64": None if i % 4 == 1 else 2**40 + i, "d": i / 7, "j": None if i == 5 else
            {"k": i, "nested": {"l": [i, "x"]}, "t": i % 2 == 0},
            "ai": list(range(i % 5)), "as_": [f"w{k}" for k in range(i % 3)],
            "af": [k / 3 for k in range(i % 4)], "ab": [k % 2 == 0 for k in range(i % 3)],
            "ts": None if i == 7 else f"2025-0{1 + i % 9}-1{i % 10}T0{i % 10}:30:00+00:00",
            "fv": fv.tolist(), "hv": rng.random(4).astype(np.float16),
            "bv": _bf16(rng.random(4)), "iv": rng.integers(-128, 128, 4).astype(np.int8),
            "bin": bytes(rng.integers(0, 256, 2, dtype=np.uint8)),
            "sp": {int(j): float(j) / 10 + 1 for j in rng.choice(40, 1 + i % 4, replace=False)},
            "extra": i * 11}
        if i % 2:
            r.update({"i8": i, "f": i / 8, "s": f"text {i}"})
        rows.append(r)
    assert mc.insert(name, rows)["insert_count"] == 12
    got = {r["id"]: r for r in mc.query(name, filter="id >= 0", output_fields=["*"])}
    assert sorted(got) == list(range(12))
    for r in rows:
        g = got[r["id"]]
        assert g["b"] == r["b"] and g["i16"] == r["i16"] and g["i32"] == r["i32"]
        assert g["i64"] == r["i64"] and g["d"] == pytest.approx(r["d"]) and g["j"] == r["j"]
        assert g["i8"] == r.get("i8", -3) and g["s"] == r.get("s", "none")
        assert g["f"] == pytest.approx(r.get("f", 0.5))
        assert list(g["ai"]) == r["ai"] and list(g["as_"]) == r["as_"]
        assert list(g["af"]) == pytest.approx(r["af"]) and list(g["ab"]) == r["ab"]
        if r["ts"] is None:
            assert g["ts"] is None
        else:
            assert dt.datetime.fromisoformat(str(g["ts"])) == dt.datetime.fromisoformat(r["ts"])
        np.testing.assert_allclose(g["fv"], r["fv"], rtol=1e-6)
        assert bytes(g["hv"][0]) == r["hv"].tobytes()  # pymilvus: [bytes] of float16
        assert bytes(g["bv"][0]) == r["bv"]
        assert bytes(g["iv"][0]) == r["iv"].tobytes()
        assert bytes(g["bin"][0]) == r["bin"]
        assert g["sp"] == pytest.approx(r["sp"])
        assert g["extra"] == r["extra"]
    # the same answers in-process, the scalars compared one by one
    out = ["b", "i8", "i16", "i32", "i64", "f", "d", "s", "j", "ai", "as_", "af", "ab",
           "extra"]
    _same_rows(list(mc.query(name, filter="", limit=20, output_fields=out)),
               local.query(name, filter="", limit=20, output_fields=out))
    # null and JSON filters over the wire
    assert sorted(r["id"] for r in mc.query(name, filter="b is null", output_fields=["id"])) \
        == [0, 3, 6, 9]
    assert [r["id"] for r in mc.query(name, filter='j["nested"]["l"][0] == 4',
                                      output_fields=["id"])] == [4]
    assert sorted(r["id"] for r in mc.query(name, filter='array_contains(as_, "w1")',
                                            output_fields=["id"])) == [2, 5, 8, 11]
    # a search on each vector type, against the same in-process search
    for field, metric, q in (("fv", "L2", [rng.random(4).astype(np.float32).tolist()]),
                             ("hv", "IP", [rng.random(4).astype(np.float16)]),
                             ("bv", "COSINE", [_bf16(rng.random(4))]),
                             ("iv", "L2", [rng.integers(-128, 128, 4).astype(np.int8)]),
                             ("bin", "JACCARD", [bytes([0b10101010, 0b11110000])]),
                             ("sp", "IP", [{1: 1.0, 5: 2.0, 30: 0.5}])):
        kw: dict[str, Any] = {"anns_field": field, "limit": 4, "output_fields": ["s"],
                              "search_params": {"metric_type": metric}}
        local_q = [_from_bf16(x) for x in q] if field == "bv" else q
        _same_hits(mc.search(name, q, **kw), local.search(name, local_q, **kw))


def _fill(mc: Any, name: str, n: int = 300, dim: int = 8) -> np.ndarray:
    rng = np.random.default_rng(11)
    vecs = rng.random((n, dim)).astype(np.float32)
    s = mc.create_schema(auto_id=False)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    s.add_field("bits", DataType.BINARY_VECTOR, dim=32)
    s.add_field("sp", DataType.SPARSE_FLOAT_VECTOR)
    s.add_field("cat", DataType.INT64)
    s.add_field("tag", DataType.VARCHAR, max_length=16)
    s.add_field("score", DataType.DOUBLE)
    s.add_field("meta", DataType.JSON)
    s.add_field("arr", DataType.ARRAY, element_type=DataType.INT64, max_capacity=4)
    mc.create_collection(name, schema=s)
    mc.insert(name, [{"id": i, "vector": vecs[i].tolist(),
                      "bits": bytes(rng.integers(0, 256, 4, dtype=np.uint8)),
                      "sp": {int(j): float(rng.random()) + 0.1
                             for j in rng.choice(64, 4, replace=False)},
                      "cat": i % 5, "tag": f"t{i % 4}", "score": float(i % 17),
                      "meta": {"g": i % 3}, "arr": [i % 4, i % 7]} for i in range(n)])
    return vecs


# (field, index type, metric, build params, search params)
_VECTOR_INDEXES = [
    ("vector", "FLAT", "L2", {}, {}),
    ("vector", "IVF_FLAT", "L2", {"nlist": 8}, {"nprobe": 8}),
    ("vector", "IVF_SQ8", "IP", {"nlist": 8}, {"nprobe": 8}),
    ("vector", "IVF_PQ", "L2", {"nlist": 8, "m": 4, "nbits": 8}, {"nprobe": 8}),
    ("vector", "HNSW", "COSINE", {"M": 8, "efConstruction": 40}, {"ef": 64}),
    ("vector", "ANNOY", "L2", {"n_trees": 4}, {"search_k": 2000}),
    ("vector", "AUTOINDEX", "IP", {}, {}),
    ("bits", "BIN_FLAT", "HAMMING", {}, {}),
    ("bits", "BIN_IVF_FLAT", "HAMMING", {"nlist": 4}, {"nprobe": 4}),
    ("sp", "SPARSE_INVERTED_INDEX", "IP", {}, {}),
    ("sp", "SPARSE_WAND", "IP", {}, {}),
]


def test_every_index_type(mc: Any, local: vecpg.Client, name: str) -> None:
    vecs = _fill(mc, name)
    mc.drop_index(name, "vector")  # pymilvus' create_collection(schema=) makes none; vecpg's
    assert mc.list_indexes(name) == local.list_indexes(name)
    rng = np.random.default_rng(12)
    queries = {"vector": (vecs[:2] + 0.01).tolist(),
               "bits": [bytes(rng.integers(0, 256, 4, dtype=np.uint8)) for _ in range(2)],
               "sp": [{1: 1.0, 9: 0.5}, {3: 2.0}]}
    for field, kind, metric, build, knobs in _VECTOR_INDEXES:
        index_name = f"ix_{kind.lower()}"
        mc.create_index(name, _named(mc, field, kind, metric, index_name, build))
        assert index_name in mc.list_indexes(name)
        d = mc.describe_index(name, index_name)
        assert d["field_name"] == field and d["metric_type"] == metric
        assert d["index_type"] == local.describe_index(name, index_name)["index_type"]
        kw: dict[str, Any] = {"anns_field": field, "limit": 5, "filter": "cat != 1",
                              "output_fields": ["tag"],
                              "search_params": {"metric_type": metric, "params": knobs}}
        _same_hits(mc.search(name, queries[field], **kw), local.search(name, queries[field],
                                                                       **kw))
        mc.release_collection(name)
        mc.drop_index(name, index_name)
        assert index_name not in local.list_indexes(name)
    # scalar indexes: INVERTED, STL_SORT, TRIE, AUTOINDEX (a scalar's is INVERTED)
    for field, kind in (("cat", "INVERTED"), ("score", "STL_SORT"), ("tag", "TRIE"),
                        ("meta", "AUTOINDEX"), ("arr", "INVERTED")):
        ip = mc.prepare_index_params()
        ip.add_index(field_name=field, index_type=kind, index_name=f"sx_{field}")
        mc.create_index(name, ip)
        d = mc.describe_index(name, f"sx_{field}")
        assert d["field_name"] == field
        assert d["index_type"] == local.describe_index(name, f"sx_{field}")["index_type"]
        mc.drop_index(name, f"sx_{field}")
        assert f"sx_{field}" not in local.list_indexes(name)
    # an index type vecpg lacks: Milvus' error shape, nothing built
    with pytest.raises(MilvusException) as e:
        mc.create_index(name, _named(mc, "vector", "DISKANN", "L2", "ix_disk", {}))
    assert e.value.code == 1100 and "DISKANN" in e.value.message
    assert mc.list_indexes(name) == []


def _named(mc: Any, field: str, kind: str, metric: str, index_name: str,
           params: dict[str, Any]) -> Any:
    ip = mc.prepare_index_params()
    ip.add_index(field_name=field, index_type=kind, metric_type=metric,
                 index_name=index_name, params=params)
    return ip


def test_range_grouped_filtered_searches(mc: Any, local: vecpg.Client, name: str) -> None:
    vecs = _fill(mc, name)
    q = (vecs[:3] + 0.02).tolist()
    cases: list[dict[str, Any]] = [
        # range search: L2 within radius (squared), IP / COSINE above radius, below
        # range_filter
        {"limit": 50, "search_params": {"metric_type": "L2", "params": {"radius": 0.4}}},
        {"limit": 50, "search_params": {"metric_type": "L2",
                                        "params": {"radius": 0.5, "range_filter": 0.2}}},
        {"limit": 20, "search_params": {"metric_type": "IP",
                                        "params": {"radius": 2.0, "range_filter": 2.6}}},
        {"limit": 20, "search_params": {"metric_type": "COSINE", "params": {"radius": 0.95}},
         "filter": "cat in [1, 2]"},
        # filtered with templates of several types, offset and rounding
        {"limit": 5, "filter": "cat in {cs} and tag != {t} and score > {s}",
         "filter_params": {"cs": [0, 3, 4], "t": "t1", "s": 2.5}, "output_fields": ["cat"]},
        {"limit": 4, "offset": 3, "filter": 'meta["g"] == 1 and array_contains(arr, 2)',
         "output_fields": ["meta", "arr"], "round_decimal": 3},
        # grouped: one and two hits per group
        {"limit": 3, "group_by_field": "cat", "output_fields": ["cat"]},
        {"limit": 4, "group_by_field": "tag", "group_size": 2, "strict_group_size": True,
         "output_fields": ["tag", "cat"], "filter": "score < 10"},
    ]
    for kw in cases:
        kw["anns_field"] = "vector"
        remote = mc.search(name, q, **kw)
        _same_hits(remote, local.search(name, q, **kw))
        assert any(len(h) for h in remote), kw
    # range search: every hit within the range, and every row within it found
    d2 = ((vecs - np.asarray(q[0], np.float32)) ** 2).sum(axis=1)
    hits = mc.search(name, [q[0]], limit=300, anns_field="vector", search_params={
        "metric_type": "L2", "params": {"radius": 0.5, "range_filter": 0.2}})[0]
    assert sorted(h["id"] for h in hits) == sorted(
        int(i) for i in np.flatnonzero((d2 < 0.5) & (d2 >= 0.2)))
    # grouped: each group at most group_size times, at most limit groups
    res = mc.search(name, q, limit=4, group_by_field="tag", group_size=2, anns_field="vector",
                    output_fields=["tag"])
    for hits in res:
        tags = [h["entity"]["tag"] for h in hits]
        assert len(set(tags)) <= 4 and all(tags.count(t) <= 2 for t in tags)
    # search by primary keys: the stored vectors as queries
    kw = {"ids": [3, 8], "limit": 3, "anns_field": "vector"}
    _same_hits(mc.search(name, **kw), local.search(name, **kw))


def test_hybrid_search_variants(mc: Any, local: vecpg.Client, name: str) -> None:
    vecs = _fill(mc, name)
    reqs = [pymilvus.AnnSearchRequest((vecs[:2] + 0.05).tolist(), "vector",
                                      {"metric_type": "L2"}, 20, expr="cat != {c}",
                                      expr_params={"c": 2}),
            pymilvus.AnnSearchRequest([{1: 1.0, 7: 0.5}, {2: 0.3, 40: 1.0}], "sp",
                                      {"metric_type": "IP"}, 20),
            pymilvus.AnnSearchRequest((vecs[5:7] + 0.05).tolist(), "vector",
                                      {"metric_type": "COSINE", "params": {"radius": 0.9}},
                                      20)]
    for ranker in (pymilvus.RRFRanker(), pymilvus.WeightedRanker(0.5, 0.3, 0.2),
                   pymilvus.WeightedRanker(0.5, 0.3, 0.2, norm_score=False)):
        for kw in ({"limit": 6, "output_fields": ["tag", "cat"]},
                   {"limit": 3, "offset": 2, "round_decimal": 4},
                   {"limit": 4, "partition_names": ["_default"]}):
            _same_hits(mc.hybrid_search(name, reqs, ranker, **kw),
                       local.hybrid_search(name, reqs, ranker, **kw))
    kw = {"limit": 3, "group_by_field": "cat", "group_size": 2, "output_fields": ["cat"]}
    remote = mc.hybrid_search(name, reqs, pymilvus.RRFRanker(), **kw)
    _same_hits(remote, local.hybrid_search(name, reqs, pymilvus.RRFRanker(), **kw))
    for hits in remote:
        cats = [h["entity"]["cat"] for h in hits]
        assert len(set(cats)) <= 3 and all(cats.count(c) <= 2 for c in cats)


def test_templates_everywhere(mc: Any, local: vecpg.Client, name: str) -> None:
    _fill(mc, name, n=60)
    params = {"ids": [1, 2, 3, 4, 50], "tags": ["t1", "t2"], "lo": 1.5, "flag": True,
              "g": 2}
    for expr in ("id in {ids} and tag in {tags}", "score >= {lo}", 'meta["g"] == {g}',
                 "(cat == {g}) == {flag}", "array_contains_any(arr, {ids})"):
        _same_rows(list(mc.query(name, filter=expr, filter_params=params,
                                 output_fields=["tag"])),
                   local.query(name, filter=expr, filter_params=params, output_fields=["tag"]))
    # pymilvus' query_iterator forwards expr_params (not filter_params) to its Query RPCs
    it = mc.query_iterator(name, batch_size=4, filter="id in {ids}", expr_params=params)
    got = []
    while batch := it.next():
        got.extend(r["id"] for r in batch)
    it.close()
    assert got == [1, 2, 3, 4, 50]
    # no rows, every field asked for (vectors too): empty columns pymilvus can read
    assert mc.query(name, filter="id > {m}", filter_params={"m": 10**6},
                    output_fields=["*"]) == []
    n = mc.delete(name, filter="tag == {t} and id < {m}", filter_params={"t": "t0", "m": 20})
    assert n["delete_count"] == 5 and local.count(name, filter="tag == 't0'") == 10


def test_partitions_and_iterators(mc: Any, local: vecpg.Client, name: str) -> None:
    mc.create_collection(name, dimension=4, metric_type="IP")
    for p in ("a", "b"):
        mc.create_partition(name, p)
    rng = np.random.default_rng(3)
    for p, start in (("a", 0), ("b", 100), ("_default", 200)):
        mc.insert(name, [{"id": start + i, "vector": rng.random(4).astype(np.float32).tolist(),
                          "n": i} for i in range(40)], partition_name=p)
    assert sorted(mc.list_partitions(name)) == ["_default", "a", "b"]
    assert mc.get_partition_stats(name, "b")["row_count"] == 40
    q = [rng.random(4).astype(np.float32).tolist()]
    for parts in (["a"], ["a", "b"]):
        _same_hits(mc.search(name, q, limit=5, partition_names=parts, output_fields=["n"]),
                   local.search(name, q, limit=5, partition_names=parts, output_fields=["n"]))
        _same_rows(list(mc.query(name, filter="n < 3", partition_names=parts,
                                 output_fields=["n"])),
                   local.query(name, filter="n < 3", partition_names=parts,
                               output_fields=["n"]))
    # iterators restricted to partitions
    it = mc.query_iterator(name, batch_size=15, partition_names=["b"], output_fields=["n"])
    rows = []
    while batch := it.next():
        rows.extend(batch)
    it.close()
    assert [r["id"] for r in rows] == list(range(100, 140))
    it = mc.search_iterator(name, q, batch_size=9, partition_names=["a"], limit=30,
                            search_params={"metric_type": "IP"})
    hits = []
    while (page := it.next()) is not None and len(page):
        hits.extend(page)
    it.close()
    exact = local.search(name, q, limit=30, partition_names=["a"],
                         search_params={"metric_type": "IP", "exact": True})[0]
    assert [h.id for h in hits] == [h.id for h in exact]
    # upsert into a partition, delete from one
    mc.upsert(name, [{"id": 5, "vector": [0.0] * 4, "n": 99}], partition_name="a")
    assert mc.get(name, ids=[5], output_fields=["n"])[0]["n"] == 99
    assert mc.delete(name, filter="n >= 0", partition_name="b")["delete_count"] == 40
    mc.drop_partition(name, "a")
    assert sorted(mc.list_partitions(name)) == ["_default", "b"]
    assert local.count(name) == 40
