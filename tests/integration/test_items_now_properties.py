"""Property: however late events, closes and a tariff correction interleave, every `event` or
`tariff` adjustment can be checked from the statements alone (domain.md section 6): the items
the corrected month's statement settled for its subject and payer, plus the differences of the
`event` and `tariff` adjustments to them published since, this one included, are its items now
(`items_now`), in days and to the øre.

Each example drives a fresh ledger (ledger_harness) through random but valid steps: the events
of a few discharge-ready episodes, emergency-bed stays and co-financed activities of two pairs
(the same trust), each sent before its month closes or, late, before a later close (a stay
shortened, lengthened, withdrawn and declared ready again, or priced only by an adjustment; an
activity recorded, corrected or cancelled after its month closed); the months closed in order;
perhaps a corrected rate from one close on (adjustments caused by the tariff); and perhaps a
dispute of what a statement shows, resolved or not (a credit outside the sum: its `items_now`
is null). After every close, over every statement published so far, as the relay publishes it
(the outbox's bytes, parsed):

1. per pair, subject, corrected month and payer, the sum above holds at each adjustment, and
   every item of an adjustment's `items_now` is of its subject, category and month;
2. what stands (the latest adjustment's `items_now`, or else the month's own items) is what
   one rating of the facts stored so far gives for every closed month: in days and øre always
   (no difference is left unbooked), field by field where the latest close gave it. [design] A
   re-rating that changes neither days nor øre books nothing, so older items may keep details
   the facts no longer give (a not-payable reason, a run of days moved within the month);
3. both parties' copies of a statement are the same but for `recipient` and `counterparty`,
   and the chain verifies as published and in the database (`settlement verify`).

How held items count: `days` of every item, priced, unrated or not payable, since a held day is
booked with its quantity; `amount_ore` null counts 0, since a held day is booked at 0 (the
contract's `items_now` description). Here not-payable days come from emergency-bed stays of
Bjørnafjorden (no agreed rate) and stays whose discharge is timed before their admission.

`ITEMS_NOW_PROPERTY_EXAMPLES` sets the number of examples (25), `ITEMS_NOW_PROPERTY_SHRINK=1`
shrinks a failing one (slow: each step is a real close). Without it the failure shows the
example's steps as drawn."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import replace
from decimal import Decimal
from functools import partial
from typing import Any

import pytest
from hypothesis import given, note
from hypothesis import strategies as st

from contracts.v1 import topics
from services.adapters.ledger_repository import payloads_by_subject
from services.adapters.tariff_files import load_tariffs
from services.domain.calendar import Month
from services.domain.tariffs import TariffBook, build_book
from services.rating.service import rate_subject
from services.settlement.disputes import DisputeRefused
from services.settlement.statements import wire_item
from services.settlement.verification import verify_database, verify_published
from services.tariffs import DEFAULT_TARIFF_DIR, EXAMPLE_TARIFF_DIR
from tests.integration.ledger_harness import (
    PAYER_OF,
    Ledger,
    discharge_ready_of,
    draw_discharge_ready_episode,
    event,
    inpatient_activity,
    ledger_property_settings,
    oslo_at,
)

pytestmark = pytest.mark.integration
TRUST = "983974724"  # Haukeland
BERGEN, BJORNAFJORDEN = "4601", "4624"  # Bergen has an emergency-bed rate; the trial prices 4624's activity
MUNICIPALITIES = (BJORNAFJORDEN, BERGEN)
CLOSES = ("2025-01", "2025-02", "2025-03", "2025-04")  # the last books what came after March closed
TARIFFS = load_tariffs(DEFAULT_TARIFF_DIR, EXAMPLE_TARIFF_DIR)
# Rates corrected from some close on: odd øre, so that a price is checked, not only the days.
CORRECTIONS = {
    "national.discharge-ready.2025": Decimal("6012.37"),
    "example.agreement.4601-bergen.emergency-bed": Decimal("3333.33"),
    "example.trial.activity-2025.unit-price": Decimal("52311.11"),
}
_IDS = uuid.UUID("5d0c9a8e-2f7b-4c1a-9e63-7a4b2d8f1c30")

Event = tuple[str, dict[str, Any]]
# municipality, category, subject, corrected (or service) month, payer
Key = tuple[str, str, str, str, str]


def _ids(subject: str) -> Callable[[], str]:
    """Event ids fixed by the example, so that a rerun settles the same money (of two events
    at one instant, the one whose id sorts last stands)."""
    count = iter(range(100))
    return lambda: str(uuid.uuid5(_IDS, f"{subject}/{next(count)}"))


@st.composite
def histories(draw: st.DrawFn) -> list[Event]:
    """Within the first quarter of 2025 (days 0-89)."""
    events: list[Event] = []
    for n in range(draw(st.integers(1, 3), label="episodes")):
        dr = discharge_ready_of(TRUST, draw(st.sampled_from(MUNICIPALITIES)))
        next_id = _ids(f"EP-{n}")

        def add(
            kind: str, day: int, hour: int, dr: Callable = dr, n: int = n, next_id: Callable = next_id
        ) -> None:
            extra = {"destination": "home"} if kind == "discharged" else {}
            events.append(dr(kind, oslo_at(day, hour), episode_id=f"EP-{n}", event_id=next_id(), **extra))

        draw_discharge_ready_episode(draw, add, latest_admission=60, longest_wait=40)
    for n in range(draw(st.integers(0, 2), label="emergency-bed stays")):
        kad = partial(
            event,
            topics.EMERGENCY_BEDS,
            trust=TRUST,
            municipality=draw(st.sampled_from(MUNICIPALITIES)),
            stay_id=f"KAD-{n}",
        )
        next_id = _ids(f"KAD-{n}")
        admitted = draw(st.integers(1, 80))
        events.append(kad("emergency_bed_admitted", oslo_at(admitted, 10), event_id=next_id()))
        ending = draw(st.sampled_from(["open", "discharged", "discharged", "timed before admission"]))
        if ending != "open":
            days = -1 if ending == "timed before admission" else draw(st.integers(0, 40))
            at = oslo_at(min(89, admitted + days), 13)
            events.append(kad("emergency_bed_discharged", at, event_id=next_id()))
    for n in range(draw(st.integers(1, 2), label="activities")):
        act = partial(
            event, topics.ACTIVITY, trust=TRUST, registered_municipality=BJORNAFJORDEN, activity_id=f"ACT-{n}"
        )
        next_id = _ids(f"ACT-{n}")
        ended = draw(st.integers(0, 85))
        # Recorded when coded: the same day, or days later, often in the next month.
        recorded = min(89, ended + draw(st.sampled_from([0, 5, 20, 35])))

        def facts(points: int, ended: int = ended) -> dict[str, Any]:
            return inpatient_activity(
                f"{points / 100:.2f}", oslo_at(max(0, ended - 2), 8), oslo_at(ended, 18)
            )

        at = oslo_at(recorded, 20)
        events.append(act("activity_recorded", at, event_id=next_id(), **facts(draw(st.integers(10, 600)))))
        follow = draw(st.sampled_from(["none", "activity_corrected", "activity_cancelled"]))
        if follow != "none":
            later = oslo_at(min(89, recorded + draw(st.integers(1, 20))), 21)
            more = facts(draw(st.integers(10, 600))) if follow == "activity_corrected" else {}
            events.append(act(follow, later, event_id=next_id(), **more))
    return events


def _subject(value: dict[str, Any]) -> str:
    return value.get("episode_id") or value.get("stay_id") or value["activity_id"]


def _corrected(tariffs: TariffBook, which: Sequence[str]) -> TariffBook:
    return build_book([replace(r, value=CORRECTIONS[r.id]) if r.id in which else r for r in tariffs.rules])


def days_and_ore(items: Sequence[dict[str, Any]]) -> tuple[int, int]:
    """Days of every item, held ones included; a held item's null amount as 0."""
    return sum(i["days"] for i in items), sum(i["amount_ore"] or 0 for i in items)


