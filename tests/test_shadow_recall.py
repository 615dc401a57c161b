"""Shadow queries against a real Postgres: a filter that keeps one end of the vector space
(correlated with the vectors) makes a filtered HNSW scan miss more than the planner's
model says; exact shadows of the first searches measure the shortfall and the plans after
them keep the recall promise, within a time budget (vecpg.shadow)."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

import vecpg
from vecpg import DataType
from vecpg.planner import PlanCache, Planner
from vecpg.shadow import SHADOW_BATCH, SHADOW_CLEAR, SHADOW_PROPERTY, SHADOW_SHARE

N, DIM, K = 10000, 64, 10
WARMUP = 20  # searches before recall is measured


def _unit(rng: np.random.Generator, centers: np.ndarray, n: int) -> np.ndarray:
    x = centers[rng.integers(0, len(centers), size=n)] + rng.normal(
        scale=0.6, size=(n, centers.shape[1]))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32)


def _collection(builder: vecpg.Client, name: str, data: np.ndarray, c: np.ndarray,
                index_type: str, params: dict) -> None:
    """Collection ``name``: the rows with ``c`` (btree) and a vector index."""
    schema = builder.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("c", DataType.INT64)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=DIM)
    builder.create_collection(name, schema=schema, metric_type="COSINE")
    builder.insert(name, {"id": np.arange(N), "c": c, "v": data})
    builder.create_index(name, field_name="c", index_type="STL_SORT", index_name=f"{name}_c")
    builder.create_index(name, field_name="v", index_type=index_type, params=params)


@pytest.fixture(scope="module")
def world(dsn: str, state_latencies, drop_schema):
    """10,000 x 64 clustered unit vectors; ``c`` is the rank of each row's projection on a
    random direction scaled to 0-999 (``c < 120``: the 12% of rows at one end of the space,
    as scripts/planner_eval.py's ``c``), with a btree; HNSW calibrated with held-out
    queries, latencies stated (conftest) so plans do not follow the machine's load."""
    schema_name = "sh_" + uuid.uuid4().hex[:10]
    rng = np.random.default_rng(3)
    centers = rng.normal(size=(50, DIM))
    data, queries, held = _unit(rng, centers, N), _unit(rng, centers, 120), \
        _unit(rng, centers, 100)
    proj = data @ rng.normal(size=DIM).astype(np.float32)
    c = (np.argsort(np.argsort(proj)) * 1000 // N).astype(np.int64)
    with vecpg.connect(dsn, schema=schema_name) as builder:
        _collection(builder, "w", data, c, "HNSW", {"M": 16, "efConstruction": 64})
        builder.calibrate("w", queries=held)
    state_latencies(dsn, schema_name, "w", "v")
    yield dsn, schema_name, data, queries, c
    drop_schema(dsn, schema_name)


def _truth(data: np.ndarray, queries: np.ndarray, mask: np.ndarray) -> list[set[int]]:
    sims = queries @ data.T
    sims[:, ~mask] = -np.inf
    return [set(map(int, row)) for row in np.argsort(-sims, axis=1)[:, :K]]


def _searches(client: vecpg.Client, queries: np.ndarray, expr: str) -> list[set[int]]:
    return [{h.id for h in client.search("w", [q], limit=K, filter=expr)[0]} for q in queries]


def _recall(found: list[set[int]], truth: list[set[int]]) -> float:
    return float(np.mean([len(f & t) / K for f, t in zip(found, truth)]))


def test_shadows_keep_the_recall_promise_on_a_correlated_filter(world) -> None:
    dsn, schema_name, data, queries, c = world
    expr = "c < 120"
    truth = _truth(data, queries, c < 120)[WARMUP:]
    got = {}
    for shadows in (False, True):
        with vecpg.connect(dsn, schema=schema_name) as client:
            client.alter_collection_properties("w", {SHADOW_PROPERTY: shadows})
            found = _searches(client, queries, expr)
            got[shadows] = _recall(found[WARMUP:], truth)
            e = client.explain("w", limit=K, filter=expr)
            if shadows:
                assert e["shadow"]["shadows"] >= 3
            else:
                assert "shadow" not in e
    # the model promised >= 0.95 and HNSW missed it on this filter; measured, the plan
    # that followed kept it (seen: 0.907 without shadows, 0.995 with)
    assert got[False] < 0.95 <= got[True], got


def test_shadows_stop_at_their_budget_and_explain_shows_them(world, monkeypatch) -> None:
    """On a filter the model gets right (``id < 4000``: 40% of the rows, by key, independent
    of the vectors), the first searches are shadowed (SHADOW_CLEAR of them when their
    samples clear the model, at most SHADOW_FIRST), then only while later shadows cost under
    SHADOW_SHARE of the filter's search time; forced searches are never shadowed."""
    dsn, schema_name, _, queries, _ = world
    expr = "id < 4000"
    # Measured costs stay out of it: under load (CI, 2 cores) the HNSW searches measured
    # up to 8x their stated latency and the exact scan 0.2x, the plan became exact after
    # 3 searches, and exact plans are not shadowed (seen: 3 searches counted of 120).
    monkeypatch.setattr(Planner, "observe", lambda self, plan, ms: True)
    with vecpg.connect(dsn, schema=schema_name) as client:
        for q in queries[:20]:
            client.search("w", [q], limit=K, filter=expr, search_params={"params": {"ef": 40}})
        assert "shadow" not in client.explain("w", limit=K, filter=expr)
        _searches(client, queries, expr)
        e = client.explain("w", limit=K, filter=expr)
        sh = e["shadow"]
        assert sh["searches"] == len(queries) and sh["failures"] == 0
        assert SHADOW_CLEAR <= sh["shadows"] < len(queries) // 4, sh
        # past the first ones, the budget: at most one batch over the share (it may cost
        # more than their mean: allowed twice the mean; under load one ran 1.4x)
        each = sh["shadow_ms"] / sh["shadows"]
        later = sh["shadow_ms"] - sh["first_shadows_ms"]
        assert later <= SHADOW_SHARE * sh["search_ms"] + 2 * SHADOW_BATCH * each + 1e-6, sh
        assert e["strategy"] == "hnsw"
        if "recall_shift" in e:
            assert e["recall_source"] == "observed recall" and e["recall_samples"] >= 3
            assert e["estimated_recall"] == pytest.approx(
                e["model_recall"] + e["recall_shift"], abs=1e-3)


def test_a_broad_filter_gets_one_batch_of_first_shadows(world, monkeypatch) -> None:
    """A filter keeping SHADOW_BROAD of the rows or more (``c < 800``) gets SHADOW_BATCH
    first shadows, not SHADOW_FIRST: its exact shadows cost the most and the recall a
    filtered scan can lose there is too small for them to measure."""
    from vecpg.shadow import SHADOW_BROAD

    dsn, schema_name, _, queries, _ = world
    expr = "c < 800"
    monkeypatch.setattr(Planner, "observe", lambda self, plan, ms: True)
    with vecpg.connect(dsn, schema=schema_name) as client:
        assert client.explain("w", limit=K, filter=expr)["selectivity"] >= SHADOW_BROAD
        _searches(client, queries[:60], expr)
        sh = client.explain("w", limit=K, filter=expr)["shadow"]
    assert sh["searches"] == 60 and sh["failures"] == 0
    assert sh["shadows"] >= SHADOW_BATCH and sh["first_shadows_ms"] > 0, sh
    later = sh["shadow_ms"] - sh["first_shadows_ms"]
    each = sh["shadow_ms"] / sh["shadows"]
    # past the first batch, only the budget: at most one batch over the share
    assert later <= SHADOW_SHARE * sh["search_ms"] + SHADOW_BATCH * 2 * each + 1e-6, sh
    assert sh["shadows"] <= 2 * SHADOW_BATCH, sh


def test_an_approximate_plan_probes_a_cheaper_setting_beside_its_shadows(world,
                                                                          monkeypatch) -> None:
    """With headroom (a filtered calibration that found more than the model: stated here,
    every ef finding everything), a wide plan whose samples show no shortfall also runs the
    cheapest setting the headroom could bring to the target beside its shadows, against
    the same exact answers: samples appear under the probe's width, and explain counts
    the probes."""
    import psycopg
    from psycopg.types.json import Jsonb

    from vecpg import shadow
    from vecpg.stats import sample_key

    dsn, schema_name, _, queries, _ = world
    monkeypatch.setattr(Planner, "observe", lambda self, plan, ms: True)
    monkeypatch.setattr(shadow, "SHADOW_SHARE", 1.0)  # every search shadowed: the mechanism
    where = "schema_name = %s AND collection = 'w' AND index_name = 'v'"
    with psycopg.connect(dsn, autocommit=True) as c:
        cal = c.execute(f"SELECT calibration FROM vecpg.indexes WHERE {where}",
                        (schema_name,)).fetchone()[0]
        # a curve that wants a wide beam for the target (1 - 2 / ef: 0.95 at ef 40, 0.98 at
        # 100), the index's own latencies, and a filtered sweep that found everything
        efs, ms = [p["ef"] for p in cal["curve"]], [p["ms"] for p in cal["curve"]]
        curve = [{"ef": ef, "recall": min(0.999, 1 - 2 / ef), "se": 0.0,
                  "ms": float(np.interp(ef, efs, ms))} for ef in (10, 20, 40, 64, 100, 200, 400)]
        stated = dict(cal, curve=curve, filtered={"selectivity": 0.125, "k": K, "curve": [
            {"ef": ef, "recall": 1.0, "se": 0.0, "ms": 1.0} for ef in (10, 20, 40, 64)]})
        c.execute(f"UPDATE vecpg.indexes SET calibration = %s WHERE {where}",
                  (Jsonb(stated), schema_name))
    try:
        expr = "id < 3000"  # 30% of the rows, by key: independent of the vectors
        target = 0.97
        with vecpg.connect(dsn, schema=schema_name) as client:
            client.search("w", [queries[0]], limit=K, filter=expr, recall=target)
            first = client.explain("w", limit=K, filter=expr, recall=target)
            assert first["strategy"] == "hnsw" and "probe" not in first, first  # no samples
            # the plan's own width found everything (stated: the first shadows' outcome)
            (rec,) = client._stats._recall.values()
            wide = sample_key("hnsw", first["params"])
            for _ in range(20):
                client._stats.record_recall(rec, wide, 1.0, first["estimated_recall"])
            client._plans = PlanCache()  # plan again with them
            planned = client.explain("w", limit=K, filter=expr, recall=target)
            assert "probe" in planned, planned
            for q in queries[:30]:
                client.search("w", [q], limit=K, filter=expr, recall=target)
            sh = client.explain("w", limit=K, filter=expr, recall=target)["shadow"]
        probed = sample_key("hnsw", planned["probe"]["params"])
        assert probed != wide and sh["samples"].get(probed, 0) >= 3, (planned["probe"], sh)
        assert sh["probes"] >= 3 and sh["failures"] == 0
    finally:
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute(f"UPDATE vecpg.indexes SET calibration = %s WHERE {where}",
                      (Jsonb(cal), schema_name))


def test_a_failing_shadow_never_fails_the_search(world, monkeypatch) -> None:
    """A shadow query that fails (here: cancelled, as a statement_timeout would) is
    skipped and counted; the search returns its answer. Shadows wait for a batch of
    SHADOW_BATCH query vectors: one failure costs that many."""
    import psycopg

    from vecpg import executor

    def cancelled(*_: object, **__: object) -> None:
        raise psycopg.errors.QueryCanceled("canceling statement due to statement timeout")

    dsn, schema_name, _, queries, _ = world
    monkeypatch.setattr(executor, "exact_answers", cancelled)
    with vecpg.connect(dsn, schema=schema_name) as client:
        for q in queries[:2 * SHADOW_BATCH + 1]:
            assert len(client.search("w", [q], limit=K, filter="c < 300")[0]) == K
        sh = client.explain("w", limit=K, filter="c < 300")["shadow"]
    assert sh["failures"] == 2 and sh["shadows"] == 2 * SHADOW_BATCH and sh["samples"] == {}


def test_a_batch_of_shadows_shares_one_exact_scan(world) -> None:
    """Query.exact_batch answers several query vectors in one scan with what each exact
    search would: the same ids, distances and order, per query, under a filter."""
    from vecpg import executor
    from vecpg.query import SearchRequest, query_vectors

    dsn, schema_name, _, queries, _ = world
    expr = "c < 300"
    with vecpg.connect(dsn, schema=schema_name) as client:
        want = [client.search("w", [q], limit=K, filter=expr, strategy="exact")[0]
                for q in queries[:5]]
        req = SearchRequest.of("w", limit=K, filter=expr, strategy="exact")
        with client._lease() as db:
            plan = client._plan(db, client._info("w"), req)
            assert plan.query.batchable and plan.fallback is None
            got = executor.exact_answers(db, plan, query_vectors(plan.field, queries[:5]),
                                         client._companions)
    assert len(got) == len(want)
    for hits, rows in zip(want, got):
        mine = plan.to_hits(rows)  # (rows: primary key, then the distance)
        assert [h.id for h in hits] == [h.id for h in mine]
        assert [h.distance for h in hits] == pytest.approx([h.distance for h in mine],
                                                            abs=1e-6)


def test_ivfflat_searches_are_shadowed_too(world, state_latencies) -> None:
    """The same learning for an IVF_FLAT index: samples are kept under its strategy, and
    after the warm-up the filter gets its promised recall."""
    dsn, schema_name, data, queries, c = world
    with vecpg.connect(dsn, schema=schema_name) as builder:
        _collection(builder, "f", data, c, "IVF_FLAT", {"nlist": 50})
    state_latencies(dsn, schema_name, "f", "v")
    expr = "c < 700"
    with vecpg.connect(dsn, schema=schema_name) as client:
        first = client.explain("f", limit=K, filter=expr)
        found = [{h.id for h in client.search("f", [q], limit=K, filter=expr)[0]}
                 for q in queries]
        e = client.explain("f", limit=K, filter=expr)
        client.drop_collection("f")
    assert first["strategy"] == "ivfflat", first["strategy"]
    sh = e["shadow"]
    # (kept per power of two of nprobe: "ivfflat@3" for nprobe 8-15)
    ivf = sum(n for key, n in sh["samples"].items() if key.startswith("ivfflat@"))
    assert ivf >= 3 and sh["failures"] == 0, sh
    assert _recall(found[WARMUP:], _truth(data, queries, c < 700)[WARMUP:]) >= 0.95
