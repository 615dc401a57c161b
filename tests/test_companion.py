"""Companion indexes (IVF_SQ8, IVF_PQ, ANNOY) stay consistent with the table.

With every list probed and a candidate budget that covers the collection, a companion
search must return exactly what an exact search over the *current* table returns, whatever
happened since the build: API inserts and upserts, plain-SQL inserts and updates, deletes,
truncation, filters, other processes' writes, a killed rebuild.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import psycopg
import pytest
from pgvector import Vector
from pgvector.psycopg import register_vector
from psycopg import sql

import vecpg
from vecpg import InvalidArgument, MetricMismatch
from vecpg import companion as cmp

N, DIM, NLIST = 1500, 16, 16
KINDS = {"IVF_SQ8": {"nlist": NLIST}, "IVF_PQ": {"nlist": NLIST, "m": 4},
         "ANNOY": {"n_trees": 4}}
FULL = {"params": {"nprobe": NLIST, "rerank": 1000, "search_k": 10**6}}  # covers everything


def _data(seed: int = 0, n: int = N) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((8, DIM)).astype(np.float32) * 3
    return (centers[rng.integers(0, 8, n)] + rng.standard_normal((n, DIM))).astype(np.float32)


def _make(client: vecpg.Client, kind: str, metric: str = "L2", n: int = N) -> np.ndarray:
    x = _data(n=n)
    schema = client.create_schema()
    schema.add_field("id", vecpg.DataType.INT64, is_primary=True)
    schema.add_field("vec", vecpg.DataType.FLOAT_VECTOR, dim=DIM)
    schema.add_field("grp", vecpg.DataType.INT64)
    client.create_collection("c", schema=schema, metric_type=metric)
    client.insert("c", {"id": np.arange(n), "vec": x, "grp": np.arange(n) % 10})
    client.create_index("c", field_name="vec", index_type=kind, metric_type=metric,
                        params=KINDS[kind], index_name="q")
    return x


def _same_as_exact(client: vecpg.Client, queries: np.ndarray, flt: str = "",
                   limit: int = 10) -> list[list[int]]:
    got = client.search("c", queries, limit=limit, filter=flt, search_params=FULL)
    want = client.search("c", queries, limit=limit, filter=flt, search_params={"exact": True})
    for g, w in zip(got, want):
        assert [h["id"] for h in g] == [h["id"] for h in w]
        assert np.allclose([h["distance"] for h in g], [h["distance"] for h in w], atol=1e-5)
    return [[h["id"] for h in g] for g in got]


def _sql(client: vecpg.Client, stmt: str, params: tuple = ()) -> None:
    with client.connection() as conn:
        conn.execute(sql.SQL(stmt).format(t=sql.Identifier(client.schema, "c")), params)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_consistent_after_every_kind_of_write(client: vecpg.Client, kind: str) -> None:
    x = _make(client, kind)
    q = x[:5] + 0.01
    _same_as_exact(client, q)
    # API insert of near-duplicates of the queries: they must come first
    client.insert("c", {"id": np.arange(N, N + 5), "vec": q + 0.001, "grp": [1] * 5})
    ids = _same_as_exact(client, q)
    assert [r[0] for r in ids] == list(range(N, N + 5))
    cov = client.describe_index("c", "q")["coverage"]
    # API writes are encoded in their transaction (ANNOY's trees cannot take new rows)
    assert cov["pending"] == (5 if kind == "ANNOY" else 0)
    # plain SQL insert, then an update that moves row 7 next to query 0, then deletes
    _sql(client, "INSERT INTO {t} (id, vec, grp) VALUES (%s, %s, 3)", (10**6, Vector(q[1])))
    _sql(client, "UPDATE {t} SET vec = %s WHERE id = 7", (Vector(q[0] + 0.0001),))
    _sql(client, "DELETE FROM {t} WHERE id = ANY(%s)", ([N, N + 2],))
    ids = _same_as_exact(client, q)
    assert ids[0][0] == 7 and ids[1][0] == 10**6 and N not in ids[0] and N + 2 not in ids[2]
    # API upsert of an existing key changes its vector
    client.upsert("c", [{"id": 3, "vec": (q[4] - 0.0001).tolist(), "grp": 0}])
    assert _same_as_exact(client, q)[4][0] == 3
    # filters are applied in the re-rank, including one that matches fewer rows than k
    _same_as_exact(client, q, "grp == 3")
    _same_as_exact(client, q, "id in [1, 2, 10, 1000000]")
    assert all(len(r) == 4 for r in _same_as_exact(client, q, "id in [1, 2, 10, 1000000]"))
    cov = client.describe_index("c", "q")["coverage"]
    assert cov["rows"] == N + 4 and cov["pending"] >= 2
    assert cov["stale_codes"] == (0 if kind == "ANNOY" else 2)  # ANNOY never encoded them
    # compaction re-trains: everything covered again, same answers
    out = client.compact_index("c", "q", max_uncovered=0.0)
    assert out["rebuilt"]
    after = client.describe_index("c", "q")
    assert after["version"] == 2 and after["coverage"]["pending"] == 0
    assert after["coverage"]["encoded"] == N + 4 and after["coverage"]["stale_codes"] == 0
    _same_as_exact(client, q)
    _sql(client, "TRUNCATE {t}")
    assert client.search("c", q, limit=3, search_params=FULL) == [[] for _ in q]


@pytest.mark.parametrize("metric", ["IP", "COSINE"])
def test_metrics_other_than_l2(client: vecpg.Client, metric: str) -> None:
    x = _make(client, "IVF_PQ", metric)
    _same_as_exact(client, x[:5] * 0.5)
    hits = client.search("c", x[:3], limit=5, search_params={"params": {"nprobe": 4}})
    assert all(len(h) == 5 for h in hits)


def test_varchar_primary_key(client: vecpg.Client) -> None:
    """Candidates travel as a binary array of the key type: text keys as well as bigint."""
    x = _data(n=400)
    schema = client.create_schema()
    schema.add_field("key", vecpg.DataType.VARCHAR, is_primary=True, max_length=20)
    schema.add_field("vec", vecpg.DataType.FLOAT_VECTOR, dim=DIM)
    client.create_collection("c", schema=schema, metric_type="L2")
    client.insert("c", {"key": [f"k-{i}" for i in range(400)], "vec": x})
    client.create_index("c", field_name="vec", index_type="IVF_SQ8", params={"nlist": 8},
                        index_name="q")
    _sql(client, "INSERT INTO {t} (key, vec) VALUES ('plain sql', %s)", (Vector(x[7] + 0.01),))
    got = client.search("c", x[:5], limit=4, search_params=FULL)
    want = client.search("c", x[:5], limit=4, search_params={"exact": True})
    assert [[h.id for h in g] for g in got] == [[h.id for h in w] for w in want]
    assert "plain sql" in {h.id for h in client.search("c", x[7], limit=2,
                                                        search_params=FULL)[0]}


def test_default_search_finds_true_neighbours(client: vecpg.Client) -> None:
    """With default knobs (not everything probed) recall is still high on clustered data."""
    x = _make(client, "IVF_SQ8")
    q = _data(seed=1, n=50)
    got = client.search("c", q, limit=10)
    want = client.search("c", q, limit=10, search_params={"exact": True})
    recall = np.mean([len({h["id"] for h in g} & {h["id"] for h in w}) / 10
                      for g, w in zip(got, want)])
    assert recall >= 0.9, recall
    del x


def test_other_clients_writes_are_seen_at_once(client: vecpg.Client, dsn: str) -> None:
    x = _make(client, "IVF_PQ")
    q = x[:2] + 0.01
    _same_as_exact(client, q)          # this client has loaded the codes now
    with vecpg.connect(dsn, schema=client.schema) as other:
        other.insert("c", {"id": [N + 50], "vec": q[:1] + 0.0001, "grp": [0]})
    assert _same_as_exact(client, q)[0][0] == N + 50


def test_describe_index_reports_memory(client: vecpg.Client) -> None:
    _make(client, "IVF_PQ")
    client.search("c", _data(n=1), limit=1)
    d = client.describe_index("c", "q")
    assert d["bytes_per_vector"] == 4 and d["float_bytes_per_vector"] == 4 * DIM
    assert d["memory_bytes"] > 0 and d["total_bytes"] > d["model_bytes"] > 0
    assert d["state"] == "Finished" and d["build"]["rows"] == N


def test_bad_requests_leave_nothing_behind(client: vecpg.Client) -> None:
    schema = client.create_schema()
    schema.add_field("id", vecpg.DataType.INT64, is_primary=True)
    schema.add_field("vec", vecpg.DataType.FLOAT_VECTOR, dim=DIM)
    client.create_collection("c", schema=schema, metric_type="L2")
    client.insert("c", {"id": np.arange(20), "vec": _data(n=20)})
    with pytest.raises(InvalidArgument, match="nlist"):
        client.create_index("c", field_name="vec", index_type="IVF_SQ8", params={"nlist": 64})
    with pytest.raises(InvalidArgument, match="divide"):
        client.create_index("c", field_name="vec", index_type="IVF_PQ", params={"m": 5})
    with pytest.raises(MetricMismatch):
        client.create_index("c", field_name="vec", index_type="ANNOY", metric_type="HAMMING")
    assert client.list_indexes("c") == []
    with client.connection() as conn:
        left = conn.execute("SELECT count(*) FROM pg_class c JOIN pg_namespace n ON"
                            " n.oid = c.relnamespace WHERE n.nspname = 'vecpg'"
                            " AND c.relname LIKE 'cmp%%'").fetchone()
    # other tests' companions may exist in the shared vecpg schema: only ours must be gone
    assert client.search("c", _data(n=1), limit=3)[0]
    assert left is not None


def test_drop_removes_companion_objects(client: vecpg.Client) -> None:
    _make(client, "IVF_SQ8")
    with client.connection() as conn:
        (ix_id,) = conn.execute("SELECT id FROM vecpg.indexes WHERE schema_name = %s",
                                (client.schema,)).fetchone()

    def objects() -> int:
        with client.connection() as conn:
            return conn.execute(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = 'vecpg' AND c.relname LIKE %s",
                (f"cmp\\_{ix_id}\\_%",)).fetchone()[0]

    assert objects() >= 3
    client.drop_index("c", "q")
    assert objects() == 0
    client.create_index("c", field_name="vec", index_type="ANNOY", params={"n_trees": 2},
                        index_name="q")
    with client.connection() as conn:
        (annoy_id,) = conn.execute("SELECT id FROM vecpg.indexes WHERE schema_name = %s",
                                   (client.schema,)).fetchone()
    client.drop_collection("c")
    # only this test's indexes: other tests running on the same server may hold theirs
    with client.connection() as conn:
        n = conn.execute("SELECT count(*) FROM pg_proc WHERE proname = ANY(%s)"
                         " AND pronamespace = 'vecpg'::regnamespace",
                         ([f"cmp_{i}_mark" for i in (ix_id, annoy_id)],)).fetchone()[0]
    assert n == 0


def test_rows_written_during_a_rebuild_are_found(client: vecpg.Client, dsn: str) -> None:
    x = _make(client, "IVF_SQ8")
    q = x[:2] + 0.01
    wrote = []

    def midway(p: dict) -> None:
        # runs inside the build's snapshot: another connection commits new rows now
        if p.get("phase") == "encoding" and not wrote:
            with vecpg.connect(dsn, schema=client.schema) as watcher:
                assert watcher.describe_index("c", "q")["build_running"] is True
            with psycopg.connect(dsn, autocommit=True) as other:
                register_vector(other)
                other.execute(sql.SQL("INSERT INTO {} (id, vec, grp) VALUES (%s, %s, 0)").format(
                    sql.Identifier(client.schema, "c")), (N + 77, Vector(q[0] + 0.0001)))
            with vecpg.connect(dsn, schema=client.schema) as api:
                api.insert("c", {"id": [N + 78], "vec": q[1:2] + 0.0001, "grp": [0]})
            wrote.append(True)

    client.rebuild_index("c", "q", progress=midway)
    assert wrote
    ids = _same_as_exact(client, q)
    assert ids[0][0] == N + 77 and ids[1][0] == N + 78
    assert client.describe_index("c", "q")["coverage"]["pending"] == 2


KILL_SCRIPT = textwrap.dedent("""
    import os, sys, vecpg
    c = vecpg.connect(sys.argv[1], schema=sys.argv[2])
    def report(p):
        if p.get("phase") == "writing codes" or p.get("phase") == "encoding":
            print("MIDWAY", flush=True)
            os.kill(os.getpid(), 9)
    c.rebuild_index("c", "q", progress=report)
    print("FINISHED", flush=True)
