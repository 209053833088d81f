"""A pair walked through several months of late events, corrections, a new tariff and a
dispute (issue 4): closed statements never change, every difference is an adjustment on
the next statement, and the chain of statements verifies."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import date
from decimal import Decimal
from functools import partial
from typing import Any

import pytest

from contracts.v1 import topics
from services.adapters.statement_repository import months_left_open
from services.domain.tariffs import Parameter, Scope, TariffRule, build_book
from services.settlement import service as settlement_service
from services.settlement.disputes import DisputeRefused
from services.settlement.reconciliation import reconcile
from services.settlement.service import RERATE_CHUNK
from services.settlement.verification import compare, verify_database, verify_published
from tests.integration.ledger_harness import (
    Ledger,
    alter_stored_bodies,
    discharge_ready_of,
    event,
    inpatient_activity,
    national_rate,
)

pytestmark = pytest.mark.integration
TRUST, MUNICIPALITY = "983974724", "4624"  # Haukeland and Bjørnafjorden (the example trial prices activity)
DAY = 598_100  # 2025 bed-day rate, 5 981 NOK in øre


dr = discharge_ready_of(TRUST, MUNICIPALITY)
act = partial(event, topics.ACTIVITY, trust=TRUST, registered_municipality=MUNICIPALITY)


def episode(episode_id: str, *milestones: tuple[str, str]) -> list[tuple[str, dict]]:
    return [
        dr(kind, at, episode_id=episode_id, **({"destination": "home"} if kind == "discharged" else {}))
        for kind, at in milestones
    ]


def ten_days_in_january(episode_id: str) -> list[tuple[str, dict]]:
    """A stay discharge-ready from 11 January 2025, the municipality able to receive on the
    21st: 10 payable days, 11-20 January."""
    return episode(
        episode_id,
        ("admission_notified", "2025-01-05T10:00:00+01:00"),
        ("declared_ready", "2025-01-11T09:00:00+01:00"),
        ("municipality_notified", "2025-01-11T11:00:00+01:00"),
        ("municipality_can_receive", "2025-01-21T09:00:00+01:00"),
    )


def ten_days_in_january_2026(episode_id: str) -> list[tuple[str, dict]]:
    """The same stay a year later, 6-15 January 2026: held as unrated by the shipped book,
    which has no 2026 rate."""
    return episode(
        episode_id,
        ("admission_notified", "2026-01-05T10:00:00+01:00"),
        ("declared_ready", "2026-01-06T09:00:00+01:00"),
        ("municipality_notified", "2026-01-06T11:00:00+01:00"),
        ("municipality_can_receive", "2026-01-16T09:00:00+01:00"),
    )


def claims_of_january(ledger: Ledger, statement: dict) -> Callable[..., Awaitable[uuid.UUID]]:
    """The municipality's disputes of its January discharge-ready days on `statement`."""
    return partial(
        ledger.dispute,
        statement["statement_id"],
        category="discharge_ready_bed_days",
        month="2025-01",
        by=f"municipality:{MUNICIPALITY}",
    )


def activity(
    activity_id: str, kind: str, at: str, points: str = "1.0", ended: str = "2025-01-15T12:00:00+01:00"
) -> tuple[str, dict]:
    facts = inpatient_activity(points, "2025-01-10T08:00:00+01:00", ended)
    return act(kind, at, activity_id=activity_id, **({} if kind == "activity_cancelled" else facts))


