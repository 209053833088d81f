"""Whether every subject a tariff book's changes price was re-rated with it (`complete`).

A close re-rates what a changed book prices before it takes its lock, in transactions of a
few hundred subjects, and recorded the book as used only when all had committed. Stopped
half-way and restarted with the earlier book (a change rolled back), the close compared
that book with the last recorded (the same), found no change, and the subjects the stopped
re-rating had priced kept the abandoned book's prices: a rehearsal put 19,574 adjustments,
871 million NOK at a rate no longer in the book, on the next statements. The book is now
recorded as incomplete before its first chunk, and a close compares today's book with every
book used since the last complete one.

Revision ID: 0016
Revises: 0015
"""

from services.migrations.sql import execute_script

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script("""
    ALTER TABLE tariff_books ADD COLUMN complete boolean NOT NULL DEFAULT true;
    """)


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup to go back")
