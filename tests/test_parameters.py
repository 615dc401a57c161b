"""Index and search parameters are checked against the index kinds table: a misspelled or
unknown name raises InvalidArgument naming the accepted ones (it used to be ignored), and
leaves nothing behind; Milvus' names with no meaning here are accepted."""

from __future__ import annotations

import numpy as np
import pytest

import vecpg
from vecpg.indexes import KINDS, kind_of


def _collection(client: vecpg.Client) -> np.ndarray:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 8)).astype(np.float32)
    client.create_collection("p", dimension=8, metric_type="L2")
    client.insert("p", {"id": np.arange(200), "vector": x})
    return x


@pytest.mark.parametrize("index_type,params,bad", [
    ("HNSW", {"M": 8, "bogus": 1}, "'bogus'"),
    ("HNSW", {"efconstruction": 64}, "'efconstruction'"),
    ("IVF_FLAT", {"nlist": 4, "nprobe": 8}, "'nprobe'"),
    ("IVF_SQ8", {"nlist": 4, "m": 2}, "'m'"),
    ("ANNOY", {"ntrees": 4}, "'ntrees'"),
    ("FLAT", {"nlist": 4}, "'nlist'"),
])
def test_unknown_build_parameter_raises_and_builds_nothing(client: vecpg.Client,
                                                          index_type: str, params: dict,
                                                          bad: str) -> None:
    _collection(client)
    with pytest.raises(vecpg.InvalidArgument, match="accepted") as e:
        client.create_index("p", field_name="vector", index_type=index_type, params=params)
    assert bad in str(e.value)
    assert client.list_indexes("p") == []


def test_accepted_names_and_aliases_take_effect(client: vecpg.Client) -> None:
    _collection(client)
    # pgvector's names are aliases of Milvus' (m for M), and pymilvus may repeat the
    # metric inside params
    client.create_index("p", field_name="vector", index_type="HNSW", metric_type="L2",
                        params={"m": 8, "ef_construction": 32, "metric_type": "L2"})
    d = client.describe_index("p", "vector")
    assert d["index_type"] == "HNSW" and d["params"] == {"M": 8, "efConstruction": 32}


def test_unknown_search_parameter_raises(client: vecpg.Client) -> None:
    x = _collection(client)
    with pytest.raises(vecpg.InvalidArgument, match=r"'eff'.*accepted: ef, nprobe"):
        client.search("p", x[:1], limit=3, search_params={"params": {"eff": 64}})
    with pytest.raises(vecpg.InvalidArgument, match=r"'probes'"):
        client.search("p", x[:1], limit=3, search_params={"probes": 4})
    with pytest.raises(vecpg.InvalidArgument, match="search_params must be a dict"):
        client.search("p", x[:1], limit=3, search_params=[("ef", 4)])  # type: ignore[arg-type]


def test_milvus_only_knobs_are_accepted_and_offset_is_honoured(client: vecpg.Client) -> None:
    x = _collection(client)
    plain = client.search("p", x[:1], limit=6)[0]
    tuned = client.search("p", x[:1], limit=6, search_params={
        "metric_type": "L2", "params": {"level": 2, "ignore_growing": False}})[0]
    assert [h.id for h in tuned] == [h.id for h in plain]
    # Milvus takes the offset inside search_params too
    paged = client.search("p", x[:1], limit=3, search_params={"offset": 3})[0]
    assert [h.id for h in paged] == [h.id for h in plain[3:6]]


def test_every_kind_declares_what_the_planner_and_calibration_need() -> None:
    for name, kind in KINDS.items():
        assert kind_of(name.lower()) is kind
        if kind.family in ("hnsw", "ivfflat", "companion"):
            assert kind.knob and kind.grid == tuple(sorted(kind.grid)) and kind.strategy
        else:
            assert kind.knob is None and kind.strategy is None
    assert kind_of("autoindex") is KINDS["HNSW"]
    with pytest.raises(vecpg.InvalidArgument, match=r"unknown index type 'HNSWX'"):
        kind_of("HNSWX")