async def test_a_pair_through_late_events_corrections_a_new_tariff_and_a_dispute(ledger: Ledger) -> None:
    snapshots: list[list[dict]] = []  # the stored statements after each close
    published_at: list[list[tuple[bytes, dict]]] = []  # the municipality's published copies after each close
    close = ledger.close

    async def close_and_snapshot(month: str, tariffs: object = None) -> object:
        result = await close(month, tariffs)  # type: ignore[arg-type]
        async with ledger.pool.acquire() as conn:
            snapshots.append(
                [
                    dict(r)
                    for r in await conn.fetch(
                        "SELECT statement_id, hash, body FROM statements ORDER BY sequence"
                    )
                ]
            )
        published_at.append(await ledger.published(f"municipality:{MUNICIPALITY}"))
        return result

    ledger.close = close_and_snapshot  # type: ignore[method-assign]

    # January 2025: two stays still waiting at the close, two co-financed activities.
    await ledger.send(
        *episode(
            "EP-A",
            ("admission_notified", "2025-01-05T10:00:00+01:00"),
            ("declared_ready", "2025-01-10T09:00:00+01:00"),
            ("municipality_notified", "2025-01-10T11:00:00+01:00"),
        ),
        *episode(
            "EP-B",
            ("admission_notified", "2025-01-02T10:00:00+01:00"),
            ("declared_ready", "2025-01-03T09:00:00+01:00"),
            ("municipality_notified", "2025-01-03T11:00:00+01:00"),
        ),
        activity("ACT-C", "activity_recorded", "2025-01-15T20:00:00+01:00", points="1.5"),
        activity(
            "ACT-D", "activity_recorded", "2025-01-20T20:00:00+01:00", ended="2025-01-20T12:00:00+01:00"
        ),
    )
    await ledger.close("2025-01")
    [(jan_bytes, jan)] = await ledger.published(f"municipality:{MUNICIPALITY}")
    # A: 10-31 Jan, 22 days; B: 3-31 Jan, 29 days; C: 0.10 x 1.5 x 52 248 NOK; D: 0.10 x 1.0 x 52 248 NOK.
    assert jan["sequence"] == 1 and jan["previous_statement_hash"] is None
    assert jan["totals"]["municipality_pays_ore"] == 22 * DAY + 29 * DAY + 783_720 + 522_480

    # Late, after the close: A was discharged on 25 Jan, B's status withdrawn on 20 Jan,
    # C corrected to 2.0 DRG points, D cancelled.
    await ledger.send(
        dr("discharged", "2025-01-25T14:00:00+01:00", episode_id="EP-A", destination="home"),
        dr("ready_withdrawn", "2025-01-20T08:00:00+01:00", episode_id="EP-B"),
        activity("ACT-C", "activity_corrected", "2025-02-02T10:00:00+01:00", points="2.0"),
        activity("ACT-D", "activity_cancelled", "2025-02-03T10:00:00+01:00"),
    )
    # A correction that changes nothing books nothing.
    await ledger.send(activity("ACT-C", "activity_corrected", "2025-02-04T10:00:00+01:00", points="2.0"))
    await ledger.close("2025-02")
    feb = (await ledger.published(f"municipality:{MUNICIPALITY}"))[1][1]
    adjustments = {(a["episode_id"], a["corrects_month"]): a for a in feb["adjustments"]}
    assert {k: (a["quantity_delta"], a["amount_delta_ore"], a["cause"]) for k, a in adjustments.items()} == {
        ("EP-A", "2025-01"): (-7, -7 * DAY, "event"),  # 15 days (10-24 Jan) instead of 22
        ("EP-B", "2025-01"): (-12, -12 * DAY, "event"),  # 17 days (3-19 Jan) instead of 29
        ("ACT-C", "2025-01"): (0, 1_044_960 - 783_720, "event"),  # 0.10 x 2.0 x 52 248 NOK now
        ("ACT-D", "2025-01"): (-1, -522_480, "event"),  # cancelled: one activity fewer
    }
    assert adjustments[("EP-A", "2025-01")]["caused_by"]["source"] == "itest.corrections"
    assert (
        feb["lines"] == []
        and feb["sequence"] == 2
        and feb["previous_statement_hash"] == jan["statement_hash"]
    )
    assert feb["totals"]["municipality_pays_ore"] == -7 * DAY - 12 * DAY + 261_240 - 522_480

    # The municipality disputes 5 of B's days on January's statement; they are held out of
    # March's net, then the dispute is upheld in part (2 days) and April books it.
    dispute = await ledger.dispute(
        jan["statement_id"],
        episode_id="EP-B",
        category="discharge_ready_bed_days",
        month="2025-01",
        amount_ore=5 * DAY,
        by=f"municipality:{MUNICIPALITY}",
    )
    await ledger.close("2025-03")
    mar = (await ledger.published(f"municipality:{MUNICIPALITY}"))[2][1]
    assert [(d["effect"], d["amount_ore"], d["status"]) for d in mar["disputes"]] == [
        ("held", 5 * DAY, "open")
    ]
    assert mar["totals"]["municipality_withheld_ore"] == 5 * DAY
    assert (mar["totals"]["net_payable_ore"], mar["totals"]["net_payable_by"]) == (5 * DAY, "health_trust")
    trust_copy = (await ledger.published(f"health_trust:{TRUST}"))[2][1]
    assert trust_copy["disputes"] == mar["disputes"], "open disputes are shown to both parties"

    await ledger.resolve(dispute, "partially_upheld", agreed_ore=2 * DAY)
    await ledger.close("2025-04")
    apr = (await ledger.published(f"municipality:{MUNICIPALITY}"))[3][1]
    assert [(a["cause"], a["amount_delta_ore"], a["corrects_month"]) for a in apr["adjustments"]] == [
        ("dispute", -2 * DAY, "2025-01")
    ]
    assert [(d["effect"], d["status"], d["agreed_ore"]) for d in apr["disputes"]] == [
        ("released", "partially_upheld", 2 * DAY)
    ]
    assert apr["totals"]["municipality_withheld_ore"] == -5 * DAY
    assert (apr["totals"]["net_payable_ore"], apr["totals"]["net_payable_by"]) == (3 * DAY, "municipality")

    # 2026 has no confirmed rate: January's days are held; the rate arrives, February's
    # close prices them as an adjustment to January.
    await ledger.send(*ten_days_in_january_2026("EP-E"))
    await ledger.close("2026-01")
    jan26 = (await ledger.published(f"municipality:{MUNICIPALITY}"))[4][1]
    assert [(line["status"], line["quantity"], line["amount_ore"]) for line in jan26["lines"]] == [
        ("unrated", 10, None)
    ]
    rate_2026 = national_rate(2026, "6200")
    await ledger.close("2026-02", tariffs=build_book([*ledger.tariffs.rules, rate_2026]))
    feb26 = (await ledger.published(f"municipality:{MUNICIPALITY}"))[5][1]
    assert [
        (a["episode_id"], a["quantity_delta"], a["amount_delta_ore"], a["cause"])
        for a in feb26["adjustments"]
    ] == [("EP-E", 0, 10 * 620_000, "tariff")]

    # Nothing closed was ever changed: every statement's bytes, as published and as stored,
    # are what they were when its month closed; and the whole series verifies.
    published = await ledger.published(f"municipality:{MUNICIPALITY}")
    assert published[0][0] == jan_bytes
    async with ledger.pool.acquire() as conn:
        stored_now = [
            dict(r)
            for r in await conn.fetch("SELECT statement_id, hash, body FROM statements ORDER BY sequence")
        ]
    assert [r["statement_id"] for r in stored_now] == [r["statement_id"] for r in snapshots[-1]]
    for when, snapshot in enumerate(snapshots):
        assert stored_now[: len(snapshot)] == snapshot, f"a statement closed before step {when} changed"
        assert [b for b, _ in published[: len(snapshot)]] == [b for b, _ in published_at[when]]
    assert [m["sequence"] for _, m in published] == [1, 2, 3, 4, 5, 6]
    async with ledger.pool.acquire() as conn:
        count, problems = await verify_database(conn, MUNICIPALITY, TRUST)
        bodies = [r["body"] for r in await conn.fetch("SELECT body FROM statements ORDER BY sequence")]
        january = await reconcile(conn, MUNICIPALITY, TRUST, date(2025, 1, 1))
    assert (count, problems) == (6, [])
    everything = [m for _, m in await ledger.published()]
    assert verify_published(everything, MUNICIPALITY, TRUST) == (6, [])
    assert compare(bodies, everything) == []
    # Reconciliation: January's items, its adjustments since, and the proof over all statements.
    assert (
        january.priced_now_ore == (22 + 29) * DAY + 783_720 + 522_480 - 19 * DAY + 261_240 - 522_480 - 2 * DAY
    )
    assert january.proven and january.statements_total_ore == january.ledger_total_ore


