"""A statement's body is stored in parts of at most 8,000 bytes (`statement_body_parts`),
each in line in its row; `statements` is now a view that puts the parts back together.

A month's statements carry every item: about 330 MB of JSON at a million items, each body
about a megabyte. Kept in one `json` column, every body went out of line (TOAST), and
PostgreSQL extends a TOAST table one page at a time, writing each page to the file as zeros
first, and checks the JSON's syntax as it takes it: on the benchmark's machine storing the
month's bodies that way took 1.6-2.1 s of the closing connection's CPU, against 0.6-0.8 s
for the same bytes as parts (`COPY` into a table with no out-of-line values extends it many
pages at a time). That connection is the close's critical path.

What is stored does not change: the body's bytes as issued, in order (`part` 0, 1, ...),
which the view joins and casts back to `json`, so every reader sees the column it saw
before, and the syntax is now checked as a body is read rather than as it is written. The
view also gives the bytes as they are (`body_bytes`): for the relay, which publishes them,
and for `settlement verify`, which must report a body altered into something that is no
longer JSON rather than fail on it. A body is written only with its statement, in the
close's transaction (`statement_repository.insert_statements`); the parts have no foreign
key to their statement because checking it costs a lookup per part on that same critical
path.

The table keeps its columns, indexes and the references to it under its new name,
`statement_headers`. Moving the bodies rewrites them all once, under a lock that blocks
closes and the relay: on a ledger of years, minutes; run it in a quiet hour
(docs/operations.md).

Revision ID: 0017
Revises: 0016
"""

from services.migrations.sql import execute_script

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

# The most a part holds: with its statement id, number and row header it stays under the
# 8,160 bytes a row may take in a page, so no part is ever stored out of line.
PART_BYTES = 8000

# The body's bytes, or NULL for a statement with no parts. Written out in each column that
# needs it: a query that names neither column joins nothing.
_JOINED = (
    "(SELECT string_agg(p.bytes, ''::bytea ORDER BY p.part) FROM statement_body_parts p "
    "WHERE p.statement_id = h.statement_id)"
)


def upgrade() -> None:
    execute_script(f"""
    ALTER TABLE statements RENAME TO statement_headers;

    CREATE TABLE statement_body_parts (
        statement_id  uuid     NOT NULL,
        part          integer  NOT NULL,
        bytes         bytea    NOT NULL,
        PRIMARY KEY (statement_id, part)
    );
    -- Never compressed nor moved out of line: a part is at most {PART_BYTES} bytes.
    ALTER TABLE statement_body_parts ALTER COLUMN bytes SET STORAGE PLAIN;

    INSERT INTO statement_body_parts (statement_id, part, bytes)
    SELECT h.statement_id, p.n, substring(b.bytes FROM p.n * {PART_BYTES} + 1 FOR {PART_BYTES})
    FROM statement_headers h
    CROSS JOIN LATERAL (SELECT convert_to(h.body::text, 'UTF8') AS bytes) b
    CROSS JOIN LATERAL generate_series(0, greatest((length(b.bytes) - 1) / {PART_BYTES}, 0)) AS p(n);

    ALTER TABLE statement_headers DROP COLUMN body;

    CREATE VIEW statements AS
    SELECT h.statement_id, h.period, h.municipality, h.health_trust,
           convert_from({_JOINED}, 'UTF8')::json AS body,
           h.issued_at, h.sequence, h.previous_hash, h.hash,
           {_JOINED} AS body_bytes
    FROM statement_headers h;
    """)


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup to go back")
