"""vecpg's own schema: alembic migrations, idempotent and safe when processes race."""

from __future__ import annotations

import multiprocessing as mp
import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest

import vecpg
from vecpg.migrate import current_revision, downgrade, head_revision, upgrade


@pytest.fixture
def race_schema(dsn: str, drop_schema: Callable[[str, str], None]) -> Iterator[str]:
    """A fresh schema name: the racing processes create the schema; dropped afterwards."""
    name = "race_" + uuid.uuid4().hex[:8]
    yield name
    drop_schema(dsn, name)


def _connect_and_create(dsn: str, schema: str, name: str) -> None:
    with vecpg.connect(dsn, schema=schema) as client:
        client.create_collection(name, dimension=3)


def test_processes_connecting_at_once(dsn: str, race_schema: str) -> None:
    """Several processes migrate and create collections at the same moment: all succeed."""
    schema = race_schema
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_connect_and_create, args=(dsn, schema, f"c{i}"))
             for i in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    with vecpg.connect(dsn, schema=schema) as client:
        assert client.list_collections() == ["c0", "c1", "c2", "c3"]
        for name in client.list_collections():
            client.drop_collection(name)


def _create_same(dsn: str, schema: str, q: object) -> None:
    with vecpg.connect(dsn, schema=schema) as client:
        try:
            client.create_collection("same", dimension=3)
            q.put("created")  # type: ignore[attr-defined]
        except vecpg.AlreadyExists:
            q.put("exists")  # type: ignore[attr-defined]


def test_same_collection_created_at_once(dsn: str, race_schema: str) -> None:
    """Racing creators of one collection: one wins, the others get AlreadyExists."""
    schema = race_schema
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_create_same, args=(dsn, schema, q)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert sorted(q.get() for _ in procs) == ["created", "exists", "exists"]
    with vecpg.connect(dsn, schema=schema) as client:
        client.drop_collection("same")


def test_upgrade_is_idempotent_and_reversible(dsn: str) -> None:
    upgrade(dsn)
    upgrade(dsn)
    with psycopg.connect(dsn) as conn:
        assert current_revision(conn) == head_revision()
        n = conn.execute("SELECT count(*) FROM pg_proc WHERE pronamespace = 'vecpg'::regnamespace"
                         ).fetchone()[0]
        assert n >= 8
    # the newest version goes down and up again cleanly
    downgrade(dsn, "0001")
    with psycopg.connect(dsn) as conn:
        assert current_revision(conn) == "0001"
        tanimoto = conn.execute("SELECT to_regprocedure('vecpg.tanimoto(bit, bit)')").fetchone()
        assert tanimoto[0] is None
    upgrade(dsn)
    with psycopg.connect(dsn) as conn:
        assert current_revision(conn) == head_revision()
        assert conn.execute("SELECT vecpg.tanimoto(B'1100', B'1010')").fetchone()[0] == 1 / 3


def test_head_revision_agrees_with_alembic() -> None:
    from alembic.script import ScriptDirectory

    from vecpg.migrate import _alembic_config

    assert head_revision() == ScriptDirectory.from_config(_alembic_config()).get_current_head()


def test_row_security_migration_covers_existing_companions(client: vecpg.Client,
                                                           dsn: str) -> None:
    """Going from 0003 to 0004 gives companions made before it their row-level security
    and their trigger its definer's rights and flag check; 0004's downgrade undoes both."""
    import numpy as np

    x = np.random.default_rng(0).standard_normal((300, 8)).astype(np.float32)
    client.create_collection("c", dimension=8)
    client.insert("c", {"id": np.arange(300), "vector": x})
    client.create_index("c", field_name="vector", index_type="IVF_SQ8", metric_type="L2",
                        params={"nlist": 4}, index_name="q")
    ix = client.describe_index("c", "q")
    table = psycopg.sql.Identifier(client.schema, "c")

    def state(conn: psycopg.Connection) -> tuple[bool, bool, bool, bool]:
        i = conn.execute("SELECT id FROM vecpg.indexes WHERE schema_name = %s",
                         (client.schema,)).fetchone()[0]
        pending, codes = conn.execute(
            "SELECT (SELECT relrowsecurity FROM pg_class WHERE oid = %s::regclass),"
            " (SELECT relrowsecurity FROM pg_class WHERE oid = %s::regclass)",
            (f"vecpg.cmp_{i}_pending", f"vecpg.cmp_{i}_v1")).fetchone()
        definer, src = conn.execute("SELECT prosecdef, prosrc FROM pg_proc WHERE oid ="
                                    " %s::regprocedure", (f"vecpg.cmp_{i}_mark()",)).fetchone()
        return pending, codes, definer, "sees_all" in src

    def plain_insert(conn: psycopg.Connection, pk: int) -> None:
        conn.execute(psycopg.sql.SQL("INSERT INTO {} (id, vector) VALUES (%s, %s::vector)")
                     .format(table), (pk, str(x[0].tolist())))

    with psycopg.connect(dsn, autocommit=True) as conn:
        assert state(conn) == (True, True, True, True)
        downgrade(dsn, "0003")
        assert state(conn) == (False, False, False, False)
        plain_insert(conn, 1000)
        upgrade(dsn)
        assert state(conn) == (True, True, True, True)
        plain_insert(conn, 1001)
    full = {"params": {"nprobe": 4, "rerank": 1000}}
    got = client.search("c", x[:1], limit=3, strategy="ivf_sq8", search_params=full)[0]
    assert {1000, 1001} <= {h["id"] for h in got} and ix["index_type"] == "IVF_SQ8"