async def test_verify_detects_a_statement_altered_in_the_database(ledger: Ledger) -> None:
    await ledger.send(
        *episode(
            "EP-X",
            ("admission_notified", "2025-05-02T10:00:00+02:00"),
            ("declared_ready", "2025-05-03T09:00:00+02:00"),
            ("municipality_notified", "2025-05-03T11:00:00+02:00"),
            ("discharged", "2025-05-09T11:00:00+02:00"),
        )
    )
    for month in ("2025-05", "2025-06"):
        await ledger.close(month)
    await ledger.send(dr("discharged", "2025-05-07T11:00:00+02:00", episode_id="EP-X", destination="home"))
    await ledger.close("2025-07")
    # What was published, before the database is altered (the outbox makes each copy from
    # the stored body when it publishes it).
    published = [m for _, m in await ledger.published()]
    async with ledger.pool.acquire() as conn:
        assert await verify_database(conn, MUNICIPALITY, TRUST) == (2, [])
        await alter_stored_bodies(conn, "sequence = 1", "{totals,municipality_pays_ore}", "1")
        count, problems = await verify_database(conn, MUNICIPALITY, TRUST)
    assert count == 2
    assert any("(sequence 1)" in p and "altered" in p for p in problems), problems
    tampered = [json.loads(json.dumps(m)) for m in published]
    tampered[0]["totals"]["net_ore"] += 100  # a copy changed on its way, or in the recipient's hands
    assert verify_published(tampered, MUNICIPALITY, TRUST)[1]


async def test_an_adjustment_is_caused_by_the_event_that_happened_last_not_the_one_sent_last(
    ledger: Ledger,
) -> None:
    await ledger.send(
        *episode(
            "EP-F",
            ("admission_notified", "2025-01-05T10:00:00+01:00"),
            ("declared_ready", "2025-01-10T09:00:00+01:00"),
            ("municipality_notified", "2025-01-10T11:00:00+01:00"),
        )
    )
    await ledger.close("2025-01")
    # Both late, in one batch. By instant the withdrawal came last (04:30 UTC against 02:00),
    # though its text sorts first and it was sent first: the offsets tell them apart.
    withdrawn = dr("ready_withdrawn", "2025-01-20T23:30:00-05:00", episode_id="EP-F")
    discharged = dr("discharged", "2025-01-21T03:00:00+01:00", episode_id="EP-F", destination="home")
    await ledger.send(withdrawn, discharged)
    await ledger.close("2025-02")

    feb = (await ledger.published(f"municipality:{MUNICIPALITY}"))[1][1]
    [adjustment] = feb["adjustments"]
    assert (adjustment["quantity_delta"], adjustment["corrects_month"]) == (-11, "2025-01")  # 10-20 Jan paid
    assert adjustment["caused_by"]["event_id"] == withdrawn[1]["event_id"]


async def test_disputes_of_an_item_or_its_line_never_claim_more_than_is_still_owed(ledger: Ledger) -> None:
    # Two disputes of one item, or one of the item and one of its line, each within what
    # the statement charged, credited more than was ever charged (388 765 held against a
    # 305 031 line). Each claim is weighed against what the others claim and what late
    # events changed since.
    await ledger.send(
        *ten_days_in_january("EP-X"),  # 11-20 Jan: 10 days
        *episode(
            "EP-Y",
            ("admission_notified", "2025-01-02T10:00:00+01:00"),
            ("declared_ready", "2025-01-21T09:00:00+01:00"),
            ("municipality_notified", "2025-01-21T11:00:00+01:00"),
        ),  # 21-31 Jan: 11 days, still waiting at the close
    )
    await ledger.close("2025-01")
    [(_, jan)] = await ledger.published(f"municipality:{MUNICIPALITY}")
    assert jan["totals"]["municipality_pays_ore"] == 21 * DAY
    claim = claims_of_january(ledger, jan)

    first = await claim(episode_id="EP-X", amount_ore=6 * DAY)
    with pytest.raises(DisputeRefused, match="still owed for the item EP-X"):
        await claim(episode_id="EP-X", amount_ore=4 * DAY + 1)
    await claim(episode_id="EP-X", amount_ore=4 * DAY)  # the rest of the item
    with pytest.raises(DisputeRefused, match="still owed for the line"):
        await claim(episode_id=None, amount_ore=11 * DAY + 1)

    # A rejected dispute claims nothing; an upheld one claims what was agreed.
    await ledger.resolve(first, "rejected")
    await ledger.resolve(await claim(episode_id=None, amount_ore=6 * DAY), "partially_upheld", agreed_ore=DAY)
    # EP-Y left hospital on 26 Jan, after the close: 21-25 Jan, 5 days are owed for it, not 11.
    await ledger.send(dr("discharged", "2025-01-26T14:00:00+01:00", episode_id="EP-Y", destination="home"))
    with pytest.raises(DisputeRefused, match="still owed for the item EP-Y"):
        await claim(episode_id="EP-Y", amount_ore=5 * DAY + 1)
    await claim(episode_id="EP-Y", amount_ore=5 * DAY)
    # The line: 21 days charged, 6 taken off by the late event; claimed 4 (EP-X, open),
    # 1 (agreed) and 5 (EP-Y): 5 days are left.
    with pytest.raises(DisputeRefused, match="still owed for the line"):
        await claim(episode_id=None, amount_ore=5 * DAY + 1)
    await claim(episode_id=None, amount_ore=5 * DAY)


