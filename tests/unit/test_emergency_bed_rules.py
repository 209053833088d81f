"""Worked examples for municipal emergency beds (domain.md section 2).

Every row of the table is one stay: the pair, its facts, the day the month is closed
through, and the items it must produce, computed by hand from the rules E1..E5 in
`services.domain.emergency_beds`. The health trust pays the municipality.

The agreement rates below are illustrative (no national rate exists, domain.md section 2
[product]); the tariff book is built here so each row's price is visible in this file.
Municipality numbers are those in force on the dates used: Bergen 4601, Bjørnafjorden
4624 and Alver 4631 all exist from 2020.
"""

from __future__ import annotations

import itertools
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from services.domain.calendar import Month
from services.domain.emergency_beds import END_UNKNOWN, NO_AGREED_RATE, StayFact, StayMilestone, rate_stay
from services.domain.ledger import Category, ItemStatus, LedgerItem, PayerRole
from services.domain.statements import summarise
from services.domain.tariffs import Parameter, Scope, TariffBook, TariffRule, build_book

OSLO_TZ = ZoneInfo("Europe/Oslo")

HELSE_BERGEN = "983974724"
HELSE_FONNA = "983974694"

BERGEN = "4601"
BJORNAFJORDEN = "4624"
ALVER = "4631"

ADMITTED = StayMilestone.ADMITTED
DISCHARGED = StayMilestone.DISCHARGED

RATE = Parameter.EMERGENCY_BED_DAY_RATE_NOK
BERGEN_2024 = "agreement.4601-helse-bergen.emergency-bed.2024"
BERGEN_2025 = "agreement.4601-helse-bergen.emergency-bed.2025"
BJORNAFJORDEN_MARCH = "agreement.4624-helse-bergen.emergency-bed.march-2024"


def agreement(
    rule_id: str, municipality: str, trust: str, nok: str, valid_from: date, valid_until: date | None
) -> TariffRule:
    return TariffRule(
        id=rule_id,
        parameter=RATE,
        value=Decimal(nok),
        valid_from=valid_from,
        valid_until=valid_until,
        scope=Scope.AGREEMENT,
        municipalities=frozenset({municipality}),
        health_trust=trust,
    )


BOOK: TariffBook = build_book(
    [
        # Bergen - Helse Bergen: 3,200 NOK a day in 2024, 3,350.50 NOK from 2025.
        agreement(BERGEN_2024, BERGEN, HELSE_BERGEN, "3200", date(2024, 1, 1), date(2025, 1, 1)),
        agreement(BERGEN_2025, BERGEN, HELSE_BERGEN, "3350.50", date(2025, 1, 1), None),
        # Bjørnafjorden - Helse Bergen: 2,800 NOK a day from 10 Mar to 19 Mar 2024 only.
        agreement(
            BJORNAFJORDEN_MARCH, BJORNAFJORDEN, HELSE_BERGEN, "2800", date(2024, 3, 10), date(2024, 3, 20)
        ),
    ]
)


def at(text: str) -> datetime:
    """An instant: Oslo wall-clock time unless the text carries its own offset (or Z)."""
    instant = datetime.fromisoformat(text)
    return instant if instant.tzinfo is not None else instant.replace(tzinfo=OSLO_TZ)


Fact = tuple[StayMilestone, str]


def facts_of(rows: list[Fact], municipality: str) -> list[StayFact]:
    return [
        StayFact(
            milestone=milestone,
            occurred_at=at(when),
            event_id=f"event-{index:02d}",
            municipality=municipality,
        )
        for index, (milestone, when) in enumerate(rows)
    ]


# month, first day, last day, days, unit price (øre), amount (øre), rule, open_ended, why not payable
Expected = tuple[str, str, str, int, int | None, int | None, str | None, bool, str | None]


def compact(item: LedgerItem) -> Expected:
    return (
        str(item.service_month),
        item.first_day.isoformat(),
        item.last_day.isoformat(),
        item.quantity,
        item.unit_price_ore,
        item.amount_ore,
        item.rule_id,
        item.open_ended,
        item.not_payable_reason,
    )


def rate(facts: list[StayFact], through: str, trust: str = HELSE_BERGEN) -> list[LedgerItem]:
    return rate_stay("stay-1", trust, facts, BOOK, date.fromisoformat(through))


