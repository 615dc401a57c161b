"""The session owns every connection: bursts beyond pool_size wait and then free up, lent
connections come back reset, pool exhaustion and a lost server are typed errors, and every
statement vecpg sends reaches the tracer."""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import tempfile
import threading
import time
import uuid

import numpy as np
import psycopg
import pytest
from psycopg import sql

import vecpg
from vecpg.session import Session


@pytest.fixture
def small(dsn: str):
    """A client with pool_size 2 and a 50-row collection ``t`` with an HNSW index."""
    schema = "s_" + uuid.uuid4().hex[:10]
    with vecpg.connect(dsn, schema=schema, pool_size=2, pool_timeout=2.0) as c:
        c.create_collection("t", dimension=4, metric_type="L2")
        rng = np.random.default_rng(0)
        c.insert("t", {"id": np.arange(50), "vector": rng.normal(size=(50, 4)).astype(np.float32)})
        c.create_index("t", field_name="vector", index_type="HNSW", metric_type="L2")
        yield c
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def test_burst_beyond_pool_size_then_connection_is_free(small) -> None:
    """pool_size + 5 concurrent searches all answer, then a borrowed connection comes at
    once: the connections the burst used went back to the one stack both draw from."""
    q = np.ones((1, 4), dtype=np.float32)
    with concurrent.futures.ThreadPoolExecutor(max_workers=7) as ex:
        results = list(ex.map(lambda _: small.search("t", q, limit=5), range(7)))
    assert all(len(r[0]) == 5 for r in results)
    started = time.monotonic()
    with small.connection() as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert time.monotonic() - started < 1.0
    assert small._session._out <= 2


def test_set_on_a_lent_connection_does_not_reach_the_next_search(small) -> None:
    q = np.ones((1, 4), dtype=np.float32)
    sp = {"params": {"ef": 64}}
    small.search("t", q, limit=5, search_params=sp)  # this backend now has ef_search 64
    with small.connection() as conn:
        pid = conn.info.backend_pid
        conn.execute("SET hnsw.ef_search = 1")
        conn.execute("SET enable_indexscan = off")
        conn.execute("CREATE TEMP TABLE leak (x int)")
    seen: list[str] = []
    small.tracer = lambda s, p: seen.append(s)
    try:
        hits = small.search("t", q, limit=5, search_params=sp)
    finally:
        small.tracer = None
    assert len(hits[0]) == 5
    # the search sent its settings again: the reset emptied the settings cache
    assert any("set_config" in s for s in seen), seen
    with small.connection() as conn:
        assert conn.info.backend_pid == pid  # the same backend, reset, not a new one
        assert conn.execute("SHOW enable_indexscan").fetchone() == ("on",)
        assert conn.execute("SELECT to_regclass('pg_temp.leak')").fetchone() == (None,)
        # what the search set after the reset, not the borrower's 1
        assert conn.execute("SHOW hnsw.ef_search").fetchone() in (("64",), ("40",))


def test_pool_exhaustion_is_a_typed_error(small) -> None:
    """Every connection held: a call waits pool_timeout and raises PoolTimeout, which says
    what to do; the client works again once they are returned."""
    with small.connection(), small.connection():
        done: list[BaseException] = []

        def call() -> None:
            try:
                small.count("t")
            except BaseException as e:  # noqa: BLE001 - the test inspects it
                done.append(e)
        t = threading.Thread(target=call)
        started = time.monotonic()
        t.start()
        t.join(10)
        waited = time.monotonic() - started
    assert len(done) == 1 and isinstance(done[0], vecpg.PoolTimeout), done
    assert isinstance(done[0], vecpg.ServerError) and "pool_size" in str(done[0])
    assert 1.5 <= waited < 8
    assert small.count("t") == 50


def test_unreachable_server_is_a_typed_error() -> None:
    with tempfile.TemporaryDirectory() as d:
        dsn = f"postgresql://postgres@/postgres?host={d}&port=1"
        with pytest.raises(vecpg.ServerUnavailable, match="is it running"):
            Session(dsn, pool_size=1, timeout=1.0)


