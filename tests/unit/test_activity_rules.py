"""Worked examples for activity records and municipal co-financing (domain.md section 3).

Every row is one activity: its facts and the items it must produce, computed by hand from
the rules A1..A5 in `services.domain.activity`. The municipality where the patient is
registered pays the trust.

The tariff book is the shipped national co-financing file (share 20 %, cap 4 DRG points,
2012-2014, no unit price) plus the shipped example trial (Bjørnafjorden 4624 and 4626,
2025: share 10 %, cap 4, 52,248 NOK a point), plus one illustrative national unit price
of 40,000 NOK a DRG point from 2014 that exists only in this test. With it, 2014 activity
is priced, 2013 activity is unrated (no unit price) and activity from 2015 is priced only
where the trial is in force. Bergen is 1201 before the 2020 reform.
"""

from __future__ import annotations

import itertools
import random
import tomllib
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from services.domain.activity import ActivityFact, rate_activity
from services.domain.calendar import Month
from services.domain.ledger import Category, ItemStatus, LedgerItem, PayerRole
from services.domain.tariffs import Parameter, Scope, TariffBook, TariffRule, build_book, parse_rules
from services.tariffs import DEFAULT_TARIFF_DIR, EXAMPLE_TARIFF_DIR

OSLO_TZ = ZoneInfo("Europe/Oslo")

HELSE_BERGEN = "983974724"
BERGEN_BEFORE_2020 = "1201"
BERGEN = "4601"
BJORNAFJORDEN = "4624"

RECORDED = "activity_recorded"
CORRECTED = "activity_corrected"
CANCELLED = "activity_cancelled"

SHARE = "national.co-financing.share"
CAP = "national.co-financing.cap"
UNIT_PRICE = "test.national.co-financing.unit-price"
NATIONAL_2014 = f"{SHARE}+{CAP}+{UNIT_PRICE}"
TRIAL_2025 = (
    "example.trial.activity-2025.share+example.trial.activity-2025.cap+example.trial.activity-2025.unit-price"
)


def shipped(path: Path) -> list[TariffRule]:
    with path.open("rb") as handle:
        return list(parse_rules(tomllib.load(handle)).rules)


# Illustrative only: no source confirms the co-financing unit price (national-co-financing.toml).
TEST_UNIT_PRICE = TariffRule(
    id=UNIT_PRICE,
    parameter=Parameter.CO_FINANCING_UNIT_PRICE_NOK,
    value=Decimal("40000"),
    valid_from=date(2014, 1, 1),
    valid_until=None,
)
NATIONAL_ONLY: TariffBook = build_book(
    [*shipped(DEFAULT_TARIFF_DIR / "national-co-financing.toml"), TEST_UNIT_PRICE]
)
BOOK: TariffBook = build_book([*NATIONAL_ONLY.rules, *shipped(EXAMPLE_TARIFF_DIR / "agreements.toml")])


def at(text: str) -> datetime:
    """An instant: Oslo wall-clock time unless the text carries its own offset (or Z)."""
    instant = datetime.fromisoformat(text)
    return instant if instant.tzinfo is not None else instant.replace(tzinfo=OSLO_TZ)


def fact(
    type_: str,
    occurred: str,
    *,
    ended: str | None = None,
    points: str | None = None,
    municipality: str = BERGEN_BEFORE_2020,
    event_id: str = "",
    **facts: object,
) -> ActivityFact:
    return ActivityFact(
        type=type_,
        occurred_at=at(occurred),
        event_id=event_id,
        registered_municipality=municipality,
        drg_points=Decimal(points) if points is not None else None,
        ended_at=at(ended) if ended is not None else None,
        **facts,  # type: ignore[arg-type]
    )


def recorded(ended: str, points: str, **facts: object) -> ActivityFact:
    """An activity recorded 20 minutes after it ended, as a hospital system would."""
    return fact(RECORDED, ended, ended=ended, points=points, **facts)


def numbered(facts: list[ActivityFact]) -> list[ActivityFact]:
    """Fixed, distinct event ids in the order written (used only to break same-instant ties)."""
    return [f._replace(event_id=f"event-{index:02d}") for index, f in enumerate(facts)]


# service month, day, payer, unit price (øre), amount (øre), rule, note
Expected = tuple[str, str, str, int | None, int | None, str | None, str | None]


def expect(
    day: str,
    amount_ore: int | None,
    note: str,
    rule: str | None = NATIONAL_2014,
    payer: str = BERGEN_BEFORE_2020,
) -> Expected:
    """An expected item: an activity is priced on its own, so its unit price is its amount."""
    return (day[:7], day, payer, amount_ore, amount_ore, rule, note)


