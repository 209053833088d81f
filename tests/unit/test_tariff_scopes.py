"""Tariff scopes at work in pricing (domain.md section 4): national, trial, agreement.

"A trial overrides the national rule for named municipalities in a date window. The most
specific rule in force on the day wins, and every priced line records which rule priced
it." `test_tariffs.py` checks `TariffBook.find` on its own; here the same precedence is
shown through the prices of discharge-ready bed-days (`rate_episode`, domain.md section 1),
co-financed activity (`rate_activity`, section 3) and emergency-bed days (`rate_stay`,
section 2), with every amount computed by hand.

The trial and agreement rules are illustrative, except the shipped examples in
services/tariffs/examples/agreements.toml used at the end. Municipality numbers are those
in force on the dates used: Bjørnafjorden 4624, Lillesand 4215 and Bergen 4601 from 2020;
Stjørdal 1714, Selbu 1664 and Trondheim 1601 before the 2018 Trøndelag merger.
"""

from __future__ import annotations

import tomllib
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from services.adapters.tariff_files import load_tariffs
from services.domain.activity import ActivityFact, rate_activity
from services.domain.discharge_ready import EpisodeFact, Milestone, rate_episode
from services.domain.emergency_beds import StayFact, StayMilestone, rate_stay
from services.domain.ledger import ItemStatus, LedgerItem
from services.domain.tariffs import Parameter, Scope, TariffRule, build_book, parse_rules
from services.tariffs import DEFAULT_TARIFF_DIR, EXAMPLE_TARIFF_DIR

OSLO_TZ = ZoneInfo("Europe/Oslo")

HELSE_BERGEN = "983974724"
HELSE_FONNA = "983974694"
HELSE_NORD_TRONDELAG = "983974791"
ST_OLAVS = "883974832"
UNN = "983974899"

BJORNAFJORDEN = "4624"
LILLESAND = "4215"
BERGEN = "4601"
STJORDAL = "1714"
SELBU = "1664"
TRONDHEIM = "1601"
TROMSO = "5501"


def at(text: str) -> datetime:
    instant = datetime.fromisoformat(text)
    return instant if instant.tzinfo is not None else instant.replace(tzinfo=OSLO_TZ)


def shipped(name: str) -> list[TariffRule]:
    with (DEFAULT_TARIFF_DIR / name).open("rb") as handle:
        return list(parse_rules(tomllib.load(handle)).rules)


def rule(
    rule_id: str,
    parameter: Parameter,
    nok: str,
    valid_from: date,
    valid_until: date | None,
    *,
    trial: set[str] | None = None,
    agreement: tuple[str, str] | None = None,
) -> TariffRule:
    if agreement is not None:
        municipality, trust = agreement
        return TariffRule(
            rule_id,
            parameter,
            Decimal(nok),
            valid_from,
            valid_until,
            Scope.AGREEMENT,
            frozenset({municipality}),
            trust,
        )
    if trial is not None:
        return TariffRule(
            rule_id, parameter, Decimal(nok), valid_from, valid_until, Scope.TRIAL, frozenset(trial)
        )
    return TariffRule(rule_id, parameter, Decimal(nok), valid_from, valid_until)


def rule_ids(items: list[LedgerItem]) -> set[str]:
    return {part for item in items if item.rule_id for part in item.rule_id.split("+")}


# ---------------------------------------------------------------- discharge-ready bed-days

DR_RATE = Parameter.DISCHARGE_READY_DAY_RATE_NOK
NATIONAL_2020 = "national.discharge-ready.2020"
DR_TRIAL = "trial.state-financing.march-2020.discharge-ready"
DR_AGREEMENT = "agreement.4624-helse-fonna.discharge-ready"