def _in_order(items: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(items, key=lambda i: json.dumps(i, sort_keys=True))


async def _check_invariants(ledger: Ledger, closed: list[str], trace: list[str]) -> None:
    steps = "\n  ".join(trace)
    where = f"after the steps:\n  {steps}"
    published = [body for _, body in await ledger.published()]

    # 3. Both parties' copies agree, and each pair's chain verifies as published and as stored.
    copies: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for body in published:
        copies[body["statement_id"]].append(body)
    for statement_id, pair in copies.items():
        assert sorted(c["recipient"]["role"] for c in pair) == ["health_trust", "municipality"], statement_id
        first, second = ({k: v for k, v in c.items() if k not in ("recipient", "counterparty")} for c in pair)
        assert first == second, f"the parties' copies of {statement_id} differ {where}"
        assert (
            pair[0]["recipient"] == pair[1]["counterparty"]
            and pair[1]["recipient"] == pair[0]["counterparty"]
        )
    statements = sorted(
        (b for b in published if b["recipient"]["role"] == "municipality"),
        key=lambda b: (b["recipient"]["id"], b["sequence"]),
    )
    async with ledger.pool.acquire() as conn:
        for municipality in sorted({s["recipient"]["id"] for s in statements}):
            count = sum(1 for s in statements if s["recipient"]["id"] == municipality)
            assert verify_published(published, municipality, TRUST) == (count, []), where
            assert await verify_database(conn, municipality, TRUST) == (count, []), where
        keys = [r["subject_key"] for r in await conn.fetch("SELECT DISTINCT subject_key FROM inbound_events")]
        facts = await payloads_by_subject(conn, keys)

    # 1. Per subject, month and payer: the month's items, plus every event and tariff
    # adjustment to them since, are the items now of each such adjustment.
    settled: dict[Key, tuple[int, int]] = {}
    stands: dict[Key, list[dict[str, Any]]] = {}
    restated: dict[Key, str] = {}  # the period of the statement that last gave the items of each
    for s in statements:
        municipality, label = (
            s["recipient"]["id"],
            f"the statement of {s['period']} to {s['recipient']['id']}",
        )
        for item in s["items"]:
            if item["service_month"] == s["period"]:
                category = item["category"]
                key = (municipality, category, item["episode_id"], item["service_month"], PAYER_OF[category])
                stands.setdefault(key, []).append(item)
                restated[key] = s["period"]
                days, ore = settled.get(key, (0, 0))
                settled[key] = (days + item["days"], ore + (item["amount_ore"] or 0))
        corrected_here: set[Key] = set()
        for a in s["adjustments"]:
            if a["cause"] == "dispute":
                assert a["items_now"] is None, f"{label}: a dispute's credit with items {a} {where}"
                continue
            key = (municipality, a["category"], a["episode_id"], a["corrects_month"], a["payer_role"])
            assert key not in corrected_here, f"{label}: two adjustments of {key} {where}"
            corrected_here.add(key)
            assert a["corrects_month"] < s["period"], f"{label}: {a} {where}"
            assert a["items_now"] is not None, (
                f"{label}: an {a['cause']} adjustment without items {a} {where}"
            )
            assert {(i["category"], i["episode_id"], i["service_month"]) for i in a["items_now"]} <= {
                (a["category"], a["episode_id"], a["corrects_month"])
            }, f"{label}: items now of another subject or month {a} {where}"
            days, ore = settled.get(key, (0, 0))
            settled[key] = (days + a["quantity_delta"], ore + a["amount_delta_ore"])
            assert settled[key] == days_and_ore(a["items_now"]), (
                f"{label}: {key} settled {settled[key]} (days, øre) with this adjustment, its items now "
                f"add up to {days_and_ore(a['items_now'])}: {a} {where}"
            )
            stands[key] = list(a["items_now"])
            restated[key] = s["period"]

    # 2. What stands for every closed month is what rating the facts so far gives: in days and
    # øre for every subject, month and payer, and field by field where the close just made
    # gave the items. [design] A re-rating that changes neither days nor øre books nothing
    # (rating.service._differences): the statements then keep the items as settled, though
    # their details may no longer be the facts' (the reason days are not payable, the days
    # of a run moved within the month), until an adjustment of the month restates them.
    floor = Month.parse(closed[-1]).last_day
    rated: dict[Key, list[dict[str, Any]]] = defaultdict(list)
    for subject_key in keys:
        for item in rate_subject(subject_key, facts[subject_key], ledger.tariffs, floor, ledger.registry):
            if str(item.service_month) in closed:
                key = (
                    item.municipality,
                    item.category.value,
                    item.subject_id,
                    str(item.service_month),
                    item.payer_role.value,
                )
                rated[key].append(wire_item(item).model_dump(mode="json"))
    standing = {k: _in_order(v) for k, v in stands.items() if v}
    expected = {k: _in_order(v) for k, v in rated.items()}
    sums = {
        k: (days_and_ore(standing.get(k, [])), days_and_ore(expected.get(k, []))) for k in standing | expected
    }
    differ = {k: v for k, v in sums.items() if v[0] != v[1]}
    assert not differ, (
        f"what the statements stand at, against a rating of the facts, (days, øre): {differ} {where}"
    )
    fields = {k: (standing.get(k), expected.get(k)) for k, period in restated.items() if period == closed[-1]}
    differ = {k: v for k, v in fields.items() if v[0] != v[1]}
    assert not differ, f"the items just published, against a rating of the facts: {differ} {where}"


def _arrival(data: st.DataObject, on_time: int) -> int:
    """Before which close an event arrives: its month's, or, late, a later one."""
    if on_time < len(CLOSES) - 1 and data.draw(st.booleans(), label="late"):
        return data.draw(st.integers(on_time + 1, len(CLOSES) - 1), label="arrives before close")
    return on_time


async def _run(database_url: str, data: st.DataObject) -> None:
    history = data.draw(histories(), label="history")
    unsent = list(data.draw(st.permutations(history), label="arrival order"))
    arrivals = [_arrival(data, CLOSES.index(value["occurred_at"][:7])) for _, value in unsent]
    corrected_from = data.draw(st.sampled_from([None, None, 1, 2, 3]), label="a rate corrected from close")
    which = data.draw(st.lists(st.sampled_from(sorted(CORRECTIONS)), min_size=1, unique=True), label="rates")
    ledger = await Ledger.fresh(database_url, TARIFFS)
    trace: list[str] = []
    closed: list[str] = []

    async def send(batch: list[Event]) -> None:
        if batch:
            await ledger.send(*batch)
            trace.extend(f"send {_subject(v)} {v['type']} {v['occurred_at']}" for _, v in batch)

    async def dispute() -> None:
        """A party disputes what a statement shows for a subject, in full or in part; the
        dispute is resolved at once, or left open."""
        shown = [
            (s["statement_id"], s["period"], s["recipient"]["id"], category, month, subject, amount)
            for _, s in await ledger.published()
            if s["recipient"]["role"] == "municipality"
            for category, month, subject, amount in [
                *((i["category"], i["service_month"], i["episode_id"], i["amount_ore"]) for i in s["items"]),
                *(
                    (a["category"], a["corrects_month"], a["episode_id"], a["amount_delta_ore"])
                    for a in s["adjustments"]
                    if a["cause"] != "dispute"
                ),
            ]
            if amount and amount > 0
        ]
        if not shown:
            return
        statement_id, period, municipality, category, month, subject, amount = data.draw(
            st.sampled_from(shown), label="disputed"
        )
        claim = data.draw(st.sampled_from([amount, amount, max(1, amount // 3)]), label="claim")
        by = data.draw(st.sampled_from([f"municipality:{municipality}", f"health_trust:{TRUST}"]), label="by")
        step = f"dispute {claim} of {subject} {month} on the statement of {period} to {municipality} by {by}"
        try:
            dispute_id = await ledger.dispute(
                statement_id, episode_id=subject, category=category, month=month, amount_ore=claim, by=by
            )
        except DisputeRefused as refused:
            trace.append(f"{step}: refused ({refused})")
            return
        outcome = data.draw(st.sampled_from(["upheld", "rejected", "open"]), label="outcome")
        trace.append(f"{step}: {outcome}")
        if outcome != "open":
            await ledger.resolve(dispute_id, outcome)

    try:
        for phase, month in enumerate(CLOSES):
            batch = [e for e, arrives in zip(unsent, arrivals, strict=True) if arrives == phase]
            split = data.draw(st.integers(0, len(batch)), label="sent in two")  # two intake batches
            await send(batch[:split])
            if closed and data.draw(st.integers(0, 3), label="dispute") == 0:
                await dispute()
            await send(batch[split:])
            tariffs = None
            if phase == corrected_from:
                tariffs = _corrected(ledger.tariffs, which)
                trace.append(f"rates corrected: {', '.join(which)}")
            await ledger.close(month, tariffs)
            closed.append(month)
            trace.append(f"close {month}")
            await _check_invariants(ledger, closed, trace)
    finally:
        note("\n".join(trace))
        await ledger.pool.close()


@ledger_property_settings("ITEMS_NOW_PROPERTY", examples=25)
@given(data=st.data())
def test_the_statements_before_an_adjustment_and_its_difference_add_up_to_its_items_now(
    database: str, data: st.DataObject
) -> None:
    asyncio.run(_run(database, data))