def compact(item: LedgerItem) -> Expected:
    return (
        str(item.service_month),
        item.first_day.isoformat(),
        item.municipality,
        item.unit_price_ore,
        item.amount_ore,
        item.rule_id,
        item.note,
    )


def rate(facts: list[ActivityFact], tariffs: TariffBook = BOOK) -> list[LedgerItem]:
    return rate_activity("activity-1", HELSE_BERGEN, numbered(facts), tariffs)


MAY_2014 = "2014-05-12T15:00"
# 0.20 x 0.873 x 40,000 NOK = 6,984 NOK
ORDINARY_2014: Expected = expect("2014-05-12", 698_400, "0.873 DRG points")


# Columns: rule, facts, expected items.
WORKED_EXAMPLES = [
    pytest.param(
        "A1; domain.md s.3 price = share x min(points, cap) x unit price, below the cap",
        [recorded(MAY_2014, "0.873")],
        [ORDINARY_2014],
        id="below-the-cap-all-points-count",
    ),
    pytest.param(
        "A1; domain.md s.3 cap of 4 DRG points per stay",
        [recorded(MAY_2014, "6.5")],
        # 0.20 x min(6.5, 4) x 40,000 NOK = 0.20 x 4 x 40,000 = 32,000 NOK
        [expect("2014-05-12", 3_200_000, "4 DRG points (capped at 4)")],
        id="above-the-cap-four-points-count",
    ),
    pytest.param(
        "A1; domain.md s.3 exactly at the cap nothing is cut",
        [recorded(MAY_2014, "4.0")],
        # 0.20 x 4.0 x 40,000 NOK = 32,000 NOK
        [expect("2014-05-12", 3_200_000, "4.0 DRG points")],
        id="at-the-cap",
    ),
    pytest.param(
        "A1; domain.md s.3 payer: the registered municipality (here Oslo, 0301)",
        [recorded(MAY_2014, "0.873", municipality="0301")],
        [expect("2014-05-12", 698_400, "0.873 DRG points", payer="0301")],
        id="registered-municipality-pays",
    ),
    pytest.param(
        "A1; an activity is priced once its DRG is set: no DRG points, nothing yet",
        [fact(RECORDED, MAY_2014, ended=MAY_2014)],
        [],
        id="without-drg-points-nothing-yet",
    ),
    pytest.param(
        "A1; an activity is priced once it has ended: no end, nothing yet",
        [fact(RECORDED, MAY_2014, points="0.873")],
        [],
        id="without-an-end-nothing-yet",
    ),
    pytest.param(
        "A1 [product]; the service month is the Oslo month of ended_at (winter, UTC+1)",
        # 23:30 UTC on 31 Jan 2025 is 00:30 on 1 Feb in Oslo.
        [recorded("2025-01-31T23:30:00Z", "0.873", municipality=BJORNAFJORDEN)],
        # trial 2025: 0.10 x 0.873 x 52,248 NOK = 4,561.2504 NOK = 456,125.04 øre -> 456,125
        [expect("2025-02-01", 456_125, "0.873 DRG points", rule=TRIAL_2025, payer=BJORNAFJORDEN)],
        id="ending-2025-01-31-23-30-utc-belongs-to-february",
    ),
    pytest.param(
        "A1 [product]; the service month is the Oslo month of ended_at (summer, UTC+2)",
        # 22:30 UTC on 31 May 2014 is 00:30 on 1 Jun in Oslo.
        [recorded("2014-05-31T22:30:00Z", "0.873")],
        [expect("2014-06-01", 698_400, "0.873 DRG points")],
        id="ending-2014-05-31-22-30-utc-belongs-to-june",
    ),
    pytest.param(
        "A1; domain.md s.3 the day of the activity is when it ended, not when it was recorded",
        [fact(RECORDED, "2014-06-03T08:00", ended="2014-05-28T16:00", points="0.873")],
        [expect("2014-05-28", 698_400, "0.873 DRG points")],
        id="recorded-in-june-for-may-belongs-to-may",
    ),
    # A2: each exclusion on its own; without it the same activity is ORDINARY_2014.
    *[
        pytest.param(
            f"A2; domain.md s.3 excluded: {why}",
            [recorded(MAY_2014, "0.873", **facts)],
            [],
            id=f"excluded-{why.replace(' ', '-')}",
        )
        for why, facts in [
            ("surgical DRG", {"surgical": True}),
            ("birth", {"category": "birth"}),
            ("newborn", {"category": "newborn"}),
            ("costly drug", {"category": "costly_drug"}),
            ("lab and imaging", {"category": "lab_imaging"}),
            ("mental health", {"care_area": "mental_health"}),
            ("substance abuse", {"care_area": "substance_abuse"}),
        ]
    ],
    pytest.param(
        "A3; domain.md s.3 a correction replaces the recorded facts (new DRG points)",
        [recorded(MAY_2014, "0.873"), fact(CORRECTED, "2014-06-10T09:00", ended=MAY_2014, points="1.2")],
        # 0.20 x 1.2 x 40,000 NOK = 9,600 NOK
        [expect("2014-05-12", 960_000, "1.2 DRG points")],
        id="corrected-drg-points-replace-the-recorded-ones",
    ),
    pytest.param(
        "A3 A1; a correction of the end moves the activity to its new service month",
        [
            recorded(MAY_2014, "0.873"),
            fact(CORRECTED, "2014-06-10T09:00", ended="2014-06-02T11:00", points="0.873"),
        ],
        [expect("2014-06-02", 698_400, "0.873 DRG points")],
        id="corrected-end-moves-the-service-month",
    ),
    pytest.param(
        "A3 A2; a correction into an excluded category removes the price",
        [
            recorded(MAY_2014, "0.873"),
            fact(CORRECTED, "2014-06-10T09:00", ended=MAY_2014, points="0.873", surgical=True),
        ],
        [],
        id="corrected-to-surgical-is-excluded",
    ),
    pytest.param(
        "A3 A2; a correction replaces every earlier fact, so it can lift an exclusion too",
        [
            recorded(MAY_2014, "0.873", category="lab_imaging"),
            fact(CORRECTED, "2014-06-10T09:00", ended=MAY_2014, points="0.873"),
        ],
        [ORDINARY_2014],
        id="corrected-out-of-an-exclusion-is-priced",
    ),
    pytest.param(
        "A3; domain.md s.3 a cancelled activity yields nothing",
        [recorded(MAY_2014, "0.873"), fact(CANCELLED, "2014-06-10T09:00")],
        [],
        id="cancelled-yields-nothing",
    ),
    pytest.param(
        "A3; a cancellation removes the activity by its type, even if it repeats the facts",
        [recorded(MAY_2014, "0.873"), fact(CANCELLED, "2014-06-10T09:00", ended=MAY_2014, points="0.873")],
        [],
        id="cancelled-with-the-facts-repeated-yields-nothing",
    ),
    pytest.param(
        "A3; a correction that happened after a cancellation reinstates the activity",
        [
            recorded(MAY_2014, "0.873"),
            fact(CANCELLED, "2014-06-10T09:00"),
            fact(CORRECTED, "2014-06-20T09:00", ended=MAY_2014, points="2.5"),
        ],
        # 0.20 x 2.5 x 40,000 NOK = 20,000 NOK
        [expect("2014-05-12", 2_000_000, "2.5 DRG points")],
        id="correction-after-cancellation-reinstates",
    ),
    pytest.param(
        "A3; the latest by when it happened wins: a cancellation after a correction stands",
        [
            recorded(MAY_2014, "0.873"),
            fact(CORRECTED, "2014-06-10T09:00", ended=MAY_2014, points="2.5"),
            fact(CANCELLED, "2014-06-20T09:00"),
        ],
        [],
        id="cancellation-after-correction-stands",
    ),
    pytest.param(
        "A3; the latest by when it happened wins: of two corrections the later one",
        [
            recorded(MAY_2014, "0.873"),
            fact(CORRECTED, "2014-06-20T09:00", ended=MAY_2014, points="2.5"),
            fact(CORRECTED, "2014-06-10T09:00", ended=MAY_2014, points="1.2"),
        ],
        [expect("2014-05-12", 2_000_000, "2.5 DRG points")],
        id="later-of-two-corrections-wins-whatever-their-listing",
    ),
    pytest.param(
        "A3; a correction timed before the recording is not its latest event: the recording stands",
        [
            recorded(MAY_2014, "0.873"),
            fact(CORRECTED, "2014-05-12T14:59", ended=MAY_2014, points="1.2"),
        ],
        [ORDINARY_2014],
        id="correction-timed-before-the-recording-has-no-effect",
    ),
    pytest.param(
        "A3; of a recording and a correction at one instant, the event id sorting last stands",
        [
            recorded(MAY_2014, "0.873"),
            fact(CORRECTED, MAY_2014, ended=MAY_2014, points="1.2"),  # event-01 after event-00
        ],
        [expect("2014-05-12", 960_000, "1.2 DRG points")],
        id="at-one-instant-the-later-event-id-stands",
    ),
    pytest.param(
        "A5; domain.md s.3 2013 under the national share without a unit price: unrated",
        [recorded("2013-09-16T10:00", "0.873")],
        # share 0.20 and cap 4 are in force, no unit price: held, never priced at 0
        [expect("2013-09-16", None, "0.873 DRG points", rule=None)],
        id="year-2013-without-a-unit-price-is-unrated",
    ),
    pytest.param(
        "A5 A1; the unrated item still records the capped points",
        [recorded("2012-03-01T10:00", "9")],
        [expect("2012-03-01", None, "4 DRG points (capped at 4)", rule=None)],
        id="year-2012-capped-and-unrated",
    ),
    pytest.param(
        "A4; domain.md s.3 the national rule covers 2014 up to its last day",
        [recorded("2014-12-31T12:00", "0.873")],
        [expect("2014-12-31", 698_400, "0.873 DRG points")],
        id="last-day-of-2014-is-national",
    ),
    pytest.param(
        "A4; domain.md s.3 from 2015 the national scheme is gone",
        [recorded("2015-01-01T12:00", "0.873")],
        [],
        id="first-day-of-2015-pays-nothing",
    ),
    pytest.param(
        "A4 A1; 23:30 UTC on 31 Dec 2014 is 2015 in Oslo, after the national scheme",
        [recorded("2014-12-31T23:30:00Z", "0.873")],
        [],
        id="new-year-2015-in-oslo-pays-nothing",
    ),
    pytest.param(
        "A4; domain.md s.3 activity in 2016 with only national rules pays nothing",
        [recorded("2016-05-12T15:00", "0.873")],
        [],
        id="year-2016-national-only-pays-nothing",
    ),
    pytest.param(
        "A4; domain.md s.4 in 2025 a trial prices activity, but only for its municipalities",
        [recorded("2025-03-12T15:00", "0.873", municipality=BERGEN)],
        [],
        id="year-2025-outside-the-trial-pays-nothing",
    ),
]


