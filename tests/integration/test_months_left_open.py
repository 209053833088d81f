"""Months left open before the latest closed one, as `settlement pending` lists them and the
settlement service samples them for its gauges: read month by month through the month
index, they are what a scan of the whole ledger gave. And what `settlement pending --unrated`
adds: the days held for want of a tariff."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import date

import asyncpg
import pytest

from services.adapters.statement_repository import held_unrated, months_left_open
from services.domain.money import format_nok
from services.observability.metrics import SettlementMetrics, new_registry
from services.observability.probes import months_left_open_sampler, run_sampler
from tests.integration.ledger_harness import Ledger, discharge_ready_of, pending_output

pytestmark = pytest.mark.integration
TRUST, MUNICIPALITY = "983974724", "4624"
DAY = 598_100  # the 2025 bed-day rate in øre
dr = discharge_ready_of(TRUST, MUNICIPALITY)

# The definition: every item of a month before the latest closed that is not closed itself.
# It reads the whole ledger; months_left_open must give the same rows without doing so.
SCAN = """
    SELECT service_month, count(*) AS items,
           count(DISTINCT (municipality, health_trust)) AS pairs,
           coalesce(sum(amount_ore), 0) AS amount_ore
    FROM ledger_items
    WHERE service_month < (SELECT max(period) FROM closed_periods)
      AND service_month NOT IN (SELECT period FROM closed_periods)
    GROUP BY service_month ORDER BY service_month