# Columns: rule, municipality, trust, facts, through, expected items.
WORKED_EXAMPLES = [
    pytest.param(
        "E2; domain.md s.2 admission day counted, discharge day not",
        BERGEN,
        HELSE_BERGEN,
        [(ADMITTED, "2024-03-04T14:00"), (DISCHARGED, "2024-03-07T10:00")],
        "2024-03-31",
        # 4, 5, 6 Mar: 3 x 3,200 NOK = 9,600 NOK
        [("2024-03", "2024-03-04", "2024-03-06", 3, 320_000, 960_000, BERGEN_2024, False, None)],
        id="admission-day-counted-discharge-day-not",
    ),
    pytest.param(
        "E2; domain.md s.2 at least one day: admitted and discharged on the same day",
        BERGEN,
        HELSE_BERGEN,
        [(ADMITTED, "2024-03-04T08:00"), (DISCHARGED, "2024-03-04T20:00")],
        "2024-03-31",
        # 4 Mar: 1 x 3,200 NOK
        [("2024-03", "2024-03-04", "2024-03-04", 1, 320_000, 320_000, BERGEN_2024, False, None)],
        id="same-day-stay-counts-one-day",
    ),
    pytest.param(
        "E2; domain.md s.2 a stay over one night counts the admission day only",
        BERGEN,
        HELSE_BERGEN,
        [(ADMITTED, "2024-03-04T23:00"), (DISCHARGED, "2024-03-05T02:00")],
        "2024-03-31",
        [("2024-03", "2024-03-04", "2024-03-04", 1, 320_000, 320_000, BERGEN_2024, False, None)],
        id="overnight-stay-counts-one-day",
    ),
    pytest.param(
        "E2; each month is settled on its own: a stay across a month end is two items",
        BERGEN,
        HELSE_BERGEN,
        [(ADMITTED, "2024-03-29T10:00"), (DISCHARGED, "2024-04-02T09:00")],
        "2024-04-30",
        [
            # 29, 30, 31 Mar: 3 x 3,200 NOK = 9,600 NOK
            ("2024-03", "2024-03-29", "2024-03-31", 3, 320_000, 960_000, BERGEN_2024, False, None),
            # 1 Apr: 1 x 3,200 NOK (2 Apr is the discharge day)
            ("2024-04", "2024-04-01", "2024-04-01", 1, 320_000, 320_000, BERGEN_2024, False, None),
        ],
        id="stay-across-a-month-end-is-split",
    ),
    pytest.param(
        "E1; domain.md s.2 effective-dated rate: each day at the rate in force on it",
        BERGEN,
        HELSE_BERGEN,
        [(ADMITTED, "2024-12-30T12:00"), (DISCHARGED, "2025-01-02T12:00")],
        "2025-01-31",
        [
            # 30, 31 Dec: 2 x 3,200 NOK = 6,400 NOK
            ("2024-12", "2024-12-30", "2024-12-31", 2, 320_000, 640_000, BERGEN_2024, False, None),
            # 1 Jan: 1 x 3,350.50 NOK = 335,050 øre
            ("2025-01", "2025-01-01", "2025-01-01", 1, 335_050, 335_050, BERGEN_2025, False, None),
        ],
        id="stay-across-new-year-two-agreement-rates",
    ),
    pytest.param(
        "E4; a stay still running is paid through the last day of the month being closed",
        BERGEN,
        HELSE_BERGEN,
        [(ADMITTED, "2024-03-25T10:00")],
        "2024-03-31",
        # 25..31 Mar: 7 x 3,200 NOK = 22,400 NOK, still open
        [("2024-03", "2024-03-25", "2024-03-31", 7, 320_000, 2_240_000, BERGEN_2024, True, None)],
        id="open-stay-paid-through-the-month-end",
    ),
    pytest.param(
        "E4; an open stay goes on in the next month, only its last item is open",
        BERGEN,
        HELSE_BERGEN,
        [(ADMITTED, "2024-03-25T10:00")],
        "2024-04-30",
        [
            ("2024-03", "2024-03-25", "2024-03-31", 7, 320_000, 2_240_000, BERGEN_2024, False, None),
            # 1..30 Apr: 30 x 3,200 NOK = 96,000 NOK
            ("2024-04", "2024-04-01", "2024-04-30", 30, 320_000, 9_600_000, BERGEN_2024, True, None),
        ],
        id="open-stay-goes-on-in-the-next-month",
    ),
    pytest.param(
        "E4; a stay not yet begun on the day closed through has nothing to pay",
        BERGEN,
        HELSE_BERGEN,
        [(ADMITTED, "2024-04-02T10:00")],
        "2024-03-31",
        [],
        id="open-stay-admitted-after-the-closing-day-pays-nothing-yet",
    ),
    pytest.param(
        "E3; domain.md s.2 a pair with no agreed rate owes nothing, and says why",
        BJORNAFJORDEN,
        HELSE_FONNA,
        [(ADMITTED, "2024-03-04T14:00"), (DISCHARGED, "2024-03-07T10:00")],
        "2024-03-31",
        # 4, 5, 6 Mar shown as not payable: no price, no amount, no rule, the reason
        [("2024-03", "2024-03-04", "2024-03-06", 3, None, None, None, False, NO_AGREED_RATE)],
        id="pair-without-an-agreed-rate-is-not-payable-with-the-reason",
    ),
    pytest.param(
        "E1 E3; an agreement rate is only for its trust",
        BERGEN,
        HELSE_FONNA,
        [(ADMITTED, "2024-03-04T14:00"), (DISCHARGED, "2024-03-07T10:00")],
        "2024-03-31",
        [("2024-03", "2024-03-04", "2024-03-06", 3, None, None, None, False, NO_AGREED_RATE)],
        id="agreement-rate-not-for-the-same-municipality-with-another-trust",
    ),
    pytest.param(
        "E1 E3; an agreement rate is only for its municipality",
        ALVER,
        HELSE_BERGEN,
        [(ADMITTED, "2024-03-04T14:00"), (DISCHARGED, "2024-03-07T10:00")],
        "2024-03-31",
        [("2024-03", "2024-03-04", "2024-03-06", 3, None, None, None, False, NO_AGREED_RATE)],
        id="agreement-rate-not-for-another-municipality-with-the-same-trust",
    ),
    pytest.param(
        "E1 E3; an agreement rate applies only inside its validity window",
        BJORNAFJORDEN,
        HELSE_BERGEN,
        [(ADMITTED, "2024-03-08T09:00"), (DISCHARGED, "2024-03-22T09:00")],
        "2024-03-31",
        [
            # 8, 9 Mar: before the agreement, not payable
            ("2024-03", "2024-03-08", "2024-03-09", 2, None, None, None, False, NO_AGREED_RATE),
            # 10..19 Mar: 10 x 2,800 NOK = 28,000 NOK
            ("2024-03", "2024-03-10", "2024-03-19", 10, 280_000, 2_800_000, BJORNAFJORDEN_MARCH, False, None),
            # 20, 21 Mar: valid_until is exclusive, not payable again
            ("2024-03", "2024-03-20", "2024-03-21", 2, None, None, None, False, NO_AGREED_RATE),
        ],
        id="agreement-rate-only-inside-its-window",
    ),
    pytest.param(
        "E2; domain.md s.1 days are Europe/Oslo calendar days (00:30 in Oslo is 22:30 UTC)",
        BERGEN,
        HELSE_BERGEN,
        # Summer time began on 31 Mar 2024: 22:30 UTC on 31 Mar is 00:30 on 1 Apr in Oslo.
        [(ADMITTED, "2024-03-31T22:30:00Z"), (DISCHARGED, "2024-04-03T10:00")],
        "2024-04-30",
        # 1, 2 Apr: 2 x 3,200 NOK, all in April
        [("2024-04", "2024-04-01", "2024-04-02", 2, 320_000, 640_000, BERGEN_2024, False, None)],
        id="admission-just-after-oslo-midnight-belongs-to-the-next-day",
    ),
    pytest.param(
        "E2; module docstring: without an admission there is no stay",
        BERGEN,
        HELSE_BERGEN,
        [(DISCHARGED, "2024-03-07T10:00")],
        "2024-03-31",
        [],
        id="discharge-without-admission-pays-nothing",
    ),
    pytest.param(
        "E2; module docstring: the first discharge after the admission ends the stay",
        BERGEN,
        HELSE_BERGEN,
        [
            (DISCHARGED, "2024-03-01T10:00"),
            (ADMITTED, "2024-03-04T14:00"),
            (DISCHARGED, "2024-03-06T10:00"),
            (DISCHARGED, "2024-03-09T10:00"),
        ],
        "2024-03-31",
        # 4, 5 Mar: 2 x 3,200 NOK; the discharge before the admission and the later one do not count
        [("2024-03", "2024-03-04", "2024-03-05", 2, 320_000, 640_000, BERGEN_2024, False, None)],
        id="only-the-first-discharge-after-the-admission-counts",
    ),
    pytest.param(
        "E5; a discharge before the admission and none after: the end is unknown, held",
        BERGEN,
        HELSE_BERGEN,
        [(DISCHARGED, "2024-03-03T10:00"), (ADMITTED, "2024-03-04T14:00")],
        "2024-03-31",
        # 4..31 Mar shown as 28 days not payable, still open: not paid as a running stay
        [("2024-03", "2024-03-04", "2024-03-31", 28, None, None, None, True, END_UNKNOWN)],
        id="discharge-before-the-admission-holds-the-stay",
    ),
    pytest.param(
        "E5; on the admission's own day, a discharge hours before it is before it",
        BERGEN,
        HELSE_BERGEN,
        [(ADMITTED, "2024-03-04T14:00"), (DISCHARGED, "2024-03-04T09:00")],
        "2024-03-31",
        [("2024-03", "2024-03-04", "2024-03-31", 28, None, None, None, True, END_UNKNOWN)],
        id="discharge-hours-before-the-admission-holds-the-stay",
    ),
    pytest.param(
        "E5 E4; a held stay goes on being shown in the next month, only its last item open",
        BERGEN,
        HELSE_BERGEN,
        [(DISCHARGED, "2024-03-20T10:00"), (ADMITTED, "2024-03-25T10:00")],
        "2024-04-30",
        [
            ("2024-03", "2024-03-25", "2024-03-31", 7, None, None, None, False, END_UNKNOWN),
            ("2024-04", "2024-04-01", "2024-04-30", 30, None, None, None, True, END_UNKNOWN),
        ],
        id="held-stay-goes-on-in-the-next-month",
    ),
    pytest.param(
        "E5 E2; an admission before the discharge, sent later, defines the stay again",
        BERGEN,
        HELSE_BERGEN,
        [
            (DISCHARGED, "2024-03-07T10:00"),
            (ADMITTED, "2024-03-09T14:00"),
            (ADMITTED, "2024-03-04T14:00"),
        ],
        "2024-03-31",
        # 4, 5, 6 Mar: 3 x 3,200 NOK = 9,600 NOK; the admission after the discharge does not count
        [("2024-03", "2024-03-04", "2024-03-06", 3, 320_000, 960_000, BERGEN_2024, False, None)],
        id="earlier-admission-sent-later-ends-the-hold",
    ),
]