def test_a_lost_connection_is_retried_for_reads_and_typed_for_writes(small, dsn: str) -> None:
    """A pooled connection the server dropped: a read is tried again on a fresh one and
    answers; a write raises ServerUnavailable (was it committed? the caller decides), and
    the next one works."""
    def drop_warm_connections() -> None:
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE"
                          " datname = current_database() AND pid <> pg_backend_pid()"
                          " AND backend_type = 'client backend' AND application_name = ''"
                          " AND state = 'idle'")
        time.sleep(0.2)

    small.count("t")  # a warm connection on the stack
    drop_warm_connections()
    assert small.count("t") == 50
    assert len(small.search("t", np.ones((1, 4), dtype=np.float32), limit=3)[0]) == 3
    small.count("t")
    drop_warm_connections()
    with pytest.raises(vecpg.ServerUnavailable):
        small.insert("t", {"id": [500], "vector": np.ones((1, 4), dtype=np.float32)})
    small.insert("t", {"id": [501], "vector": np.ones((1, 4), dtype=np.float32)})
    assert small.count("t") == 51


def test_every_statement_reaches_the_tracer(dsn: str) -> None:
    """libpq's own protocol trace of the one pooled connection counts the statements sent
    (each extended-protocol execution sends a Bind, each simple query a Query message);
    the tracer must have been called as many times, over DDL, writes, reads, searches,
    index builds with calibration, and companion indexes."""
    schema = "tr_" + uuid.uuid4().hex[:8]
    seen: list[str] = []
    rng = np.random.default_rng(1)
    data = rng.normal(size=(300, 8)).astype(np.float32)
    with vecpg.connect(dsn, schema=schema, pool_size=1) as c, \
            tempfile.NamedTemporaryFile("w+b", suffix=".trace") as trace:
        with c.connection() as conn:
            conn.pgconn.trace(trace.fileno())
            conn.pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)
        trace.seek(0, os.SEEK_END)
        start = trace.tell()  # after the lent connection's reset
        c.tracer = lambda s, p: seen.append(s)
        c.create_collection("t", dimension=8, metric_type="L2")
        c.insert("t", {"id": np.arange(300), "vector": data, "tag": ["a", "b", "c"] * 100})
        c.upsert("t", [{"id": 1, "vector": data[2], "tag": "z"}])
        c.create_index("t", field_name="vector", index_type="HNSW", metric_type="L2")
        c.search("t", data[:3], limit=5, filter='tag == "a"')
        c.search("t", data[:2], limit=5, strategy="hnsw")
        c.query("t", "id < 10", output_fields=["tag"])
        c.delete("t", ids=[5, 6])
        c.describe_index("t", "vector")
        c.drop_index("t", "vector")
        c.create_index("t", field_name="vector", index_type="IVF_SQ8", metric_type="L2",
                       params={"nlist": 4})
        c.insert("t", {"id": [1000], "vector": data[:1], "tag": ["q"]})
        c.search("t", data[:2], limit=5, strategy="ivf_sq8")
        c.drop_collection("t")
        c.tracer = None
        with c.connection() as conn:
            conn.pgconn.untrace()
        trace.seek(start)
        lines = trace.read().decode("utf-8", "replace").splitlines()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    # psycopg's own transaction control (BEGIN/COMMIT/SAVEPOINT of ``with transaction()``)
    # is not a statement of vecpg's; everything else is
    control = re.compile(r'\tQuery\t "(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)\b')
    sent = [ln for ln in lines if ln.startswith("F") and ("\tBind\t" in ln or "\tQuery\t" in ln)
            and not control.search(ln)]
    assert len(sent) > 50  # the trace did record the work
    assert len(seen) == len(sent), (len(seen), len(sent))


def test_a_database_that_is_not_utf8_is_refused_with_a_typed_error(dsn: str) -> None:
    name = "ascii_" + uuid.uuid4().hex[:6]
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {} ENCODING 'SQL_ASCII' TEMPLATE template0 "
                              "LC_COLLATE 'C' LC_CTYPE 'C'").format(sql.Identifier(name)))
    try:
        other = psycopg.conninfo.make_conninfo(dsn, dbname=name)
        with pytest.raises(vecpg.UnsupportedServer, match="UTF8"):
            vecpg.connect(other)
    finally:
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


