"""A rejection keeps the rejected event's `source`, `event_id` and `health_trust` in columns
of their own, as `samhandling.rejected.v1` now publishes them: `settlement rejections
--source` finds a sender's own. Rejections recorded before keep none (their payload still
has them).

Revision ID: 0014
Revises: 0013
"""

from services.migrations.sql import execute_script

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script("""
    ALTER TABLE rejections
        ADD COLUMN source       text,
        ADD COLUMN event_id     text,
        ADD COLUMN health_trust text;
    """)


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup to go back")