DR_BOOK = build_book(
    [
        *shipped("national.toml"),  # 2020: 5,036 NOK a day
        # Bjørnafjorden and Lillesand: 3,000 NOK a day in March 2020
        rule(DR_TRIAL, DR_RATE, "3000", date(2020, 3, 1), date(2020, 4, 1), trial={BJORNAFJORDEN, LILLESAND}),
        # Bjørnafjorden with Helse Fonna: 2,500 NOK a day from 10 to 19 March 2020
        rule(
            DR_AGREEMENT,
            DR_RATE,
            "2500",
            date(2020, 3, 10),
            date(2020, 3, 20),
            agreement=(BJORNAFJORDEN, HELSE_FONNA),
        ),
    ]
)


def episode(municipality: str, ready: str, end: str) -> list[EpisodeFact]:
    """Admitted earlier; declared ready and notified on `ready`; can receive on `end`."""
    milestones = [
        (Milestone.ADMISSION_NOTIFIED, "2020-02-01T08:00"),
        (Milestone.DECLARED_READY, f"{ready}T10:00"),
        (Milestone.MUNICIPALITY_NOTIFIED, f"{ready}T10:30"),
        (Milestone.MUNICIPALITY_CAN_RECEIVE, f"{end}T09:00"),
    ]
    return [
        EpisodeFact(m, at(when), f"event-{i}", municipality, municipality)
        for i, (m, when) in enumerate(milestones)
    ]


# first day, last day, days, amount (øre), rule
BedDays = tuple[str, str, int, int, str]


@pytest.mark.parametrize(
    ("rule_cited", "municipality", "trust", "ready", "end", "expected"),
    [
        pytest.param(
            "domain.md s.4 trial overrides national inside its window, not before it",
            BJORNAFJORDEN,
            HELSE_BERGEN,
            "2020-02-27",
            "2020-03-03",
            [
                # 27, 28, 29 Feb (leap year): 3 x 5,036 NOK = 15,108 NOK
                ("2020-02-27", "2020-02-29", 3, 1_510_800, NATIONAL_2020),
                # 1, 2 Mar: 2 x 3,000 NOK = 6,000 NOK
                ("2020-03-01", "2020-03-02", 2, 600_000, DR_TRIAL),
            ],
            id="trial-from-its-first-day-national-before",
        ),
        pytest.param(
            "domain.md s.4 trial overrides national inside its window, not after it",
            BJORNAFJORDEN,
            HELSE_BERGEN,
            "2020-03-30",
            "2020-04-03",
            [
                # 30, 31 Mar: 2 x 3,000 NOK = 6,000 NOK
                ("2020-03-30", "2020-03-31", 2, 600_000, DR_TRIAL),
                # 1, 2 Apr: valid_until is exclusive, 2 x 5,036 NOK = 10,072 NOK
                ("2020-04-01", "2020-04-02", 2, 1_007_200, NATIONAL_2020),
            ],
            id="trial-to-its-last-day-national-after",
        ),
        pytest.param(
            "domain.md s.4 a trial applies to each of its named municipalities",
            LILLESAND,
            HELSE_BERGEN,
            "2020-03-02",
            "2020-03-05",
            # 2, 3, 4 Mar: 3 x 3,000 NOK = 9,000 NOK
            [("2020-03-02", "2020-03-04", 3, 900_000, DR_TRIAL)],
            id="trial-for-another-participant",
        ),
        pytest.param(
            "domain.md s.4 a trial does not apply to a municipality it does not name",
            BERGEN,
            HELSE_BERGEN,
            "2020-03-02",
            "2020-03-05",
            # 2, 3, 4 Mar: 3 x 5,036 NOK = 15,108 NOK
            [("2020-03-02", "2020-03-04", 3, 1_510_800, NATIONAL_2020)],
            id="no-trial-for-a-non-participant",
        ),
        pytest.param(
            "domain.md s.4 an agreement beats a trial inside its window; the trial resumes after",
            BJORNAFJORDEN,
            HELSE_FONNA,
            "2020-03-08",
            "2020-03-22",
            [
                # 8, 9 Mar: 2 x 3,000 NOK = 6,000 NOK
                ("2020-03-08", "2020-03-09", 2, 600_000, DR_TRIAL),
                # 10..19 Mar: 10 x 2,500 NOK = 25,000 NOK
                ("2020-03-10", "2020-03-19", 10, 2_500_000, DR_AGREEMENT),
                # 20, 21 Mar: 2 x 3,000 NOK = 6,000 NOK
                ("2020-03-20", "2020-03-21", 2, 600_000, DR_TRIAL),
            ],
            id="agreement-beats-trial",
        ),
        pytest.param(
            "domain.md s.4 an agreement is for its pair only: the same municipality with another trust",
            BJORNAFJORDEN,
            HELSE_BERGEN,
            "2020-03-12",
            "2020-03-14",
            # 12, 13 Mar: 2 x 3,000 NOK
            [("2020-03-12", "2020-03-13", 2, 600_000, DR_TRIAL)],
            id="agreement-not-for-another-trust",
        ),
    ],
)
def test_discharge_ready_days_are_priced_by_the_most_specific_rule_of_each_day(
    rule_cited: str, municipality: str, trust: str, ready: str, end: str, expected: list[BedDays]
) -> None:
    items = rate_episode("episode-1", trust, episode(municipality, ready, end), DR_BOOK, date(2020, 4, 30))

    got = [
        (i.first_day.isoformat(), i.last_day.isoformat(), i.quantity, i.amount_ore, i.rule_id) for i in items
    ]
    assert got == expected, rule_cited
    for item in items:
        winner = DR_BOOK.find(DR_RATE, item.first_day, municipality, trust)
        assert winner is not None and item.rule_id == winner.id
        assert item.unit_price_ore == int(winner.value * 100)


