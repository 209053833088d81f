"""Netting one pair's month in both directions (issue 3 "Netting"; domain.md sections 1-3).

The municipality pays the trust for discharge-ready bed-days (section 1) and co-financed
activity (section 3); the trust pays the municipality for emergency-bed days (section 2).
`summarise` shows, per category, what each side owes, and one net amount with its payer.
Lines that are not payable (E3) or unrated (A5, domain.md s.1 "unrated: no tariff") are
shown with why and kept out of every sum.

The pair is Bjørnafjorden (4624) and Helse Bergen, March 2025. Rates: discharge-ready
5,981 NOK a day (national 2025); emergency beds 4,000 NOK a day (an illustrative
agreement); activity under the shipped example trial (share 0.10, cap 4, 52,248 NOK).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from services.adapters.tariff_files import load_tariffs
from services.domain.activity import ActivityFact, rate_activity
from services.domain.calendar import Month
from services.domain.discharge_ready import EpisodeFact, Milestone, rate_episode
from services.domain.emergency_beds import NO_AGREED_RATE, StayFact, StayMilestone, rate_stay
from services.domain.ledger import UNRATED_NOTE, Category, ItemStatus, LedgerItem, PayerRole
from services.domain.statements import CategoryTotal, NetPayer, summarise
from services.domain.tariffs import Parameter, Scope, TariffRule, build_book
from services.tariffs import DEFAULT_TARIFF_DIR, EXAMPLE_TARIFF_DIR

OSLO_TZ = ZoneInfo("Europe/Oslo")
HELSE_BERGEN = "983974724"
BJORNAFJORDEN = "4624"
MARCH = Month(2025, 3)

DR = Category.DISCHARGE_READY_BED_DAYS
EMERGENCY = Category.EMERGENCY_BED_DAYS
ACTIVITY = Category.ACTIVITY_CO_FINANCING
MUNICIPALITY = PayerRole.MUNICIPALITY
TRUST = PayerRole.HEALTH_TRUST
PRICED = ItemStatus.PRICED
UNRATED = ItemStatus.UNRATED
NOT_PAYABLE = ItemStatus.NOT_PAYABLE

DR_RULE = "national.discharge-ready.2025"
EB_RULE = "agreement.4624-helse-bergen.emergency-bed"
TRIAL = "example.trial.activity-2025"
ACT_RULE = f"{TRIAL}.share+{TRIAL}.cap+{TRIAL}.unit-price"


def bed_days(
    category: Category, days: int, unit_ore: int | None, rule: str | None, **extra: object
) -> LedgerItem:
    payer = TRUST if category is EMERGENCY else MUNICIPALITY
    return LedgerItem(
        category=category,
        subject_id=f"{category.value}-{days}-{rule}",
        health_trust=HELSE_BERGEN,
        municipality=BJORNAFJORDEN,
        payer_role=payer,
        service_month=MARCH,
        first_day=date(2025, 3, 1),
        last_day=date(2025, 3, days),
        quantity=days,
        unit_price_ore=unit_ore,
        amount_ore=None if unit_ore is None else unit_ore * days,
        rule_id=rule,
        **extra,  # type: ignore[arg-type]
    )


def activity(amount_ore: int | None, subject: str, rule: str | None = ACT_RULE) -> LedgerItem:
    return LedgerItem(
        category=ACTIVITY,
        subject_id=subject,
        health_trust=HELSE_BERGEN,
        municipality=BJORNAFJORDEN,
        payer_role=MUNICIPALITY,
        service_month=MARCH,
        first_day=date(2025, 3, 12),
        last_day=date(2025, 3, 12),
        quantity=1,
        unit_price_ore=amount_ore,  # as rate_activity makes it: one activity, its own price
        amount_ore=amount_ore,
        rule_id=rule if amount_ore is not None else None,
    )


# municipality pays, trust pays
Direction = tuple[int, int]


@pytest.mark.parametrize(
    ("rule", "items", "by_category", "net_ore", "net_payer"),
    [
        pytest.param(
            "issue 3 Netting; domain.md s.1-3: both directions, the trust owes more",
            [
                bed_days(DR, 3, 598_100, DR_RULE),  # 3 x 5,981 NOK = 17,943 NOK
                activity(456_125, "activity-1"),  # 0.10 x 0.873 x 52,248 NOK = 4,561.25 NOK
                activity(2_089_920, "activity-2"),  # 0.10 x 4 x 52,248 NOK = 20,899.20 NOK
                bed_days(EMERGENCY, 12, 400_000, EB_RULE),  # 12 x 4,000 NOK = 48,000 NOK
            ],
            # municipality: 1,794,300 + 456,125 + 2,089,920 = 4,340,345 øre
            # trust: 4,800,000 øre; net 4,800,000 - 4,340,345 = 459,655 øre, the trust pays
            {DR: (1_794_300, 0), EMERGENCY: (0, 4_800_000), ACTIVITY: (2_546_045, 0)},
            459_655,
            NetPayer.HEALTH_TRUST,
            id="trust-is-the-net-payer",
        ),
        pytest.param(
            "issue 3 Netting; domain.md s.1-3: both directions, the municipality owes more",
            [
                bed_days(DR, 10, 598_100, DR_RULE),  # 10 x 5,981 NOK = 59,810 NOK
                bed_days(EMERGENCY, 5, 400_000, EB_RULE),  # 5 x 4,000 NOK = 20,000 NOK
            ],
            # 5,981,000 - 2,000,000 = 3,981,000 øre, the municipality pays
            {DR: (5_981_000, 0), EMERGENCY: (0, 2_000_000)},
            3_981_000,
            NetPayer.MUNICIPALITY,
            id="municipality-is-the-net-payer",
        ),
        pytest.param(
            "issue 3 Netting: equal amounts cancel out, no one pays",
            [
                bed_days(DR, 4, 500_000, "agreement.dr"),  # 4 x 5,000 NOK = 20,000 NOK
                bed_days(EMERGENCY, 5, 400_000, EB_RULE),  # 5 x 4,000 NOK = 20,000 NOK
            ],
            {DR: (2_000_000, 0), EMERGENCY: (0, 2_000_000)},
            0,
            NetPayer.NONE,
            id="amounts-cancel-out",
        ),
        pytest.param(
            "E3 A5; domain.md s.1-2: not payable and unrated lines are in no sum",
            [
                bed_days(DR, 3, 598_100, DR_RULE),  # 1,794,300 øre
                bed_days(DR, 7, None, None),  # unrated
                bed_days(EMERGENCY, 12, 400_000, EB_RULE),  # 4,800,000 øre
                bed_days(EMERGENCY, 9, None, None, not_payable_reason=NO_AGREED_RATE),
                activity(None, "activity-3"),  # unrated
            ],
            # 4,800,000 - 1,794,300 = 3,005,700 øre, the trust pays
            {DR: (1_794_300, 0), EMERGENCY: (0, 4_800_000), ACTIVITY: (0, 0)},
            3_005_700,
            NetPayer.HEALTH_TRUST,
            id="not-payable-and-unrated-excluded-from-sums",
        ),
        pytest.param(
            "E3; domain.md s.2: a month of only not-payable stays owes nothing either way",
            [bed_days(EMERGENCY, 9, None, None, not_payable_reason=NO_AGREED_RATE)],
            {EMERGENCY: (0, 0)},
            0,
            NetPayer.NONE,
            id="only-not-payable",
        ),
    ],
)
def test_totals_per_category_and_the_net_with_its_payer(
    rule: str,
    items: list[LedgerItem],
    by_category: dict[Category, Direction],
    net_ore: int,
    net_payer: NetPayer,
) -> None:
    _, totals = summarise(items)

    assert totals.by_category == tuple(
        CategoryTotal(category, *owed) for category, owed in by_category.items()
    ), rule
    municipality_pays = sum(owed[0] for owed in by_category.values())
    trust_pays = sum(owed[1] for owed in by_category.values())
    assert (totals.municipality_pays_ore, totals.health_trust_pays_ore) == (municipality_pays, trust_pays), (
        rule
    )
    assert totals.net_ore == abs(municipality_pays - trust_pays) == net_ore, rule
    assert totals.net_payer is net_payer, rule


def test_lines_show_each_status_with_its_note_and_only_priced_lines_carry_amounts() -> None:
    items = [
        bed_days(DR, 3, 598_100, DR_RULE),
        bed_days(DR, 7, None, None),
        bed_days(EMERGENCY, 12, 400_000, EB_RULE),
        bed_days(EMERGENCY, 9, None, None, not_payable_reason=NO_AGREED_RATE),
        activity(456_125, "activity-1"),
        activity(2_089_920, "activity-2"),
        activity(None, "activity-3"),
    ]

    lines, totals = summarise(items)

    got = {
        (
            line.category,
            line.payer_role,
            line.status,
            line.quantity,
            line.unit_price_ore,
            line.amount_ore,
            line.rule_id,
            line.note,
        )
        for line in lines
    }
    assert len(lines) == len(got)
    assert got == {
        (DR, MUNICIPALITY, PRICED, 3, 598_100, 1_794_300, DR_RULE, None),
        (DR, MUNICIPALITY, UNRATED, 7, None, None, None, UNRATED_NOTE),
        (EMERGENCY, TRUST, PRICED, 12, 400_000, 4_800_000, EB_RULE, None),
        (EMERGENCY, TRUST, NOT_PAYABLE, 9, None, None, None, NO_AGREED_RATE),
        # two activities, each priced on its own: one line, the sum, no unit price
        # 456,125 + 2,089,920 = 2,546,045 øre
        (ACTIVITY, MUNICIPALITY, PRICED, 2, None, 2_546_045, ACT_RULE, None),
        (ACTIVITY, MUNICIPALITY, UNRATED, 1, None, None, None, UNRATED_NOTE),
    }
    assert all(line.service_month == MARCH for line in lines)
    # unrated counts what waits for a tariff: 7 bed-days + 1 activity; not payable is not waiting
    assert totals.unrated_quantity == 8


def test_not_payable_lines_with_different_reasons_stay_apart() -> None:
    items = [
        bed_days(EMERGENCY, 2, None, None, not_payable_reason=NO_AGREED_RATE),
        bed_days(EMERGENCY, 3, None, None, not_payable_reason="another reason"),
    ]

    lines, _ = summarise(items)

    assert sorted((line.quantity, line.note) for line in lines) == [
        (2, NO_AGREED_RATE),
        (3, "another reason"),
    ]


# ---------------------------------------------------------------- a month rated by the rules


def test_a_month_rated_by_the_rules_nets_to_the_trust_paying() -> None:
    tariffs = build_book(
        [
            *load_tariffs(DEFAULT_TARIFF_DIR, EXAMPLE_TARIFF_DIR).rules,
            TariffRule(
                EB_RULE,
                Parameter.EMERGENCY_BED_DAY_RATE_NOK,
                Decimal("4000"),
                date(2025, 3, 10),
                None,
                Scope.AGREEMENT,
                frozenset({BJORNAFJORDEN}),
                HELSE_BERGEN,
            ),
        ]
    )

    def at(text: str) -> datetime:
        return datetime.fromisoformat(text).replace(tzinfo=OSLO_TZ)

    def ep(milestone: Milestone, when: str, n: int) -> EpisodeFact:
        return EpisodeFact(milestone, at(when), f"ep-{n}", BJORNAFJORDEN, BJORNAFJORDEN)

    def act(points: str, n: int) -> ActivityFact:
        when = at(f"2025-03-{10 + n}T12:00")
        return ActivityFact(
            "activity_recorded", when, f"act-{n}", BJORNAFJORDEN, drg_points=Decimal(points), ended_at=when
        )

    def stay(admitted: str, discharged: str) -> list[StayFact]:
        return [
            StayFact(StayMilestone.ADMITTED, at(admitted), "st-1", BJORNAFJORDEN),
            StayFact(StayMilestone.DISCHARGED, at(discharged), "st-2", BJORNAFJORDEN),
        ]

    through = MARCH.last_day
    items = [
        # ready and notified 3 Mar, can receive 6 Mar: 3, 4, 5 Mar = 3 x 5,981 NOK
        *rate_episode(
            "episode-1",
            HELSE_BERGEN,
            [
                ep(Milestone.ADMISSION_NOTIFIED, "2025-03-01T08:00", 1),
                ep(Milestone.DECLARED_READY, "2025-03-03T09:00", 2),
                ep(Milestone.MUNICIPALITY_NOTIFIED, "2025-03-03T09:30", 3),
                ep(Milestone.MUNICIPALITY_CAN_RECEIVE, "2025-03-06T10:00", 4),
            ],
            tariffs,
            through,
        ),
        # 0.10 x 0.873 x 52,248 NOK = 456,125.04 øre -> 456,125
        *rate_activity("activity-1", HELSE_BERGEN, [act("0.873", 1)], tariffs),
        # 0.10 x min(6.5, 4) x 52,248 NOK = 2,089,920 øre
        *rate_activity("activity-2", HELSE_BERGEN, [act("6.5", 2)], tariffs),
        # 12..23 Mar: 12 x 4,000 NOK = 48,000 NOK
        *rate_stay("stay-1", HELSE_BERGEN, stay("2025-03-12T14:00", "2025-03-24T10:00"), tariffs, through),
        # 5..8 Mar, before the agreement: 4 days not payable; 9 Mar is the discharge day
        *rate_stay("stay-2", HELSE_BERGEN, stay("2025-03-05T14:00", "2025-03-09T10:00"), tariffs, through),
    ]

    lines, totals = summarise(items)

    assert totals.by_category == (
        CategoryTotal(DR, 1_794_300, 0),
        CategoryTotal(EMERGENCY, 0, 4_800_000),
        CategoryTotal(ACTIVITY, 2_546_045, 0),
    )
    # 4,800,000 - (1,794,300 + 2,546,045) = 459,655 øre, paid by the trust
    assert (totals.net_ore, totals.net_payer) == (459_655, NetPayer.HEALTH_TRUST)
    assert {
        (line.category, line.status, line.quantity, line.unit_price_ore, line.note) for line in lines
    } == {
        (DR, PRICED, 3, 598_100, None),
        (EMERGENCY, PRICED, 12, 400_000, None),
        (EMERGENCY, NOT_PAYABLE, 4, None, NO_AGREED_RATE),
        (ACTIVITY, PRICED, 2, None, None),
    }