async def test_a_dispute_and_a_late_event_that_take_off_the_same_days_credit_them_once(
    ledger: Ledger,
) -> None:
    # Found in a finance audit: an item disputed in full, then shortened by late events, then
    # the dispute upheld: the credit and the corrections both took off the same days, and the
    # month's total for the episode went below nothing (the trust paid the municipality back
    # more than it was charged), while reconcile still agreed.
    await ledger.send(*ten_days_in_january("EP-Z"))  # 11-20 Jan: 10 days
    await ledger.close("2025-01")
    [(_, jan)] = await ledger.published(f"municipality:{MUNICIPALITY}")
    dispute = await ledger.dispute(
        jan["statement_id"],
        episode_id="EP-Z",
        category="discharge_ready_bed_days",
        month="2025-01",
        amount_ore=10 * DAY,
        by=f"municipality:{MUNICIPALITY}",
    )
    # Withdrawn on 15 Jan: 11-14, 4 days are owed now (a pending correction of 6 days).
    await ledger.send(dr("ready_withdrawn", "2025-01-15T09:00:00+01:00", episode_id="EP-Z"))
    await ledger.resolve(dispute, "upheld")  # credits the 4 days still owed, not 10
    await ledger.close("2025-02")
    # The municipality could receive on 13 Jan: 2 days by the facts, taken off by the event;
    # the dispute had credited 4, and now credits the 2 still charged (2 days' worth back).
    await ledger.send(dr("municipality_can_receive", "2025-01-13T09:00:00+01:00", episode_id="EP-Z"))
    await ledger.close("2025-03")

    statements = [body for _, body in await ledger.published(f"municipality:{MUNICIPALITY}")]
    moves = [
        (a["quantity_delta"], a["amount_delta_ore"], a["cause"])
        for body in statements
        for a in body["adjustments"]
        if a["episode_id"] == "EP-Z" and a["corrects_month"] == "2025-01"
    ]
    assert sorted(moves) == sorted(
        [(-6, -6 * DAY, "event"), (0, -4 * DAY, "dispute"), (-2, -2 * DAY, "event"), (0, 2 * DAY, "dispute")]
    )
    credit = next(a for body in statements for a in body["adjustments"] if a["cause"] == "dispute")
    assert "credited 2392400 øre of 5981000" in credit["note"]
    charged = sum(i["amount_ore"] for i in jan["items"] if i["episode_id"] == "EP-Z")
    assert charged + sum(amount for _, amount, _ in moves) == 0


@pytest.mark.parametrize("of_the_line", [False, True], ids=["item", "line"])
async def test_days_brought_back_after_a_credit_was_cut_are_credited_again_up_to_the_ruling(
    ledger: Ledger, of_the_line: bool
) -> None:
    # Found in a finance re-audit: a credit cut to what was still charged (a late event took
    # days off) stayed cut when later events brought the days back, and the municipality paid
    # for days the ruling said were not owed.
    await ledger.send(*ten_days_in_january("EP-B"))  # 11-20 Jan: 10 days
    await ledger.close("2025-01")
    [(_, jan)] = await ledger.published(f"municipality:{MUNICIPALITY}")
    dispute = await claims_of_january(ledger, jan)(
        episode_id=None if of_the_line else "EP-B", amount_ore=2 * DAY
    )
    await ledger.send(dr("ready_withdrawn", "2025-01-12T09:00:00+01:00", episode_id="EP-B"))  # 1 day left
    await ledger.resolve(dispute, "upheld")  # rules 2 days not owed; 1 is still charged
    await ledger.close("2025-02")
    # Declared ready again the same day: 11-20 Jan, 10 days charged by the facts again.
    await ledger.send(
        dr("declared_ready", "2025-01-12T10:00:00+01:00", episode_id="EP-B"),
        dr("municipality_notified", "2025-01-12T11:00:00+01:00", episode_id="EP-B"),
    )
    await ledger.close("2025-03")

    statements = [body for _, body in await ledger.published(f"municipality:{MUNICIPALITY}")]
    january = sum(i["amount_ore"] for i in jan["items"]) + sum(
        a["amount_delta_ore"]
        for body in statements
        for a in body["adjustments"]
        if a["corrects_month"] == "2025-01"
    )
    assert january == 8 * DAY  # the 10 days charged, less the 2 ruled not owed
    credits = [
        a["amount_delta_ore"] for body in statements for a in body["adjustments"] if a["cause"] == "dispute"
    ]
    assert credits == [-DAY, -DAY]  # 1 day credited at the ruling, the other once it was charged again


async def test_a_dispute_opened_and_resolved_between_two_closes_is_shown_once_and_holds_nothing(
    ledger: Ledger,
) -> None:
    # Found in a finance audit: a dispute resolved before the next close was never held,
    # and so was on no statement at all (a rejected one left no trace anywhere the other
    # party could see), where domain.md section 5 wants it visible on both parties'.
    await ledger.send(*ten_days_in_january("EP-R"), *ten_days_in_january("EP-U"))
    await ledger.close("2025-01")
    [(_, jan)] = await ledger.published(f"municipality:{MUNICIPALITY}")
    claim = claims_of_january(ledger, jan)
    rejected, upheld = (
        await claim(episode_id="EP-R", amount_ore=3 * DAY),
        await claim(episode_id="EP-U", amount_ore=2 * DAY),
    )
    await ledger.resolve(rejected, "rejected")
    await ledger.resolve(upheld, "upheld")
    await ledger.close("2025-02")
    await ledger.send(
        *episode(
            "EP-M",
            ("admission_notified", "2025-03-01T10:00:00+01:00"),
            ("declared_ready", "2025-03-02T09:00:00+01:00"),
            ("municipality_notified", "2025-03-02T11:00:00+01:00"),
        )
    )
    await ledger.close("2025-03")

    _, feb, mar = [body for _, body in await ledger.published(f"health_trust:{TRUST}")]
    shown = {
        d["episode_id"]: (d["status"], d["effect"], d["amount_ore"], d["agreed_ore"]) for d in feb["disputes"]
    }
    assert shown == {
        "EP-R": ("rejected", "resolved", 3 * DAY, 0),
        "EP-U": ("upheld", "resolved", 2 * DAY, 2 * DAY),
    }
    # Nothing was held, so nothing comes back: the upheld one is an adjustment.
    assert (feb["totals"]["municipality_withheld_ore"], feb["totals"]["health_trust_withheld_ore"]) == (0, 0)
    assert [(a["episode_id"], a["amount_delta_ore"]) for a in feb["adjustments"]] == [("EP-U", -2 * DAY)]
    assert mar["disputes"] == []


