"""Recall against the dev dataset's exact ground truth (55k x 384 WordNet/MiniLM, cosine).

Exact search must return the ground truth; HNSW and IVF_FLAT must reach recall@10 >= 0.95
with some search setting. Uses ../shared/datasets/wordnet-minilm-384-angular.hdf5, which CI
has beside the repository.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import vecpg
from vecpg import DataType
from vecpg.datasets import load_hdf5, recall_at_k

DATASET = Path(__file__).resolve().parents[2] / "shared/datasets/wordnet-minilm-384-angular.hdf5"
N_QUERIES = 200

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wordnet(dsn: str, drop_schema):
    if not DATASET.exists():
        pytest.fail(f"dev dataset missing: {DATASET} (CI has ../shared beside the repo)")
    ds = load_hdf5(DATASET)
    with vecpg.connect(dsn, schema="recall_test") as client:
        client.drop_collection("wordnet")
        schema = client.create_schema()
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("lexfile", DataType.INT16)
        schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=ds.dim)
        client.create_collection("wordnet", schema=schema, metric_type="COSINE")
        client.insert("wordnet", {"id": np.arange(len(ds.train)),
                                  "lexfile": ds.attrs["train_lexfile"].astype(np.int16),
                                  "embedding": ds.train})
        yield client, ds
        client.drop_collection("wordnet")
    drop_schema(dsn, "recall_test")


def _ids(results) -> list[list[int]]:
    return [[h.id for h in hits] for hits in results]


def test_exact_search_is_ground_truth(wordnet) -> None:
    client, ds = wordnet
    q = ds.test[:40]
    res = client.search("wordnet", q, limit=10, search_params={"exact": True})
    for i, hits in enumerate(res):
        got = [h.id for h in hits]
        want = ds.neighbors[i, :10].tolist()
        # distances agree with the file's (1 - dot) to float32 precision
        np.testing.assert_allclose([1 - h.distance for h in hits], ds.distances[i, :10], atol=2e-6)
        if got != want:  # only exact float ties may swap places
            d = dict(zip(ds.neighbors[i], ds.distances[i]))
            assert all(abs(d.get(a, 9) - d.get(b, 9)) < 2e-6
                       for a, b in zip(got, want)), (got, want)


def test_filtered_exact_search_is_ground_truth(wordnet) -> None:
    client, ds = wordnet
    truth = ds.filters["lexfile_26"]
    res = client.search("wordnet", ds.test[:20], limit=10, filter=f"lexfile == {truth.value}",
                        search_params={"exact": True})
    assert recall_at_k(_ids(res), truth.neighbors[:20, :10], 10) >= 0.995


def test_hnsw_recall(wordnet) -> None:
    client, ds = wordnet
    client.create_index("wordnet", field_name="embedding", index_type="HNSW",
                        metric_type="COSINE", params={"M": 16, "efConstruction": 64})
    try:
        q, truth = ds.test[:N_QUERIES], ds.neighbors[:N_QUERIES, :10]
        recalls = {ef: recall_at_k(_ids(client.search("wordnet", q, limit=10,
                                                      search_params={"params": {"ef": ef}})),
                                   truth, 10) for ef in (10, 64)}
        assert recalls[64] >= 0.95, recalls
        assert recalls[10] < recalls[64]  # the knob reaches the index
        # filtered search through the index keeps k results (iterative scan)
        f = ds.filters["lexfile_0"]
        res = client.search("wordnet", q[:50], limit=10, filter=f"lexfile == {f.value}",
                            search_params={"params": {"ef": 64}})
        assert all(len(h) == 10 for h in res)
        assert recall_at_k(_ids(res), f.neighbors[:50, :10], 10) >= 0.9
    finally:
        client.drop_index("wordnet", "embedding")


def test_ivfflat_recall(wordnet) -> None:
    client, ds = wordnet
    client.create_index("wordnet", field_name="embedding", index_type="IVF_FLAT",
                        metric_type="COSINE", params={"nlist": 200})
    try:
        q, truth = ds.test[:N_QUERIES], ds.neighbors[:N_QUERIES, :10]
        recalls = {p: recall_at_k(_ids(client.search("wordnet", q, limit=10,
                                                     search_params={"params": {"nprobe": p}})),
                                  truth, 10) for p in (1, 32)}
        assert recalls[32] >= 0.95, recalls
        assert recalls[1] < recalls[32]
    finally:
        client.drop_index("wordnet", "embedding")


# Companion indexes are trained and searched in numpy; one server version tests them.
COMPANIONS = [  # (settings from scripts/bench_quantize.py on the dev set)
    ("IVF_SQ8", {"nlist": 256}, {"nprobe": 2, "rerank": 2}, {"nprobe": 32, "rerank": 4}),
    ("IVF_PQ", {"nlist": 256, "m": 48}, {"nprobe": 2, "rerank": 2}, {"nprobe": 64, "rerank": 10}),
    ("ANNOY", {"n_trees": 50}, {"search_k": 200, "rerank": 1}, {"search_k": 20000, "rerank": 10}),
]


@pytest.mark.parametrize("kind,params,low,high", COMPANIONS, ids=[c[0] for c in COMPANIONS])
def test_companion_recall(wordnet, request, kind, params, low, high) -> None:
    if "pg16" in request.node.callspec.id:
        pytest.skip("companion indexes are numpy-side: tested on one server version")
    client, ds = wordnet
    client.create_index("wordnet", field_name="embedding", index_type=kind,
                        metric_type="COSINE", params=params)
    try:
        q, truth = ds.test[:N_QUERIES], ds.neighbors[:N_QUERIES, :10]
        recalls = [recall_at_k(_ids(client.search("wordnet", q, limit=10,
                                                  search_params={"params": p})), truth, 10)
                   for p in (low, high)]
        assert recalls[1] >= 0.95, recalls
        assert recalls[0] < recalls[1]  # the knobs reach the index
        d = client.describe_index("wordnet", "embedding")
        assert d["coverage"]["encoded"] == len(ds.train) and d["coverage"]["pending"] == 0
        if kind == "IVF_PQ":  # codes take at most 1/16 of the float vectors' bytes
            assert d["bytes_per_vector"] * 16 <= 4 * ds.dim
    finally:
        client.drop_index("wordnet", "embedding")
