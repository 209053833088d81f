"""A month close at national scale: about a million priced items across every
municipality-trust pair, in a month of its own.

The items are COPYed straight into `ledger_items` (the pipeline could not produce a
million in a benchmark's time), shaped like the rules' output: mostly co-financed
activities (one item each, its own price and DRG note), some discharge-ready bed-day runs
at the national rate. A few emergency-bed stays in pairs with no agreed rate come from
real events through the intake service layer: their days are held (not payable) and a
close re-rates held days from their facts, as it would in operation.

The month is after the pipeline's, and is closed after it, so the pipeline's figures are
untouched; the close does extend the pipeline's stays still running, as it would.

Two such months are closed, one after the other. The first close of a new server paid for
its newness: its 330 MB of statements went into shared memory the server had never used
(a page fault per page, about 0.9 s of a 5 s close, measured against a server whose shared
memory was used before), and the month was the only one in its table. A deployment's
close finds neither: the second is the one measured against the target.
"""

from __future__ import annotations

import contextlib
import json
import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from bench.stream import pairs
from contracts.v1 import topics
from services.adapters.postgres import create_pool
from services.domain.calendar import Month
from services.domain.municipalities import Registry
from services.domain.tariffs import TariffBook
from services.intake.pseudonym import Pseudonymiser
from services.intake.service import IntakeDeps, ingest
from services.intake.validation import RawRecord
from services.settlement.service import close_period
from services.simulator.hospital import Hospital

FIRST_CLOSE_PERIOD = Month(2025, 11)  # the first 1 M-item close of the new server
CLOSE_PERIOD = Month(2025, 12)  # the next: as a deployment closes a month
ACTIVITY_RULE = (
    "example.trial.activity-2025.share+example.trial.activity-2025.cap+example.trial.activity-2025.unit-price"
)
BED_DAY_RULE = "national.discharge-ready.2025"
BED_DAY_ORE = 598_100
COLUMNS = (
    "subject_key", "service_month", "part", "category", "subject_id", "health_trust", "municipality",
    "payer_role", "first_day", "last_day", "quantity", "unit_price_ore", "amount_ore", "rule_id",
    "open_ended", "not_payable_reason", "note",
)  # fmt: skip


@dataclass(frozen=True)
class CloseFigures:
    seconds: float
    items: int
    statements: int
    largest_message_bytes: int


def ledger_rows(period: Month, count: int, seed: int) -> list[tuple[Any, ...]]:
    """`count` priced items spread evenly over every pair: 19 in 20 an activity."""
    rng = random.Random(seed)
    everyone = pairs(period)
    first = period.first_day
    days = (period.last_day - first).days + 1
    rows: list[tuple[Any, ...]] = []
    for n in range(count):
        trust, municipality = everyone[n % len(everyone)]
        if n % 20:
            subject = f"ACT-{period.year}{period.month:02d}-{n:07d}"
            day = first + timedelta(days=rng.randrange(days))
            points = rng.randrange(50, 4000)
            amount = round(points * 5_224_800 * 0.10 / 1000)  # share x points x unit price, in øre
            rows.append(
                (f"activity:{trust}:{subject}", first, 0, "activity_co_financing", subject, trust, municipality,
                 "municipality", day, day, 1, amount, amount, ACTIVITY_RULE, False, None,
                 f"{points / 1000:.3f} DRG points")
            )  # fmt: skip
        else:
            subject = f"EP-{period.year}{period.month:02d}-{n:07d}"
            start = rng.randrange(days)
            length = min(rng.randrange(1, 15), days - start)
            rows.append(
                (f"discharge_ready:{trust}:{subject}", first, 0, "discharge_ready_bed_days", subject, trust,
                 municipality, "municipality", first + timedelta(days=start),
                 first + timedelta(days=start + length - 1), length, BED_DAY_ORE, BED_DAY_ORE * length,
                 BED_DAY_RULE, False, None, None)
            )  # fmt: skip
    return rows


async def held_stays(
    pool: asyncpg.Pool, period: Month, stays: int, seed: int, tariffs: TariffBook, registry: Registry
) -> None:
    """Emergency-bed stays in pairs with no agreed rate, through the intake service layer."""
    hospital = Hospital(period, seed=seed, source_prefix="bench-close")
    everyone = pairs(period)
    events = [e for n in range(stays) for e in hospital.emergency_stay(*everyone[(n * 7) % len(everyone)])]
    records = [
        RawRecord(e.topic, 0, offset, e.key.encode(), json.dumps(e.value).encode())
        for offset, e in enumerate(events)
    ]
    assert all(r.topic == topics.EMERGENCY_BEDS for r in records)
    deps = IntakeDeps(pool, tariffs, Pseudonymiser(b"bench-close-pseudonym-key-000000"), _now, registry)
    result = await ingest(records, deps)
    if result.rejected:
        raise RuntimeError(f"the close benchmark's own events were rejected: {result.rejected}")


async def close_at_scale(
    database_url: str, items: int, seed: int, tariffs: TariffBook, registry: Registry, period: Month
) -> CloseFigures:
    """Seed `items` priced items (and a few held stays) into `period`, then time its close."""
    pool = await create_pool(database_url, max_size=3)  # the close and its two readers
    try:
        async with pool.acquire() as conn:
            await conn.copy_records_to_table(
                "ledger_items", records=ledger_rows(period, items, seed), columns=COLUMNS
            )
        await held_stays(pool, period, max(1, items // 2000), seed, tariffs, registry)
        async with pool.acquire() as conn:
            await conn.execute("VACUUM ANALYZE ledger_items")
            # In operation the month's items were written days or weeks before its close,
            # checkpoints in between: the close then writes each page it changes in full.
            with contextlib.suppress(asyncpg.InsufficientPrivilegeError):
                await conn.execute("CHECKPOINT")
            before = int(await conn.fetchval("SELECT coalesce(max(id), 0) FROM outbox"))
        started = time.perf_counter()
        result = await close_period(
            pool, tariffs, period, command_id=uuid.uuid4(), clock=_now, municipalities=registry
        )
        seconds = time.perf_counter() - started
        async with pool.acquire() as conn:
            # A statement's copies are made from its body when published; the outbox keeps
            # each copy's size.
            largest = await conn.fetchval(
                "SELECT coalesce(max(coalesce(octet_length(payload), copy_bytes)), 0) FROM outbox "
                "WHERE id > $1 AND topic = $2",
                before,
                topics.SETTLEMENTS,
            )
        return CloseFigures(seconds, result.items, result.statements, int(largest))
    finally:
        await pool.close()


def _now() -> datetime:
    return datetime.now(UTC)
