"""``vecpg server``, ``vecpg dsn`` and ``vecpg psql``: the embedded server kept running between
processes, used by plain psycopg, by the bundled psql and by the README's plain-SQL session
(taken from README.md, so the README cannot drift from what works)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _readme_block(lang: str, marker: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return next(b for b in re.findall(rf"```{lang}\n(.*?)```", text, re.S) if marker in b)


class Cli:
    """Runs ``vecpg ...`` in a process of its own, on one data directory."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("VECPG_DSN", "VECPG_PG_VERSION")}
        self.env.update(VECPG_DATA=str(data), PYTHONPATH=str(ROOT))

    def __call__(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "vecpg.cli", *args], capture_output=True,
                              text=True, timeout=timeout, env=self.env, cwd=ROOT)

    def python(self, code: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=300, env=self.env, cwd=ROOT)


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    """One data directory for the module (initdb and vecpg's migrations once); each test
    starts and ends with no server running there."""
    c = Cli(tmp_path_factory.mktemp("server") / "pg")
    yield c
    c("server", "stop")  # whatever a failed test left running


def test_server_session_from_psycopg_psql_and_the_readme(cli: Cli) -> None:
    status = cli("server", "status")
    assert status.returncode == 3 and status.stdout.startswith("stopped:")
    started = cli("server", "start")
    assert started.returncode == 0, started.stderr
    dsn = cli("dsn").stdout.strip()
    assert dsn == f"postgresql://postgres@/postgres?host={cli.data.resolve()}"
    # plain psycopg, in this process: no password, a socket only the owner may open
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert conn.execute("SHOW unix_socket_permissions").fetchone() == ("0700",)
        assert conn.execute("SHOW listen_addresses").fetchone() == ("",)
    assert oct((cli.data / ".s.PGSQL.5432").stat().st_mode & 0o777) == "0o700"

    # the README's Python, in a process of its own: it uses the running server, does not
    # become one of its users, and leaves it running when it exits
    made = cli.python(_readme_block("python", 'client.drop_collection("words")'))
    assert made.returncode == 0, made.stderr
    postmaster = cli.data / "postmaster.pid"
    pid = int(postmaster.read_text().split()[0])
    assert json.loads((cli.data / ".handle_pids.json").read_text()) == [pid]
    count = cli("psql", "-X", "-A", "-t", "-c", "SELECT count(*) FROM words")
    assert count.returncode == 0 and count.stdout.strip() == "5000", count.stderr

    # the README's SQL through the bundled psql, stopping at the first error
    sql_file = cli.data.parent / "session.sql"
    sql_file.write_text(_readme_block("sql", r"\d words"))
    out = cli("psql", "-X", "-v", "ON_ERROR_STOP=1", "-f", str(sql_file))
    assert out.returncode == 0, out.stderr
    assert "Index Scan using words__embedding on words" in out.stdout
    assert "decaffeinated coffee" in out.stdout and "| verb |" in out.stdout
    assert out.stdout.count("(5 rows)") == 3
    with psycopg.connect(dsn, autocommit=True) as conn:  # the join's table is a table
        assert conn.execute("SELECT count(*) FROM pos_names").fetchone() == (5,)

    # stopping with a client connected: a fast shutdown that closes it and says so
    held = psycopg.connect(dsn, autocommit=True)
    try:
        running = cli("server", "status")
        assert running.returncode == 0 and "started by `vecpg server start`" in running.stdout
        stopped = cli("server", "stop")
        assert stopped.returncode == 0 and "1 client connection(s) were closed" in stopped.stdout
        with pytest.raises(psycopg.OperationalError):
            held.execute("SELECT 1")
    finally:
        held.close()
    after = cli("server", "status")
    assert after.returncode == 3 and not postmaster.exists()
    gone = cli("dsn")
    assert gone.returncode == 2 and gone.stderr.strip().endswith("`vecpg server start`")
    assert len(gone.stderr.strip().splitlines()) == 1


def test_stop_leaves_an_embedded_server_to_its_users(cli: Cli) -> None:
    """A server that Python processes started as their embedded one is not `vecpg server
    stop`'s to stop (they would start it again); status still reports it running."""
    code = ("import sys, vecpg\nc = vecpg.connect()\nprint(c.dsn, flush=True)\n"
            "sys.stdin.readline()\nc.close()\n")
    user = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=cli.env, cwd=ROOT)
    try:
        assert user.stdout is not None and user.stdin is not None
        assert user.stdout.readline().startswith("postgresql://postgres@/")
        status = cli("server", "status")
        assert status.returncode == 0 and f"embedded in process(es) {user.pid}" in status.stdout
        refused = cli("server", "stop")
        assert refused.returncode == 2 and "ServerError" in refused.stderr
        user.stdin.write("\n")
        user.stdin.flush()
        assert user.wait(60) == 0
    finally:
        user.kill()
    assert cli("server", "status").returncode == 3  # its last user stopped it
