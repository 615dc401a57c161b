"""hybrid_search: several searches of one collection (two dense fields, a binary one)
fused by RRF or weighted ranking, equal to a Python reference that fuses the per-request
results of exact search; pymilvus' own request and ranker objects work too."""

from __future__ import annotations

import math

import numpy as np
import pytest

import vecpg
from vecpg import AnnSearchRequest, DataType, RRFRanker, WeightedRanker

N = 400


@pytest.fixture
def coll(client: vecpg.Client) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(9)
    data = {"a": rng.normal(size=(N, 8)).astype(np.float32),
            "b": rng.normal(size=(N, 4)).astype(np.float32),
            "bits": rng.integers(0, 2, (N, 32)).astype(bool)}
    s = client.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("a", DataType.FLOAT_VECTOR, dim=8)
    s.add_field("b", DataType.FLOAT_VECTOR, dim=4)
    s.add_field("bits", DataType.BINARY_VECTOR, dim=32)
    s.add_field("tag", DataType.INT64)
    client.create_collection("h", schema=s)
    client.insert("h", {"id": np.arange(N), "a": data["a"], "b": data["b"],
                        "bits": [np.packbits(r).tobytes() for r in data["bits"]],
                        "tag": np.arange(N) % 5})
    client.create_index("h", field_name="a", index_type="HNSW", metric_type="COSINE")
    client.create_index("h", field_name="b", index_type="FLAT", metric_type="L2")
    client.create_index("h", field_name="bits", index_type="BIN_FLAT", metric_type="HAMMING")
    data["tag"] = np.arange(N) % 5
    return data


def _exact(data: dict[str, np.ndarray], field: str, q: np.ndarray, limit: int,
           mask: np.ndarray) -> list[tuple[int, float]]:
    ids = np.flatnonzero(mask)
    if field == "a":
        x = data["a"][ids].astype(np.float64)
        s = x @ q / (np.linalg.norm(x, axis=1) * np.linalg.norm(q))
        order = np.argsort(-s, kind="stable")
    elif field == "b":
        s = ((data["b"][ids].astype(np.float64) - q) ** 2).sum(axis=1)
        order = np.argsort(s, kind="stable")
    else:
        s = (data["bits"][ids] != q).sum(axis=1).astype(float)
        order = np.argsort(s, kind="stable")
    return [(int(ids[i]), float(s[i])) for i in order[:limit]]


def _reference(per: list[list[tuple[int, float]]], metrics: list[str], ranker: str,
               weights: list[float], k: int) -> list[tuple[int, float]]:
    scores: dict[int, float] = {}
    for i, hits in enumerate(per):
        for rank, (key, d) in enumerate(hits, start=1):
            if ranker == "rrf":
                v = 1 / (60 + rank)
            else:
                v = weights[i] * {"COSINE": (1 + d) / 2, "L2": 1 - 2 * math.atan(d) / math.pi,
                                  "HAMMING": 1 - 2 * math.atan(d) / math.pi}[metrics[i]]
            scores[key] = scores.get(key, 0.0) + v
    return sorted(scores.items(), key=lambda kv: -kv[1])[:k]


@pytest.mark.parametrize("ranker", ["rrf", "weighted"])
def test_fusion_equals_a_python_reference(client: vecpg.Client, coll: dict, ranker: str) -> None:
    rng = np.random.default_rng(1)
    qa, qb = rng.normal(size=8).astype(np.float32), rng.normal(size=4).astype(np.float32)
    qbits = rng.integers(0, 2, 32).astype(bool)
    reqs = [AnnSearchRequest([qa], "a", {"params": {"ef": 200}}, 20),
            AnnSearchRequest([qb], "b", {}, 15, expr="tag != 2"),
            AnnSearchRequest([np.packbits(qbits).tobytes()], "bits", {}, 10)]
    weights = [0.5, 0.3, 0.2]
    rk = RRFRanker() if ranker == "rrf" else WeightedRanker(*weights)
    got = client.hybrid_search("h", reqs, rk, limit=12, output_fields=["tag"])[0]
    # the reference fuses the per-request results (each checked against numpy, ties
    # apart: Hamming distances tie often, and which tied row makes a cut is arbitrary)
    per = [[(h.id, h.distance) for h in client.search(
        "h", r.data, filter=r.expr or "", limit=r.limit, search_params=r.param,
        anns_field=r.anns_field)[0]] for r in reqs]
    everything = np.ones(N, bool)
    exact = [_exact(coll, "a", qa, 20, everything), _exact(coll, "b", qb, 15, coll["tag"] != 2),
             _exact(coll, "bits", qbits, 10, everything)]
    for mine, ref in zip(per, exact):
        np.testing.assert_allclose([d for _, d in mine], [d for _, d in ref], rtol=1e-5)
    want = _reference(per, ["COSINE", "L2", "HAMMING"], ranker, weights, 12)
    assert [h.id for h in got] == [k for k, _ in want]
    np.testing.assert_allclose([h.distance for h in got], [s for _, s in want], rtol=1e-5)
    assert all(h["tag"] == coll["tag"][h.id] for h in got)
    assert got.ids == [h.id for h in got]
    # offset skips the first fused hits
    rest = client.hybrid_search("h", reqs, rk, limit=5, offset=3)[0]
    assert [h.id for h in rest] == [k for k, _ in want[3:8]]


