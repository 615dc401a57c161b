"""Alembic environment for vecpg's own schema (``vecpg.*``).

Run through :func:`vecpg.migrate.upgrade`, which passes an open SQLAlchemy connection in
``config.attributes["connection"]``. All versions run in one transaction that first takes
an advisory lock, so two processes migrating at once take turns: the second finds the
database at head and does nothing.
"""

from alembic import context

MIGRATION_LOCK = 0x76656370  # "vecp": pg_advisory_xact_lock key shared by all vecpg processes

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - offline mode is not supported
    raise RuntimeError("vecpg migrations run through vecpg.migrate.upgrade(dsn)")

context.configure(connection=connection, target_metadata=None,
                  version_table="alembic_version", version_table_schema="vecpg",
                  transaction_per_migration=False)
with context.begin_transaction():
    connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
    # The version table lives in schema vecpg, so it must exist before alembic looks.
    connection.exec_driver_sql("CREATE SCHEMA IF NOT EXISTS vecpg")
    context.run_migrations()