@pytest.mark.parametrize(("rule", "municipality", "trust", "facts", "through", "expected"), WORKED_EXAMPLES)
def test_a_worked_example_gives_exactly_the_expected_items(
    rule: str, municipality: str, trust: str, facts: list[Fact], through: str, expected: list[Expected]
) -> None:
    items = rate(facts_of(facts, municipality), through, trust)

    assert [compact(item) for item in items] == expected, rule
    for item in items:
        assert item.category is Category.EMERGENCY_BED_DAYS, rule
        assert item.payer_role is PayerRole.HEALTH_TRUST, rule  # E1: the trust pays
        assert (item.municipality, item.health_trust, item.subject_id) == (municipality, trust, "stay-1")
        assert item.service_month == Month.of(item.first_day) == Month.of(item.last_day)
        assert item.quantity == (item.last_day - item.first_day).days + 1
        if item.not_payable_reason is None:
            assert item.status is ItemStatus.PRICED
            assert item.unit_price_ore is not None
            assert item.amount_ore == item.unit_price_ore * item.quantity
        else:
            assert item.status is ItemStatus.NOT_PAYABLE


def test_every_row_of_the_table_cites_a_rule() -> None:
    for row in WORKED_EXAMPLES:
        assert any(f"E{n}" in row.values[0] for n in range(1, 6)), row.id


