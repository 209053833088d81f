"""When each tariff book was last rated with, so a close compares today's book with the one
the last committed re-rating used, not the last close's.

A close commits its re-rating before its statements: should the statements' transaction
fail and the operator then go back to the earlier book, comparing with the last close's
fingerprint found no change, and the retry issued statements priced by the book given up.

Revision ID: 0013
Revises: 0012
"""

from services.migrations.sql import execute_script

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script("""
    ALTER TABLE tariff_books ADD COLUMN last_used timestamptz NOT NULL DEFAULT now();
    """)


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup to go back")
