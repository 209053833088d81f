"""The month's items indexed in the order a statement lists them, so a close reads them in
that order instead of sorting a month of items.

A statement lists its pair's items by category, episode and first day (bytewise, as the
statement hash was defined in Python); the close groups them by pair in the same order
(`statement_repository.rendered_pairs`). Sorting a million items took about 3 s of a
close; reading them through this index about 1.5. It replaces `ledger_items_month`, whose
only column leads this one, so intake still maintains one index for it, a wider one.

Building it blocks writes to the ledger: on a large ledger an operator may build it first
with `CREATE INDEX CONCURRENTLY` under this name and definition, and this migration then
only drops the month index (docs/operations.md).

Revision ID: 0009
Revises: 0008
"""

from services.migrations.sql import execute_script

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script("""
    CREATE INDEX IF NOT EXISTS ledger_items_statement_order ON ledger_items (
        service_month, municipality COLLATE "C", health_trust COLLATE "C", category COLLATE "C",
        subject_id COLLATE "C", first_day, subject_key COLLATE "C", part
    );
    DROP INDEX ledger_items_month;
    """)


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup to go back")