def test_pymilvus_objects_and_errors(client: vecpg.Client, coll: dict) -> None:
    pymilvus = pytest.importorskip("pymilvus")
    q = np.ones(8, np.float32)
    reqs = [pymilvus.AnnSearchRequest([q], "a", {"metric_type": "COSINE"}, 5),
            pymilvus.AnnSearchRequest([q[:4]], "b", {}, 5, expr="tag == 1")]
    ours = client.hybrid_search("h", [AnnSearchRequest([q], "a", {"metric_type": "COSINE"}, 5),
                                      AnnSearchRequest([q[:4]], "b", {}, 5, expr="tag == 1")],
                                RRFRanker(60), limit=5)
    theirs = client.hybrid_search("h", reqs, pymilvus.RRFRanker(60), limit=5)
    assert [h.id for h in theirs[0]] == [h.id for h in ours[0]]
    w = client.hybrid_search("h", reqs, pymilvus.WeightedRanker(0.9, 0.1), limit=5)
    assert len(w[0]) == 5
    with pytest.raises(vecpg.InvalidArgument, match="weights"):
        client.hybrid_search("h", reqs, WeightedRanker(1.0), limit=5)
    with pytest.raises(vecpg.InvalidArgument):
        client.hybrid_search("h", [], RRFRanker())
    with pytest.raises(vecpg.InvalidArgument, match="as many query vectors"):
        client.hybrid_search("h", [AnnSearchRequest([q, q], "a", {}, 5),
                                   AnnSearchRequest([q[:4]], "b", {}, 5)])


def test_grouped_hybrid_search_equals_a_python_reference(client: vecpg.Client,
                                                         coll: dict) -> None:
    """hybrid_search(group_by_field=, group_size=): the fused ranking grouped as Milvus
    groups it: groups ranked by their best row, at most group_size rows each."""
    rng = np.random.default_rng(4)
    qa, qb = rng.normal(size=8).astype(np.float32), rng.normal(size=4).astype(np.float32)
    reqs = [AnnSearchRequest([qa], "a", {"params": {"ef": 200}}, 40),
            AnnSearchRequest([qb], "b", {}, 40)]
    per = [[(h.id, h.distance) for h in client.search("h", r.data, limit=r.limit,
                                                       search_params=r.param,
                                                       anns_field=r.anns_field)[0]]
           for r in reqs]
    fused = _reference(per, ["COSINE", "L2"], "rrf", [], 10**6)
    groups: dict[int, list[tuple[int, float]]] = {}
    for key, s in fused:
        g = groups.setdefault(int(coll["tag"][key]), [])
        if len(g) < 2:
            g.append((key, s))
    want = [hit for hits in list(groups.values())[:3] for hit in hits]
    got = client.hybrid_search("h", reqs, RRFRanker(), limit=3, group_by_field="tag",
                               group_size=2, output_fields=["tag"])[0]
    assert [h.id for h in got] == [k for k, _ in want]
    np.testing.assert_allclose([h.distance for h in got], [s for _, s in want], rtol=1e-9)
    tags = [h["tag"] for h in got]
    assert len(set(tags)) == 3 and all(tags.count(t) <= 2 for t in tags)


def test_round_decimal_applies_to_every_search_path(client: vecpg.Client, coll: dict) -> None:
    """round_decimal rounds hits of a plain, a grouped and a hybrid search alike, and a bad
    value is a vecpg error on each."""
    q = np.ones(8, np.float32)
    reqs = [AnnSearchRequest([q], "a", {}, 5), AnnSearchRequest([q[:4]], "b", {}, 5)]
    runs = [client.search("h", [q], limit=5, anns_field="a", round_decimal=2)[0],
            client.search("h", [q], limit=5, anns_field="a", round_decimal=2,
                          group_by_field="tag")[0],
            client.hybrid_search("h", reqs, RRFRanker(), limit=5, round_decimal=2)[0]]
    for hits in runs:
        assert hits and all(h.distance == round(h.distance, 2) for h in hits)
    for call in (lambda: client.search("h", [q], anns_field="a", round_decimal="x"),
                 lambda: client.hybrid_search("h", reqs, RRFRanker(), round_decimal=99)):
        with pytest.raises(vecpg.InvalidArgument):
            call()


def test_a_request_filter_given_as_filter_or_expr_is_the_same(client: vecpg.Client,
                                                              coll: dict) -> None:
    q = np.ones(8, np.float32)
    by_expr = client.hybrid_search("h", [AnnSearchRequest([q], "a", {}, 10, expr="tag == 3")])
    by_filter = client.hybrid_search("h", [AnnSearchRequest([q], "a", {}, 10,
                                                            filter="tag == 3")])
    assert [h.id for h in by_filter[0]] == [h.id for h in by_expr[0]]
    assert all(coll["tag"][h.id] == 3 for h in by_filter[0])
