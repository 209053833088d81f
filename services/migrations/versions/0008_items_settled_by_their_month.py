"""An item is settled by the close of its month: `ledger_items.statement_id` is dropped.

Rating never writes an item into a closed month (a difference there is an adjustment), and
a close puts every item of its month on the statement of the item's pair, whose id is
decided by the month and the pair (`statements` is unique on them). So the column only
repeated what `closed_periods` and `statements` already say, and keeping it cost a close
an update of every item of the month: at a million items about 4 s and half a gigabyte
of WAL, the largest step after the JSON itself. Readers now find an item's statement by
its month and pair.

Before the column goes, every settled item is checked to name exactly that statement, and
every item of a closed month to have one: a database where they differ stops the upgrade
with the count, to be looked at before anything is dropped.

With no update of settled items, their pages no longer keep room for one (0005):
fillfactor back to the default for pages written from now on.

Revision ID: 0008
Revises: 0007
"""

from services.migrations.sql import execute_script

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script("""
    DO $$
    DECLARE differing bigint;
    BEGIN
        SELECT count(*) INTO differing
        FROM ledger_items i
        LEFT JOIN statements s
               ON s.period = i.service_month AND s.municipality = i.municipality AND s.health_trust = i.health_trust
        WHERE i.statement_id IS DISTINCT FROM s.statement_id
           OR (i.service_month IN (SELECT period FROM closed_periods)) IS DISTINCT FROM (s.statement_id IS NOT NULL);
        IF differing > 0 THEN
            RAISE EXCEPTION '% ledger items are not settled on their month''s statement for their pair', differing;
        END IF;
    END $$;
    ALTER TABLE ledger_items DROP COLUMN statement_id;
    ALTER TABLE ledger_items RESET (fillfactor);
    """)


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup to go back")