# ---------------------------------------------------------------- co-financed activity

SHARE = Parameter.CO_FINANCING_SHARE
UNIT = Parameter.CO_FINANCING_UNIT_PRICE_NOK
NATIONAL_SHARE = "national.co-financing.share"
NATIONAL_CAP = "national.co-financing.cap"
NATIONAL_UNIT = "test.national.unit-price.2014"
TRIAL_SHARE = "trial.1714-1664.share"
TRIAL_UNIT = "trial.1714-1664.unit-price.2015"
AGREEMENT_SHARE = "agreement.1714-helse-nord-trondelag.share"

ACTIVITY_BOOK = build_book(
    [
        *shipped("national-co-financing.toml"),  # share 0.20, cap 4 DRG points, 2012-2014
        # illustrative: no source confirms the unit price (national-co-financing.toml)
        rule(NATIONAL_UNIT, UNIT, "40000", date(2014, 1, 1), date(2015, 1, 1)),
        # Stjørdal and Selbu: share 0.30 from 1 Jul 2014 to 30 Jun 2015, and a unit price of
        # their own for 2015, when the national scheme is gone
        rule(TRIAL_SHARE, SHARE, "0.30", date(2014, 7, 1), date(2015, 7, 1), trial={STJORDAL, SELBU}),
        rule(TRIAL_UNIT, UNIT, "42000", date(2015, 1, 1), date(2015, 7, 1), trial={STJORDAL, SELBU}),
        # Stjørdal with Helse Nord-Trøndelag: share 0.05 from 1 Aug 2014
        rule(
            AGREEMENT_SHARE, SHARE, "0.05", date(2014, 8, 1), None, agreement=(STJORDAL, HELSE_NORD_TRONDELAG)
        ),
    ]
)


