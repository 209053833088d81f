"""SQL for events, ledger items and late changes. Batch-shaped: one round trip per step,
whatever the batch size."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

import asyncpg

from services.domain.calendar import Month
from services.domain.ledger import Category, LedgerItem, PayerRole
from services.domain.tariffs import Parameter, PricedWindow
from services.intake.validation import Accepted

_EVENT_COLUMNS = (
    "source", "event_id", "family", "type", "subject_key", "health_trust",
    "occurred_at", "content_hash", "payload", "topic", "partition", "offset",
)  # fmt: skip


def _event_row(e: Accepted) -> tuple[Any, ...]:
    return (
        e.source,
        e.event_id,
        e.family,
        e.type,
        e.subject_key,
        e.health_trust,
        e.occurred_at,
        e.content_hash,
        e.payload_json,
        e.record.topic,
        e.record.partition,
        e.record.offset,
    )


async def insert_new_events(conn: asyncpg.Connection, events: Sequence[Accepted]) -> set[tuple[str, str]]:
    """Insert events the caller believes are new; returns the dedup keys that were.

    `COPY` first: it costs about half of an insert with a conflict clause, which `COPY`
    cannot have. Should one of them be stored after all (its key under another subject, or
    committed by another transaction meanwhile), the unique key refuses the `COPY`, its
    savepoint is rolled back, and the conflict-tolerant insert decides instead.
    """
    if not events:
        return set()
    try:
        async with conn.transaction():  # a savepoint within the caller's transaction
            await conn.copy_records_to_table(
                "inbound_events", columns=_EVENT_COLUMNS, records=[_event_row(e) for e in events]
            )
    except asyncpg.UniqueViolationError:
        return await insert_events(conn, events)
    return {e.dedup_key for e in events}


async def insert_events(conn: asyncpg.Connection, events: Sequence[Accepted]) -> set[tuple[str, str]]:
    """Insert events not seen before; returns the dedup keys that were new."""
    if not events:
        return set()
    rows = await conn.fetch(
        """
        INSERT INTO inbound_events (source, event_id, family, type, subject_key, health_trust,
                                    occurred_at, content_hash, payload, topic, partition, "offset")
        SELECT * FROM unnest($1::text[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[],
                             $7::timestamptz[], $8::bytea[], $9::json[], $10::text[], $11::int[], $12::bigint[])
        ON CONFLICT (source, event_id) DO NOTHING
        RETURNING source, event_id::text
        """,
        *(list(column) for column in zip(*map(_event_row, events), strict=True)),
    )
    return {(r["source"], r["event_id"]) for r in rows}


async def stored_hashes(
    conn: asyncpg.Connection, keys: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], bytes]:
    return {key: bytes(value) for key, value in (await _stored(conn, keys, "content_hash")).items()}


async def stored_payloads(
    conn: asyncpg.Connection, keys: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], dict[str, Any]]:
    """The stored payloads of these events (a conflict's: to say what differs)."""
    return await _stored(conn, keys, "payload")


async def _stored(
    conn: asyncpg.Connection, keys: Iterable[tuple[str, str]], column: Literal["content_hash", "payload"]
) -> dict[tuple[str, str], Any]:
    keys = list(keys)
    if not keys:
        return {}
    rows = await conn.fetch(
        f"""
        SELECT e.source, e.event_id::text AS event_id, e.{column} AS value
        FROM inbound_events e
        JOIN unnest($1::text[], $2::uuid[]) AS k(source, event_id)
          ON e.source = k.source AND e.event_id = k.event_id
        """,
        [k[0] for k in keys],
        [k[1] for k in keys],
    )
    return {(r["source"], r["event_id"]): r["value"] for r in rows}


async def payloads_by_subject(
    conn: asyncpg.Connection, subject_keys: Iterable[str]
) -> dict[str, list[dict[str, Any]]]:
    rows = await conn.fetch(
        "SELECT subject_key, payload FROM inbound_events WHERE subject_key = ANY($1::text[])",
        list(subject_keys),
    )
    found: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        found.setdefault(row["subject_key"], []).append(row["payload"])
    return found


async def closed_months(conn: asyncpg.Connection) -> set[Month]:
    rows = await conn.fetch("SELECT period FROM closed_periods")
    return {Month.of(r["period"]) for r in rows}


Side = tuple[str, str, str, str]  # municipality, health trust, category, payer role


@dataclass(frozen=True, slots=True)
class Booked:
    quantity: int
    amount_ore: int  # priced amounts only: held (unrated, not payable) units count as 0


async def booked_sums(
    conn: asyncpg.Connection, subject_keys: Iterable[str]
) -> dict[str, dict[tuple[Month, Side], Booked]]:
    """What has been settled per subject, and for each per closed month and side: the
    settled items plus the settled re-rating adjustments. A late fact is compared with this."""
    rows = await conn.fetch(
        """
        SELECT subject_key, month, municipality, health_trust, category, payer_role,
               sum(quantity)::int AS quantity, sum(amount)::bigint AS amount
        FROM (
            SELECT subject_key, service_month AS month, municipality, health_trust, category, payer_role,
                   quantity, coalesce(amount_ore, 0) AS amount
            FROM ledger_items
            WHERE subject_key = ANY($1::text[]) AND service_month IN (SELECT period FROM closed_periods)
            UNION ALL
            SELECT subject_key, corrects_month, municipality, health_trust, category, payer_role,
                   quantity_delta, amount_delta_ore
            FROM adjustments
            WHERE subject_key = ANY($1::text[]) AND statement_id IS NOT NULL AND dispute_id IS NULL
        ) booked
        GROUP BY subject_key, month, municipality, health_trust, category, payer_role
        """,
        list(subject_keys),
    )
    booked: dict[str, dict[tuple[Month, Side], Booked]] = {}
    for r in rows:
        side = (r["municipality"], r["health_trust"], r["category"], r["payer_role"])
        booked.setdefault(r["subject_key"], {})[(Month.of(r["month"]), side)] = Booked(
            r["quantity"], r["amount"]
        )
    return booked


@dataclass(frozen=True, slots=True)
class PendingAdjustment:
    subject_key: str
    subject_id: str
    corrects_month: Month
    side: Side
    quantity_delta: int
    amount_delta_ore: int
    cause: str
    caused_by: tuple[str, str] | None
    note: str | None
    items_now: tuple[LedgerItem, ...] = ()  # what the side now has in the month: settled + delta


def items_now_json(items: Sequence[LedgerItem]) -> str:
    """An adjustment's items as it stores them: what the adjustment's own columns do not
    say already (its subject, side and month are the items')."""
    return json.dumps(
        [
            {
                "first_day": item.first_day.isoformat(),
                "last_day": item.last_day.isoformat(),
                "quantity": item.quantity,
                "unit_price_ore": item.unit_price_ore,
                "amount_ore": item.amount_ore,
                "rule_id": item.rule_id,
                "not_payable_reason": item.not_payable_reason,
                "note": item.note,
            }
            for item in items
        ],
        separators=(",", ":"),
        ensure_ascii=False,
    )


def items_now_from_row(r: asyncpg.Record) -> tuple[LedgerItem, ...] | None:
    """The items stored with an adjustment row (`items_now_json`); None when it has none
    stored (a dispute's credit, or a row recorded before migration 0015)."""
    stored = r["items_now"]
    if stored is None:
        return None
    return tuple(
        LedgerItem(
            category=Category(r["category"]),
            subject_id=r["subject_id"],
            health_trust=r["health_trust"],
            municipality=r["municipality"],
            payer_role=PayerRole(r["payer_role"]),
            service_month=Month.of(r["corrects_month"]),
            first_day=date.fromisoformat(i["first_day"]),
            last_day=date.fromisoformat(i["last_day"]),
            quantity=i["quantity"],
            unit_price_ore=i["unit_price_ore"],
            amount_ore=i["amount_ore"],
            rule_id=i["rule_id"],
            not_payable_reason=i["not_payable_reason"],
            note=i["note"],
        )
        # Parsed already on the services' pools (their json codec); text on a plain connection.
        for i in (json.loads(stored) if isinstance(stored, str | bytes) else stored)
    )


async def pending_adjustment_causes(
    conn: asyncpg.Connection, subject_keys: Iterable[str]
) -> dict[tuple[str, Month, Side], tuple[str, tuple[str, str] | None]]:
    """The causes of pending adjustments, kept when a close re-rates without a new fact."""
    rows = await conn.fetch(
        """
        SELECT subject_key, corrects_month, municipality, health_trust, category, payer_role,
               cause, caused_by_source, caused_by_event_id::text AS caused_by_event_id
        FROM adjustments
        WHERE subject_key = ANY($1::text[]) AND statement_id IS NULL AND dispute_id IS NULL
        """,
        list(subject_keys),
    )
    return {
        (
            r["subject_key"],
            Month.of(r["corrects_month"]),
            (r["municipality"], r["health_trust"], r["category"], r["payer_role"]),
        ): (
            r["cause"],
            (r["caused_by_source"], r["caused_by_event_id"]) if r["caused_by_source"] else None,
        )
        for r in rows
    }


async def replace_pending_adjustments(
    conn: asyncpg.Connection, subject_keys: Sequence[str], adjustments: Sequence[PendingAdjustment]
) -> None:
    """Swap the pending re-rating adjustments of `subject_keys`: each re-rating states the
    whole difference again, so the newest one replaces the one before."""
    await conn.execute(
        "DELETE FROM adjustments WHERE subject_key = ANY($1::text[]) AND statement_id IS NULL AND dispute_id IS NULL",
        list(subject_keys),
    )
    if not adjustments:
        return
    await conn.executemany(
        """
        INSERT INTO adjustments (subject_key, corrects_month, category, subject_id, municipality, health_trust,
                                 payer_role, quantity_delta, amount_delta_ore, cause, caused_by_source,
                                 caused_by_event_id, note, items_now)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::uuid, $13, $14)
        """,
        [
            (
                a.subject_key,
                a.corrects_month.first_day,
                a.side[2],
                a.subject_id,
                a.side[0],
                a.side[1],
                a.side[3],
                a.quantity_delta,
                a.amount_delta_ore,
                a.cause,
                a.caused_by[0] if a.caused_by else None,
                a.caused_by[1] if a.caused_by else None,
                a.note,
                items_now_json(a.items_now),
            )
            for a in adjustments
        ],
    )


async def replace_unsettled_items(
    conn: asyncpg.Connection, subject_keys: Sequence[str], items: Sequence[tuple[str, int, LedgerItem]]
) -> None:
    """Swap the unsettled items of `subject_keys` for `items` (subject key, part, item).
    Settled rows, those of closed months, are never touched."""
    await conn.execute(
        "DELETE FROM ledger_items WHERE subject_key = ANY($1::text[]) "
        "AND service_month NOT IN (SELECT period FROM closed_periods)",
        list(subject_keys),
    )
    if not items:
        return
    await conn.copy_records_to_table(
        "ledger_items",
        columns=[
            "subject_key",
            "service_month",
            "part",
            "category",
            "subject_id",
            "health_trust",
            "municipality",
            "payer_role",
            "first_day",
            "last_day",
            "quantity",
            "unit_price_ore",
            "amount_ore",
            "rule_id",
            "open_ended",
            "not_payable_reason",
            "note",
        ],
        records=[
            (
                key,
                item.service_month.first_day,
                part,
                item.category.value,
                item.subject_id,
                item.health_trust,
                item.municipality,
                item.payer_role.value,
                item.first_day,
                item.last_day,
                item.quantity,
                item.unit_price_ore,
                item.amount_ore,
                item.rule_id,
                item.open_ended,
                item.not_payable_reason,
                item.note,
            )
            for key, part, item in items
        ],
    )


async def subjects_to_extend(
    conn: asyncpg.Connection, period: Month, *, closed_months_too: bool
) -> list[str]:
    """Subjects a close must re-rate: stays still running at their last rated day, and days
    held (unrated, not payable) up to the period in months not closed; in closed months too
    when `closed_months_too` (the tariffs changed since a close whose book was not kept,
    before migration 0012). Otherwise the changed rules' windows find the closed months'
    held days a change can price (subjects_priced_within), and only them: a closed month's
    held item stays unpriced in this table after an adjustment prices its days."""
    # The months not closed, looked up one by one in the held index (from the earliest held
    # item's month): filtering the index by month read every closed month's held and
    # not-payable items at every close, growing with the ledger (0.25-0.4 s on 1.2 million of
    # them in 60 closed months; 3 ms this way).
    rows = await conn.fetch(
        """
        SELECT subject_key FROM running_subjects
        UNION
        SELECT subject_key FROM ledger_items
        WHERE amount_ore IS NULL AND service_month = ANY(ARRAY(
            SELECT month::date FROM generate_series(
                date_trunc('month', (SELECT min(service_month) FROM ledger_items WHERE amount_ore IS NULL)),
                $1::date, interval '1 month'
            ) AS month
            WHERE $2 OR month::date NOT IN (SELECT period FROM closed_periods)
        ))
        """,
        period.first_day,
        closed_months_too,
    )
    return [r["subject_key"] for r in rows]


async def subjects_pending_without_items(conn: asyncpg.Connection) -> list[str]:
    """Subjects with a pending re-rating adjustment recorded before adjustments kept their
    items (migration 0015): re-rated by the next close, which restates the adjustment with
    its items and keeps its cause."""
    rows = await conn.fetch(
        "SELECT DISTINCT subject_key FROM adjustments "
        "WHERE statement_id IS NULL AND dispute_id IS NULL AND items_now IS NULL"
    )
    return [r["subject_key"] for r in rows]


# Subjects a window reaches by the fact the rule is looked up for, items or none: `{at}` is
# the instant the rule's day is taken from, widened by a day for the Oslo day of it.
_SUBJECTS_BY_EVENT = """
SELECT DISTINCT subject_key FROM inbound_events
WHERE {which} AND {at} >= $1::date - 1 AND ($2::date IS NULL OR {at} < $2::date + 1)
  AND (cardinality($3::text[]) = 0 OR {municipality_in})
  AND ($4::text IS NULL OR health_trust = $4)
"""
# A grace is looked up on the day of the notice and decides whether days are paid at all:
# an episode it kept from any payment has no item, and one notified on the window's last
# day has items only after it.
_NOTIFIED_EPISODES = _SUBJECTS_BY_EVENT.format(
    which="family = 'discharge_ready' AND type = 'municipality_notified'",
    at="occurred_at",
    municipality_in="payload->>'registered_municipality' = ANY($3::text[]) "
    "OR payload->>'staying_municipality' = ANY($3::text[])",
)
# An activity is priced on the day it ended; one with no share in force has no item.
_ENDED_ACTIVITIES = _SUBJECTS_BY_EVENT.format(
    which="family = 'activity' AND payload->>'ended_at' IS NOT NULL",
    at="(payload->>'ended_at')::timestamptz",
    municipality_in="payload->>'registered_municipality' = ANY($3::text[])",
)


async def subjects_priced_within(conn: asyncpg.Connection, windows: Sequence[PricedWindow]) -> list[str]:
    """Subjects a changed tariff book may price otherwise: those with items of the window's
    category on its days for its parties; for a grace, episodes notified on those days; for
    co-financing, activities that ended on them. Re-rating a subject that does not change
    books nothing."""
    found: set[str] = set()
    for w in windows:
        municipalities = sorted(w.municipalities)
        # Days of a closed month booked only by an adjustment (the subject's events came after
        # the month closed) have no item in ledger_items: such a subject is found by its
        # adjustments to the window's months, or a corrected rate never reached those days.
        rows = await conn.fetch(
            """
            SELECT subject_key FROM ledger_items
            WHERE category = $1 AND service_month >= date_trunc('month', $2::date)::date
              AND last_day >= $2 AND ($3::date IS NULL OR first_day < $3)
              AND (cardinality($4::text[]) = 0 OR municipality = ANY($4::text[]))
              AND ($5::text IS NULL OR health_trust = $5)
            UNION
            SELECT subject_key FROM adjustments
            WHERE dispute_id IS NULL AND category = $1
              AND corrects_month >= date_trunc('month', $2::date)::date
              AND ($3::date IS NULL OR corrects_month < $3)
              AND (cardinality($4::text[]) = 0 OR municipality = ANY($4::text[]))
              AND ($5::text IS NULL OR health_trust = $5)
            """,
            w.category.value,
            w.valid_from,
            w.valid_until,
            municipalities,
            w.health_trust,
        )
        found.update(r["subject_key"] for r in rows)
        if w.parameter is Parameter.DISCHARGE_READY_GRACE_HOURS:
            by_event: str | None = _NOTIFIED_EPISODES
        elif w.category is Category.ACTIVITY_CO_FINANCING:
            by_event = _ENDED_ACTIVITIES
        else:
            by_event = None
        if by_event is not None:
            rows = await conn.fetch(by_event, w.valid_from, w.valid_until, municipalities, w.health_trust)
            found.update(r["subject_key"] for r in rows)
    return sorted(found)


async def running_stays(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Stays whose end has not arrived (discharge-ready episodes and emergency-bed stays),
    longest running first: `subject_key`, `category`, `municipality` (of its latest item),
    `health_trust`, `since` (its first day on the ledger), `rated_through` (its last day rated
    so far: a close extends it to the month's end), `days_paid` and `amount_ore` (all ints;
    its items of every month, settled or not, as they stand in the ledger: what adjustments
    changed for closed months is on the adjustments). What `settlement pending --running` lists and the
    settlement service samples as gauges (probes.sample_running_stays): a stay whose end was
    lost is billed month after month until someone notices."""
    # Read through running_subjects (the stays a close extends, a few hundred nationally) and
    # the primary key of ledger_items, led by subject_key: never the whole ledger.
    rows: list[asyncpg.Record] = await conn.fetch(
        """
        SELECT i.subject_key, min(i.category) AS category,
               (array_agg(i.municipality ORDER BY i.last_day DESC))[1] AS municipality,
               min(i.health_trust) AS health_trust, min(i.first_day) AS since,
               max(i.last_day) AS rated_through,
               coalesce(sum(i.quantity) FILTER (WHERE i.amount_ore IS NOT NULL), 0)::bigint AS days_paid,
               coalesce(sum(i.amount_ore), 0)::bigint AS amount_ore  -- a sum of bigints is numeric
        FROM running_subjects r JOIN ledger_items i USING (subject_key)
        GROUP BY i.subject_key
        ORDER BY since, i.subject_key
        """
    )
    return rows


async def mark_running(conn: asyncpg.Connection, subject_keys: Sequence[str], running: Iterable[str]) -> None:
    """Of `subject_keys`, exactly `running` are still running after a re-rating."""
    await conn.execute("DELETE FROM running_subjects WHERE subject_key = ANY($1::text[])", list(subject_keys))
    await conn.execute(
        "INSERT INTO running_subjects SELECT unnest($1::text[]) ON CONFLICT DO NOTHING", sorted(set(running))
    )


def item_from_row(row: asyncpg.Record) -> LedgerItem:
    return LedgerItem(
        category=Category(row["category"]),
        subject_id=row["subject_id"],
        health_trust=row["health_trust"],
        municipality=row["municipality"],
        payer_role=PayerRole(row["payer_role"]),
        service_month=Month.of(row["service_month"]),
        first_day=row["first_day"],
        last_day=row["last_day"],
        quantity=row["quantity"],
        unit_price_ore=row["unit_price_ore"],
        amount_ore=row["amount_ore"],
        rule_id=row["rule_id"],
        open_ended=row["open_ended"],
        not_payable_reason=row["not_payable_reason"],
        note=row["note"],
    )
