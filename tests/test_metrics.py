"""Every metric's search results against a numpy reference: the same top-k, the same
distances (1e-5 for float vectors, exactly for binary), from the API and from plain SQL."""

from __future__ import annotations

import numpy as np
import psycopg
import pytest
from pgvector import Bit
from pgvector.psycopg import register_vector
from psycopg import sql

from vecpg import DataType

N, DIM, BITS, K = 300, 16, 64, 10


def _float_reference(metric: str, data: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Returned values as documented (Milvus'): squared L2 distance, IP and COSINE
    similarity."""
    d = data.astype(np.float64)
    q = q.astype(np.float64)
    if metric == "L2":
        return ((d - q) ** 2).sum(axis=1)
    if metric == "IP":
        return d @ q
    return (d @ q) / (np.linalg.norm(d, axis=1) * np.linalg.norm(q))


def _check_topk(hits, ref: np.ndarray, *, higher_is_closer: bool, atol: float) -> None:
    order = np.argsort(-ref if higher_is_closer else ref, kind="stable")
    want = ref[order[:len(hits)]]
    got = np.array([h.distance for h in hits])
    np.testing.assert_allclose(got, want, atol=atol, rtol=0)
    # each returned id has exactly the distance the reference gives it (ties may reorder)
    np.testing.assert_allclose(got, ref[[h.id for h in hits]], atol=atol, rtol=0)


@pytest.mark.parametrize("dtype", [DataType.FLOAT_VECTOR, DataType.FLOAT16_VECTOR,
                                   DataType.SPARSE_FLOAT_VECTOR])
@pytest.mark.parametrize("metric", ["L2", "IP", "COSINE"])
def test_float_metrics(client, conn: psycopg.Connection, schema_name: str, dtype, metric) -> None:
    rng = np.random.default_rng(7)
    data = rng.normal(size=(N, DIM)).astype(np.float32)
    if dtype is DataType.SPARSE_FLOAT_VECTOR:
        data[rng.random(size=data.shape) < 0.6] = 0.0
        data[:, 0] = 1.0  # no all-zero rows: cosine is undefined there
    if dtype is DataType.FLOAT16_VECTOR:
        data = data.astype(np.float16).astype(np.float32)  # what halfvec stores
    schema = client.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", dtype, dim=DIM)
    client.create_collection("m", schema=schema, metric_type=metric)
    if dtype is DataType.SPARSE_FLOAT_VECTOR:
        rows = [{"id": i, "v": {j: float(x) for j, x in enumerate(data[i]) if x}}
                for i in range(N)]
    else:
        rows = [{"id": i, "v": data[i]} for i in range(N)]
    client.insert("m", rows)
    queries = rng.normal(size=(5, DIM)).astype(np.float32)
    if dtype is DataType.FLOAT16_VECTOR:
        queries = queries.astype(np.float16).astype(np.float32)  # compared as halfvec too
    if dtype is DataType.SPARSE_FLOAT_VECTOR:
        qs = [{j: float(x) for j, x in enumerate(q)} for q in queries]
    else:
        qs = list(queries)
    results = client.search("m", qs, limit=K)
    higher = metric in ("IP", "COSINE")
    for q, hits in zip(queries, results):
        assert len(hits) == K
        _check_topk(hits, _float_reference(metric, data, q), higher_is_closer=higher, atol=1e-5)

    # plain SQL on the same table gives the same values through pgvector's operators
    register_vector(conn)
    op = {"L2": "<->", "IP": "<#>", "COSINE": "<=>"}[metric]
    cast = {DataType.FLOAT_VECTOR: "vector", DataType.FLOAT16_VECTOR: "halfvec",
            DataType.SPARSE_FLOAT_VECTOR: "sparsevec"}[dtype]
    rows = conn.execute(sql.SQL("SELECT id, v {} %s::vector::{} AS d FROM {} ORDER BY d LIMIT {}")
                        .format(sql.SQL(op), sql.SQL(cast), sql.Identifier(schema_name, "m"),
                                sql.Literal(K)), (queries[0],)).fetchall()
    raw = np.array([r[1] for r in rows])
    ref = _float_reference(metric, data, queries[0])[[r[0] for r in rows]]
    shown = {"L2": raw ** 2, "IP": -raw, "COSINE": 1 - raw}[metric]
    np.testing.assert_allclose(shown, ref, atol=1e-5, rtol=0)
    assert [r[0] for r in rows] == [h.id for h in results[0]]


def _bits(rng: np.random.Generator, n: int, density: float) -> np.ndarray:
    return rng.random(size=(n, BITS)) < density


def _binary_collection(client, metric: str, data: np.ndarray) -> None:
    schema = client.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("fp", DataType.BINARY_VECTOR, dim=BITS)
    client.create_collection("b", schema=schema, metric_type=metric)
    client.insert("b", [{"id": i, "fp": np.packbits(data[i]).tobytes()} for i in range(len(data))])


def _jaccard(data: np.ndarray, q: np.ndarray) -> np.ndarray:
    inter = (data & q).sum(axis=1)
    union = (data | q).sum(axis=1)
    sim = np.divide(inter, union, out=np.zeros(len(data)), where=union > 0)
    return 1.0 - sim


@pytest.mark.parametrize("metric", ["HAMMING", "JACCARD", "TANIMOTO"])
def test_binary_metrics(client, metric) -> None:
    rng = np.random.default_rng(11)
    data = _bits(rng, N, 0.3)
    _binary_collection(client, metric, data)
    queries = _bits(rng, 5, 0.3)
    results = client.search("b", [np.packbits(q).tobytes() for q in queries], limit=K)
    for q, hits in zip(queries, results):
        ref = (data != q).sum(axis=1).astype(float) if metric == "HAMMING" else _jaccard(data, q)
        _check_topk(hits, ref, higher_is_closer=False, atol=0 if metric == "HAMMING" else 1e-12)


@pytest.mark.parametrize("metric", ["SUBSTRUCTURE", "SUPERSTRUCTURE"])
def test_structure_metrics(client, conn: psycopg.Connection, metric) -> None:
    rng = np.random.default_rng(13)
    data = _bits(rng, N, 0.3)
    _binary_collection(client, metric, data)
    for _ in range(5):
        row = data[rng.integers(N)]
        if metric == "SUBSTRUCTURE":   # query inside some rows: keep a few of a row's bits
            q = row & (rng.random(BITS) < 0.25)
            match = ((data & q) == q).all(axis=1)
        else:                          # query around some rows: add bits to a row
            q = row | (rng.random(BITS) < 0.3)
            match = ((data & q) == data).all(axis=1)
        hits = client.search("b", [np.packbits(q).tobytes()], limit=N)[0]
        assert sorted(h.id for h in hits) == sorted(np.flatnonzero(match).tolist())
        ref = _jaccard(data, q)
        _check_topk(hits, np.where(match, ref, np.inf), higher_is_closer=False, atol=1e-12)
    # the SQL functions agree with the relation used above
    register_vector(conn)
    a, b = Bit(np.array([1, 0, 1, 0, 0, 0, 0, 0], dtype=bool)), Bit("11100000")
    assert conn.execute("SELECT vecpg.is_substructure(%s, %s), vecpg.is_superstructure(%s, %s)",
                        (a, b, b, a)).fetchone() == (True, True)