@pytest.mark.parametrize(("rule", "facts", "expected"), WORKED_EXAMPLES)
def test_a_worked_example_gives_exactly_the_expected_items(
    rule: str, facts: list[ActivityFact], expected: list[Expected]
) -> None:
    items = rate(facts)

    assert [compact(item) for item in items] == expected, rule
    for item in items:
        assert item.category is Category.ACTIVITY_CO_FINANCING
        assert item.payer_role is PayerRole.MUNICIPALITY
        assert item.health_trust == HELSE_BERGEN
        assert item.subject_id == "activity-1"
        assert item.quantity == 1
        assert item.first_day == item.last_day
        assert item.service_month == Month.of(item.first_day)
        assert item.not_payable_reason is None
        if item.amount_ore is None:
            assert item.status is ItemStatus.UNRATED
        else:
            assert item.status is ItemStatus.PRICED


def test_every_row_of_the_table_cites_a_rule() -> None:
    for row in WORKED_EXAMPLES:
        assert any(f"A{n}" in row.values[0] for n in range(1, 6)), row.id


def test_the_activity_every_exclusion_is_applied_to_is_priced_without_it() -> None:
    # The A2 rows assert "nothing"; this shows it is the exclusion that makes it so.
    assert [compact(item) for item in rate([recorded(MAY_2014, "0.873")])] == [ORDINARY_2014]


