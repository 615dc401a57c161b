"""Companion (quantized) index models and planner calibration.

Revision ID: 0003
"""
from vecpg.migrate import run_sql_file

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("003_companions.sql")


def downgrade() -> None:
    run_sql_file("003_companions_down.sql")
