"""An adjustment keeps the items it leads to: what its subject now makes payable in the
month it corrects, for its side (`items_now`).

A finance audit found that an adjustment ("-19 days, +9,600 NOK") could not be checked from
the statements: the closed month's statement holds the item as it was settled, and the item
as it now stands was nowhere a party could see (a closed month's items are never rewritten,
so it is not in `ledger_items` either; only the re-rating that books the difference has it).
Rating now stores it beside the difference, and the statement carries it.

`json`, not `jsonb`: nothing queries inside it, and it is written and read whole (as a
statement's body, 0006). Null for a dispute's credit, and for rows recorded before this:
the next close re-rates the subjects of those still pending, which gives them their items
(services.settlement.service), so every statement from now on carries them.

Revision ID: 0015
Revises: 0014
"""

from services.migrations.sql import execute_script

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script("""
    ALTER TABLE adjustments ADD COLUMN items_now json;
    """)


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup to go back")