async def test_days_priced_only_by_an_adjustment_can_be_disputed_on_the_statement_that_has_it(
    ledger: Ledger,
) -> None:
    # Found in a finance audit: an episode sent after its month closed is priced by an
    # adjustment on the next statement, and no dispute of it was possible: neither the
    # month's statement (no such item) nor the next one (no line for that month) took it.
    await ledger.send(*ten_days_in_january("EP-K"))
    await ledger.close("2025-01")
    await ledger.send(*ten_days_in_january("EP-L"))  # late: 11-20 Jan, after the close
    await ledger.close("2025-02")
    _, feb = [body for _, body in await ledger.published(f"municipality:{MUNICIPALITY}")]
    assert [(a["episode_id"], a["amount_delta_ore"]) for a in feb["adjustments"]] == [("EP-L", 10 * DAY)]
    claim = claims_of_january(ledger, feb)

    with pytest.raises(DisputeRefused, match="still owed for the item EP-L"):
        await claim(episode_id="EP-L", amount_ore=10 * DAY + 1)
    with pytest.raises(
        DisputeRefused, match="no discharge_ready_bed_days item EP-K for 2025-01, nor an adjustment"
    ):
        await claim(episode_id="EP-K", amount_ore=DAY)  # EP-K is on January's statement, not this one
    late = await claim(episode_id="EP-L", amount_ore=4 * DAY)
    # The line of January: 20 days charged in all (10 on its statement, 10 adjusted), 4 claimed.
    with pytest.raises(DisputeRefused, match="still owed for the line"):
        await claim(episode_id=None, amount_ore=16 * DAY + 1)
    await ledger.resolve(late, "upheld")
    await ledger.close("2025-03")

    mar = (await ledger.published(f"municipality:{MUNICIPALITY}"))[2][1]
    assert [(a["episode_id"], a["amount_delta_ore"], a["cause"]) for a in mar["adjustments"]] == [
        ("EP-L", -4 * DAY, "dispute")
    ]
    assert [(d["episode_id"], d["effect"]) for d in mar["disputes"]] == [("EP-L", "resolved")]


PATIENT_ID = "31129956715"  # a valid fødselsnummer (domain.md)


async def test_a_dispute_whose_free_text_holds_a_patient_id_is_refused_and_none_of_it_is_kept(
    ledger: Ledger,
) -> None:
    # The reason of an opening is published on the pair's statements (the dispute entry),
    # that of a resolution too (the adjustment's note), and both are kept in the dispute log
    # with who resolved it: a patient's number written in one of them was stored and sent to
    # both parties.
    await ledger.send(*ten_days_in_january("EP-P"))
    await ledger.close("2025-01")
    [(_, jan)] = await ledger.published(f"municipality:{MUNICIPALITY}")
    claim = partial(
        ledger.dispute,
        jan["statement_id"],
        episode_id="EP-P",
        category="discharge_ready_bed_days",
        month="2025-01",
        amount_ore=DAY,
        by=f"municipality:{MUNICIPALITY}",
    )
    written = f"{PATIENT_ID[:6]} {PATIENT_ID[6:]}"

    with pytest.raises(DisputeRefused, match="reason holds a patient identifier"):
        await claim(reason=f"pasient {written} var ikke utskrivningsklar 11. januar")
    dispute_id = await claim(reason="the patient was not discharge-ready on 11 January")
    with pytest.raises(DisputeRefused, match="reason holds a patient identifier"):
        await ledger.resolve(dispute_id, "upheld", reason=f"epikrise for {PATIENT_ID} mangler")
    with pytest.raises(DisputeRefused, match="resolved_by holds a patient identifier"):
        await ledger.resolve(dispute_id, "upheld", resolved_by=f"saksbehandler {PATIENT_ID}")
    await ledger.resolve(dispute_id, "upheld")
    await ledger.send(*episode("EP-Q", ("admission_notified", "2025-02-03T10:00:00+01:00")))
    await ledger.close("2025-02")

    async with ledger.pool.acquire() as conn:
        stored = [
            str([dict(r) for r in await conn.fetch(f"SELECT * FROM {table}")])
            for table in ("disputes", "dispute_log", "adjustments", "statements", "processed_commands")
        ]
    published = [payload.decode() for payload, _ in await ledger.published()]
    for text in [*stored, *published]:
        assert PATIENT_ID not in text.replace(" ", "")


