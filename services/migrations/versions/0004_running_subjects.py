"""Subjects whose stay is still running, so a close extends them even when all their items
so far are in closed months (and their late facts became adjustments).

Revision ID: 0004
Revises: 0003
"""

from services.migrations.sql import execute_script

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script("""
    CREATE TABLE running_subjects (subject_key text PRIMARY KEY);
    INSERT INTO running_subjects SELECT DISTINCT subject_key FROM ledger_items WHERE open_ended
    ON CONFLICT DO NOTHING;
    """)


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup to go back")
