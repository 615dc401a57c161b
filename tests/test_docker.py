"""The container servers themselves: the ``dsn`` fixture's Docker server is Debian's
PostgreSQL 17 with pgvector, and ``docker_postgres`` containers reach each other by name on
their network and are gone once removed."""

from __future__ import annotations

import os

import psycopg
import pytest
from conftest import SESSION_LABEL, on_docker, require_docker


def test_the_docker_server_is_postgres_17_with_pgvector(dsn: str) -> None:
    if not on_docker(dsn):
        pytest.skip("not the Docker server")
    with psycopg.connect(dsn) as c:
        (num,) = c.execute("SELECT current_setting('server_version_num')::int").fetchone()
        (enc,) = c.execute("SELECT pg_encoding_to_char(encoding) FROM pg_database"
                           " WHERE datname = current_database()").fetchone()
        (ext,) = c.execute("SELECT default_version FROM pg_available_extensions"
                           " WHERE name = 'vector'").fetchone()
    assert num // 10000 == 17 and enc == "UTF8"
    assert tuple(int(x) for x in ext.split(".")[:2]) >= (0, 8), ext


def test_containers_meet_on_their_network_and_go_away(docker_postgres) -> None:
    require_docker()
    net = f"vecpg-test-{SESSION_LABEL['vecpg.test']}-net"
    a = docker_postgres("net-a", network=net)
    b = docker_postgres("net-b", network=net, args=["-c", "max_connections=33"])
    out = b.exec("psql", "-tA", f"postgresql://postgres:vecpg@{a.name}/postgres",
                 "-c", "SELECT inet_server_port()")
    assert out.strip() == "5432"
    with psycopg.connect(b.dsn) as c:
        assert c.execute("SHOW max_connections").fetchone() == ("33",)
    assert a.container.labels == {**a.container.labels, **SESSION_LABEL}
    a.remove()
    import docker

    names = [c.name for c in docker.from_env().containers.list(
        all=True, filters={"label": "=".join(*SESSION_LABEL.items())})]
    assert a.name not in names and b.name in names
    b.remove()
    assert os.environ["TESTCONTAINERS_RYUK_DISABLED"] == "true"


def test_index_builds_fit_dockers_default_shared_memory(docker_postgres) -> None:
    """Docker gives a container 64 MB of /dev/shm (the pgvector images too): a parallel HNSW
    build's segment of maintenance_work_mem (>= 1 GB) does not fit there. vecpg builds and
    rebuilds without parallel workers then, instead of failing."""
    import numpy as np

    import vecpg

    pg = docker_postgres("shm64", shm_size="64m")
    x = np.random.default_rng(0).standard_normal((30000, 128)).astype(np.float32)
    with vecpg.connect(pg.dsn) as c:  # 15 MB of vectors: Postgres plans parallel workers
        c.create_collection("big", dimension=128)
        c.insert("big", {"id": range(len(x)), "vector": x})
        c.create_index("big", c.prepare_index_params(
            "vector", index_type="HNSW", metric_type="L2", params={"M": 8, "efConstruction": 16}))
        (name,) = c.list_indexes("big")
        c.rebuild_index("big", name)
        assert c.search("big", [x[7].tolist()], limit=1)[0][0]["id"] == 7
        with c.connection() as k:
            assert k.execute("SELECT count(*) FROM pg_index WHERE NOT indisvalid").fetchone() \
                == (0,)
    pg.remove()
