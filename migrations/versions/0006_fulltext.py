"""Full-text search: BM25 statistics, text_match and phrase_match helpers.

Revision ID: 0006
"""
from vecpg.migrate import run_sql_file

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_sql_file("006_fulltext.sql")


def downgrade() -> None:
    run_sql_file("006_fulltext_down.sql")