@pytest.mark.parametrize("chunk", [RERATE_CHUNK, 1], ids=["one-chunk", "a-subject-at-a-time"])
async def test_a_rate_corrected_for_days_already_priced_reaches_every_subject_it_priced(
    ledger: Ledger, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settlement_service, "RERATE_CHUNK", chunk)
    monkeypatch.setattr(settlement_service, "PRERATE_CHUNK", chunk)
    # A close used to re-rate, after a tariff change, only the days held without a price and
    # the stays still running: a corrected rate for days already priced reached only the
    # subjects a new event happened to re-rate, and then as caused by that event.
    await ledger.send(
        *ten_days_in_january("EP-P"),  # 11-20 Jan: 10 days, priced and settled in January
        *episode(
            "EP-Q",
            ("admission_notified", "2025-01-20T10:00:00+01:00"),
            ("declared_ready", "2025-01-25T09:00:00+01:00"),
            ("municipality_notified", "2025-01-25T11:00:00+01:00"),
        ),  # from 25 Jan, still waiting: 7 days in January, then February
    )
    await ledger.close("2025-01")
    [(_, jan)] = await ledger.published(f"municipality:{MUNICIPALITY}")
    assert jan["totals"]["municipality_pays_ore"] == 17 * DAY

    rate = next(r for r in ledger.tariffs.rules if r.id == "national.discharge-ready.2025")
    corrected = build_book(
        [*(r for r in ledger.tariffs.rules if r is not rate), replace(rate, value=Decimal("6000"))]
    )
    await ledger.close("2025-02", tariffs=corrected)

    feb = (await ledger.published(f"municipality:{MUNICIPALITY}"))[1][1]
    assert sorted(
        (a["episode_id"], a["corrects_month"], a["quantity_delta"], a["amount_delta_ore"], a["cause"])
        for a in feb["adjustments"]
    ) == [
        ("EP-P", "2025-01", 0, 10 * 1_900, "tariff"),
        ("EP-Q", "2025-01", 0, 7 * 1_900, "tariff"),
    ]
    assert [(line["quantity"], line["unit_price_ore"]) for line in feb["lines"]] == [(28, 600_000)]


@pytest.mark.parametrize("settled", [True, False], ids=["adjustment-settled", "adjustment-pending"])
async def test_a_rate_corrected_reaches_days_booked_only_by_an_adjustment(
    ledger: Ledger, settled: bool
) -> None:
    # Found by the items_now property (test_items_now_properties.py): a stay whose events all
    # came after January closed has January's days on an adjustment only, no item of January
    # in the ledger; the close that took a corrected rate looked for items, so the rate never
    # reached those days, and the statements stood at the old price for good.
    await ledger.close("2025-01")
    await ledger.send(*ten_days_in_january("EP-L"))  # late: +10 days for January, pending
    if settled:
        await ledger.close("2025-02")  # settles the +10 days at 5 981 NOK
    rate = next(r for r in ledger.tariffs.rules if r.id == "national.discharge-ready.2025")
    corrected = build_book(
        [*(r for r in ledger.tariffs.rules if r is not rate), replace(rate, value=Decimal("6000"))]
    )
    await ledger.close("2025-03" if settled else "2025-02", tariffs=corrected)

    last = (await ledger.published(f"municipality:{MUNICIPALITY}"))[-1][1]
    [adjustment] = last["adjustments"]
    assert (adjustment["episode_id"], adjustment["corrects_month"]) == ("EP-L", "2025-01")
    if settled:
        assert (adjustment["quantity_delta"], adjustment["amount_delta_ore"], adjustment["cause"]) == (
            0,
            10 * 1_900,
            "tariff",
        )
    else:  # the event's adjustment, priced by the book of the close that publishes it
        assert (adjustment["quantity_delta"], adjustment["amount_delta_ore"], adjustment["cause"]) == (
            10,
            10 * 600_000,
            "event",
        )
    assert [(i["days"], i["amount_ore"]) for i in adjustment["items_now"]] == [(10, 10 * 600_000)]


async def test_an_activity_recorded_after_the_month_it_ended_in_closed_is_booked_to_that_month(
    ledger: Ledger,
) -> None:
    # Found by the items_now property (test_items_now_properties.py): rating skipped the
    # closed months for a subject with no fact on or before the last closed day, by when its
    # events happened; an activity is priced on the day it ended, which its recording follows.
    # Recorded after its month closed, it was in no month at all: closed months are not
    # rewritten, and no adjustment was booked.
    await ledger.close("2025-01")
    await ledger.send(activity("ACT-R", "activity_recorded", "2025-02-03T10:00:00+01:00", points="1.5"))
    await ledger.close("2025-02")

    [(_, feb)] = await ledger.published(f"municipality:{MUNICIPALITY}")
    [adjustment] = feb["adjustments"]
    assert (
        adjustment["episode_id"],
        adjustment["corrects_month"],
        adjustment["quantity_delta"],
        adjustment["amount_delta_ore"],
        adjustment["cause"],
    ) == ("ACT-R", "2025-01", 1, 783_720, "event")  # 0.10 x 1.5 x 52 248 NOK, ended 15 January
    assert [(i["first_day"], i["amount_ore"]) for i in adjustment["items_now"]] == [("2025-01-15", 783_720)]


async def test_a_share_agreed_later_for_days_past_prices_activities_that_had_none(ledger: Ledger) -> None:
    # An activity with no share in force has no item at all, so only its events can tell a
    # close that a share now agreed for its day prices it.
    bergen = "4601"
    topic, value = activity("ACT-B", "activity_recorded", "2025-01-15T20:00:00+01:00", points="1.5")
    await ledger.send((topic, value | {"registered_municipality": bergen}))
    await ledger.close("2025-01")
    assert await ledger.published(f"municipality:{bergen}") == []

    agreed = [
        TariffRule(
            id=f"agreement.{bergen}.{parameter.value}",
            parameter=parameter,
            value=Decimal(value),
            valid_from=date(2025, 1, 1),
            valid_until=date(2026, 1, 1),
            scope=Scope.AGREEMENT,
            municipalities=frozenset({bergen}),
            health_trust=TRUST,
        )
        for parameter, value in (
            (Parameter.CO_FINANCING_SHARE, "0.10"),
            (Parameter.CO_FINANCING_UNIT_PRICE_NOK, "52248"),
        )
    ]
    await ledger.close("2025-02", tariffs=build_book([*ledger.tariffs.rules, *agreed]))

    [(_, feb)] = await ledger.published(f"municipality:{bergen}")
    assert [
        (a["episode_id"], a["corrects_month"], a["quantity_delta"], a["amount_delta_ore"], a["cause"])
        for a in feb["adjustments"]
    ] == [("ACT-B", "2025-01", 1, 783_720, "tariff")]  # 0.10 x 1.5 x 52 248 NOK


