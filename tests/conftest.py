"""A real Postgres for the tests: VECPG_TEST_DSN, else a testcontainers pgvector container
when a Docker engine answers, else the embedded server (both Postgres 16 and 18).

``VECPG_TEST_PG_VERSIONS`` (default ``16,18``) picks the embedded versions.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator

import psycopg
import pytest

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
    except Exception:
        return False


@pytest.fixture(scope="session", params=_versions(), ids=lambda v: f"pg{v}")
def dsn(request: pytest.FixtureRequest) -> Iterator[str]:
    """A DSN of a Postgres with pgvector; one per tested server version."""
    if request.param == "dsn":
        yield os.environ["VECPG_TEST_DSN"]
        return
    if _docker_available():
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
def schema_name(conn: psycopg.Connection) -> Iterator[str]:
    """A fresh, empty schema for one test; dropped afterwards."""
    name = "t_" + uuid.uuid4().hex[:12]
    conn.execute(psycopg.sql.SQL("CREATE SCHEMA {}").format(psycopg.sql.Identifier(name)))
    yield name
    conn.execute(psycopg.sql.SQL("DROP SCHEMA {} CASCADE").format(psycopg.sql.Identifier(name)))