def test_a_2016_activity_is_priced_once_a_share_is_in_force() -> None:
    # A4: the 2016 row pays nothing because no share is in force, not for lack of a price.
    trial_share = TariffRule(
        id="trial.share.2016",
        parameter=Parameter.CO_FINANCING_SHARE,
        value=Decimal("0.20"),
        valid_from=date(2016, 1, 1),
        valid_until=date(2017, 1, 1),
        scope=Scope.TRIAL,
        municipalities=frozenset({BERGEN_BEFORE_2020}),
    )
    tariffs = build_book([*NATIONAL_ONLY.rules, trial_share])

    items = rate([recorded("2016-05-12T15:00", "0.873")], tariffs)

    # no cap in force in 2016 (A5 [product]: no cap means no cap); 0.20 x 0.873 x 40,000 NOK
    assert [compact(item) for item in items] == [
        expect("2016-05-12", 698_400, "0.873 DRG points", rule=f"trial.share.2016+{UNIT_PRICE}")
    ]


A3_ROWS = [
    row
    for row in WORKED_EXAMPLES
    if row.id
    in {
        "corrected-drg-points-replace-the-recorded-ones",
        "corrected-end-moves-the-service-month",
        "cancelled-yields-nothing",
        "correction-after-cancellation-reinstates",
        "cancellation-after-correction-stands",
        "later-of-two-corrections-wins-whatever-their-listing",
        "correction-timed-before-the-recording-has-no-effect",
        "at-one-instant-the-later-event-id-stands",
    }
]


