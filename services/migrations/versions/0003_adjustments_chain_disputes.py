"""Adjustments instead of pending late changes; chained statements; disputes.

Revision ID: 0003
Revises: 0002
"""

from services.migrations.sql import execute_script

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script("""
    -- What a closed month is owed beyond what was settled for it: new facts, a new tariff,
    -- or a dispute's outcome. Booked on the pair's next statement; never an edit.
    CREATE TABLE adjustments (
        id                  bigserial   PRIMARY KEY,
        subject_key         text        NOT NULL,
        corrects_month      date        NOT NULL,
        category            text        NOT NULL,
        subject_id          text        NOT NULL,
        municipality        text        NOT NULL,
        health_trust        text        NOT NULL,
        payer_role          text        NOT NULL,
        quantity_delta      integer     NOT NULL,
        amount_delta_ore    bigint      NOT NULL,
        cause               text        NOT NULL,   -- event | tariff | dispute
        caused_by_source    text,
        caused_by_event_id  uuid,
        dispute_id          uuid,
        note                text,
        statement_id        uuid,
        created_at          timestamptz NOT NULL DEFAULT now()
    );
    -- One pending re-rating adjustment per subject, month and side: re-rating replaces it.
    CREATE UNIQUE INDEX adjustments_pending_rerating
        ON adjustments (subject_key, corrects_month, municipality, health_trust, category, payer_role)
        WHERE statement_id IS NULL AND dispute_id IS NULL;
    CREATE INDEX adjustments_unsettled ON adjustments (municipality, health_trust) WHERE statement_id IS NULL;
    CREATE INDEX adjustments_subject ON adjustments (subject_key);

    INSERT INTO adjustments (subject_key, corrects_month, category, subject_id, municipality, health_trust,
                             payer_role, quantity_delta, amount_delta_ore, cause, caused_by_source,
                             caused_by_event_id, note)
    SELECT DISTINCT ON (lc.subject_key, lc.service_month)
           lc.subject_key, lc.service_month, split_part(lc.subject_key, ':', 1), split_part(lc.subject_key, ':', 3),
           lc.municipality, lc.health_trust, 'municipality', lc.new_quantity - lc.settled_quantity,
           coalesce(lc.new_amount_ore, 0) - coalesce(lc.settled_amount_ore, 0), 'event',
           lc.caused_by_source, lc.caused_by_event_id, 'carried over from late_changes'
    FROM late_changes lc
    ORDER BY lc.subject_key, lc.service_month, lc.id DESC;
    DROP TABLE late_changes;

    -- Each pair's statements form a hash chain: sequence 1, 2, 3 ... each carrying the
    -- hash of the one before, so either party can prove it holds the whole series.
    ALTER TABLE statements
        ADD COLUMN sequence integer,
        ADD COLUMN previous_hash text,
        ADD COLUMN hash text;
    CREATE UNIQUE INDEX statements_pair_sequence ON statements (municipality, health_trust, sequence);

    ALTER TABLE closed_periods ADD COLUMN tariff_fingerprint text;

    CREATE TABLE disputes (
        dispute_id         uuid        PRIMARY KEY,
        statement_id       uuid        NOT NULL REFERENCES statements (statement_id),
        municipality       text        NOT NULL,
        health_trust       text        NOT NULL,
        subject_id         text,
        category           text        NOT NULL,
        service_month      date        NOT NULL,
        payer_role         text        NOT NULL,   -- whose payment is held
        amount_ore         bigint      NOT NULL CHECK (amount_ore > 0),
        opened_by          text        NOT NULL,
        reason             text        NOT NULL,
        status             text        NOT NULL DEFAULT 'open',
        agreed_ore         bigint,
        held_on            uuid,       -- the statement that first held the amount out
        released_on        uuid,       -- the statement that released it after the resolution
        opened_at          timestamptz NOT NULL,
        resolved_at        timestamptz
    );
    CREATE TABLE dispute_log (
        id          bigserial   PRIMARY KEY,
        dispute_id  uuid        NOT NULL REFERENCES disputes (dispute_id),
        action      text        NOT NULL,
        actor       text        NOT NULL,
        reason      text        NOT NULL,
        amount_ore  bigint,
        at          timestamptz NOT NULL
    );
    """)


def downgrade() -> None:
    raise NotImplementedError("forward-only: restore from backup to go back")
