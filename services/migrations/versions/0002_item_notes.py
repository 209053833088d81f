"""Ledger items say why they are not payable, and carry notes (mapped municipality numbers,
capped DRG points).

Revision ID: 0002
Revises: 0001
"""

from services.migrations.sql import execute_script

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script("""
    ALTER TABLE ledger_items
        ADD COLUMN not_payable_reason text,
        ADD COLUMN note text;
    """)


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup to go back")