"""


async def _items(
    conn: asyncpg.Connection, month: str, pairs: int, per_pair: int, *, priced: bool = True
) -> None:
    """`per_pair` items of `month` for each of `pairs` pairs (which share municipalities and
    trusts: a pair is both); every third unpriced, or all of them unless `priced`."""
    await conn.execute(
        """
        INSERT INTO ledger_items (subject_key, service_month, part, category, subject_id, health_trust,
            municipality, payer_role, first_day, last_day, quantity, unit_price_ore, amount_ore)
        SELECT 'left-open:' || $1::date || ':' || p || ':' || i, $1::date, 0, 'discharge_ready_bed_days',
               'EP-' || p || '-' || i, '98397472' || p % 2, (4600 + p / 2)::text, 'municipality', $1::date, $1::date,
               1, price, price
        FROM generate_series(1, $2) AS p, generate_series(1, $3) AS i,
             LATERAL (SELECT CASE WHEN $4 AND i % 3 <> 0 THEN 598100 + p END AS price) AS priced
        """,
        date.fromisoformat(f"{month}-01"),
        pairs,
        per_pair,
        priced,
    )


async def _close(conn: asyncpg.Connection, *months: str) -> None:
    await conn.executemany(
        "INSERT INTO closed_periods (period) VALUES ($1)", [(date.fromisoformat(f"{m}-01"),) for m in months]
    )


async def test_the_months_left_open_are_the_scans_whatever_was_closed_in_whatever_order(
    ledger: Ledger,
) -> None:
    async with ledger.pool.acquire() as conn:

        async def both() -> list[tuple[object, ...]]:
            rows = await months_left_open(conn)
            found = [tuple(r) for r in rows]
            assert found == [tuple(r) for r in await conn.fetch(SCAN)]
            # `settlement pending` reads the columns by name
            assert all(list(r.keys()) == ["service_month", "items", "pairs", "amount_ore"] for r in rows)
            return found

        assert await both() == [], "an empty ledger"
        await _items(conn, "2014-06", pairs=1, per_pair=1)  # a late event, years back
        await _items(conn, "2024-11", pairs=3, per_pair=4)
        await _items(conn, "2024-12", pairs=2, per_pair=2, priced=False)
        await _items(conn, "2025-01", pairs=4, per_pair=3)
        await _items(conn, "2025-03", pairs=2, per_pair=5)
        assert await both() == [], "nothing closed: nothing is before the latest closed month"

        await _close(conn, "2025-01")
        assert [(str(r[0]), r[1], r[2]) for r in await both()] == [
            ("2014-06-01", 1, 1),
            ("2024-11-01", 12, 3),
            ("2024-12-01", 4, 2),
        ]
        assert [r[3] for r in await both()][2] == 0, "a month of unpriced items prices nothing"

        await _close(conn, "2025-04", "2024-11")  # February and March skipped; November out of order
        assert [(str(r[0]), r[1]) for r in await both()] == [
            ("2014-06-01", 1),
            ("2024-12-01", 4),
            ("2025-03-01", 10),  # February has no items: not listed
        ]

        await _close(conn, "2014-06", "2024-12", "2025-02", "2025-03")
        assert await both() == []


async def test_the_months_left_open_are_read_through_the_month_index_not_by_scanning_the_ledger(
    ledger: Ledger,
) -> None:
    # A year of items closed, one month left open: the scan read every item of the ledger
    # at every sample, though nearly all are of closed months.
    async with ledger.pool.acquire() as conn:
        for month in range(1, 13):
            await _items(conn, f"2024-{month:02}", pairs=20, per_pair=100)
        await _close(conn, *(f"2024-{month:02}" for month in range(1, 13) if month != 6))
        await conn.execute("ANALYZE ledger_items")
        scans = "SELECT seq_scan, idx_scan FROM pg_stat_xact_user_tables WHERE relname = 'ledger_items'"
        async with conn.transaction():  # pg_stat_xact_*: the scans not yet reported, this one's among them
            before = await conn.fetchrow(scans)
            left_open = await months_left_open(conn)
            after = await conn.fetchrow(scans)

        assert [(str(r["service_month"]), r["items"]) for r in left_open] == [("2024-06-01", 2000)]
        assert after["seq_scan"] == before["seq_scan"], "the ledger was scanned"
        assert after["idx_scan"] > before["idx_scan"]


def _days_ready(episode_id: str, month: str, first: int, days: int) -> list[tuple[str, dict]]:
    """An episode discharge-ready from the `first` of `month`, `days` payable days in it."""
    at = f"{month}-{first:02}T09:00:00+01:00"
    return [
        dr("admission_notified", f"{month}-01T10:00:00+01:00", episode_id=episode_id),
        dr("declared_ready", at, episode_id=episode_id),
        dr("municipality_notified", at, episode_id=episode_id),
        dr("municipality_can_receive", f"{month}-{first + days:02}T09:00:00+01:00", episode_id=episode_id),
    ]


async def _sampled(ledger: Ledger) -> tuple[float | None, ...]:
    """What the settlement service's gauges read once its sampler has read the ledger."""
    registry = new_registry()
    metrics = SettlementMetrics(registry)
    metrics.left_open(months=-1, items=-1, amount_ore=-1)  # not a value it can sample
    names = (
        "samhandling_settlement_months_left_open",
        "samhandling_settlement_items_left_open",
        "samhandling_settlement_amount_left_open_ore",
    )
    stop = asyncio.Event()
    sampler = asyncio.create_task(run_sampler(ledger.pool, months_left_open_sampler(metrics, 0.05), stop))
    try:
        for _ in range(200):  # 10 s at most
            if registry.get_sample_value(names[0]) != -1:
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await sampler
    return tuple(registry.get_sample_value(name) for name in names)


async def test_the_settlement_gauges_count_the_months_left_open_by_closes_out_of_order_until_none_is(
    ledger: Ledger,
) -> None:
    await ledger.send(
        *_days_ready("EP-GAUGE-JAN", "2025-01", first=11, days=10),
        *_days_ready("EP-GAUGE-FEB", "2025-02", first=10, days=2),
        *_days_ready("EP-GAUGE-FEB-2", "2025-02", first=20, days=3),
        *_days_ready("EP-GAUGE-MAR", "2025-03", first=3, days=4),
    )
    assert await _sampled(ledger) == (0, 0, 0), "nothing closed: nothing is left behind"

    await ledger.close("2025-03")  # January and February skipped
    assert await _sampled(ledger) == (2, 3, 15 * DAY)

    await ledger.close("2025-01")  # out of order: settles January's items only
    assert await _sampled(ledger) == (1, 2, 5 * DAY)

    await ledger.close("2025-02")
    assert await _sampled(ledger) == (0, 0, 0)


