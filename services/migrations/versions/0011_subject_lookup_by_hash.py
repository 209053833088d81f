"""Events are found by their subject through a hash index instead of a B-tree.

Intake only ever asks for the events of given subjects (`subject_key = ANY(...)`, one
batch's subjects at a time), never for a range or an order of them, and that is what a
hash index answers. It keeps a 4-byte hash per event where the B-tree kept the whole key
(`discharge_ready:983974724:EP-...`, 40 bytes and more), and an insert into it compares no
strings: PostgreSQL's CPU per event, intake's service layer alone, 12.4-12.7 µs with the
B-tree and 9.9-10.3 with this (alternated runs). Lookups go through a bitmap scan, which
also rechecks the key itself, so a hash collision finds nothing it should not.

Building it blocks intake's writes on a large ledger: an operator may build it first with
`CREATE INDEX CONCURRENTLY` under this name and definition, and this migration then only
drops the B-tree (docs/operations.md).

Revision ID: 0011
Revises: 0010
"""

from services.migrations.sql import execute_script

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script("""
    CREATE INDEX IF NOT EXISTS inbound_events_subject_hash ON inbound_events USING hash (subject_key);
    DROP INDEX inbound_events_subject;
    """)


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup to go back")
