"""Bring a database's ``vecpg`` schema to the newest version (alembic, SQL from ``sql/``).

Example::

    from vecpg.migrate import upgrade
    upgrade("postgresql://localhost/mydb")   # idempotent; safe to run from many processes
"""

from __future__ import annotations

import importlib.resources
import logging
import re
from pathlib import Path
from typing import Any

import psycopg

from .errors import UnsupportedServer
from .session import Db

_log = logging.getLogger("vecpg")


def resource_dir(name: str) -> Path:
    """``sql/`` or ``migrations/``: inside the installed package (``vecpg/<name>``), or at
    the top of a source checkout (``<repo>/<name>``), which may shadow the installed package
    when Python runs from the repository root."""
    here = Path(__file__).resolve().parent
    for candidate in (here / name, here.parent / name):
        if (candidate / "__init__.py").is_file():
            return candidate
    return Path(str(importlib.resources.files(f"vecpg.{name}")))


def sql_text(filename: str) -> str:
    """The text of one file of ``sql/``."""
    return (resource_dir("sql") / filename).read_text(encoding="utf-8")


def run_sql_file(filename: str) -> None:
    """Inside a migration: execute one file of ``sql/`` as it is (many statements, no binds)."""
    from alembic import op

    raw = op.get_bind().connection.driver_connection
    assert raw is not None  # an open connection, inside a migration
    raw.execute(sql_text(filename))  # no parameters: psycopg sends it as a simple query


def _alembic_config():  # type: ignore[no-untyped-def]
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(resource_dir("migrations")))
    return cfg


def head_revision() -> str:
    """The newest revision, read from the version files' ``revision`` / ``down_revision``
    lines: importing alembic (and SQLAlchemy) costs ~0.3 s, paid only to migrate."""
    revs: dict[str, str | None] = {}
    for path in (resource_dir("migrations") / "versions").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        rev = re.search(r'^revision = "([^"]+)"', text, re.M)
        down = re.search(r'^down_revision = (?:"([^"]+)"|None)', text, re.M)
        if rev and down:
            revs[rev.group(1)] = down.group(1)
    heads = set(revs) - set(revs.values())
    if len(heads) != 1:
        raise RuntimeError(f"vecpg migrations must have one head, found {sorted(heads)}")
    return heads.pop()


def current_revision(conn: psycopg.Connection | Db) -> str | None:
    """The database's vecpg revision, or None before the first migration."""
    row = conn.execute("SELECT to_regclass('vecpg.alembic_version') IS NOT NULL").fetchone()
    if not row or not row[0]:
        return None
    row = conn.execute("SELECT version_num FROM vecpg.alembic_version").fetchone()
    return row[0] if row else None


def server_versions(db: Db) -> dict[str, Any]:
    """Postgres' and pgvector's versions and the database's vecpg revision."""
    return {"postgres": db.value("SHOW server_version"),
            "pgvector": db.value("SELECT extversion FROM pg_extension WHERE extname = 'vector'"),
            "vecpg_schema_revision": current_revision(db)}


def upgrade(dsn: str, *, revision: str = "head") -> None:
    """Migrate the database at ``dsn`` to ``revision`` (default: the newest)."""
    with psycopg.connect(dsn, autocommit=True) as probe:
        enc = probe.execute("SHOW server_encoding").fetchone()
        enc_name = enc[0].decode() if enc and isinstance(enc[0], bytes) else enc and enc[0]
        if enc_name != "UTF8":
            # text comes back undecoded (bytes) from a SQL_ASCII database, which vecpg's
            # catalog and filters cannot work with
            raise UnsupportedServer(f"database encoding {enc_name}: vecpg needs a UTF8 "
                                    "database (CREATE DATABASE ... ENCODING 'UTF8')")
        have = current_revision(probe)
        if revision == "head" and have == head_revision():
            return  # the common case: nothing to do, and no need to wait for the lock
        row = probe.execute("SELECT pg_is_in_recovery()").fetchone()
        if row and row[0]:  # a standby is read-only: its primary's migration reaches it
            if have != head_revision():
                raise UnsupportedServer(
                    f"this server is a standby at vecpg revision {have or 'none'} (this vecpg "
                    f"needs {head_revision()}): connect to the primary once to migrate it")
            return
    _run_alembic(dsn, "upgrade", revision)
    _log.info("vecpg schema at revision %s", revision)


def downgrade(dsn: str, revision: str) -> None:
    """Migrate down to ``revision`` (``"base"`` removes vecpg's schema objects)."""
    _run_alembic(dsn, "downgrade", revision)


def _run_alembic(dsn: str, verb: str, revision: str) -> None:
    from alembic import command
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    engine = create_engine("postgresql+psycopg://", creator=lambda: psycopg.connect(dsn),
                           poolclass=NullPool)
    try:
        with engine.connect() as connection:
            cfg = _alembic_config()
            cfg.attributes["connection"] = connection
            getattr(command, verb)(cfg, revision)
            connection.commit()
    finally:
        engine.dispose()
