"""A month close of a million items: settling an item rewrites it in its own page, and a
statement's JSON is written without compressing it first.

- `ledger_items_unsettled` named `statement_id` in its predicate, so setting it was never a
  HOT update: every settled item got a new place in the heap and a new entry in the
  primary key. In its place: the month (the close's queries) and held days by month (the
  close's re-rating), neither of which a close changes. Pages are filled to half on
  insert, so an item settled later finds room in its own page: settled months take about
  twice the space of the items themselves.
- A month's statements and their outbox copies are about a gigabyte of JSON at a million
  items; compressing it (pglz) took longer than writing it. They are stored as they are.

Revision ID: 0005
Revises: 0004
"""

from services.migrations.sql import execute_script

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script("""
    CREATE INDEX ledger_items_month ON ledger_items (service_month);
    CREATE INDEX ledger_items_held ON ledger_items (service_month) WHERE amount_ore IS NULL;
    DROP INDEX ledger_items_unsettled;
    ALTER TABLE ledger_items SET (fillfactor = 50);

    ALTER TABLE statements ALTER COLUMN body SET STORAGE EXTERNAL;
    ALTER TABLE outbox ALTER COLUMN payload SET STORAGE EXTERNAL;
    """)


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup to go back")
