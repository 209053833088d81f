"""Late events change closed months: each adjustment on the next statement carries the items
it leads to, and a finance officer can check it from the statements alone (finance audit):
the closed month's items, plus the adjustments to them since, are the items now, in days and
to the øre. And the statements still chain and verify."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import pytest

from services.adapters.ledger_repository import payloads_by_subject
from services.rating.service import rate_subject
from services.settlement.statements import wire_item
from services.settlement.verification import verify_database, verify_published
from tests.integration.ledger_harness import Ledger

# the pair 4624 / 983974724 and its helpers, as there
from tests.integration.test_corrections_and_disputes import DAY, MUNICIPALITY, TRUST, dr
from tests.integration.test_corrections_and_disputes import activity as activity_of

pytestmark = pytest.mark.integration


def waiting_from(episode_id: str, day: int) -> list[tuple[str, dict[str, Any]]]:
    """An episode discharge-ready and notified on `day` January 2025, still waiting."""
    return [
        dr("admission_notified", "2025-01-02T10:00:00+01:00", episode_id=episode_id),
        dr("declared_ready", f"2025-01-{day:02}T09:00:00+01:00", episode_id=episode_id),
        dr("municipality_notified", f"2025-01-{day:02}T11:00:00+01:00", episode_id=episode_id),
    ]


def activity(
    kind: str, at: str, activity_id: str = "ACT-D", points: str = "1.5"
) -> tuple[str, dict[str, Any]]:
    return activity_of(activity_id, kind, at, points)


def of(statement: Mapping[str, Any], episode_id: str) -> list[dict[str, Any]]:
    return [i for i in statement["items"] if i["episode_id"] == episode_id]


def days_and_ore(items: Sequence[Mapping[str, Any]]) -> tuple[int, int]:
    return sum(i["days"] for i in items), sum(i["amount_ore"] or 0 for i in items)


async def items_rated_now(ledger: Ledger, family: str, episode_id: str, month: str) -> list[dict[str, Any]]:
    """What rating the stored facts gives for `month` today, as a statement shows items."""
    key = f"{family}:{TRUST}:{episode_id}"
    async with ledger.pool.acquire() as conn:
        facts = (await payloads_by_subject(conn, [key]))[key]
    return [
        wire_item(i).model_dump(mode="json")
        for i in rate_subject(key, facts, ledger.tariffs, date(2025, 1, 31), ledger.registry)
        if str(i.service_month) == month
    ]


async def test_each_adjustment_carries_the_items_it_leads_to_and_the_statements_add_up_to_them(
    ledger: Ledger,
) -> None:
    await ledger.send(
        *waiting_from("EP-A", 10),
        *waiting_from("EP-B", 3),
        activity("activity_recorded", "2025-01-15T20:00:00+01:00"),
        activity("activity_recorded", "2025-01-15T20:00:00+01:00", activity_id="ACT-C"),
    )
    await ledger.close("2025-01")
    [(_, jan)] = await ledger.published(f"municipality:{MUNICIPALITY}")
    assert [(i["first_day"], i["last_day"], i["days"]) for i in of(jan, "EP-A")] == [
        ("2025-01-10", "2025-01-31", 22)
    ]

    # Late: A discharged on 25 Jan; B's status withdrawn on 20 Jan; D cancelled; C corrected.
    await ledger.send(
        dr("discharged", "2025-01-25T14:00:00+01:00", episode_id="EP-A", destination="home"),
        dr("ready_withdrawn", "2025-01-20T08:00:00+01:00", episode_id="EP-B"),
        activity("activity_cancelled", "2025-02-03T10:00:00+01:00"),
        activity("activity_corrected", "2025-02-02T10:00:00+01:00", activity_id="ACT-C", points="2.0"),
    )
    await ledger.close("2025-02")
    feb = (await ledger.published(f"municipality:{MUNICIPALITY}"))[1][1]
    by_episode = {a["episode_id"]: a for a in feb["adjustments"]}
    assert {e: (a["quantity_delta"], a["amount_delta_ore"]) for e, a in by_episode.items()} == {
        "EP-A": (-7, -7 * DAY),
        "EP-B": (-12, -12 * DAY),
        "ACT-D": (-1, -783_720),
        "ACT-C": (0, 1_044_960 - 783_720),  # 0.10 x 2.0 (not 1.5) x 52 248 NOK
    }
    assert [
        (i["first_day"], i["last_day"], i["days"], i["amount_ore"], i["status"], i["rule"])
        for i in by_episode["EP-A"]["items_now"]
    ] == [("2025-01-10", "2025-01-24", 15, 15 * DAY, "priced", "national.discharge-ready.2025")]
    assert [(i["first_day"], i["last_day"], i["days"]) for i in by_episode["EP-B"]["items_now"]] == [
        ("2025-01-03", "2025-01-19", 17)
    ]
    assert by_episode["ACT-D"]["items_now"] == [], "cancelled: nothing stands for January"
    [corrected] = by_episode["ACT-C"]["items_now"]
    assert (corrected["first_day"], corrected["days"], corrected["amount_ore"], corrected["note"]) == (
        "2025-01-15",
        1,
        1_044_960,
        "2.0 DRG points",
    )
    for episode_id, adjustment in by_episode.items():
        family = "activity" if episode_id.startswith("ACT") else "discharge_ready"
        # the items now are what rating the facts gives today ...
        assert adjustment["items_now"] == await items_rated_now(ledger, family, episode_id, "2025-01")
        # ... and January's statement plus the adjustment add up to them, to the øre
        settled_days, settled_ore = days_and_ore(of(jan, episode_id))
        assert (
            settled_days + adjustment["quantity_delta"],
            settled_ore + adjustment["amount_delta_ore"],
        ) == days_and_ore(adjustment["items_now"])

    # B ready again on 25 Jan, notified, and the municipality can receive on 28 Jan: a second
    # adjustment to January, whose items now are January's items plus both adjustments.
    await ledger.send(
        dr("declared_ready", "2025-01-25T09:00:00+01:00", episode_id="EP-B"),
        dr("municipality_notified", "2025-01-25T10:00:00+01:00", episode_id="EP-B"),
        dr("municipality_can_receive", "2025-01-28T09:00:00+01:00", episode_id="EP-B"),
    )
    await ledger.close("2025-03")
    mar = (await ledger.published(f"municipality:{MUNICIPALITY}"))[2][1]
    [again] = mar["adjustments"]
    assert (again["episode_id"], again["quantity_delta"], again["amount_delta_ore"]) == ("EP-B", 3, 3 * DAY)
    assert [(i["first_day"], i["last_day"], i["days"]) for i in again["items_now"]] == [
        ("2025-01-03", "2025-01-19", 17),
        ("2025-01-25", "2025-01-27", 3),
    ]
    settled_days, settled_ore = days_and_ore(of(jan, "EP-B"))
    before = by_episode["EP-B"]
    assert (
        settled_days + before["quantity_delta"] + again["quantity_delta"],
        settled_ore + before["amount_delta_ore"] + again["amount_delta_ore"],
    ) == days_and_ore(again["items_now"])
    assert days_and_ore(before["items_now"]) == (
        settled_days + before["quantity_delta"],
        settled_ore + before["amount_delta_ore"],
    )

    # A dispute's credit changes no item: it has none now.
    dispute = await ledger.dispute(
        jan["statement_id"],
        episode_id="EP-A",
        category="discharge_ready_bed_days",
        month="2025-01",
        amount_ore=2 * DAY,
        by=f"municipality:{MUNICIPALITY}",
    )
    await ledger.resolve(dispute, "upheld")
    await ledger.close("2025-04")
    apr = (await ledger.published(f"municipality:{MUNICIPALITY}"))[3][1]
    assert [(a["cause"], a["amount_delta_ore"], a["items_now"]) for a in apr["adjustments"]] == [
        ("dispute", -2 * DAY, None)
    ]

    # Both parties' copies carry the same, and the chain verifies from the database and as
    # published (the bytes the relay sends).
    trust_feb = (await ledger.published(f"health_trust:{TRUST}"))[1][1]
    assert trust_feb["adjustments"] == feb["adjustments"]
    async with ledger.pool.acquire() as conn:
        assert await verify_database(conn, MUNICIPALITY, TRUST) == (4, [])
    assert verify_published([m for _, m in await ledger.published()], MUNICIPALITY, TRUST) == (4, [])


async def test_a_pending_adjustment_recorded_before_items_were_kept_gets_them_at_the_close(
    ledger: Ledger,
) -> None:
    await ledger.send(*waiting_from("EP-A", 10))
    await ledger.close("2025-01")
    late = dr("discharged", "2025-01-25T14:00:00+01:00", episode_id="EP-A", destination="home")
    await ledger.send(late)
    async with ledger.pool.acquire() as conn:
        # as migration 0015 finds a pending adjustment recorded by the service before it
        assert await conn.fetchval("UPDATE adjustments SET items_now = NULL RETURNING id") is not None
    await ledger.close("2025-02")

    [adjustment] = (await ledger.published(f"municipality:{MUNICIPALITY}"))[1][1]["adjustments"]
    assert (adjustment["quantity_delta"], adjustment["cause"]) == (-7, "event")
    assert adjustment["caused_by"]["event_id"] == late[1]["event_id"], "the close's re-rating keeps the cause"
    assert [(i["first_day"], i["last_day"], i["days"]) for i in adjustment["items_now"]] == [
        ("2025-01-10", "2025-01-24", 15)
    ]
