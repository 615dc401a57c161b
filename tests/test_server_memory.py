"""The embedded server's shared buffers: sized to the machine, a user's own setting kept."""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
import pytest
from conftest import on_docker

from vecpg import server
from vecpg.errors import ServerError

INITDB = "max_connections = 100\nshared_buffers = 128MB\t\t\t# min 128kB\n#work_mem = 4MB\n"


def _conf(tmp_path: Path, text: str) -> Path:
    (tmp_path / "postgresql.conf").write_text(text)
    return tmp_path / "postgresql.conf"


def _active(conf: Path) -> list[str]:
    return [line for line in conf.read_text().splitlines()
            if line.strip().startswith("shared_buffers")]


def test_initdb_default_is_replaced_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    monkeypatch.setenv("VECPG_SHARED_BUFFERS", "512MB")
    conf = _conf(tmp_path, INITDB)
    server._size_buffers(tmp_path)
    server._size_buffers(tmp_path)  # (again: nothing added twice)
    assert _active(conf)[-1] == "shared_buffers = '512MB'" and len(_active(conf)) == 2
    assert conf.read_text().startswith(INITDB)  # the rest untouched
    monkeypatch.setenv("VECPG_SHARED_BUFFERS", "1GB")  # a new choice replaces vecpg's line
    server._size_buffers(tmp_path)
    assert _active(conf)[-1] == "shared_buffers = '1GB'" and len(_active(conf)) == 2


def test_a_users_own_setting_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VECPG_SHARED_BUFFERS", "512MB")
    mine = INITDB.replace("shared_buffers = 128MB", "shared_buffers = 256MB")
    conf = _conf(tmp_path, mine)
    server._size_buffers(tmp_path)
    assert conf.read_text() == mine


def test_size_follows_memory_and_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    monkeypatch.delenv("VECPG_SHARED_BUFFERS", raising=False)
    for limit, want in ((512.0, "128MB"), (8192.0, "1024MB"), (65536.0, "2048MB"),
                        (None, "128MB")):
        monkeypatch.setattr(server, "memory_limit_mb", lambda limit=limit: limit)
        assert server.shared_buffers_setting() == want
    monkeypatch.setenv("VECPG_SHARED_BUFFERS", "lots'; DROP TABLE x")
    with pytest.raises(ServerError, match="not a Postgres size"):
        server.shared_buffers_setting()


def test_memory_limit_is_the_machines_at_most() -> None:
    limit = server.memory_limit_mb()
    assert limit is not None
    assert 0 < limit <= os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**20 + 1


def test_embedded_server_runs_with_it(dsn: str) -> None:
    if on_docker(dsn) or os.environ.get("VECPG_TEST_DSN") == dsn:
        pytest.skip("a server vecpg did not initialise keeps its own settings")
    with psycopg.connect(dsn, autocommit=True) as conn:
        got, want = conn.execute(
            "SELECT pg_size_bytes(current_setting('shared_buffers')), pg_size_bytes(%s)",
            (server.shared_buffers_setting(),)).fetchone() or (None, None)
    assert got == want and want is not None and want >= server.BUFFERS_MIN_MB * 2**20