def test_an_index_name_taken_by_another_relation_is_already_exists(small) -> None:
    with small.connection() as conn:
        conn.execute(sql.SQL("CREATE TABLE {} (x int)").format(
            sql.Identifier(small.schema, "t__clash")))
    small.create_index("t", field_name="id", index_type="STL_SORT", index_name="other")
    with pytest.raises(vecpg.AlreadyExists):
        small.create_index("t", field_name="id", index_type="STL_SORT", index_name="clash")
    assert "clash" not in small.list_indexes("t")


def _postmaster_pid(data_dir: str) -> int:
    with open(os.path.join(data_dir, "postmaster.pid")) as f:
        return int(f.readline())


def test_embedded_server_killed_comes_back_and_dead_clients_are_forgotten() -> None:
    """SIGKILL of the embedded postmaster: the next call fails with ServerUnavailable (or
    already answers), vecpg starts the server again, and a search succeeds within 10 s.
    A client process killed by a signal does not stay on the server's list of users."""
    import signal
    import subprocess
    import sys

    from vecpg.server import embedded_dsn

    data = tempfile.mkdtemp(prefix="vecpg-revive-")
    dsn = embedded_dsn(data, temporary=True)
    with vecpg.connect(dsn, pool_size=2, pool_timeout=3) as c:
        c.create_collection("k", dimension=2, metric_type="L2")
        c.insert("k", {"id": [1, 2, 3], "vector": [[0, 0], [1, 1], [2, 2]]})
        assert c.count("k") == 3
        os.kill(_postmaster_pid(data), signal.SIGKILL)
        time.sleep(0.5)
        started = time.monotonic()
        answered = None
        while time.monotonic() - started < 10 and answered is None:
            try:
                answered = c.search("k", [[0.9, 0.9]], limit=1)
            except vecpg.ServerUnavailable:
                time.sleep(0.2)
        assert answered is not None and answered[0][0].id == 2
        assert c.count("k") == 3  # the acknowledged rows survived the crash
    # a process that joins the server and is killed leaves its pid behind ...
    code = ("import os, signal, sys, vecpg.server as s; s.embedded_dsn(sys.argv[1]); "
            "print(os.getpid(), flush=True); os.kill(os.getpid(), signal.SIGKILL)")
    proc = subprocess.run([sys.executable, "-c", code, data], capture_output=True, text=True,
                          timeout=60, check=False)
    dead = int(proc.stdout.split()[0])
    with open(os.path.join(data, ".handle_pids.json")) as f:
        assert dead in json.load(f)
    # ... which the next process to join forgets
    embedded_dsn(data, temporary=True)
    with open(os.path.join(data, ".handle_pids.json")) as f:
        assert dead not in json.load(f)


def test_a_read_only_role_connects_and_searches(small, dsn: str) -> None:
    """With the schema migrated and the collection made, a role that may only read
    connects (connect() writes nothing then) and searches, queries and explains."""
    role = "ro_" + uuid.uuid4().hex[:6]
    schema = small.schema
    with psycopg.connect(dsn, autocommit=True) as admin:
        # a password too: a server in a container authenticates TCP logins (scram)
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
            sql.Identifier(role), sql.Literal(role)))
        for s in ("vecpg", schema):
            admin.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(
                sql.Identifier(s), sql.Identifier(role)))
            admin.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(
                sql.Identifier(s), sql.Identifier(role)))
    try:
        ro_dsn = psycopg.conninfo.make_conninfo(dsn, user=role, password=role)
        with vecpg.connect(ro_dsn, schema=schema) as ro:
            q = np.ones((1, 4), dtype=np.float32)
            assert len(ro.search("t", q, limit=5)[0]) == 5
            assert ro.count("t") == 50 and ro.explain("t")["strategy"] in ("exact", "hnsw")
            with pytest.raises(vecpg.PermissionDenied, match="permission denied"):
                ro.insert("t", {"id": [999], "vector": q})
        assert small.count("t") == 50
    finally:
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
