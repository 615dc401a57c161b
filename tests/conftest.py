"""A real Postgres for the tests: VECPG_TEST_DSN, else a testcontainers pgvector container
when a Docker engine answers, else the embedded server (both Postgres 16 and 18).

``VECPG_TEST_PG_VERSIONS`` (default ``16,18``) picks the embedded versions.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest

import vecpg
from vecpg.server import embedded_dsn


def _versions() -> list[str]:
    if os.environ.get("VECPG_TEST_DSN"):
        return ["dsn"]
    raw = os.environ.get("VECPG_TEST_PG_VERSIONS", "16,18")
    return [v.strip() for v in raw.split(",") if v.strip()]


def _docker_available() -> bool:
    try:
        import docker  # testcontainers depends on it

        docker.from_env(timeout=3).ping()
        return True
    except Exception:  # noqa: BLE001 - whatever fails (no client, no socket), no Docker
        return False


@pytest.fixture(scope="session", params=_versions(), ids=lambda v: f"pg{v}")
def dsn(request: pytest.FixtureRequest) -> Iterator[str]:
    """A DSN of a Postgres with pgvector; one per tested server version."""
    if request.param == "dsn":
        yield os.environ["VECPG_TEST_DSN"]
        return
    if os.environ.get("VECPG_TEST_DOCKER") == "1" and _docker_available():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer(f"pgvector/pgvector:pg{request.param}", driver=None) as pg:
            yield pg.get_connection_url()
        return
    data = tempfile.mkdtemp(prefix=f"vecpg-test-pg{request.param}-")
    yield embedded_dsn(data, pg_version=int(request.param), temporary=True)


@pytest.fixture
def conn(dsn: str) -> Iterator[psycopg.Connection]:
    """A plain autocommit psycopg connection to the test server."""
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("CREATE EXTENSION IF NOT EXISTS vector")
        yield c


@pytest.fixture
def schema_name(dsn: str, conn: psycopg.Connection) -> Iterator[str]:
    """A fresh, empty schema for one test; dropped afterwards, with the catalog entries and
    companion tables (in schema vecpg) of any collection a test's own client left in it."""
    name = "t_" + uuid.uuid4().hex[:12]
    conn.execute(psycopg.sql.SQL("CREATE SCHEMA {}").format(psycopg.sql.Identifier(name)))
    yield name
    catalog = conn.execute("SELECT to_regclass('vecpg.collections')").fetchone()
    left = catalog and catalog[0] and conn.execute(
        "SELECT 1 FROM vecpg.collections WHERE schema_name = %s LIMIT 1", (name,)).fetchone()
    if left:
        with vecpg.connect(dsn, schema=name) as c:
            for coll in c.list_collections():
                c.drop_collection(coll)
    conn.execute(psycopg.sql.SQL("DROP SCHEMA {} CASCADE").format(psycopg.sql.Identifier(name)))


@pytest.fixture
def client(dsn: str, schema_name: str) -> Iterator[vecpg.Client]:
    """A client whose collections live in the fresh schema ``schema_name``; closed after
    the test, and the schema dropped (CASCADE) by ``schema_name`` through the plain ``conn``.
    The collections are dropped through the client first: their catalog rows and companion
    tables are in schema vecpg, which the schema's DROP does not reach."""
    with vecpg.connect(dsn, schema=schema_name) as c:
        yield c
        for name in c.list_collections():
            c.drop_collection(name)


def _drop_schema(dsn: str, name: str) -> None:
    """Drop schema ``name`` and everything in it, if it exists, through a plain connection."""
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(psycopg.sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE")
                  .format(psycopg.sql.Identifier(name)))


@pytest.fixture(scope="session")
def drop_schema() -> Callable[[str, str], None]:
    """``drop_schema(dsn, name)``, for the schemas ``schema_name`` cannot provide: a module
    fixture's, or one that racing processes must create themselves."""
    return _drop_schema


# Latencies the planner tests state instead of measuring: an exact scan costs 1 ms per
# 1,000 rows and an index search well under a millisecond, an order of magnitude apart on
# the tests' collections, whatever the machine's load. The recall of each setting stays
# the one calibration measured, so recall promises are still tested for real.
STATED_EXACT = {"ms_per_1k": 1.0, "scan_ms_per_1k": 0.5, "ff_ms_per_1k": 2.9}
STATED_MS = {"ef": lambda v: 0.2 + 0.004 * v, "nprobe": lambda v: 0.3 + 0.01 * v,
             "search_k": lambda v: 0.3 + v / 20000}


def _state_latencies(dsn: str, schema: str, collection: str, index_name: str) -> dict:
    """Replace the measured latencies in an index's stored calibration with the stated
    ones above (clients opened afterwards plan with them); returns the new document."""
    from psycopg.types.json import Jsonb

    with psycopg.connect(dsn, autocommit=True) as c:
        key = (schema, collection, index_name)
        row = c.execute("SELECT calibration FROM vecpg.indexes WHERE schema_name = %s"
                        " AND collection = %s AND index_name = %s", key).fetchone()
        assert row is not None and row[0] and row[0]["curve"], row
        cal = row[0]
        ms = STATED_MS[cal["knob"]]
        for point in cal["curve"]:
            point["ms"] = ms(point[cal["knob"]])
        cal["base_ms"], cal["exact"] = 0.1, dict(STATED_EXACT)
        c.execute("UPDATE vecpg.indexes SET calibration = %s WHERE schema_name = %s"
                  " AND collection = %s AND index_name = %s", (Jsonb(cal), *key))
    return cal


@pytest.fixture(scope="session")
def state_latencies():
    """``state_latencies(dsn, schema, collection, index_name)``: see :func:`_state_latencies`."""
    return _state_latencies
