"""The outbox names a statement and the party it is for, instead of holding the party's copy.

A close wrote every statement three times: its body in `statements` and both parties'
copies, whole, in `outbox`. The copies differ from the body only in `recipient` and
`counterparty`; at a million items a month they were about 660 MB and 6 s of the close.
A statement's outbox row now carries no payload but `statement_id`, `recipient` and the
copy's size; the relay makes the copy from the stored body when it publishes it
(`addressed_copy`), byte for byte what was stored before. Other messages (rejections) keep
their payload. Rows written before this keep theirs too, and are published as they are.

The size (`copy_bytes`) is for the relay, which bounds a batch by its bytes: a `json`
value has no binary cast to `text`, so `octet_length(body::text)` would read every pending
body to measure it. A row is a payload or a reference, never both or neither. Statements
are never deleted, so the reference needs no index on the outbox's side.

Revision ID: 0007
Revises: 0006
"""

from services.migrations.sql import execute_script

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script("""
    ALTER TABLE outbox
        ALTER COLUMN payload DROP NOT NULL,
        ADD COLUMN statement_id uuid REFERENCES statements (statement_id),
        ADD COLUMN recipient text CHECK (recipient IN ('municipality', 'health_trust')),
        ADD COLUMN copy_bytes integer CHECK (copy_bytes > 0),
        ADD CONSTRAINT outbox_payload_or_statement CHECK (
            CASE WHEN payload IS NULL
                 THEN statement_id IS NOT NULL AND recipient IS NOT NULL AND copy_bytes IS NOT NULL
                 ELSE statement_id IS NULL AND recipient IS NULL AND copy_bytes IS NULL END
        );
    """)


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup to go back")
