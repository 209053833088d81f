"""SQL for events, ledger items and late changes. Batch-shaped: one round trip per step,
whatever the batch size."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from services.domain.calendar import Month
from services.domain.ledger import Category, LedgerItem, PayerRole
from services.intake.validation import Accepted


async def insert_events(conn: asyncpg.Connection, events: Sequence[Accepted]) -> set[tuple[str, str]]:
    """Insert events not seen before; returns the dedup keys that were new."""
    if not events:
        return set()
    rows = await conn.fetch(
        """
        INSERT INTO inbound_events (source, event_id, family, type, subject_key, health_trust,
                                    occurred_at, content_hash, payload, topic, partition, "offset")
        SELECT * FROM unnest($1::text[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[],
                             $7::timestamptz[], $8::bytea[], $9::jsonb[], $10::text[], $11::int[], $12::bigint[])
        ON CONFLICT (source, event_id) DO NOTHING
        RETURNING source, event_id::text
        """,
        [e.source for e in events],
        [e.event_id for e in events],
        [e.family for e in events],
        [e.type for e in events],
        [e.subject_key for e in events],
        [e.health_trust for e in events],
        [e.occurred_at for e in events],
        [e.content_hash for e in events],
        [e.payload for e in events],
        [e.record.topic for e in events],
        [e.record.partition for e in events],
        [e.record.offset for e in events],
    )
    return {(r["source"], r["event_id"]) for r in rows}


async def stored_hashes(
    conn: asyncpg.Connection, keys: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], bytes]:
    keys = list(keys)
    if not keys:
        return {}
    rows = await conn.fetch(
        """
        SELECT e.source, e.event_id::text AS event_id, e.content_hash
        FROM inbound_events e
        JOIN unnest($1::text[], $2::uuid[]) AS k(source, event_id)
          ON e.source = k.source AND e.event_id = k.event_id
        """,
        [k[0] for k in keys],
        [k[1] for k in keys],
    )
    return {(r["source"], r["event_id"]): bytes(r["content_hash"]) for r in rows}


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


@dataclass(frozen=True, slots=True)
class SettledSum:
    quantity: int
    amount_ore: int | None
    municipality: str
    health_trust: str


async def settled_sums(
    conn: asyncpg.Connection, subject_keys: Iterable[str]
) -> dict[tuple[str, Month], SettledSum]:
    """What was settled per subject and month: the baseline a late event is compared to."""
    rows = await conn.fetch(
        """
        SELECT subject_key, service_month, sum(quantity)::int AS quantity,
               CASE WHEN bool_and(amount_ore IS NOT NULL) THEN sum(amount_ore)::bigint END AS amount_ore,
               min(municipality) AS municipality, min(health_trust) AS health_trust
        FROM ledger_items
        WHERE subject_key = ANY($1::text[]) AND statement_id IS NOT NULL
        GROUP BY subject_key, service_month
        """,
        list(subject_keys),
    )
    return {
        (r["subject_key"], Month.of(r["service_month"])): SettledSum(
            r["quantity"], r["amount_ore"], r["municipality"], r["health_trust"]
        )
        for r in rows
    }


async def replace_unsettled_items(
    conn: asyncpg.Connection, subject_keys: Sequence[str], items: Sequence[tuple[str, int, LedgerItem]]
) -> None:
    """Swap the unsettled items of `subject_keys` for `items` (subject key, part, item).
    Settled rows are never touched."""
    await conn.execute(
        "DELETE FROM ledger_items WHERE subject_key = ANY($1::text[]) AND statement_id IS NULL",
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


@dataclass(frozen=True, slots=True)
class LateChange:
    subject_key: str
    service_month: Month
    municipality: str
    health_trust: str
    settled: SettledSum | None
    new_quantity: int
    new_amount_ore: int | None
    caused_by: tuple[str, str]


async def insert_late_changes(conn: asyncpg.Connection, changes: Sequence[LateChange]) -> None:
    if not changes:
        return
    await conn.executemany(
        """
        INSERT INTO late_changes (subject_key, service_month, municipality, health_trust,
            settled_quantity, settled_amount_ore, new_quantity, new_amount_ore,
            caused_by_source, caused_by_event_id)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::uuid)
        """,
        [
            (
                c.subject_key,
                c.service_month.first_day,
                c.municipality,
                c.health_trust,
                c.settled.quantity if c.settled else 0,
                c.settled.amount_ore if c.settled else 0,
                c.new_quantity,
                c.new_amount_ore,
                c.caused_by[0],
                c.caused_by[1],
            )
            for c in changes
        ],
    )


async def subjects_to_extend(conn: asyncpg.Connection, period: Month) -> list[str]:
    """Subjects still running at their last rated day, or holding unrated days up to the
    period: a close re-rates them so the month is complete and priced with today's tariffs."""
    rows = await conn.fetch(
        """
        SELECT DISTINCT subject_key FROM ledger_items
        WHERE (open_ended AND service_month <= $1)
           OR (statement_id IS NULL AND amount_ore IS NULL AND service_month <= $1)
        """,
        period.first_day,
    )
    return [r["subject_key"] for r in rows]


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