@pytest.mark.parametrize(
    ("rule_cited", "municipality", "trust", "ended", "points", "expected"),
    [
        pytest.param(
            "domain.md s.4 A1: before the trial's window the national share applies",
            STJORDAL,
            ST_OLAVS,
            "2014-06-30T12:00",
            "0.873",
            # 0.20 x 0.873 x 40,000 NOK = 6,984 NOK
            (698_400, f"{NATIONAL_SHARE}+{NATIONAL_CAP}+{NATIONAL_UNIT}"),
            id="national-share-the-day-before-the-trial",
        ),
        pytest.param(
            "domain.md s.4 A1: inside its window the trial's share overrides the national one",
            STJORDAL,
            ST_OLAVS,
            "2014-07-01T12:00",
            "0.873",
            # 0.30 x 0.873 x 40,000 NOK = 10,476 NOK
            (1_047_600, f"{TRIAL_SHARE}+{NATIONAL_CAP}+{NATIONAL_UNIT}"),
            id="trial-share-from-its-first-day",
        ),
        pytest.param(
            "domain.md s.4 A1: the national cap still applies under the trial's share",
            SELBU,
            ST_OLAVS,
            "2014-09-15T12:00",
            "7.2",
            # 0.30 x min(7.2, 4) x 40,000 NOK = 48,000 NOK
            (4_800_000, f"{TRIAL_SHARE}+{NATIONAL_CAP}+{NATIONAL_UNIT}"),
            id="trial-share-for-another-participant-capped",
        ),
        pytest.param(
            "domain.md s.4 A1: a trial does not apply to a municipality it does not name",
            TRONDHEIM,
            ST_OLAVS,
            "2014-09-15T12:00",
            "0.873",
            (698_400, f"{NATIONAL_SHARE}+{NATIONAL_CAP}+{NATIONAL_UNIT}"),
            id="national-share-for-a-non-participant",
        ),
        pytest.param(
            "domain.md s.3-4 A4: after 2014 only the trial prices activity (no cap in force)",
            STJORDAL,
            ST_OLAVS,
            "2015-03-10T12:00",
            "5.0",
            # 0.30 x 5.0 x 42,000 NOK = 63,000 NOK; no cap rule in force in 2015
            (6_300_000, f"{TRIAL_SHARE}+{TRIAL_UNIT}"),
            id="trial-prices-2015-activity",
        ),
        pytest.param(
            "domain.md s.3-4 A4: after the trial's window nothing prices the activity",
            STJORDAL,
            ST_OLAVS,
            "2015-07-01T12:00",
            "0.873",
            None,
            id="nothing-after-the-trial",
        ),
        pytest.param(
            "domain.md s.3-4 A4: in 2015 a non-participant pays nothing",
            TRONDHEIM,
            ST_OLAVS,
            "2015-03-10T12:00",
            "0.873",
            None,
            id="nothing-in-2015-for-a-non-participant",
        ),
        pytest.param(
            "domain.md s.4 A1: an agreement's share beats the trial's",
            STJORDAL,
            HELSE_NORD_TRONDELAG,
            "2014-09-15T12:00",
            "0.873",
            # 0.05 x 0.873 x 40,000 NOK = 1,746 NOK
            (174_600, f"{AGREEMENT_SHARE}+{NATIONAL_CAP}+{NATIONAL_UNIT}"),
            id="agreement-share-beats-trial-share",
        ),
        pytest.param(
            "domain.md s.4 A1: before the agreement's window the trial's share applies to the pair",
            STJORDAL,
            HELSE_NORD_TRONDELAG,
            "2014-07-31T12:00",
            "0.873",
            (1_047_600, f"{TRIAL_SHARE}+{NATIONAL_CAP}+{NATIONAL_UNIT}"),
            id="trial-share-before-the-agreement",
        ),
        pytest.param(
            "domain.md s.3-4 A4 A5: an agreement share after the trial, with no unit price, is unrated",
            STJORDAL,
            HELSE_NORD_TRONDELAG,
            "2015-09-01T12:00",
            "0.873",
            (None, None),
            id="agreement-share-without-a-unit-price-is-unrated",
        ),
    ],
)
def test_activity_is_priced_by_the_most_specific_rule_of_each_parameter(
    rule_cited: str,
    municipality: str,
    trust: str,
    ended: str,
    points: str,
    expected: tuple[int | None, str | None] | None,
) -> None:
    fact = ActivityFact(
        "activity_recorded",
        at(ended),
        "event-1",
        municipality,
        drg_points=Decimal(points),
        ended_at=at(ended),
    )

    items = rate_activity("activity-1", trust, [fact], ACTIVITY_BOOK)

    assert [(item.amount_ore, item.rule_id) for item in items] == ([] if expected is None else [expected]), (
        rule_cited
    )