@pytest.mark.parametrize(
    ("facts", "expected"), [pytest.param(row.values[1], row.values[2], id=row.id) for row in A3_ROWS]
)
def test_the_order_in_which_corrections_and_cancellations_arrive_does_not_matter(
    facts: list[ActivityFact], expected: list[Expected]
) -> None:
    activity = numbered(facts)  # event ids are fixed before reordering

    for order in itertools.permutations(activity):
        items = rate_activity("activity-1", HELSE_BERGEN, list(order), BOOK)
        assert [compact(item) for item in items] == expected


def test_a_reordered_long_history_gives_the_same_items() -> None:
    history = numbered(
        [
            recorded(MAY_2014, "0.873"),
            fact(CORRECTED, "2014-06-01T09:00", ended=MAY_2014, points="1.0"),
            fact(CANCELLED, "2014-06-02T09:00"),
            fact(CORRECTED, "2014-06-03T09:00", ended=MAY_2014, points="3.0"),
            fact(CANCELLED, "2014-06-04T09:00"),
            fact(CORRECTED, "2014-06-05T09:00", ended=MAY_2014, points="5.0"),
        ]
    )
    # The last correction stands: 0.20 x min(5.0, 4) x 40,000 NOK = 32,000 NOK
    expected = [expect("2014-05-12", 3_200_000, "4 DRG points (capped at 4)")]
    for seed in range(20):
        shuffled = list(history)
        random.Random(seed).shuffle(shuffled)
        assert [compact(i) for i in rate_activity("activity-1", HELSE_BERGEN, shuffled, BOOK)] == expected


def test_an_activity_without_facts_has_no_items() -> None:
    assert rate_activity("activity-1", HELSE_BERGEN, [], BOOK) == []


# ---------------------------------------------------------------- rounding (A1, money.py)


def one_off_book(share: str, unit_nok: str) -> TariffBook:
    """A share and a unit price for 2014, no cap."""
    return build_book(
        [
            TariffRule("share", Parameter.CO_FINANCING_SHARE, Decimal(share), date(2014, 1, 1), None),
            TariffRule(
                "unit", Parameter.CO_FINANCING_UNIT_PRICE_NOK, Decimal(unit_nok), date(2014, 1, 1), None
            ),
        ]
    )


@pytest.mark.parametrize(
    ("share", "points", "unit_nok", "expected_ore"),
    [
        pytest.param(
            # 0.10 x 0.5 x 5,010 øre = 250.5 øre -> 251 (half-up; half-to-even would give 250)
            "0.10",
            "0.5",
            "50.10",
            251,
            id="half-an-ore-rounds-up",
        ),
        pytest.param(
            # 0.10 x 0.5 x 5,030 øre = 251.5 øre -> 252
            "0.10",
            "0.5",
            "50.30",
            252,
            id="half-an-ore-rounds-up-from-odd",
        ),
        pytest.param(
            # 0.20 x 4 x 12,345.5 øre = 9,876.4 øre -> 9,876; rounding the unit price to
            # 12,346 øre first would give 9,876.8 -> 9,877
            "0.20",
            "4",
            "123.455",
            9_876,
            id="unit-price-not-rounded-before-multiplying",
        ),
        pytest.param(
            # 0.15 x 0.333 x 1,000,000 øre = 49,950 øre exactly; rounding the share x points
            # (0.04995) to 0.05 first would give 50,000
            "0.15",
            "0.333",
            "10000",
            49_950,
            id="share-times-points-not-rounded-before-multiplying",
        ),
        pytest.param(
            # 0.20 x 0.873 x 5,224,800 øre = 912,250.08 øre -> 912,250
            "0.20",
            "0.873",
            "52248",
            912_250,
            id="a-fraction-of-an-ore-below-half-rounds-down",
        ),
    ],
)
def test_the_amount_is_rounded_to_ore_half_up_once_at_the_end(
    share: str, points: str, unit_nok: str, expected_ore: int
) -> None:
    # A1; money.py: "the one place that rounds a computed amount to øre"
    items = rate([recorded(MAY_2014, points)], one_off_book(share, unit_nok))

    assert [(item.amount_ore, item.unit_price_ore) for item in items] == [(expected_ore, expected_ore)]
    assert items[0].rule_id == "share+unit"
