"""Catalog tables: collections, indexes, partitions.

Revision ID: 0001
"""
from vecpg.migrate import run_sql_file

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("001_catalog.sql")


def downgrade() -> None:
    run_sql_file("001_catalog_down.sql")
