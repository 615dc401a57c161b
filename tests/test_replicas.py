"""Read replicas (vecpg.replicas) on a real primary and streaming standbys made with
``pg_basebackup`` from the embedded server's binaries (vecpg.localcluster).

Which server answered is shown two ways: the router's counters (``replica_status``), and
answers only a standby can give: with its replay paused (``pg_wal_replay_pause()``) a row
written on the primary is missing there, so a read that misses it was served by the standby
and a read that finds it was not.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator

import numpy as np
import psycopg
import pytest

import vecpg
from vecpg.localcluster import LocalCluster, LocalServer
from vecpg.replicas import ReplicaPolicy


def _pg_version() -> int:
    raw = os.environ.get("VECPG_TEST_PG_VERSIONS", "18")
    versions = [v.strip() for v in raw.split(",")]
    return 18 if "18" in versions or "16" not in versions else 16


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    c = LocalCluster(standbys=2, pg_version=_pg_version())
    c.start()
    try:
        yield c
    finally:
        c.remove()


@pytest.fixture
def schema(cluster: LocalCluster) -> Iterator[str]:
    """A fresh schema per test; replay resumed and both standbys running afterwards."""
    name = "r_" + uuid.uuid4().hex[:10]
    yield name
    for s in cluster.standbys:
        if not s.running():
            s.start()
        s.sql("SELECT pg_wal_replay_resume()")
    cluster.primary.sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def _client(cluster: LocalCluster, schema: str, standbys: list[LocalServer] | None = None,
            **policy: object) -> vecpg.Client:
    dsns = [s.dsn for s in (cluster.standbys if standbys is None else standbys)]
    return vecpg.connect(cluster.primary.dsn, schema=schema, replicas=dsns,
                         replica_policy=ReplicaPolicy(**policy))  # type: ignore[arg-type]


def _setup(client: vecpg.Client, cluster: LocalCluster, n: int = 200, dim: int = 8,
           **kw: object) -> np.ndarray:
    rng = np.random.default_rng(7)
    vecs = rng.standard_normal((n, dim)).astype(np.float32)
    client.create_collection("docs", dimension=dim, metric_type="L2", **kw)
    client.insert("docs", [{"id": i, "vector": v, "tag": i % 5} for i, v in enumerate(vecs)])
    cluster.wait_caught_up()
    return vecs


def _reads(client: vecpg.Client) -> list[int]:
    """Reads served so far: [primary, standby1, standby2]."""
    return [s["reads"] for s in client.replica_status()]


def _pause(s: LocalServer) -> None:
    """Replay paused: once requested, the startup process applies no further record (it
    says "paused" only when one arrives)."""
    s.sql("SELECT pg_wal_replay_pause()")
    assert s.sql("SELECT pg_get_wal_replay_pause_state()") in ("pause requested", "paused")


def _write_elsewhere(cluster: LocalCluster, schema: str, key: int, dim: int = 8) -> None:
    """A row written by another connection (not this client: no Session guarantee)."""
    with psycopg.connect(cluster.primary.dsn, autocommit=True) as c:
        c.execute(psycopg.sql.SQL("INSERT INTO {} (id, vector) VALUES (%s, %s::vector)").format(
            psycopg.sql.Identifier(schema, "docs")), (key, str([0.5] * dim)))


def test_eventually_reads_go_to_the_standbys(cluster: LocalCluster, schema: str) -> None:
    with _client(cluster, schema) as client:
        vecs = _setup(client, cluster)
        before = _reads(client)
        q = vecs[3].tolist()
        exact = client.search("docs", [q], limit=5, search_params={"exact": True},
                              consistency_level="Eventually")
        assert exact[0].ids[0] == 3
        assert client.query("docs", "tag == 1", consistency_level="Eventually")[0]["id"] == 1
        assert client.count("docs", consistency_level="Eventually") == 200
        assert client.get("docs", [5], consistency_level="Eventually")[0]["id"] == 5
        with client.query_iterator("docs", batch_size=50, consistency_level="Eventually") as it:
            assert sum(len(b) for b in it) == 200
        with client.search_iterator("docs", q, batch_size=50, limit=60,
                                    consistency_level="Eventually") as sit:
            assert sit.next()[0]["id"] == 3
        req = vecpg.AnnSearchRequest([q], "vector", {}, 5)
        assert client.hybrid_search("docs", [req, req], limit=3,
                                    consistency_level="Eventually")[0].ids[0] == 3
        after = _reads(client)
        assert after[0] == before[0]  # the primary served none of them
        assert sum(after[1:]) - sum(before[1:]) == 7  # one each: nested calls are not counted
        assert after[1] > before[1] and after[2] > before[2]  # both standbys take turns
        # the standby itself answered: with its replay paused it lacks a newer row
        for s in cluster.standbys:
            _pause(s)
        client.insert("docs", [{"id": 1000, "vector": vecs[0]}])
        assert client.get("docs", [1000], consistency_level="Eventually") == []
        assert client.get("docs", [1000], consistency_level="Strong")[0]["id"] == 1000


def test_session_reads_own_writes(cluster: LocalCluster, schema: str) -> None:
    with _client(cluster, schema, wait=0.2) as client:
        vecs = _setup(client, cluster)
        assert client.get("docs", [1], consistency_level="Session")  # caught up: a standby
        before = _reads(client)
        assert before[0] == 0
        for s in cluster.standbys:
            _pause(s)
        client.insert("docs", [{"id": 500, "vector": vecs[1]}])
        # the standbys lack the write, so the primary answers the Session read
        hits = client.search("docs", [vecs[1].tolist()], limit=2, consistency_level="Session",
                             search_params={"exact": True})
        assert 500 in hits[0].ids
        assert _reads(client)[0] == before[0] + 1
        assert client.get("docs", [500], consistency_level="Eventually") == []  # standby: stale
        for s in cluster.standbys:
            s.sql("SELECT pg_wal_replay_resume()")
        cluster.wait_caught_up()
        mid = _reads(client)
        assert client.get("docs", [500], consistency_level="Session")[0]["id"] == 500
        assert _reads(client)[0] == mid[0]  # caught up: a standby served it


def test_session_is_this_clients_writes_and_strong_everyones(cluster: LocalCluster,
                                                              schema: str) -> None:
    with _client(cluster, schema, wait=0.1) as client:
        _setup(client, cluster)
        for s in cluster.standbys:
            _pause(s)
        _write_elsewhere(cluster, schema, 777)
        # Session promises this client's writes only: a paused standby may answer
        assert client.get("docs", [777], consistency_level="Session") == []
        # Strong: every committed write, so the primary (the standbys cannot catch up)
        t0 = time.monotonic()
        assert client.get("docs", [777], consistency_level="Strong")[0]["id"] == 777
        assert time.monotonic() - t0 < 2.0  # waited at most about policy.wait
        for s in cluster.standbys:
            s.sql("SELECT pg_wal_replay_resume()")
        cluster.wait_caught_up()
        before = _reads(client)
        assert client.get("docs", [777], consistency_level="Strong")[0]["id"] == 777
        assert sum(_reads(client)[1:]) == sum(before[1:]) + 1  # replayed: a standby qualifies


def test_bounded_skips_a_stale_standby(cluster: LocalCluster, schema: str) -> None:
    with _client(cluster, schema, max_staleness=1.0) as client:
        vecs = _setup(client, cluster)
        # the last commit is older than max_staleness, but the standbys replayed all the
        # primary sent: not stale (the replay timestamp alone would say 1.3 s)
        time.sleep(1.3)
        before = _reads(client)
        assert client.count("docs", consistency_level="Bounded") == 200
        assert _reads(client)[0] == before[0]
        for s in cluster.standbys:
            _pause(s)
        # a write the standbys cannot replay: after max_staleness they are skipped
        client.insert("docs", [{"id": 900, "vector": vecs[2]}])
        time.sleep(1.3)
        before = _reads(client)
        assert client.count("docs", consistency_level="Bounded") == 201
        assert _reads(client)[0] == before[0] + 1
        status = client.replica_status()
        assert all(s["staleness"] is not None and s["staleness"] > 1.0 for s in status[1:])
        assert client.count("docs", consistency_level="Eventually") == 200


def test_collection_default_level(cluster: LocalCluster, schema: str) -> None:
    with _client(cluster, schema) as client:
        _setup(client, cluster, consistency_level="Strong")
        assert client.describe_collection("docs")["consistency_level"] == 0  # pymilvus' Strong
        for s in cluster.standbys:
            _pause(s)
        _write_elsewhere(cluster, schema, 4242)
        assert client.get("docs", [4242])[0]["id"] == 4242  # Strong by default
        assert client.get("docs", [4242], consistency_level="Eventually") == []
        assert client.get("docs", [4242], consistency_level=3) == []  # pymilvus' Eventually
        assert client.get("docs", [4242], consistency_level="Customized")  # read as Strong
        with pytest.raises(vecpg.InvalidArgument, match="consistency_level"):
            client.get("docs", [1], consistency_level="Sometimes")
    with pytest.raises(vecpg.InvalidArgument, match="max_staleness"):
        ReplicaPolicy(max_staleness=-1)
    for bad in (cluster.standbys[0].dsn, [1], [""]):  # a DSN string is not a list of them
        with pytest.raises(vecpg.InvalidArgument, match="replicas must be a list"):
            vecpg.connect(cluster.primary.dsn, schema=schema, replicas=bad)  # type: ignore
    with pytest.raises(vecpg.InvalidArgument, match="replica_policy"):
        vecpg.connect(cluster.primary.dsn, schema=schema, replicas=[cluster.standbys[0].dsn],
                      replica_policy={"max_staleness": 1})  # type: ignore[arg-type]


def test_standby_stopped_mid_run_costs_no_call(cluster: LocalCluster, schema: str) -> None:
    with _client(cluster, schema, retry_after=0.5) as client:
        vecs = _setup(client, cluster)
        errors: list[BaseException] = []
        done = threading.Event()
        calls = [0]

        def reader(seed: int) -> None:
            rng = np.random.default_rng(seed)
            while not done.is_set():
                i = int(rng.integers(200))
                try:
                    hits = client.search("docs", [vecs[i].tolist()], limit=3,
                                         consistency_level="Eventually",
                                         search_params={"exact": True})
                    assert hits[0].ids[0] == i
                    assert client.get("docs", [i], consistency_level="Bounded")[0]["id"] == i
                    calls[0] += 2
                except BaseException as e:  # noqa: BLE001 - every failure is the test's finding
                    errors.append(e)

        threads = [threading.Thread(target=reader, args=(k,)) for k in range(3)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        cluster.standbys[0].stop("immediate")
        time.sleep(1.0)
        cluster.standbys[1].stop("immediate")  # both gone: the primary answers
        time.sleep(1.0)
        at_stop = _reads(client)
        time.sleep(0.5)
        assert _reads(client)[0] > at_stop[0]
        for s in cluster.standbys:
            s.start()
        time.sleep(1.5)  # retry_after passes: the standbys take reads again
        again = _reads(client)
        time.sleep(0.5)
        done.set()
        for t in threads:
            t.join()
        assert not errors, errors[:3]
        assert calls[0] > 50
        status = client.replica_status()
        assert sum(s["reads"] for s in status[1:]) > sum(again[1:])
        assert any(s["failures"] for s in status[1:])


def test_unreachable_standby_is_skipped(cluster: LocalCluster, schema: str) -> None:
    dead = LocalServer(cluster.root / "none", 55999, cluster.root, cluster.bin, cluster.user)
    with vecpg.connect(cluster.primary.dsn, schema=schema,
                       replicas=[dead.dsn, cluster.standbys[0].dsn]) as client:
        _setup(client, cluster)
        for _ in range(4):
            assert client.count("docs", consistency_level="Eventually") == 200
        status = client.replica_status()
        assert status[1]["up"] is False and status[1]["reads"] == 0
        assert status[2]["reads"] == 4 and status[0]["reads"] == 0


def test_companion_index_on_a_standby(cluster: LocalCluster, schema: str) -> None:
    with _client(cluster, schema) as client:
        rng = np.random.default_rng(3)
        vecs = rng.standard_normal((600, 16)).astype(np.float32)
        client.create_collection("docs", dimension=16, metric_type="L2")
        client.insert("docs", [{"id": i, "vector": v} for i, v in enumerate(vecs)])
        client.create_index("docs", field_name="vector", index_type="IVF_SQ8",
                            params={"nlist": 8})
        cluster.wait_caught_up()
        before = _reads(client)
        for i in (5, 50, 500):
            hits = client.search("docs", [vecs[i].tolist()], limit=5, strategy="IVF_SQ8",
                                 consistency_level="Eventually")
            assert hits[0].ids[0] == i
        # rows encoded after the codes loaded are found once the standby has them
        new = rng.standard_normal((5, 16)).astype(np.float32) * 10
        client.insert("docs", [{"id": 1000 + k, "vector": v} for k, v in enumerate(new)])
        for k, v in enumerate(new):
            hits = client.search("docs", [v.tolist()], limit=1, strategy="IVF_SQ8",
                                 consistency_level="Session")
            assert hits[0].ids == [1000 + k]
        assert sum(_reads(client)[1:]) > sum(before[1:])


def test_client_on_a_standby_is_read_only(cluster: LocalCluster, schema: str) -> None:
    with _client(cluster, schema) as writer:
        _setup(writer, cluster, n=300)
        writer.create_index("docs", field_name="vector", index_type="HNSW",
                            params={"M": 8, "efConstruction": 32})
        cluster.wait_caught_up()
        stored = cluster.primary.sql("SELECT calibration::text FROM vecpg.indexes WHERE "
                                     "schema_name = %s", (schema,))
    assert stored is not None and '"curve"' in stored  # calibrated on the primary, stored there
    standby = cluster.standbys[0]
    with vecpg.connect(standby.dsn, schema=schema) as client:
        assert client.replica_status()[0]["role"] == "standby"
        assert client.count("docs") == 300
        assert len(client.search("docs", [[0.1] * 8], limit=3)[0]) == 3
        out = client.calibrate("docs", queries=20)  # measured, not stored
        assert out["vector"] is not None and out["vector"]["rows"] == 300
        assert standby.sql("SELECT calibration::text FROM vecpg.indexes WHERE "
                           "schema_name = %s", (schema,)) == stored
        with pytest.raises(vecpg.ServerError, match="read-only"):
            client.insert("docs", [{"id": 5000, "vector": [0.0] * 8}])
    with pytest.raises(vecpg.NotFound, match="standby"):
        vecpg.connect(standby.dsn, schema="no_such_schema_here")


def test_standby_behind_vecpg_is_not_migrated(cluster: LocalCluster, schema: str) -> None:
    with _client(cluster, schema):
        pass
    head = cluster.primary.sql("SELECT version_num FROM vecpg.alembic_version")
    cluster.primary.sql("UPDATE vecpg.alembic_version SET version_num = 'old'")
    try:
        cluster.wait_caught_up()
        with pytest.raises(vecpg.UnsupportedServer, match="standby at vecpg revision old"):
            vecpg.connect(cluster.standbys[0].dsn, schema=schema)
    finally:
        cluster.primary.sql("UPDATE vecpg.alembic_version SET version_num = %s", (head,))


def test_replicas_in_containers(docker_postgres, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The same routing on Debian's PostgreSQL 17 in containers: a standby made with
    pg_basebackup from the primary (into a volume the standby container then starts on),
    reads shown on it, and the standby container killed mid-run."""
    from conftest import SESSION_LABEL

    import docker

    engine = docker.from_env(timeout=60)
    tag = SESSION_LABEL["vecpg.test"]
    net, volume = f"vecpg-test-{tag}-repl", f"vecpg-test-{tag}-repl-data"
    # a replication entry for images whose entrypoint adds none (the public ones)
    hba = tmp_path / "20-replication.sh"
    hba.write_text('echo "host replication all all scram-sha-256" >> "$PGDATA/pg_hba.conf"\n')
    hba.chmod(0o755)
    engine.volumes.create(volume, labels=SESSION_LABEL)
    try:
        primary = docker_postgres(
            "repl-primary", network=net, env={"POSTGRES_INITDB_ARGS": "--no-sync"},
            args=["-c", "wal_level=replica", "-c", "max_wal_senders=5",
                  "-c", "hot_standby_feedback=on"],
            volumes={volume: {"bind": "/backup", "mode": "rw"},
                     str(hba): {"bind": "/docker-entrypoint-initdb.d/20-replication.sh",
                                "mode": "ro"}})
        primary.exec("sh", "-c", "chown postgres /backup", user="root")
        primary.exec("pg_basebackup", "-D", "/backup/standby", "-R", "-X", "stream", "-c",
                     "fast", "-d", f"host={primary.name} port=5432 user=postgres "
                     f"password={primary.password}")
        standby = docker_postgres("repl-standby", network=net,
                                  env={"PGDATA": "/var/lib/postgresql/repl/standby"},
                                  volumes={volume: {"bind": "/var/lib/postgresql/repl",
                                                    "mode": "rw"}})
        with psycopg.connect(standby.dsn, autocommit=True) as c:
            assert c.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
        with vecpg.connect(primary.dsn, replicas=[standby.dsn],
                           replica_policy=ReplicaPolicy(retry_after=0.5)) as client:
            client.create_collection("docs", dimension=4, metric_type="L2")
            client.insert("docs", [{"id": i, "vector": [i, 1, 0, 0]} for i in range(50)])
            assert client.get("docs", [7], consistency_level="Session")[0]["id"] == 7
            assert client.replica_status()[1]["reads"] == 1  # replayed already, or waited
            with psycopg.connect(standby.dsn, autocommit=True) as c:
                c.execute("SELECT pg_wal_replay_pause()")
                time.sleep(0.3)
                client.insert("docs", [{"id": 99, "vector": [9, 9, 9, 9]}])
                assert client.get("docs", [99], consistency_level="Eventually") == []
                assert client.get("docs", [99], consistency_level="Session")[0]["id"] == 99
                c.execute("SELECT pg_wal_replay_resume()")
            errors: list[BaseException] = []
            done = threading.Event()

            def reader() -> None:
                while not done.is_set():
                    try:
                        hits = client.search("docs", [[3, 1, 0, 0]], limit=1,
                                             consistency_level="Eventually")
                        assert hits[0].ids == [3]
                    except BaseException as e:  # noqa: BLE001 - the test's finding
                        errors.append(e)

            threads = [threading.Thread(target=reader) for _ in range(2)]
            for t in threads:
                t.start()
            time.sleep(0.5)
            standby.container.kill()
            time.sleep(1.0)
            done.set()
            for t in threads:
                t.join()
            assert not errors, errors[:3]
            status = client.replica_status()
            assert status[1]["reads"] > 1 and status[0]["reads"] > 0
            assert status[1]["failures"] >= 1
        standby.remove()
        primary.remove()
    finally:
        for c in engine.containers.list(all=True, filters={"name": f"vecpg-test-{tag}-repl"}):
            c.remove(force=True, v=True)
        engine.volumes.get(volume).remove(force=True)
