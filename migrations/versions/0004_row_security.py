"""Row-level security on vecpg's tables, and tenants.

Revision ID: 0004
"""
from vecpg.migrate import run_sql_file

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("004_row_security.sql")


def downgrade() -> None:
    run_sql_file("004_row_security_down.sql")
