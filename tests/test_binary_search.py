"""Binary fingerprint search: Tanimoto top-k and range search, substructure and
superstructure screening with popcount bounds, against numpy references; and Milvus range
search (radius / range_filter) on float metrics."""

from __future__ import annotations

import numpy as np
import pytest
from psycopg import sql

import vecpg
from vecpg import InvalidArgument

DIM = 256
N = 3000


def _fingerprints(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    density = rng.uniform(0.03, 0.4, size=(n, 1))
    return rng.random((n, DIM)) < density


def _collection(client: vecpg.Client, fps: np.ndarray, index_type: str, metric: str) -> None:
    schema = client.create_schema()
    schema.add_field("id", vecpg.DataType.INT64, is_primary=True)
    schema.add_field("fp", vecpg.DataType.BINARY_VECTOR, dim=DIM)
    client.create_collection("m", schema=schema, metric_type=metric)
    client.insert("m", {"id": np.arange(len(fps)), "fp": np.packbits(fps, axis=1)})
    client.create_index("m", field_name="fp", index_type=index_type, metric_type=metric,
                        params={"M": 16, "efConstruction": 64} if index_type == "HNSW" else {})


def _tanimoto(q: np.ndarray, fps: np.ndarray) -> np.ndarray:
    inter = (fps & q).sum(1)
    union = (fps | q).sum(1)
    return np.where(union > 0, inter / np.maximum(union, 1), 0.0)


@pytest.mark.parametrize("index_type", ["BIN_FLAT", "HNSW"])
def test_tanimoto_top_k_matches_numpy(client: vecpg.Client, index_type: str) -> None:
    fps = _fingerprints(N)
    _collection(client, fps, index_type, "TANIMOTO")
    queries = fps[:20] ^ (np.random.default_rng(1).random((20, DIM)) < 0.02)
    hits = client.search("m", np.packbits(queries, axis=1), limit=10,
                         search_params={"params": {"ef": 200}})
    found = 0
    for q, h in zip(queries, hits):
        sim = _tanimoto(q, fps)
        kth = np.sort(sim)[::-1][9]
        assert len(h) == 10
        # distances are exact: 1 - tanimoto, ascending
        for hit in h:
            assert hit["distance"] == pytest.approx(1.0 - sim[hit["id"]], abs=1e-12)
        assert [x["distance"] for x in h] == sorted(x["distance"] for x in h)
        found += sum(sim[x["id"]] >= kth - 1e-12 for x in h)
    if index_type == "BIN_FLAT":
        assert found == 200  # exact: every hit is at least as similar as the 10th best
    else:
        assert found >= 190  # HNSW: recall >= 0.95 on these queries


@pytest.mark.parametrize("index_type", ["BIN_FLAT", "HNSW"])
def test_tanimoto_range_search_returns_all_above_threshold(client: vecpg.Client,
                                                           index_type: str) -> None:
    fps = _fingerprints(N, seed=2)
    _collection(client, fps, index_type, "TANIMOTO")
    for i in range(5):
        q = fps[i * 7]
        sim = _tanimoto(q, fps)
        t = 0.35
        want = set(np.flatnonzero(sim > t).tolist())
        # radius is a distance bound: 1 - tanimoto < radius  <=>  tanimoto > 1 - radius
        hits = client.search("m", np.packbits(q)[None], limit=1000,
                             search_params={"params": {"radius": 1 - t, "exact": True}})[0]
        assert {h["id"] for h in hits} == want
        assert all(h["distance"] < 1 - t for h in hits)
        # range_filter drops the closest (e.g. the query itself, distance 0)
        hits = client.search("m", np.packbits(q)[None], limit=1000,
                             search_params={"params": {"radius": 1 - t, "range_filter": 1e-9,
                                                       "exact": True}})[0]
        assert {h["id"] for h in hits} == {j for j in want if sim[j] < 1 - 1e-9}


@pytest.mark.parametrize("metric", ["SUBSTRUCTURE", "SUPERSTRUCTURE"])
def test_structure_screening_is_exact(client: vecpg.Client, metric: str) -> None:
    fps = _fingerprints(N, seed=3)
    _collection(client, fps, "BIN_FLAT", metric)
    rng = np.random.default_rng(4)
    for i in range(8):
        row = fps[i * 11]
        if metric == "SUBSTRUCTURE":   # a query made of some of a row's bits
            q = row & (rng.random(DIM) < 0.5)
            want = set(np.flatnonzero(((fps & q) == q).all(1)).tolist())
        else:                          # a query holding a row's bits and more
            q = row | (rng.random(DIM) < 0.3)
            want = set(np.flatnonzero(((fps & q) == fps).all(1)).tolist())
        hits = client.search("m", np.packbits(q)[None], limit=N)[0]
        assert {h["id"] for h in hits} == want and i * 11 in want
        assert all(h["distance"] == pytest.approx(1 - _tanimoto(q, fps)[h["id"]]) for h in hits)


def test_popcount_index_serves_a_selective_screen(client: vecpg.Client) -> None:
    fps = _fingerprints(N, seed=5)
    _collection(client, fps, "BIN_FLAT", "SUBSTRUCTURE")
    dense = fps[int(np.argmax(fps.sum(1)))]   # only the densest rows can contain it
    lines: list[str] = []
    with client.connection() as conn:
        conn.execute("SET enable_seqscan = off")  # a tiny table: show the index *can* serve
        stmt = sql.SQL("EXPLAIN SELECT id FROM {} WHERE vecpg.popcount(fp) >= "
                       "vecpg.popcount(%s::bit(256)) AND vecpg.is_substructure(%s::bit(256), fp)"
                       ).format(sql.Identifier(client.schema, "m"))
        bits = "".join("1" if b else "0" for b in dense)
        lines = [r[0] for r in conn.execute(stmt, (bits, bits))]
        conn.execute("RESET enable_seqscan")
    assert any("m__fp_popcount" in ln for ln in lines), lines
    hits = client.search("m", np.packbits(dense)[None], limit=10)[0]
    assert [h["id"] for h in hits] == [int(np.argmax(fps.sum(1)))] or len(hits) >= 1


@pytest.mark.parametrize("metric", ["L2", "IP", "COSINE"])
def test_float_range_search(client: vecpg.Client, metric: str) -> None:
    rng = np.random.default_rng(6)
    x = rng.standard_normal((500, 8)).astype(np.float32)
    client.create_collection("f", dimension=8, metric_type=metric)
    client.insert("f", {"id": np.arange(500), "vector": x})
    q = x[0]
    if metric == "L2":  # squared L2, as Milvus returns it and bounds it
        v = ((x - q).astype(np.float64) ** 2).sum(axis=1)
        radius, rf = float(np.sort(v)[50]), float(np.sort(v)[10])
        want = set(np.flatnonzero((v < radius) & (v >= rf)).tolist())
    else:
        v = x @ q if metric == "IP" else (x @ q) / np.linalg.norm(x, axis=1) / np.linalg.norm(q)
        radius, rf = float(np.sort(v)[::-1][50]), float(np.sort(v)[::-1][10])
        want = set(np.flatnonzero((v > radius) & (v <= rf)).tolist())
    hits = client.search("f", q[None], limit=500,
                         search_params={"params": {"radius": radius, "range_filter": rf}})[0]
    got = {h["id"] for h in hits}
    # values within float rounding of a bound may fall either way
    edge = {i for i in range(500) if min(abs(v[i] - radius), abs(v[i] - rf)) < 1e-5}
    assert got - edge == want - edge
    with pytest.raises(InvalidArgument, match="range_filter"):
        client.search("f", q[None], search_params={"params": {"radius": 1.0,
                                                               "range_filter": 1.0}})
    with pytest.raises(InvalidArgument, match="radius"):
        client.search("f", q[None], search_params={"params": {"radius": float("nan")}})
