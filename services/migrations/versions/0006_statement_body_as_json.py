"""A statement's body is kept as the JSON text it was issued with (`json`), not parsed into
`jsonb`.

At a million items a month's statements are about 330 MB of JSON; building `jsonb` from it
took longer than anything else in writing them (about 12 s against 4 for `json`, which only
checks the syntax, on the benchmark's machine). Nothing queries inside a body in SQL: the
readers (verify, reconcile, disputes) parse it whole, and `json` keeps the issued text as it
was, keys in their order. The `->`/`->>` operators still work on `json`; a body that must
be edited as `jsonb` (a test tampering with one) is cast both ways.

Changing the type resets the column's storage to the type's default: set back to stored
without compressing it (0005).

Revision ID: 0006
Revises: 0005
"""

from services.migrations.sql import execute_script

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script("""
    ALTER TABLE statements ALTER COLUMN body TYPE json USING body::json;
    ALTER TABLE statements ALTER COLUMN body SET STORAGE EXTERNAL;
    """)


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup to go back")
