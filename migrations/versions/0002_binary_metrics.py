"""Binary fingerprint functions: tanimoto, substructure, superstructure, popcount.

Revision ID: 0002
"""
from vecpg.migrate import run_sql_file

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("002_binary_metrics.sql")


def downgrade() -> None:
    run_sql_file("002_binary_metrics_down.sql")