@pytest.mark.parametrize(
    ("municipality", "trust", "facts", "through"),
    [pytest.param(*row.values[1:5], id=row.id) for row in WORKED_EXAMPLES],
)
def test_the_order_in_which_facts_arrive_does_not_change_the_items(
    municipality: str, trust: str, facts: list[Fact], through: str
) -> None:
    stay = facts_of(facts, municipality)  # event ids are fixed before reordering
    expected = rate(stay, through, trust)

    for order in itertools.permutations(stay):
        assert rate(list(order), through, trust) == expected


def test_a_stay_without_facts_has_no_items() -> None:
    assert rate([], "2024-03-31") == []


def test_the_statement_shows_a_pair_without_an_agreed_rate_as_owing_nothing_and_why() -> None:
    # E3; domain.md s.2 "A pair with no such rate has nothing to pay, and the statement says so."
    items = rate(facts_of([(ADMITTED, "2024-03-04T14:00")], BJORNAFJORDEN), "2024-03-31", HELSE_FONNA)

    lines, totals = summarise(items)

    # 4..31 Mar: 28 days, not payable
    assert [(line.status, line.quantity, line.amount_ore, line.note) for line in lines] == [
        (ItemStatus.NOT_PAYABLE, 28, None, NO_AGREED_RATE)
    ]
    assert (totals.municipality_pays_ore, totals.health_trust_pays_ore, totals.net_ore) == (0, 0, 0)
    assert totals.unrated_quantity == 0  # not payable is not "waiting for a tariff"


def test_the_statement_shows_a_stay_whose_end_is_unknown_as_owing_nothing_and_why() -> None:
    # E5: held, shown with the reason, kept out of every sum, and not "waiting for a tariff"
    facts = facts_of([(DISCHARGED, "2024-03-03T10:00"), (ADMITTED, "2024-03-04T14:00")], BERGEN)

    lines, totals = summarise(rate(facts, "2024-03-31"))

    assert [(line.status, line.quantity, line.amount_ore, line.note) for line in lines] == [
        (ItemStatus.NOT_PAYABLE, 28, None, END_UNKNOWN)
    ]
    assert (totals.municipality_pays_ore, totals.health_trust_pays_ore, totals.net_ore) == (0, 0, 0)
    assert totals.unrated_quantity == 0
