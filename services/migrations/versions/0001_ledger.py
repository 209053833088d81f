"""Events, ledger, periods, statements, rejections, outbox.

Revision ID: 0001
Revises:
"""

from services.migrations.sql import execute_script

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script("""
    -- Every accepted inbound event, once. The primary key is the dedup key; it is inserted
    -- in the same transaction as the event's effects on the ledger.
    CREATE TABLE inbound_events (
        source        text        NOT NULL,
        event_id      uuid        NOT NULL,
        family        text        NOT NULL,
        type          text        NOT NULL,
        subject_key   text        NOT NULL,
        health_trust  text        NOT NULL,
        occurred_at   timestamptz NOT NULL,
        content_hash  bytea       NOT NULL,
        payload       jsonb       NOT NULL,  -- validated; the patient id replaced by a pseudonym
        topic         text        NOT NULL,
        partition     integer     NOT NULL,
        "offset"      bigint      NOT NULL,
        received_at   timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (source, event_id)
    );
    CREATE INDEX inbound_events_subject ON inbound_events (subject_key);

    -- What each subject (episode, stay, activity) makes payable per service month. Rows
    -- with a statement_id are settled and never change again.
    CREATE TABLE ledger_items (
        subject_key     text    NOT NULL,
        service_month   date    NOT NULL,
        part            integer NOT NULL,
        category        text    NOT NULL,
        subject_id      text    NOT NULL,
        health_trust    text    NOT NULL,
        municipality    text    NOT NULL,
        payer_role      text    NOT NULL,
        first_day       date    NOT NULL,
        last_day        date    NOT NULL,
        quantity        integer NOT NULL,
        unit_price_ore  bigint,
        amount_ore      bigint,
        rule_id         text,
        open_ended      boolean NOT NULL DEFAULT false,
        statement_id    uuid,
        updated_at      timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (subject_key, service_month, part),
        CHECK ((unit_price_ore IS NULL) = (amount_ore IS NULL))
    );
    CREATE INDEX ledger_items_unsettled ON ledger_items (service_month) WHERE statement_id IS NULL;
    CREATE INDEX ledger_items_open_ended ON ledger_items (subject_key) WHERE open_ended;

    CREATE TABLE closed_periods (
        period      date        PRIMARY KEY,
        closed_at   timestamptz NOT NULL DEFAULT now(),
        command_id  uuid
    );

    CREATE TABLE processed_commands (
        command_id   uuid        PRIMARY KEY,
        type         text        NOT NULL,
        received_at  timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE statements (
        statement_id  uuid        PRIMARY KEY,
        period        date        NOT NULL,
        municipality  text        NOT NULL,
        health_trust  text        NOT NULL,
        body          jsonb       NOT NULL,
        issued_at     timestamptz NOT NULL,
        UNIQUE (period, municipality, health_trust)
    );

    -- Events that arrived after their month was closed and would change it. Kept and
    -- shown as pending; the closed statement is never edited.
    CREATE TABLE late_changes (
        id                   bigserial   PRIMARY KEY,
        subject_key          text        NOT NULL,
        service_month        date        NOT NULL,
        municipality         text        NOT NULL,
        health_trust         text        NOT NULL,
        settled_quantity     integer     NOT NULL,
        settled_amount_ore   bigint,
        new_quantity         integer     NOT NULL,
        new_amount_ore       bigint,
        caused_by_source     text        NOT NULL,
        caused_by_event_id   uuid        NOT NULL,
        recorded_at          timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE rejections (
        rejection_id  uuid        PRIMARY KEY,
        topic         text        NOT NULL,
        partition     integer     NOT NULL,
        "offset"      bigint      NOT NULL,
        raw_hash      bytea       NOT NULL,
        reason        text        NOT NULL,
        message       text        NOT NULL,
        key           text,
        payload       text        NOT NULL,  -- patient identifiers redacted
        rejected_at   timestamptz NOT NULL,
        -- A redelivered bad message is the same rejection, not a second one.
        UNIQUE (topic, partition, "offset", raw_hash)
    );
    CREATE INDEX rejections_reason ON rejections (reason);

    -- Transactional outbox: written in the same transaction as what it announces,
    -- published afterwards by a relay; a crash in between loses nothing.
    CREATE TABLE outbox (
        id            bigserial   PRIMARY KEY,
        topic         text        NOT NULL,
        key           text,
        payload       bytea       NOT NULL,
        created_at    timestamptz NOT NULL DEFAULT now(),
        published_at  timestamptz
    );
    CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
    """)


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup to go back")