async def test_a_grace_removed_for_days_past_pays_the_days_it_had_kept_from_payment(ledger: Ledger) -> None:
    # A grace is looked up on the notice's day and may leave an episode with no item at
    # all; a book without it must still find that episode by its notice.
    grace = TariffRule(
        id="agreement.test.grace",
        parameter=Parameter.DISCHARGE_READY_GRACE_HOURS,
        value=Decimal(24),
        valid_from=date(2025, 1, 1),
        valid_until=date(2026, 1, 1),
        scope=Scope.AGREEMENT,
        municipalities=frozenset({MUNICIPALITY}),
        health_trust=TRUST,
    )
    without = ledger.tariffs
    ledger.tariffs = build_book([*without.rules, grace])
    await ledger.send(
        *episode(
            "EP-G",
            ("admission_notified", "2025-01-05T10:00:00+01:00"),
            ("declared_ready", "2025-01-10T09:00:00+01:00"),
            ("municipality_notified", "2025-01-10T11:00:00+01:00"),
            ("municipality_can_receive", "2025-01-11T09:00:00+01:00"),
        )  # with the grace, payment would start on 11 Jan, the day it ends: nothing paid
    )
    await ledger.close("2025-01")
    assert await ledger.published(f"municipality:{MUNICIPALITY}") == []

    await ledger.close("2025-02", tariffs=without)

    [(_, feb)] = await ledger.published(f"municipality:{MUNICIPALITY}")
    assert [
        (a["episode_id"], a["corrects_month"], a["quantity_delta"], a["amount_delta_ore"], a["cause"])
        for a in feb["adjustments"]
    ] == [("EP-G", "2025-01", 1, DAY, "tariff")]  # 10 Jan, paid without the grace


async def test_a_close_retried_with_the_book_it_had_given_up_prices_by_that_book(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A close commits its re-rating, then its statements. Should the statements fail and
    # the operator go back to the earlier book, the retry compared that book with the last
    # close's (the same) and issued statements priced by the book given up.
    await ledger.send(*ten_days_in_january("EP-R"))
    await ledger.close("2025-01")
    before = ledger.tariffs
    rate = next(r for r in before.rules if r.id == "national.discharge-ready.2025")
    mistaken = build_book([*(r for r in before.rules if r is not rate), replace(rate, value=Decimal("9999"))])

    real_issue = settlement_service._issue_statements

    async def failing(*args: object, **kwargs: object) -> object:
        raise RuntimeError("the statements' transaction failed")

    monkeypatch.setattr(settlement_service, "_issue_statements", failing)
    with pytest.raises(RuntimeError):
        await ledger.close("2025-02", tariffs=mistaken)
    monkeypatch.setattr(settlement_service, "_issue_statements", real_issue)
    await ledger.close("2025-02", tariffs=before)

    published = await ledger.published(f"municipality:{MUNICIPALITY}")
    assert len(published) == 1, "February has nothing to settle once the mistaken rate is undone"
    async with ledger.pool.acquire() as conn:
        pending = await conn.fetchval("SELECT count(*) FROM adjustments WHERE amount_delta_ore <> 0")
    assert pending == 0


async def test_a_month_closed_after_a_later_one_settles_its_own_items_and_leaves_whats_pending_for_the_next(
    ledger: Ledger,
) -> None:
    # Found by a hospital integration audit: a month closed after later ones (one skipped, or
    # one before the first closed, for late events) issued its statement with the adjustments
    # pending for the later months on it: a 2014 statement carrying 2025's corrections.
    await ledger.send(*ten_days_in_january("EP-ORDER-JAN"))
    await ledger.close("2025-01")
    await ledger.close("2025-03")  # February skipped
    assert await left_open(ledger) == []  # nothing in February yet
    await ledger.send(
        dr("ready_withdrawn", "2025-01-16T09:00:00+01:00", episode_id="EP-ORDER-JAN"),  # late for January
        *episode(
            "EP-ORDER-FEB",
            ("admission_notified", "2025-02-03T10:00:00+01:00"),
            ("declared_ready", "2025-02-10T09:00:00+01:00"),
            ("municipality_notified", "2025-02-10T11:00:00+01:00"),
            ("municipality_can_receive", "2025-02-12T09:00:00+01:00"),
        ),
    )

    assert await left_open(ledger) == [("2025-02", 1)]  # `settlement pending` shows it
    await ledger.close("2025-02")
    await ledger.close("2025-04")

    assert await left_open(ledger) == []
    copies = {s["period"]: s for _key, s in await ledger.published(f"municipality:{MUNICIPALITY}")}
    assert [i["episode_id"] for i in copies["2025-02"]["items"]] == ["EP-ORDER-FEB"]
    assert copies["2025-02"]["adjustments"] == [], "February's statement carried what is pending for January"
    [adjustment] = copies["2025-04"]["adjustments"]
    assert (adjustment["episode_id"], adjustment["corrects_month"]) == ("EP-ORDER-JAN", "2025-01")


async def left_open(ledger: Ledger) -> list[tuple[str, int]]:
    async with ledger.pool.acquire() as conn:
        return [(str(r["service_month"])[:7], r["items"]) for r in await months_left_open(conn)]


async def test_days_priced_after_a_rate_was_added_are_not_rated_again_by_a_later_unrelated_change(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Found rehearsing the 2026 rate's addition: a closed month's held item stays unpriced in
    # ledger_items after the adjustment priced its days, and every later change of the book
    # (next year's rate) re-rated every subject ever held, under the close's lock, for nothing.
    # A change that does price its days (the rate corrected) still reaches it.
    rerated: list[list[str]] = []
    rerate = settlement_service.rerate

    async def recording(conn: Any, keys: list[str], *args: Any, **kwargs: Any) -> Any:
        rerated.append(list(keys))
        return await rerate(conn, keys, *args, **kwargs)

    monkeypatch.setattr(settlement_service, "rerate", recording)

    await ledger.send(*ten_days_in_january_2026("EP-HELD"))
    shipped = list(ledger.tariffs.rules)
    await ledger.close("2026-01")
    await ledger.close("2026-02", tariffs=build_book([*shipped, national_rate(2026, "6200")]))
    held = [key for keys in rerated for key in keys if "EP-HELD" in key]
    assert held, "the rate added prices the held days"

    rerated.clear()
    await ledger.close(
        "2026-03", tariffs=build_book([*shipped, national_rate(2026, "6200"), national_rate(2027, "6400")])
    )
    assert not [key for keys in rerated for key in keys if "EP-HELD" in key], "2027's rate prices no 2026 day"

    await ledger.close(
        "2026-04", tariffs=build_book([*shipped, national_rate(2026, "6300"), national_rate(2027, "6400")])
    )
    apr = (await ledger.published(f"municipality:{MUNICIPALITY}"))[-1][1]
    assert [(a["episode_id"], a["amount_delta_ore"], a["cause"]) for a in apr["adjustments"]] == [
        ("EP-HELD", 10 * 10_000, "tariff")
    ], "a corrected rate still reaches the days it priced"


async def test_days_held_by_an_intake_still_on_the_old_book_are_priced_by_the_close(ledger: Ledger) -> None:
    # The runbook says to restart intake and the settlement service after adding a rate. Should
    # intake run on the book without it a while longer, it holds the days it rates; the close,
    # whose book has not changed since its last re-rating, finds them held in the month it
    # closes and prices them.
    shipped = ledger.tariffs
    with_rate = build_book([*shipped.rules, national_rate(2026, "6200")])
    await ledger.close("2026-01", tariffs=with_rate)  # the settlement service restarted with the rate
    ledger.tariffs = shipped  # intake not yet
    await ledger.send(
        *episode(
            "EP-OLD-BOOK",
            ("admission_notified", "2026-02-02T10:00:00+01:00"),
            ("declared_ready", "2026-02-03T09:00:00+01:00"),
            ("municipality_notified", "2026-02-03T11:00:00+01:00"),
            ("municipality_can_receive", "2026-02-10T09:00:00+01:00"),
        )
    )
    await ledger.close("2026-02", tariffs=with_rate)

    feb = (await ledger.published(f"municipality:{MUNICIPALITY}"))[-1][1]
    assert [(i["episode_id"], i["days"], i["amount_ore"]) for i in feb["items"]] == [
        ("EP-OLD-BOOK", 7, 7 * 620_000)
    ]


async def test_a_close_of_a_month_already_closed_changes_nothing_even_with_a_changed_book(
    ledger: Ledger,
) -> None:
    # A close command redelivered, or sent twice, is handled by doing nothing: not by
    # re-rating for a tariff book changed since (the next close of a new month does that).
    await ledger.send(*ten_days_in_january("EP-TWICE"))
    await ledger.close("2025-01")
    rate = next(r for r in ledger.tariffs.rules if r.id == "national.discharge-ready.2025")
    corrected = build_book(
        [*(r for r in ledger.tariffs.rules if r is not rate), replace(rate, value=Decimal("6000"))]
    )

    result = await ledger.close("2025-01", tariffs=corrected)

    assert result.already_closed
    async with ledger.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM adjustments") == 0
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM tariff_books WHERE fingerprint = $1", corrected.fingerprint()
            )
            == 0
        )


