"""An inbound event's payload is kept as the canonical JSON text intake hashed (`json`),
not parsed into `jsonb`.

Building `jsonb` from each payload, and rendering it back to text when rating reads a
subject's facts, was the largest share of PostgreSQL's work per event: `COPY` of the
benchmark's events took 13-14 µs a row with `jsonb` against 10 with `json`, which only
checks the syntax. Nothing queries inside a payload to find rows (rating reads a
subject's payloads whole by `subject_key`); `->`/`->>` still work on `json` for a person
looking. And what is stored is now byte for byte what `content_hash` is the SHA-256 of,
so an auditor can check an event against its hash without re-encoding it. Rows stored
before this keep their content in `jsonb`'s rendering (keys reordered, spaces added).

Changing the type rewrites the table under a lock that blocks intake's writes: on a
ledger of years, minutes; run it in a quiet hour (docs/operations.md).

Revision ID: 0010
Revises: 0009
"""

from services.migrations.sql import execute_script

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script("""
    ALTER TABLE inbound_events ALTER COLUMN payload TYPE json USING payload::json;
    """)


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup to go back")
