"""Property: however late events, closes, disputes and their resolutions interleave, no
episode's month (nor a month's line) is ever settled below nothing, `settlement reconcile`
proves every closed month, and every statement's totals are its lines and adjustments, with
the dispute holds taken out of its net (domain.md section 5).

Each example drives a fresh ledger (ledger_harness) through random but valid steps: the
events of a few discharge-ready episodes of two pairs, each sent before its month closes or,
late, before a later close (a stay shortened or lengthened, or priced only by an
adjustment); the months closed in order; disputes of items, lines and adjustments on the
statements published so far, by either party; and their resolutions (upheld, partially
upheld with an agreed amount, rejected). A refused dispute is a normal outcome. The
invariants are checked after every close.

`DISPUTE_PROPERTY_EXAMPLES` sets the number of examples, `DISPUTE_PROPERTY_WHOLE_LINES=0` leaves
out disputes of whole lines (see WHOLE_LINES), and `DISPUTE_PROPERTY_SHRINK=1` shrinks a
failing one (minutes on a slow machine: each step is a real close or command). Without it
the failure shows the example's steps as drawn."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from hypothesis import given, note
from hypothesis import strategies as st

from services.adapters.tariff_files import load_tariffs
from services.settlement.disputes import DisputeRefused
from services.settlement.reconciliation import reconcile
from services.tariffs import DEFAULT_TARIFF_DIR, EXAMPLE_TARIFF_DIR
from tests.integration.ledger_harness import (
    PAYER_OF,
    Ledger,
    discharge_ready_of,
    draw_discharge_ready_episode,
    ledger_property_settings,
    oslo_at,
)

# the pair 4624 / 983974724, as there
from tests.integration.test_corrections_and_disputes import dr, ten_days_in_january

pytestmark = pytest.mark.integration
TRUST = "983974724"  # Haukeland
MUNICIPALITIES = ("4624", "4601")  # Bjørnafjorden and Bergen: two pairs with the same trust
DAY = 598_100  # 2025 bed-day rate, 5 981 NOK in øre
MONTHS = ("2025-01", "2025-02", "2025-03")
FLUSH = "2025-04"  # closed last: books what is still pending for the months before
# Disputes of whole lines too (`DISPUTE_PROPERTY_WHOLE_LINES=0` leaves them out): a late
# event that took days off a line a dispute had credited in full settled the line below
# nothing until the close reduced such credits (disputes.credits_to_what_is_owed).
WHOLE_LINES = os.environ.get("DISPUTE_PROPERTY_WHOLE_LINES", "1") != "0"
STEPS_PER_MONTH = 4  # sends, disputes and resolutions before each close, and after the last
TARIFFS = load_tariffs(DEFAULT_TARIFF_DIR, EXAMPLE_TARIFF_DIR)
_IDS = uuid.UUID("0b6f3c52-7d5e-4d8e-9a36-5c1f1f0c9d11")

Event = tuple[str, dict[str, Any]]


@st.composite
def episodes(draw: st.DrawFn) -> list[Event]:
    """One to three discharge-ready stays in the first quarter of 2025, each of one of the two
    pairs: still waiting, or ended by the municipality's answer, a discharge or a withdrawal
    (sometimes followed by a new declaration and notice, a second paid interval). Event ids
    are fixed by the example, so a rerun settles the same money."""
    events: list[Event] = []
    for n in range(draw(st.integers(1, 3))):
        municipality = draw(st.sampled_from(MUNICIPALITIES))
        dr = discharge_ready_of(TRUST, municipality)
        mine: list[Event] = []

        def add(
            kind: str, day: int, hour: int, mine: list[Event] = mine, dr: Callable = dr, n: int = n
        ) -> None:
            extra = {"destination": "home"} if kind == "discharged" else {}
            event_id = str(uuid.uuid5(_IDS, f"EP-{n}/{len(mine)}"))
            mine.append(dr(kind, oslo_at(day, hour), episode_id=f"EP-{n}", event_id=event_id, **extra))

        draw_discharge_ready_episode(draw, add, latest_admission=50, longest_wait=20)
        events += mine
    return events


def _signed(payer_role: str, amount: int | None) -> int:
    return (amount or 0) if payer_role == "municipality" else -(amount or 0)


def _disputable(statement: dict) -> list[tuple[str, str, str | None, int]]:
    """What a party of `statement` may try to dispute on it: (category, month, episode or None
    for the line, the amount the statement shows for it). Days of an earlier month priced by
    an adjustment are disputed on the statement that carries the adjustment."""
    targets: list[tuple[str, str, str | None, int]] = []
    for line in statement["lines"]:
        if line["status"] == "priced" and line["amount_ore"]:
            targets.append((line["category"], line["service_month"], None, line["amount_ore"]))
    for item in statement["items"]:
        if item["amount_ore"]:
            targets.append((item["category"], item["service_month"], item["episode_id"], item["amount_ore"]))
    for a in statement["adjustments"]:
        if a["cause"] != "dispute":
            targets.append((a["category"], a["corrects_month"], a["episode_id"], a["amount_delta_ore"]))
            targets.append((a["category"], a["corrects_month"], None, a["amount_delta_ore"]))
    return [t for t in targets if WHOLE_LINES or t[2] is not None]


async def _check_invariants(ledger: Ledger, closed: list[str], trace: list[str]) -> None:
    statements = [body for _, body in await ledger.published() if body["recipient"]["role"] == "municipality"]
    steps = "\n  ".join(trace)
    where = f"after the steps:\n  {steps}"

    # 1. Per episode (and per line: a dispute of a whole line credits a subject of its own),
    # month and payer: its items on the month's statement and every adjustment to that month
    # on later statements, dispute credits included, never settle below nothing.
    episode_totals: dict[tuple[str, str, str, str, str], int] = {}
    line_totals: dict[tuple[str, str, str, str], int] = {}
    for s in statements:
        pair = s["recipient"]["id"]
        entries = [
            (
                i["category"],
                i["episode_id"],
                i["service_month"],
                PAYER_OF[i["category"]],
                i["amount_ore"] or 0,
            )
            for i in s["items"]
            if i["service_month"] == s["period"]
        ] + [
            (a["category"], a["episode_id"], a["corrects_month"], a["payer_role"], a["amount_delta_ore"])
            for a in s["adjustments"]
        ]
        for category, subject, month, payer, amount in entries:
            line_key = (pair, category, month, payer)
            line_totals[line_key] = line_totals.get(line_key, 0) + amount
            if not subject.startswith("dispute-"):
                key = (pair, category, subject, month, payer)
                episode_totals[key] = episode_totals.get(key, 0) + amount
    below = {k: v for k, v in episode_totals.items() if v < 0}
    assert not below, (
        f"settled below nothing (municipality, category, episode, month, payer): {below} {where}"
    )
    below = {k: v for k, v in line_totals.items() if v < 0}
    assert not below, f"a line settled below nothing (municipality, category, month, payer): {below} {where}"

    # 2. `settlement reconcile` proves every pair's every closed month.
    pairs = sorted({s["recipient"]["id"] for s in statements})
    async with ledger.pool.acquire() as conn:
        for municipality in pairs:
            for month in closed:
                r = await reconcile(conn, municipality, TRUST, date.fromisoformat(month + "-01"))
                facts = (
                    f"reconcile {municipality} {TRUST} {month}: statements {r.statements} total "
                    f"{r.statements_total_ore}, ledger {r.ledger_total_ore}, pair {r.pair_statements_total_ore} "
                    f"against {r.pair_ledger_total_ore}, credited beyond {r.credited_beyond} {where}"
                )
                if r.statements:
                    assert r.proven, facts
                else:  # no statement carries the month: nothing of it may be settled
                    assert r.ledger_total_ore == 0 and not r.credited_beyond and r.pair_proven, facts

    # 3. Every statement's totals are its lines and adjustments per payer, and its payable net
    # follows from them with the dispute holds taken out.
    for s in statements:
        totals = s["totals"]
        label = f"statement {s['period']} of {s['recipient']['id']}: {totals}"
        for role in ("municipality", "health_trust"):
            summed = sum(line["amount_ore"] or 0 for line in s["lines"] if line["payer_role"] == role) + sum(
                a["amount_delta_ore"] for a in s["adjustments"] if a["payer_role"] == role
            )
            assert totals[f"{role}_pays_ore"] == summed, f"{label}: {role} pays {summed} by its lines {where}"
            by_category = sum(c[f"{role}_pays_ore"] for c in totals["by_category"])
            assert totals[f"{role}_pays_ore"] == by_category, f"{label}: by category {by_category} {where}"
            held = sum(
                {"held": d["amount_ore"], "released": -d["amount_ore"]}.get(d["effect"], 0)
                for d in s["disputes"]
                if d["payer_role"] == role
            )
            assert totals[f"{role}_withheld_ore"] == held, (
                f"{label}: {role} holds {held} by its disputes {where}"
            )
        net = totals["municipality_pays_ore"] - totals["health_trust_pays_ore"]
        payable = net - totals["municipality_withheld_ore"] + totals["health_trust_withheld_ore"]
        assert (totals["net_ore"], totals["net_payer"]) == (abs(net), _payer(net)), f"{label} {where}"
        assert (totals["net_payable_ore"], totals["net_payable_by"]) == (abs(payable), _payer(payable)), (
            f"{label}: {abs(payable)} payable by {_payer(payable)} {where}"
        )


def _payer(net: int) -> str:
    return "municipality" if net > 0 else "health_trust" if net < 0 else "none"


def _arrival(data: st.DataObject, on_time: int) -> int:
    """Before which close an event arrives (len(MONTHS): after the last): its month's, or,
    late, a later one."""
    if on_time < len(MONTHS) and data.draw(st.booleans(), label="late"):
        return data.draw(st.integers(on_time + 1, len(MONTHS)), label="arrives before close")
    return on_time


async def _run(database_url: str, data: st.DataObject) -> None:
    history = data.draw(episodes(), label="episodes")
    unsent = list(data.draw(st.permutations(history), label="arrival order"))  # within a batch
    ledger = await Ledger.fresh(database_url, TARIFFS)
    trace: list[str] = []
    closed: list[str] = []
    opened: dict[uuid.UUID, int] = {}  # accepted disputes and their amounts
    still_open: list[uuid.UUID] = []

    async def send(events: list[Event]) -> None:
        await ledger.send(*events)
        trace.extend(f"send {v['episode_id']} {v['type']} {v['occurred_at']}" for _, v in events)

    async def close(month: str) -> None:
        await ledger.close(month)
        closed.append(month)
        trace.append(f"close {month}")
        await _check_invariants(ledger, [m for m in closed if m != FLUSH], trace)

    async def dispute(published: list[dict]) -> None:
        statement = data.draw(st.sampled_from([s for s in published if _disputable(s)]), label="statement")
        category, month, episode, shown = data.draw(st.sampled_from(_disputable(statement)), label="what")
        # All the statement shows for it (twice as likely), some days, or any øre up to a day more.
        claim = data.draw(st.sampled_from(["all", "all", "days", "øre"]), label="claim")
        amount = (
            max(abs(shown), 1)
            if claim == "all"
            else data.draw(st.integers(1, 12), label="days") * DAY
            if claim == "days"
            else data.draw(st.integers(1, max(abs(shown), 1) + DAY), label="øre")
        )
        municipality = statement["recipient"]["id"]
        by = data.draw(st.sampled_from([f"municipality:{municipality}", f"health_trust:{TRUST}"]), label="by")
        step = (
            f"dispute {amount} of {episode or 'the line'} {category} {month} on the statement of "
            f"{statement['period']} ({municipality}) by {by}"
        )
        try:
            dispute_id = await ledger.dispute(
                statement["statement_id"],
                episode_id=episode,
                category=category,
                month=month,
                amount_ore=amount,
                by=by,
            )
        except DisputeRefused as refused:
            trace.append(f"{step}: refused ({refused})")
        else:
            opened[dispute_id] = amount
            still_open.append(dispute_id)
            trace.append(f"{step}: opened {dispute_id}")
            if data.draw(st.booleans(), label="resolved at once"):
                await resolve(dispute_id)

    async def resolve(dispute_id: uuid.UUID | None = None) -> None:
        if dispute_id is None:
            dispute_id = data.draw(st.sampled_from(still_open), label="dispute")
        outcome = data.draw(
            st.sampled_from(["upheld", "upheld", "partially_upheld", "rejected"]), label="outcome"
        )
        agreed = (
            data.draw(st.integers(1, max(opened[dispute_id] - 1, 1)), label="agreed")
            if outcome == "partially_upheld"
            else None
        )
        step = f"resolve {dispute_id} {outcome}" + (f" agreed {agreed}" if agreed else "")
        try:
            await ledger.resolve(dispute_id, outcome, agreed)
        except DisputeRefused as refused:
            trace.append(f"{step}: refused ({refused})")
        else:
            still_open.remove(dispute_id)
            trace.append(step)

    try:
        # Each event arrives before one of the closes or after the last (so some come after
        # their month closed: a stay shortened or lengthened, or priced only then), sent among
        # disputes of what the statements published so far show, and resolutions.
        arrivals = [
            _arrival(
                data, MONTHS.index(value["occurred_at"][:7]) if value["occurred_at"][:7] in MONTHS else 0
            )
            for _, value in unsent
        ]
        for phase, month in enumerate([*MONTHS, None]):
            batch = [e for e, arrives in zip(unsent, arrivals, strict=True) if arrives == phase]
            steps = data.draw(st.integers(1, STEPS_PER_MONTH), label="steps") if closed else 0
            sent_after = data.draw(st.integers(0, steps), label="sent after step")
            for step in range(steps + 1):
                if step == sent_after and batch:
                    await send(batch)
                if step == steps:
                    break
                published = [
                    b for _, b in await ledger.published() if b["recipient"]["role"] == "municipality"
                ]
                actions = [
                    *(["dispute"] if any(_disputable(s) for s in published) else []),
                    *(["resolve"] if still_open else []),
                ]
                if not actions:
                    continue
                if data.draw(st.sampled_from(actions), label="action") == "dispute":
                    await dispute(published)
                else:
                    await resolve()
            if month is not None:
                await close(month)
        # A last close books every pending adjustment and shows every dispute.
        await close(FLUSH)
        shown = {uuid.UUID(d["dispute_id"]) for _, body in await ledger.published() for d in body["disputes"]}
        assert set(opened) <= shown, f"disputes on no statement: {set(opened) - shown} after {trace}"
    finally:
        note("\n".join(trace))
        await ledger.pool.close()


@ledger_property_settings("DISPUTE_PROPERTY", examples=30)
@given(data=st.data())
def test_disputes_and_late_events_never_settle_below_nothing(database: str, data: st.DataObject) -> None:
    asyncio.run(_run(database, data))


async def test_a_line_credited_in_full_and_then_shortened_by_a_late_event_is_not_settled_below_nothing(
    ledger: Ledger,
) -> None:
    # Found by the property above with disputes of whole lines: the minimal case. The
    # close now reduces the line's credit by what the late event took off (March books
    # -6 days by the event and +6 days' worth back on the credit).
    await ledger.send(*ten_days_in_january("EP-A"))  # 11-20 Jan: 10 days, 5 981 000 øre
    await ledger.close("2025-01")
    [(_, jan)] = await ledger.published("municipality:4624")
    line = await ledger.dispute(
        jan["statement_id"],
        episode_id=None,
        category="discharge_ready_bed_days",
        month="2025-01",
        amount_ore=10 * DAY,
        by="municipality:4624",
    )
    await ledger.resolve(line, "upheld")  # the whole line credited: February books -10 days
    await ledger.close("2025-02")
    # Late: withdrawn on 15 Jan, 11-14 owed by the facts: March books -6 days besides.
    await ledger.send(dr("ready_withdrawn", "2025-01-15T09:00:00+01:00", episode_id="EP-A"))
    await ledger.close("2025-03")

    statements = [body for _, body in await ledger.published("municipality:4624")]
    january = sum(i["amount_ore"] for i in statements[0]["items"]) + sum(
        a["amount_delta_ore"]
        for s in statements
        for a in s["adjustments"]
        if a["corrects_month"] == "2025-01"
    )
    async with ledger.pool.acquire() as conn:
        reconciled = await reconcile(conn, "4624", TRUST, date(2025, 1, 1))
    assert january >= 0, f"January settled at {january} øre"  # 5 981 000 - 5 981 000 - 3 588 600
    assert reconciled.proven, reconciled.credited_beyond
