"""Milvus aliases and databases.

Revision ID: 0005
"""
from vecpg.migrate import run_sql_file

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("005_aliases_databases.sql")


def downgrade() -> None:
    run_sql_file("005_aliases_databases_down.sql")