# ---------------------------------------------------------------- the shipped examples

EXAMPLES = load_tariffs(DEFAULT_TARIFF_DIR, EXAMPLE_TARIFF_DIR)


def test_the_shipped_example_trial_prices_2025_activity_of_its_municipalities_only() -> None:
    def price(municipality: str) -> list[tuple[int | None, str | None]]:
        fact = ActivityFact(
            "activity_recorded",
            at("2025-06-10T12:00"),
            "event-1",
            municipality,
            drg_points=Decimal("2"),
            ended_at=at("2025-06-10T12:00"),
        )
        return [(i.amount_ore, i.rule_id) for i in rate_activity("a", HELSE_BERGEN, [fact], EXAMPLES)]

    trial = "example.trial.activity-2025"
    # 0.10 x 2 x 52,248 NOK = 10,449.60 NOK
    assert price(BJORNAFJORDEN) == [(1_044_960, f"{trial}.share+{trial}.cap+{trial}.unit-price")]
    assert price("4626") == price(BJORNAFJORDEN)
    assert price(BERGEN) == []


def test_the_shipped_example_agreement_prices_emergency_beds_for_its_pair_only() -> None:
    def stay(trust: str) -> list[LedgerItem]:
        facts = [
            StayFact(StayMilestone.ADMITTED, at("2025-03-03T12:00"), "event-1", TROMSO),
            StayFact(StayMilestone.DISCHARGED, at("2025-03-05T12:00"), "event-2", TROMSO),
        ]
        return rate_stay("stay-1", trust, facts, EXAMPLES, date(2025, 3, 31))

    # 3, 4 Mar: 2 x 4,500 NOK = 9,000 NOK
    assert [(i.quantity, i.amount_ore, i.rule_id) for i in stay(UNN)] == [
        (2, 900_000, "example.agreement.5501-unn.emergency-bed")
    ]
    assert [(i.quantity, i.status, i.rule_id) for i in stay(HELSE_BERGEN)] == [
        (2, ItemStatus.NOT_PAYABLE, None)
    ]


# ---------------------------------------------------------------- every priced line names its rule


def test_every_priced_item_names_the_rules_that_priced_it_and_they_exist() -> None:
    items = [
        *rate_episode(
            "episode-1",
            HELSE_FONNA,
            episode(BJORNAFJORDEN, "2020-02-27", "2020-04-03"),
            DR_BOOK,
            date(2020, 4, 30),
        ),
        *[
            item
            for ended in ("2014-06-30T12:00", "2014-07-15T12:00", "2014-08-15T12:00", "2015-03-10T12:00")
            for item in rate_activity(
                "activity-1",
                HELSE_NORD_TRONDELAG,
                [
                    ActivityFact(
                        "activity_recorded",
                        at(ended),
                        "e",
                        STJORDAL,
                        drg_points=Decimal(1),
                        ended_at=at(ended),
                    )
                ],
                ACTIVITY_BOOK,
            )
        ],
    ]

    priced = [item for item in items if item.status is ItemStatus.PRICED]
    # bed-days: Feb national, Mar trial, agreement, trial, Apr national; activity: national
    # (June 2014), trial (July 2014), agreement (August 2014 and March 2015)
    assert len(priced) == 9
    assert all(item.rule_id for item in priced)
    known = {r.id for r in (*DR_BOOK.rules, *ACTIVITY_BOOK.rules)}
    assert rule_ids(priced) <= known
    # every scope priced something
    assert rule_ids(priced) >= {
        NATIONAL_2020,
        DR_TRIAL,
        DR_AGREEMENT,
        NATIONAL_SHARE,
        TRIAL_SHARE,
        AGREEMENT_SHARE,
    }