async def test_settlement_pending_lists_a_month_left_open_with_what_it_prices(
    database: str, ledger: Ledger
) -> None:
    # What the MonthsLeftOpen alert's runbook runs: it ended in "ValueError: invalid format
    # string" on the real ledger (PostgreSQL's sum of a bigint is numeric: a Decimal, which
    # format_nok cannot write), so the months it is there to show were never shown.
    async with ledger.pool.acquire() as conn:
        await _items(conn, "2025-02", pairs=2, per_pair=3)
        await _close(conn, "2025-03")
        (month,) = await months_left_open(conn)
    assert type(month["amount_ore"]) is int

    text = await asyncio.to_thread(pending_output, database)
    assert "months left open before the latest closed" in text
    assert format_nok(month["amount_ore"]) in text and "settlement close 2025-02" in text


async def test_settlement_pending_unrated_counts_the_days_held_for_want_of_a_tariff(
    database: str, ledger: Ledger
) -> None:
    # What NationalRateMissing's runbook looks at: how much waits for the year's rate. Two
    # pairs of 2026 with every item unpriced (2 x 3 items a month, in January and February,
    # January closed), one 2025 item unpriced, priced items and a not-payable one left out.
    async with ledger.pool.acquire() as conn:
        await _items(conn, "2026-01", pairs=2, per_pair=3, priced=False)
        await _items(conn, "2026-02", pairs=2, per_pair=3, priced=False)
        await _items(conn, "2025-06", pairs=1, per_pair=3)  # one of three unpriced
        await _items(conn, "2025-07", pairs=1, per_pair=1, priced=False)
        await conn.execute(
            "UPDATE ledger_items SET not_payable_reason = 'no agreed rate' WHERE service_month = '2025-07-01'"
        )
        await _close(conn, "2026-01")
        (held_2025, held_2026) = await held_unrated(conn)

    fields = ("year", "items", "quantity", "pairs", "closed", "first_day", "last_day")
    assert [tuple(row[f] for f in fields) for row in (held_2025, held_2026)] == [
        (2025, 1, 1, 1, 0, date(2025, 6, 1), date(2025, 6, 1)),
        (2026, 12, 12, 2, 6, date(2026, 1, 1), date(2026, 2, 1)),
    ]

    text = await asyncio.to_thread(pending_output, database, "--unrated")
    assert "held as unrated" in text
    assert "2026-01-01 to 2026-02-01" in text and "2025-06-01 to 2025-06-01" in text
    assert "held as unrated" not in await asyncio.to_thread(pending_output, database), "only when asked"

    # A closed month's items are never rewritten: once a re-rating has priced a held item
    # (the rate added), the item in ledger_items is still unpriced, and only the adjustment's
    # items_now says it is not held any more. An episode sent after its month closed, with no
    # rate, is held in an adjustment's items_now alone. A dispute's credit says nothing of it.
    def now(amount: int | None, first: str, last: str, quantity: int) -> str:
        return json.dumps(
            [{"first_day": first, "last_day": last, "quantity": quantity, "unit_price_ore": amount and 620_000,
              "amount_ore": amount, "rule_id": None, "not_payable_reason": None, "note": None}]
        )  # fmt: skip

    async with ledger.pool.acquire() as conn:
        adjust = """
            INSERT INTO adjustments (subject_key, corrects_month, category, subject_id, municipality,
                health_trust, payer_role, quantity_delta, amount_delta_ore, cause, dispute_id, items_now)
            VALUES ($1, '2026-01-01', 'discharge_ready_bed_days', $2, $3, $4, 'municipality', $5, $6, $7, $8, $9)
        """
        priced = now(620_000, "2026-01-01", "2026-01-01", 1)
        await conn.execute(adjust, "left-open:2026-01-01:1:1", "EP-1-1", "4600", "983974721", 0, 620_000,
                           "tariff", None, priced)  # fmt: skip
        late = now(None, "2026-01-05", "2026-01-07", 3)
        await conn.execute(adjust, "late:EP-LATE", "EP-LATE", "4700", "974749025", 3, 0, "event", None, late)
        await conn.execute(adjust, "left-open:2026-01-01:1:2", "EP-1-2", "4600", "983974721", 0, -620_000,
                           "dispute", uuid.uuid4(), None)  # fmt: skip
        (_, held_2026) = await held_unrated(conn)

    assert tuple(held_2026[f] for f in fields) == (2026, 12, 14, 3, 6, date(2026, 1, 1), date(2026, 2, 1))
