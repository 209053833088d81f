"""An adjustment carries the items it leads to (`AdjustmentLine.items_now`), so that finance
can check it from the statements alone: what the closed month's statement settled, plus the
adjustment's difference, is what its items now add up to, in days and in øre.

Found in a finance audit: an adjustment said "-19 days, +9,600 NOK" and nothing said which
days the corrected item now covers, under which rule, at which price.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from contracts.v1.outbound import SettlementStatement, StatementItem
from services.adapters import ledger_repository as repo
from services.adapters.tariff_files import load_tariffs
from services.domain.calendar import Month
from services.domain.chain import chain_breaks
from services.domain.ledger import Category, ItemStatus, LedgerItem, PayerRole
from services.domain.statements import Adjustment
from services.domain.tariffs import Parameter, TariffBook, TariffRule, build_book
from services.rating.service import _differences, rate_subject
from services.settlement.statements import build_statements, encode_statements, wire_item
from services.tariffs import DEFAULT_TARIFF_DIR

NATIONAL = load_tariffs(DEFAULT_TARIFF_DIR)
TRUST, MUNICIPALITY = "983974724", "4624"  # Haukeland, Bjørnafjorden
DAY_2025 = 598_100  # national.discharge-ready.2025: 5 981 NOK a bed-day
RATE_2025 = "national.discharge-ready.2025"
LATE = ("itest.late", "6a0f1d7e-8a43-4d8e-9f51-0c6b9e3d2a10")
UNIT_PRICE_2014 = TariffRule(  # no unit price for 2014 was found (tariffs/national-co-financing.toml)
    "test.co-financing.unit-price.2014",
    Parameter.CO_FINANCING_UNIT_PRICE_NOK,
    Decimal("40000"),
    date(2014, 1, 1),
    date(2015, 1, 1),
)
RATE_2026 = TariffRule(  # 2026 is not confirmed by any source (domain.md section 1)
    "test.discharge-ready.2026",
    Parameter.DISCHARGE_READY_DAY_RATE_NOK,
    Decimal("6200"),
    date(2026, 1, 1),
    None,
)


def episode_event(kind: str, at: str) -> dict[str, Any]:
    return {
        "type": kind,
        "occurred_at": at,
        "event_id": f"{kind}-{at}",
        "registered_municipality": MUNICIPALITY,
        "staying_municipality": MUNICIPALITY,
        "care_area": "somatic",
    }


def activity_event(kind: str, at: str) -> dict[str, Any]:
    facts = {
        "drg_points": "1.5",
        "surgical": False,
        "category": "ordinary",
        "ended_at": "2014-03-12T12:00:00+01:00",
    }
    return {
        "type": kind,
        "occurred_at": at,
        "event_id": f"{kind}-{at}",
        "registered_municipality": MUNICIPALITY,
        "care_area": "somatic",
        **({} if kind == "activity_cancelled" else facts),
    }


# Still waiting at January's close: paid 10-31 January, 22 days (R1 from the notice's day, R7).
WAITING_FROM_10_JANUARY = [
    episode_event("admission_notified", "2025-01-05T10:00:00+01:00"),
    episode_event("declared_ready", "2025-01-10T09:00:00+01:00"),
    episode_event("municipality_notified", "2025-01-10T11:00:00+01:00"),
]
WAITING_2026 = [
    episode_event("admission_notified", "2026-01-05T10:00:00+01:00"),
    episode_event("declared_ready", "2026-01-06T09:00:00+01:00"),
    episode_event("municipality_notified", "2026-01-06T11:00:00+01:00"),
    episode_event("municipality_can_receive", "2026-01-16T09:00:00+01:00"),
]
RECORDED_2014 = [activity_event("activity_recorded", "2014-03-12T20:00:00+01:00")]


def settled_then_late(
    key: str,
    month: Month,
    before: Sequence[Mapping[str, Any]],
    late: Sequence[Mapping[str, Any]],
    tariffs: tuple[TariffBook, TariffBook],
    cause: str = "event",
) -> tuple[list[LedgerItem], repo.PendingAdjustment]:
    """The items `month`'s close settled from `before`, and the one adjustment the `late`
    facts then book for it (rating as services.rating.rerate does, without the database)."""
    settled = [i for i in rate_subject(key, before, tariffs[0], month.last_day) if i.service_month == month]
    booked: dict[tuple[Month, repo.Side], repo.Booked] = {}
    for item in settled:
        side = (item.municipality, item.health_trust, item.category.value, item.payer_role.value)
        was = booked.get((month, side), repo.Booked(0, 0))
        booked[(month, side)] = repo.Booked(
            was.quantity + item.quantity, was.amount_ore + (item.amount_ore or 0)
        )
    now = rate_subject(key, [*before, *late], tariffs[1], month.last_day)
    new_cause = (cause, LATE) if cause == "event" else None
    [adjustment] = _differences(key, now, {month}, booked, new_cause, {})
    return settled, adjustment


def as_items(*rows: tuple[str, str, int, int | None, ItemStatus, str | None]) -> list[tuple[Any, ...]]:
    return [(date.fromisoformat(f), date.fromisoformat(last), *rest) for f, last, *rest in rows]


# Columns: the subject, the month closed, the facts it settled, the late facts, the tariff books
# before and after, the cause, and the items now (first day, last day, days, amount, status, rule).
WORKED_EXAMPLES = [
    pytest.param(
        f"discharge_ready:{TRUST}:EP-A",
        Month(2025, 1),
        WAITING_FROM_10_JANUARY,
        [episode_event("discharged", "2025-01-25T14:00:00+01:00")],
        (NATIONAL, NATIONAL),
        "event",
        as_items(("2025-01-10", "2025-01-24", 15, 15 * DAY_2025, ItemStatus.PRICED, RATE_2025)),
        id="R2 a late discharge on 25 Jan ends payment that day: 10-24 Jan, 15 days, not 22",
    ),
    pytest.param(
        f"discharge_ready:{TRUST}:EP-B",
        Month(2025, 1),
        WAITING_FROM_10_JANUARY,
        [
            episode_event("ready_withdrawn", "2025-01-20T08:00:00+01:00"),
            episode_event("declared_ready", "2025-01-25T09:00:00+01:00"),
            episode_event("municipality_notified", "2025-01-25T10:00:00+01:00"),
            episode_event("municipality_can_receive", "2025-01-28T09:00:00+01:00"),
        ],
        (NATIONAL, NATIONAL),
        "event",
        as_items(
            ("2025-01-10", "2025-01-19", 10, 10 * DAY_2025, ItemStatus.PRICED, RATE_2025),
            ("2025-01-25", "2025-01-27", 3, 3 * DAY_2025, ItemStatus.PRICED, RATE_2025),
        ),
        id="R2, R3 withdrawn on 20 Jan, ready and notified again on 25 Jan: two items, with the gap between",
    ),
    pytest.param(
        f"activity:{TRUST}:ACT-C",
        Month(2014, 3),
        RECORDED_2014,
        [activity_event("activity_cancelled", "2014-03-20T10:00:00+01:00")],
        (build_book([*NATIONAL.rules, UNIT_PRICE_2014]),) * 2,
        "event",
        [],
        id="A3 an activity cancelled: nothing stands for the month, so no item now",
    ),
    pytest.param(
        f"discharge_ready:{TRUST}:EP-E",
        Month(2026, 1),
        WAITING_2026,
        [],
        (NATIONAL, build_book([*NATIONAL.rules, RATE_2026])),
        "tariff",
        as_items(("2026-01-06", "2026-01-15", 10, 10 * 620_000, ItemStatus.PRICED, RATE_2026.id)),
        id="R6 days held for want of a rate are priced when it comes: the same days, priced now",
    ),
]


@pytest.mark.parametrize(("key", "month", "before", "late", "tariffs", "cause", "expected"), WORKED_EXAMPLES)
def test_an_adjustment_carries_its_items_now_and_what_was_settled_plus_it_is_them(
    key: str,
    month: Month,
    before: list[dict[str, Any]],
    late: list[dict[str, Any]],
    tariffs: tuple[TariffBook, TariffBook],
    cause: str,
    expected: list[tuple[Any, ...]],
) -> None:
    settled, adjustment = settled_then_late(key, month, before, late, tariffs, cause)

    assert adjustment.cause == cause
    assert [
        (i.first_day, i.last_day, i.quantity, i.amount_ore, i.status, i.rule_id) for i in adjustment.items_now
    ] == expected
    # previous + difference = now, in days and to the øre
    assert sum(i.quantity for i in settled) + adjustment.quantity_delta == sum(
        i.quantity for i in adjustment.items_now
    )
    assert sum(i.amount_ore or 0 for i in settled) + adjustment.amount_delta_ore == sum(
        i.amount_ore or 0 for i in adjustment.items_now
    )
    assert all(i.service_month == month for i in adjustment.items_now)


def test_items_now_are_stored_and_read_back_as_they_were() -> None:
    _, two_items = settled_then_late(*WORKED_EXAMPLES[1].values[:6])  # type: ignore[arg-type]
    priced, unrated = two_items.items_now
    items_now = (
        replace(priced, note="municipality number 1201 retired: settled on its successor 4601"),
        replace(unrated, unit_price_ore=None, amount_ore=None, rule_id=None),
        replace(unrated, first_day=date(2025, 1, 30), last_day=date(2025, 1, 31), quantity=2,
                not_payable_reason="no agreed rate for the pair"),
    )  # fmt: skip
    row = {
        "category": Category.DISCHARGE_READY_BED_DAYS.value,
        "subject_id": "EP-B",
        "health_trust": TRUST,
        "municipality": MUNICIPALITY,
        "payer_role": PayerRole.MUNICIPALITY.value,
        "corrects_month": date(2025, 1, 1),
        "items_now": repo.items_now_json(items_now),
    }
    assert repo.items_now_from_row(row) == items_now  # type: ignore[arg-type]
    # parsed by the services' json codec, or text on a plain connection: the same items
    parsed = row | {"items_now": json.loads(row["items_now"])}
    assert repo.items_now_from_row(parsed) == items_now  # type: ignore[arg-type]
    assert repo.items_now_from_row(row | {"items_now": "[]"}) == ()  # type: ignore[arg-type]
    assert repo.items_now_from_row(row | {"items_now": None}) is None  # type: ignore[arg-type]


JANUARY = Month(2025, 1)
ISSUED = datetime(2025, 3, 1, 6, 0, tzinfo=UTC)


def february_statements(adjustments: list[Adjustment]) -> tuple[SettlementStatement, SettlementStatement]:
    return build_statements(
        Month(2025, 2),
        MUNICIPALITY,
        TRUST,
        [],
        ISSUED,
        sequence=2,
        previous_hash=None,
        adjustments=adjustments,
    )


def adjustment_with(
    items_now: tuple[LedgerItem, ...] | None, subject: str, cause: str = "event"
) -> Adjustment:
    return Adjustment(
        category=Category.DISCHARGE_READY_BED_DAYS,
        payer_role=PayerRole.MUNICIPALITY,
        corrects_month=JANUARY,
        subject_id=subject,
        quantity_delta=-7,
        amount_delta_ore=-7 * DAY_2025,
        cause=cause,
        caused_by=LATE if cause == "event" else None,
        dispute_id=str(uuid.uuid4()) if cause == "dispute" else None,
        items_now=items_now,
    )


def test_the_statement_shows_each_item_now_as_the_months_statement_shows_an_item() -> None:
    settled, pending = settled_then_late(*WORKED_EXAMPLES[0].values[:6])  # type: ignore[arg-type]
    adjustment = adjustment_with(pending.items_now, "EP-A")
    to_municipality, _ = february_statements([adjustment])
    january, _ = build_statements(JANUARY, MUNICIPALITY, TRUST, settled, ISSUED)

    [line] = to_municipality.adjustments
    assert line.items_now == (
        StatementItem.model_validate(
            {
                "category": "discharge_ready_bed_days",
                "episode_id": "EP-A",
                "service_month": "2025-01",
                "first_day": "2025-01-10",
                "last_day": "2025-01-24",
                "days": 15,
                "amount_ore": 15 * DAY_2025,
                "status": "priced",
                "rule": RATE_2025,
                "note": None,
            }
        ),
    )
    # January's statement and February's adjustment, as finance reads them: add up to the item now
    [was] = [i for i in january.items if i.episode_id == "EP-A"]
    assert (was.days + line.quantity_delta, (was.amount_ore or 0) + line.amount_delta_ore) == (
        line.items_now[0].days,
        line.items_now[0].amount_ore,
    )
    assert (was.first_day, was.last_day, was.days) == (date(2025, 1, 10), date(2025, 1, 31), 22)


def test_items_now_are_in_the_hash_so_the_chain_catches_one_altered() -> None:
    first, _ = build_statements(
        Month(2025, 2),
        MUNICIPALITY,
        TRUST,
        [],
        ISSUED,
        adjustments=[adjustment_with((wire_item_of(15),), "EP-A")],
    )
    body = first.model_dump(mode="json")
    assert chain_breaks([body]) == []
    altered = json.loads(json.dumps(body))
    altered["adjustments"][0]["items_now"][0]["days"] = 16
    assert chain_breaks([altered]) == [
        f"statement {first.statement_id} (sequence 1): its content does not match the hash it was "
        "published with: it was altered"
    ]


def wire_item_of(days: int) -> LedgerItem:
    return LedgerItem(
        category=Category.DISCHARGE_READY_BED_DAYS,
        subject_id="EP-A",
        health_trust=TRUST,
        municipality=MUNICIPALITY,
        payer_role=PayerRole.MUNICIPALITY,
        service_month=JANUARY,
        first_day=date(2025, 1, 10),
        last_day=date(2025, 1, 9 + days),
        quantity=days,
        unit_price_ore=DAY_2025,
        amount_ore=days * DAY_2025,
        rule_id=RATE_2025,
    )


@pytest.mark.parametrize(
    "items_now",
    [(wire_item_of(15),), (), None],
    ids=["an item now", "none any more (cancelled)", "not given (a dispute's credit)"],
)
def test_the_encoded_statement_is_the_models_with_items_now_byte_for_byte_in_its_hash(
    items_now: tuple[LedgerItem, ...] | None,
) -> None:
    # The close encodes statements around items rendered in SQL, finding the place of the
    # items by an empty `"items":[]`: an adjustment's empty `items_now` must not be taken for it.
    adjustments = [adjustment_with(items_now, "EP-A"), adjustment_with(None, "EP-Z", cause="dispute")]
    reference, _ = february_statements(adjustments)
    encoded = encode_statements(
        Month(2025, 2), MUNICIPALITY, TRUST, [], b"", ISSUED, sequence=2, adjustments=adjustments
    )
    assert encoded.hash == reference.statement_hash
    stored = json.loads(encoded.body)
    assert stored == reference.model_dump(mode="json", exclude={"recipient", "counterparty"})
    assert stored["items"] == []
    assert [a["items_now"] for a in stored["adjustments"]] == [
        None if items_now is None else [wire_item(i).model_dump(mode="json") for i in items_now],
        None,
    ]