""")


def test_killed_rebuild_leaves_the_old_index_serving(client: vecpg.Client, dsn: str) -> None:
    x = _make(client, "IVF_PQ")
    q = x[:3] + 0.01
    before = _same_as_exact(client, q)
    proc = subprocess.run([sys.executable, "-c", KILL_SCRIPT, dsn, client.schema],
                          capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert "MIDWAY" in proc.stdout and "FINISHED" not in proc.stdout
    assert proc.returncode == -signal.SIGKILL
    d = client.describe_index("c", "q")
    deadline = time.monotonic() + 10
    while d["build_running"] and time.monotonic() < deadline:
        time.sleep(0.05)  # the dead client's server backend takes a moment to exit
        d = client.describe_index("c", "q")
    assert d["state"] == "Finished" and d["version"] == 1 and d["build_running"] is False
    assert _same_as_exact(client, q) == before
    # writes after the killed build are visible, and encoded again: the dead build's mark
    # (build_started) does not send them to the pending list forever
    pending = d["coverage"]["pending"]
    client.insert("c", {"id": [N + 9], "vec": q[:1] + 0.0001, "grp": [0]})
    assert _same_as_exact(client, q)[0][0] == N + 9
    cov = client.describe_index("c", "q")["coverage"]
    assert cov["pending"] == pending and cov["encoded"] == N + 1
    # no half-written codes table of the dead build is left behind
    with client.connection() as conn:
        (ix_id,) = conn.execute("SELECT id FROM vecpg.indexes WHERE schema_name = %s",
                                (client.schema,)).fetchone()
        assert conn.execute("SELECT to_regclass(%s)", (f"vecpg.cmp_{ix_id}_v2",)).fetchone()[0] \
            is None
    client.rebuild_index("c", "q")
    assert client.describe_index("c", "q")["version"] == 2
    assert _same_as_exact(client, q)[0][0] == N + 9


def test_model_stored_in_parts(client: vecpg.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """Models (an ANNOY forest can pass the 1 GB bytea limit) are stored in parts."""
    monkeypatch.setattr(cmp, "MODEL_PART", 4096)
    x = _make(client, "ANNOY")
    with client.connection() as conn:
        parts, total = conn.execute(
            "SELECT count(*), sum(octet_length(data)) FROM vecpg.index_model_parts p"
            " JOIN vecpg.indexes i ON i.id = p.index_id WHERE i.schema_name = %s",
            (client.schema,)).fetchone()
    assert parts > 10 and total == client.describe_index("c", "q")["model_bytes"]
    client._companions = cmp.Companions()  # a fresh process: loads the model from its parts
    _same_as_exact(client, x[:3] + 0.01)


def test_another_clients_rebuild_does_not_fail_searches(client: vecpg.Client, dsn: str) -> None:
    """A client whose plan and loaded codes name the version another client's rebuild just
    dropped answers exactly (and plans again), never with an error."""
    x = _make(client, "IVF_SQ8")
    q = x[:3] + 0.01
    before = _same_as_exact(client, q)         # plan cached, version 1 loaded
    with vecpg.connect(dsn, schema=client.schema) as other:
        other.rebuild_index("c", "q")          # version 2; version 1's codes table dropped
    # within the catalog cache's lifetime: the cached plan still names version 1
    got = client.search("c", q, limit=10, search_params=FULL)
    assert [[h.id for h in hits] for hits in got] == before
    assert client.describe_index("c", "q")["version"] == 2
    assert _same_as_exact(client, q) == before  # the next search plans with version 2


@pytest.mark.parametrize("kind", ["IVF_SQ8", "IVF_PQ"])
def test_processes_share_one_copy_of_the_codes(client: vecpg.Client, dsn: str, kind: str,
                                               tmp_path: object,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A second client (as a new process would) maps the codes the first one saved under
    the cache directory instead of holding its own copy, and answers the same; rows written
    after the save are found through each client's own buffer; sharing off keeps copies."""
    monkeypatch.setenv("VECPG_CACHE_DIR", str(tmp_path))
    x = _make(client, kind)
    q = x[:3] + 0.01
    first = _same_as_exact(client, q)
    index_id = next(iter(client._companions._loaded))
    mine = client._companions.loaded_now(index_id)
    assert mine is not None and mine.shared is not None and mine.pks is None
    assert isinstance(mine.searcher.arrays()["codes"], np.memmap)
    with vecpg.connect(dsn, schema=client.schema) as other:
        assert _same_as_exact(other, q) == first
        theirs = other._companions.loaded_now(index_id)
        assert theirs is not None and theirs.shared == mine.shared
        other.insert("c", {"id": [N + 7], "vec": q[:1] + 0.0001, "grp": [0]})
        time.sleep(cmp.REFRESH_SECONDS + 0.1)
        assert _same_as_exact(other, q)[0][0] == N + 7
    assert _same_as_exact(client, q)[0][0] == N + 7
    monkeypatch.setenv("VECPG_CACHE_DIR", "off")
    with vecpg.connect(dsn, schema=client.schema) as private:
        assert _same_as_exact(private, q)[0][0] == N + 7
        own = private._companions.loaded_now(index_id)
        assert own is not None and own.shared is None


