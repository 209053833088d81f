"""Stays whose end has not arrived, as `settlement pending --running` lists them and the
settlement service samples them for its gauges: every close bills such a stay through its
month, so one whose end the hospital never sent is billed until someone notices."""

from __future__ import annotations

import asyncio
from datetime import date
from functools import partial

import pytest

from contracts.v1 import topics
from services.adapters.ledger_repository import running_stays
from services.domain.money import format_nok
from services.observability.metrics import SettlementMetrics, new_registry
from services.observability.probes import run_sampler, running_stays_sampler
from tests.integration.ledger_harness import Ledger, discharge_ready_of, event, pending_output, ready_from

pytestmark = pytest.mark.integration
TRUST, MUNICIPALITY = "983974724", "4624"  # no emergency-bed rate agreed: its days are held
DAY = 598_100  # the 2025 bed-day rate in øre
dr = discharge_ready_of(TRUST, MUNICIPALITY)
kad = partial(event, topics.EMERGENCY_BEDS, trust=TRUST, municipality=MUNICIPALITY)


ready = partial(ready_from, dr)


async def _sampled(ledger: Ledger, today: date) -> dict[str, tuple[float | None, float | None]]:
    """The gauges by category (stays, longest days) once the sampler has read the ledger."""
    registry = new_registry()
    metrics = SettlementMetrics(registry)
    categories = ("discharge_ready_bed_days", "emergency_bed_days")
    for category in categories:
        metrics.running(category, stays=-1, longest_days=-1)  # not a value it can sample
    stop = asyncio.Event()
    sampler = asyncio.create_task(
        run_sampler(ledger.pool, running_stays_sampler(metrics, 0.05, lambda: today), stop)
    )
    try:
        for _ in range(200):  # 10 s at most
            if all(
                registry.get_sample_value("samhandling_settlement_stays_running", {"category": c}) != -1
                for c in categories
            ):
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await sampler
    return {
        c: (
            registry.get_sample_value("samhandling_settlement_stays_running", {"category": c}),
            registry.get_sample_value("samhandling_settlement_stay_running_longest_days", {"category": c}),
        )
        for c in categories
    }


async def test_a_stay_without_its_end_is_listed_and_counted_until_the_end_arrives(
    database: str, ledger: Ledger
) -> None:
    await ledger.send(
        *ready("EP-RUNNING", "2025-03-10"),
        *ready("EP-ENDED", "2025-03-05"),
        dr("municipality_can_receive", "2025-03-08T09:00:00+01:00", episode_id="EP-ENDED"),
        kad("emergency_bed_admitted", "2025-04-02T10:00:00+02:00", stay_id="KAD-RUNNING"),
        kad("emergency_bed_admitted", "2025-04-03T10:00:00+02:00", stay_id="KAD-ENDED"),
        kad("emergency_bed_discharged", "2025-04-05T10:00:00+02:00", stay_id="KAD-ENDED"),
    )
    await ledger.close("2025-03")
    await ledger.close("2025-04")  # both running stays billed through April
    async with ledger.pool.acquire() as conn:
        stays = await running_stays(conn)

    fields = ("category", "municipality", "health_trust", "since", "rated_through", "days_paid", "amount_ore")
    assert [(s["subject_key"].rsplit(":", 1)[-1], *(s[f] for f in fields)) for s in stays] == [
        ("EP-RUNNING", "discharge_ready_bed_days", MUNICIPALITY, TRUST, date(2025, 3, 10), date(2025, 4, 30),
         22 + 30, (22 + 30) * DAY),
        ("KAD-RUNNING", "emergency_bed_days", MUNICIPALITY, TRUST, date(2025, 4, 2), date(2025, 4, 30), 0, 0),
    ]  # fmt: skip
    assert all(type(s["amount_ore"]) is int and type(s["days_paid"]) is int for s in stays)

    # 10 March to 7 June: 22 + 30 + 31 + 7 days; 2 April to 7 June: 29 + 31 + 7.
    assert await _sampled(ledger, date(2025, 6, 7)) == {
        "discharge_ready_bed_days": (1, 90),
        "emergency_bed_days": (1, 67),
    }
    assert await _sampled(ledger, date(2025, 3, 1)) == {
        "discharge_ready_bed_days": (1, 0),  # a clock behind the ledger: no negative age
        "emergency_bed_days": (1, 0),
    }

    text = await asyncio.to_thread(pending_output, database, "--running")
    assert "stays whose end has not arrived" in text
    [row] = [line for line in text.splitlines() if "EP-RUNNING" in line]
    assert "2025-03-10" in row and "2025-04-30" in row and format_nok((22 + 30) * DAY) in row
    assert "KAD-RUNNING" in text and "EP-ENDED" not in text and "KAD-ENDED" not in text
    plain = await asyncio.to_thread(pending_output, database)
    assert "stays whose end has not arrived" not in plain, "the table only when asked"
    assert "2 stays still running, the longest since 2025-03-10" in plain and "EP-RUNNING" in plain

    await ledger.send(
        dr("municipality_can_receive", "2025-05-20T09:00:00+02:00", episode_id="EP-RUNNING"),
        kad("emergency_bed_discharged", "2025-05-02T10:00:00+02:00", stay_id="KAD-RUNNING"),
    )
    assert await _sampled(ledger, date(2025, 6, 7)) == {
        "discharge_ready_bed_days": (0, 0),
        "emergency_bed_days": (0, 0),
    }
    assert "no stay is running" in await asyncio.to_thread(pending_output, database, "--running")
    assert "still running" not in await asyncio.to_thread(pending_output, database)
