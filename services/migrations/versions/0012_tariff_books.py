"""The tariff books closes ran with, so that a changed book can be compared with the last.

A close knew only the last book's fingerprint: a changed book re-rated the days held
without a price, while a rate changed for days already priced reached only the subjects
that happened to get a new event (and then as caused by that event). With each book's
rules kept by fingerprint (the days and parties each prices), a close re-rates every
subject with items where a rule was added, removed or changed, as a tariff adjustment.

Revision ID: 0012
Revises: 0011
"""

from services.migrations.sql import execute_script

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script("""
    CREATE TABLE tariff_books (
        fingerprint  text        PRIMARY KEY,
        windows      jsonb       NOT NULL,   -- rule signature -> the days and parties it prices
        first_seen   timestamptz NOT NULL DEFAULT now()
    );
    """)


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup to go back")