def test_processes_share_one_annoy_forest(client: vecpg.Client, dsn: str, tmp_path: object,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Clients map one forest file (named by its content) from the cache directory."""
    monkeypatch.setenv("VECPG_CACHE_DIR", str(tmp_path))
    x = _make(client, "ANNOY")
    q = x[:3] + 0.01
    first = _same_as_exact(client, q)
    index_id = next(iter(client._companions._loaded))
    mine = client._companions.loaded_now(index_id)
    assert mine is not None and mine.model.shared_path is not None
    assert mine.model._index_bytes is None  # no heap copy next to the mapping
    with vecpg.connect(dsn, schema=client.schema) as other:
        assert _same_as_exact(other, q) == first
        theirs = other._companions.loaded_now(index_id)
        assert theirs is not None and theirs.model.shared_path == mine.model.shared_path


def test_cache_prune_removes_only_stale_entries(tmp_path: object) -> None:
    import os
    from pathlib import Path

    root = Path(str(tmp_path))
    old, new, keep = root / "aaaa", root / "bbbb", root / "cccc"
    for d in (old, new, keep):
        (d / "x").mkdir(parents=True)
    (root / "annoy").mkdir()
    (root / "annoy" / "f.annoy").write_bytes(b"1")
    (root / "annoy" / "g.annoy").write_bytes(b"2")
    past = time.time() - cmp.CACHE_MAX_AGE - 60
    for p in (old, keep, root / "annoy" / "f.annoy"):
        os.utime(p, (past, past))
    cmp.prune_cache(root, keep=keep)
    assert not old.exists() and new.exists() and keep.exists()
    assert sorted(p.name for p in (root / "annoy").iterdir()) == ["g.annoy"]
