"""Property: however a pair's events arrive and wherever the months are closed between
them, everything settled adds up to what a single pricing of the final facts gives."""

from __future__ import annotations

import asyncio
import os
from functools import partial

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.v1 import topics
from services.adapters.tariff_files import load_tariffs
from services.domain.calendar import Month
from services.simulator.hospital import Published
from services.tariffs import DEFAULT_TARIFF_DIR, EXAMPLE_TARIFF_DIR
from tests.integration.ledger_harness import Ledger, event, inpatient_activity, oslo_at
from tests.oracle import expected_items

pytestmark = pytest.mark.integration
TRUST = "983974724"
MONTHS = ("2025-01", "2025-02", "2025-03")
FLUSH = "2025-04"  # closed last: books what the final deliveries changed in closed months
TARIFFS = load_tariffs(DEFAULT_TARIFF_DIR, EXAMPLE_TARIFF_DIR)


@st.composite
def histories(draw: st.DrawFn) -> list[tuple[str, dict]]:
    """Episodes and emergency-bed stays for Bergen (4601, which has an emergency-bed rate)
    and Bjørnafjorden (4624, whose activity the example trial prices), within Q1 2025."""
    events: list[tuple[str, dict]] = []
    hour = st.integers(7, 21)
    for n in range(draw(st.integers(1, 4))):
        municipality = draw(st.sampled_from(["4601", "4624"]))
        dr = partial(
            event,
            topics.DISCHARGE_READY,
            trust=TRUST,
            registered_municipality=municipality,
            staying_municipality=municipality,
            episode_id=f"EP-{n}",
        )
        admitted = draw(st.integers(0, 80))
        ready = admitted + draw(st.integers(0, 4))
        notified = ready + draw(st.integers(0, 2))
        events += [
            dr("admission_notified", oslo_at(admitted, draw(hour))),
            dr("declared_ready", oslo_at(ready, draw(hour))),
            dr("municipality_notified", oslo_at(notified, draw(hour))),
        ]
        ending = draw(st.sampled_from(["open", "municipality_can_receive", "discharged", "ready_withdrawn"]))
        if ending != "open":
            end = min(89, notified + draw(st.integers(0, 40)))
            extra = {"destination": "home"} if ending == "discharged" else {}
            events.append(dr(ending, oslo_at(end, draw(hour)), **extra))
            if ending == "ready_withdrawn" and draw(st.booleans()) and end < 85:
                again = end + draw(st.integers(1, 3))
                events += [
                    dr("declared_ready", oslo_at(again, 9)),
                    dr("municipality_notified", oslo_at(again, 10)),
                ]
    for n in range(draw(st.integers(0, 3))):
        kad = partial(event, topics.EMERGENCY_BEDS, trust=TRUST, municipality="4601", stay_id=f"KAD-{n}")
        admitted = draw(st.integers(0, 85))
        events.append(kad("emergency_bed_admitted", oslo_at(admitted, draw(hour))))
        if draw(st.booleans()):
            events.append(
                kad("emergency_bed_discharged", oslo_at(admitted + draw(st.integers(0, 4)), draw(hour)))
            )
    for n in range(draw(st.integers(0, 3))):
        act = partial(
            event, topics.ACTIVITY, trust=TRUST, registered_municipality="4624", activity_id=f"ACT-{n}"
        )
        ended = draw(st.integers(0, 80))

        def facts(points: int, ended: int = ended) -> dict:
            return inpatient_activity(f"{points / 100:.2f}", oslo_at(ended, 8), oslo_at(ended, 18))

        events.append(act("activity_recorded", oslo_at(ended, 20), **facts(draw(st.integers(10, 600)))))
        follow = draw(st.sampled_from(["none", "activity_corrected", "activity_cancelled"]))
        if follow != "none":
            later = ended + draw(st.integers(1, 8))
            events.append(
                act(
                    follow,
                    oslo_at(later, 12),
                    **(facts(draw(st.integers(10, 600))) if follow == "activity_corrected" else {}),
                )
            )
    return events


def _signed(payer_role: str, amount: int | None) -> int:
    return (amount or 0) if payer_role == "municipality" else -(amount or 0)


async def _run(
    database_url: str, events: list[tuple[str, dict]], batches: list[int], closes: list[int]
) -> tuple[dict, dict]:
    ledger = await Ledger.fresh(database_url, TARIFFS)
    try:
        position, closed = 0, 0
        for index, size in enumerate(batches):
            if position < len(events):
                await ledger.send(*events[position : position + size])
                position += size
            while closed < len(MONTHS) and closes[closed] <= index:
                await ledger.close(MONTHS[closed])
                closed += 1
        if position < len(events):
            await ledger.send(*events[position:])
        for month in MONTHS[closed:]:
            await ledger.close(month)
        await ledger.close(FLUSH)
        settled: dict[tuple[str, str], int] = {}
        for _, statement in await ledger.published():
            if statement["recipient"]["role"] != "municipality":
                continue
            pair = (statement["recipient"]["id"], statement["counterparty"]["id"])
            settled[pair] = (
                settled.get(pair, 0)
                + sum(_signed(line["payer_role"], line["amount_ore"]) for line in statement["lines"])
                + sum(_signed(a["payer_role"], a["amount_delta_ore"]) for a in statement["adjustments"])
            )
    finally:
        await ledger.pool.close()
    expected: dict[tuple[str, str], int] = {}
    flush = Month.parse(FLUSH)
    published = [Published(topic, "k", value) for topic, value in events]
    for item in expected_items(published, TARIFFS, flush.last_day):
        if item.service_month <= flush:
            pair = (item.municipality, item.health_trust)
            expected[pair] = expected.get(pair, 0) + _signed(item.payer_role.value, item.amount_ore)
    return {k: v for k, v in settled.items() if v}, {k: v for k, v in expected.items() if v}


@settings(
    max_examples=int(os.environ.get("PROPERTY_EXAMPLES", "30")),
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(data=st.data())
def test_everything_settled_equals_one_pricing_of_the_final_facts(database: str, data: st.DataObject) -> None:
    history = data.draw(histories())
    order = data.draw(st.permutations(history))
    batches = data.draw(st.lists(st.integers(1, 6), min_size=1, max_size=12))
    closes = sorted(
        data.draw(st.lists(st.integers(0, len(batches)), min_size=len(MONTHS), max_size=len(MONTHS)))
    )
    settled, expected = asyncio.run(_run(database, list(order), batches, closes))
    assert settled == expected