@pytest.mark.parametrize("then", ["the-same-book", "the-change-rolled-back"])
async def test_a_close_stopped_half_way_through_rating_a_changed_book_leaves_no_price_of_another_book(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch, then: str
) -> None:
    # Found rehearsing the 2026 rate's addition: a close re-rates what a changed book prices
    # in transactions of its own before taking its lock. Stopped half-way, and started again
    # with the earlier book (the change rolled back), it found no change since the book it
    # had last finished with, and the next statements carried 19,574 adjustments priced at
    # the rate taken out again. With the same book, it rates the rest as before.
    monkeypatch.setattr(settlement_service, "PRERATE_CHUNK", 1)
    for episode_id in ("EP-STOP-1", "EP-STOP-2"):
        await ledger.send(*ten_days_in_january_2026(episode_id))
    shipped = ledger.tariffs
    await ledger.close("2026-01")  # 10 days each held: no 2026 rate in the shipped book
    with_rate = build_book([*shipped.rules, national_rate(2026, "6200")])

    rerate = settlement_service.rerate
    chunks = 0

    async def stopped_at_the_second_chunk(conn: Any, keys: list[str], *args: Any, **kwargs: Any) -> Any:
        nonlocal chunks
        chunks += 1
        if chunks == 2:
            raise RuntimeError("the settlement service was stopped")
        return await rerate(conn, keys, *args, **kwargs)

    monkeypatch.setattr(settlement_service, "rerate", stopped_at_the_second_chunk)
    with pytest.raises(RuntimeError, match="stopped"):
        await ledger.close("2026-02", tariffs=with_rate)
    monkeypatch.setattr(settlement_service, "rerate", rerate)
    async with ledger.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM adjustments WHERE amount_delta_ore <> 0") == 1

    await ledger.close("2026-02", tariffs=with_rate if then == "the-same-book" else shipped)

    feb = (await ledger.published(f"municipality:{MUNICIPALITY}"))[-1][1]
    assert sorted((a["episode_id"], a["amount_delta_ore"]) for a in feb["adjustments"]) == (
        [("EP-STOP-1", 10 * 620_000), ("EP-STOP-2", 10 * 620_000)] if then == "the-same-book" else []
    )
