"""Worked examples for the discharge-ready rules (domain.md section 1).

Every row of the table is one episode: its facts, the day the month is closed through,
and the items it must produce, computed by hand from the rules R1..R8 in
`services.domain.discharge_ready` and the rate table in domain.md section 1.

Municipality numbers are the ones in force on the dates used ("a municipality number is
only meaningful together with a date", domain.md "The parties"): Bergen was 1201 before
the 2020 reform and 4601 after it, Bjørnafjorden (4624) exists from 2020, Ålesund is 1508
from 2024, Oslo is 0301 throughout.
"""

from __future__ import annotations

import itertools
import random
import tomllib
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from services.domain.calendar import Month
from services.domain.discharge_ready import EpisodeFact, Milestone, rate_episode
from services.domain.ledger import Category, LedgerItem, PayerRole
from services.domain.tariffs import (
    Parameter,
    Scope,
    TariffBook,
    TariffRule,
    build_book,
    parse_rules,
)
from services.tariffs import DEFAULT_TARIFF_DIR

OSLO_TZ = ZoneInfo("Europe/Oslo")

HELSE_BERGEN = "983974724"
HELSE_FONNA = "983974694"

OSLO = "0301"
BERGEN_BEFORE_2020 = "1201"
BERGEN = "4601"
BJORNAFJORDEN = "4624"
ALESUND = "1508"

ADMITTED = Milestone.ADMISSION_NOTIFIED
READY = Milestone.DECLARED_READY
NOTIFIED = Milestone.MUNICIPALITY_NOTIFIED
CAN_RECEIVE = Milestone.MUNICIPALITY_CAN_RECEIVE
WITHDRAWN = Milestone.READY_WITHDRAWN
DISCHARGED = Milestone.DISCHARGED

SOMATIC = "somatic"
MENTAL_HEALTH = "mental_health"
SUBSTANCE_ABUSE = "substance_abuse"


def rate_id(year: int) -> str:
    return f"national.discharge-ready.{year}"


def national_document() -> dict:
    with (DEFAULT_TARIFF_DIR / "national.toml").open("rb") as handle:
        return tomllib.load(handle)


NATIONAL = parse_rules(national_document())


def at(text: str) -> datetime:
    """An instant: Oslo wall-clock time unless the text carries its own offset (or Z)."""
    instant = datetime.fromisoformat(text)
    return instant if instant.tzinfo is not None else instant.replace(tzinfo=OSLO_TZ)


Fact = tuple[Milestone, str, str, str, str]


def facts_of(rows: list[Fact]) -> list[EpisodeFact]:
    return [
        EpisodeFact(
            milestone=milestone,
            occurred_at=at(when),
            event_id=f"event-{index:02d}",
            registered_municipality=registered,
            staying_municipality=staying,
            care_area=care_area,
        )
        for index, (milestone, when, registered, staying, care_area) in enumerate(rows)
    ]


Expected = tuple[str, str, str, str, int, int | None, str | None]


def compact(item: LedgerItem) -> Expected:
    return (
        str(item.service_month),
        item.municipality,
        item.first_day.isoformat(),
        item.last_day.isoformat(),
        item.quantity,
        item.amount_ore,
        item.rule_id,
    )


def rate(
    rows: list[Fact], through: str, tariffs: TariffBook = NATIONAL, trust: str = HELSE_BERGEN
) -> list[LedgerItem]:
    return rate_episode("episode-1", trust, facts_of(rows), tariffs, date.fromisoformat(through))


def same(municipality: str, care_area: str = SOMATIC) -> tuple[str, str, str]:
    """Registered and staying municipality are the same."""
    return municipality, municipality, care_area


B12 = same(BERGEN_BEFORE_2020)
BGO = same(BERGEN)
BJF = same(BJORNAFJORDEN)
AAL = same(ALESUND)
# Registered in Oslo, staying in Bergen (in hospital at Haukeland).
OSLO_IN_BERGEN = (OSLO, BERGEN_BEFORE_2020, SOMATIC)
OSLO_IN_BERGEN_MENTAL = (OSLO, BERGEN_BEFORE_2020, MENTAL_HEALTH)
OSLO_IN_BERGEN_TSB = (OSLO, BERGEN_BEFORE_2020, SUBSTANCE_ABUSE)


def f(milestone: Milestone, when: str, parties: tuple[str, str, str]) -> Fact:
    return (milestone, when, *parties)


# Columns: rule, facts, through, expected items, open_ended of the last item.
WORKED_EXAMPLES = [
    pytest.param(
        "R1 R2; domain.md s.1 ministry's worked example (notified D, can receive D+3 -> 3 days)",
        [
            f(ADMITTED, "2012-03-01T10:00", B12),
            f(READY, "2012-03-05T09:00", B12),
            f(NOTIFIED, "2012-03-05T09:30", B12),
            f(CAN_RECEIVE, "2012-03-08T11:00", B12),
        ],
        "2012-03-31",
        # 3 days x 4,000 NOK = 12,000 NOK
        [("2012-03", BERGEN_BEFORE_2020, "2012-03-05", "2012-03-07", 3, 1_200_000, rate_id(2012))],
        False,
        id="ministry-example-2012-three-days-12000-nok",
    ),
    pytest.param(
        "R6; domain.md s.1 rate by the year of each bed-day",
        [
            f(ADMITTED, "2017-12-20T08:00", B12),
            f(READY, "2017-12-28T10:00", B12),
            f(NOTIFIED, "2017-12-28T10:15", B12),
            f(CAN_RECEIVE, "2018-01-03T09:00", B12),
        ],
        "2018-01-31",
        [
            # 28, 29, 30, 31 Dec: 4 x 4,622 NOK = 18,488 NOK
            ("2017-12", BERGEN_BEFORE_2020, "2017-12-28", "2017-12-31", 4, 1_848_800, rate_id(2017)),
            # 1, 2 Jan: 2 x 4,747 NOK = 9,494 NOK
            ("2018-01", BERGEN_BEFORE_2020, "2018-01-01", "2018-01-02", 2, 949_400, rate_id(2018)),
        ],
        False,
        id="stay-across-new-year-2017-2018-two-rates",
    ),
    pytest.param(
        "R4; domain.md s.1 who pays: registered until 2018, staying from 2019-01-01",
        [
            f(ADMITTED, "2018-12-20T08:00", OSLO_IN_BERGEN),
            f(READY, "2018-12-27T10:00", OSLO_IN_BERGEN),
            f(NOTIFIED, "2018-12-27T10:30", OSLO_IN_BERGEN),
            f(CAN_RECEIVE, "2019-01-04T12:00", OSLO_IN_BERGEN),
        ],
        "2019-01-31",
        [
            # 27..31 Dec 2018, Oslo (registered) pays: 5 x 4,747 NOK = 23,735 NOK
            ("2018-12", OSLO, "2018-12-27", "2018-12-31", 5, 2_373_500, rate_id(2018)),
            # 1..3 Jan 2019, Bergen (staying) pays: 3 x 4,885 NOK = 14,655 NOK
            ("2019-01", BERGEN_BEFORE_2020, "2019-01-01", "2019-01-03", 3, 1_465_500, rate_id(2019)),
        ],
        False,
        id="payer-switch-2019-in-one-stay",
    ),
    pytest.param(
        "R5; domain.md s.1 which care: mental health payable only from 2019-01-01",
        [
            f(ADMITTED, "2018-12-10T08:00", OSLO_IN_BERGEN_MENTAL),
            f(READY, "2018-12-20T10:00", OSLO_IN_BERGEN_MENTAL),
            f(NOTIFIED, "2018-12-20T11:00", OSLO_IN_BERGEN_MENTAL),
            f(CAN_RECEIVE, "2019-01-05T10:00", OSLO_IN_BERGEN_MENTAL),
        ],
        "2019-01-31",
        # 20..31 Dec 2018 not payable; 1..4 Jan: 4 x 4,885 NOK = 19,540 NOK, staying pays
        [("2019-01", BERGEN_BEFORE_2020, "2019-01-01", "2019-01-04", 4, 1_954_000, rate_id(2019))],
        False,
        id="mental-health-stay-across-2019-01-01",
    ),
    pytest.param(
        "R5; domain.md s.1 which care: substance-abuse treatment not payable before 2019",
        [
            f(ADMITTED, "2018-05-01T08:00", OSLO_IN_BERGEN_TSB),
            f(READY, "2018-05-07T10:00", OSLO_IN_BERGEN_TSB),
            f(NOTIFIED, "2018-05-07T11:00", OSLO_IN_BERGEN_TSB),
            f(CAN_RECEIVE, "2018-05-14T10:00", OSLO_IN_BERGEN_TSB),
        ],
        "2018-05-31",
        [],
        False,
        id="substance-abuse-stay-in-2018-pays-nothing",
    ),
    pytest.param(
        "R2 R3; domain.md s.1 withdrawn status stops payment, a new declaration starts anew",
        [
            f(ADMITTED, "2021-03-01T08:00", BGO),
            f(READY, "2021-03-02T10:00", BGO),
            f(NOTIFIED, "2021-03-02T11:00", BGO),
            f(WITHDRAWN, "2021-03-05T14:00", BGO),
            f(READY, "2021-03-08T09:00", BGO),
            f(NOTIFIED, "2021-03-09T10:00", BGO),
            f(CAN_RECEIVE, "2021-03-12T10:00", BGO),
        ],
        "2021-03-31",
        [
            # 2..4 Mar: 3 x 5,167 NOK = 15,501 NOK; 5..8 Mar not payable
            ("2021-03", BERGEN, "2021-03-02", "2021-03-04", 3, 1_550_100, rate_id(2021)),
            # 9..11 Mar (from the new notice): 3 x 5,167 NOK
            ("2021-03", BERGEN, "2021-03-09", "2021-03-11", 3, 1_550_100, rate_id(2021)),
        ],
        False,
        id="withdrawn-and-redeclared-with-a-new-notice-pays-two-intervals",
    ),
    pytest.param(
        "R3; domain.md s.1 a re-declaration needs a new notice",
        [
            f(ADMITTED, "2021-03-01T08:00", BGO),
            f(READY, "2021-03-02T10:00", BGO),
            f(NOTIFIED, "2021-03-02T11:00", BGO),
            f(WITHDRAWN, "2021-03-05T14:00", BGO),
            f(READY, "2021-03-08T09:00", BGO),
            f(DISCHARGED, "2021-03-12T10:00", BGO),
        ],
        "2021-03-31",
        [("2021-03", BERGEN, "2021-03-02", "2021-03-04", 3, 1_550_100, rate_id(2021))],
        False,
        id="redeclared-without-a-new-notice-pays-nothing-more",
    ),
    pytest.param(
        "R3 [product]; a notice before the declaration it would belong to does not count",
        [
            f(ADMITTED, "2021-03-01T08:00", BGO),
            f(READY, "2021-03-02T10:00", BGO),
            f(NOTIFIED, "2021-03-02T11:00", BGO),
            f(WITHDRAWN, "2021-03-05T14:00", BGO),
            f(NOTIFIED, "2021-03-06T10:00", BGO),
            f(READY, "2021-03-08T09:00", BGO),
            f(DISCHARGED, "2021-03-12T10:00", BGO),
        ],
        "2021-03-31",
        [("2021-03", BERGEN, "2021-03-02", "2021-03-04", 3, 1_550_100, rate_id(2021))],
        False,
        id="notice-between-withdrawal-and-redeclaration-does-not-count",
    ),
    pytest.param(
        "R3 [product]; a notice earlier than the first declaration does not count",
        [
            f(ADMITTED, "2021-03-01T08:00", BGO),
            f(NOTIFIED, "2021-03-02T10:00", BGO),
            f(READY, "2021-03-02T11:00", BGO),
            f(CAN_RECEIVE, "2021-03-05T10:00", BGO),
        ],
        "2021-03-31",
        [],
        False,
        id="notice-before-the-declaration-does-not-count",
    ),
    pytest.param(
        "R1; module docstring: a notice and a declaration at one instant both count",
        [
            f(ADMITTED, "2021-03-01T08:00", BGO),
            f(NOTIFIED, "2021-03-02T10:00", BGO),
            f(READY, "2021-03-02T10:00", BGO),
            f(CAN_RECEIVE, "2021-03-05T10:00", BGO),
        ],
        "2021-03-31",
        # 2..4 Mar: 3 x 5,167 NOK
        [("2021-03", BERGEN, "2021-03-02", "2021-03-04", 3, 1_550_100, rate_id(2021))],
        False,
        id="notice-and-declaration-at-the-same-instant-count",
    ),
    pytest.param(
        "R7; an open episode is paid through the last day of the month being closed",
        [
            f(ADMITTED, "2024-03-15T08:00", AAL),
            f(READY, "2024-03-20T10:00", AAL),
            f(NOTIFIED, "2024-03-20T12:00", AAL),
        ],
        "2024-03-31",
        # 20..31 Mar: 12 x 5,745 NOK = 68,940 NOK
        [("2024-03", ALESUND, "2024-03-20", "2024-03-31", 12, 6_894_000, rate_id(2024))],
        True,
        id="open-episode-at-month-end-paid-through-the-last-day",
    ),
    pytest.param(
        "R7; an open episode goes on in the next month",
        [
            f(ADMITTED, "2024-03-15T08:00", AAL),
            f(READY, "2024-03-20T10:00", AAL),
            f(NOTIFIED, "2024-03-20T12:00", AAL),
        ],
        "2024-04-30",
        [
            ("2024-03", ALESUND, "2024-03-20", "2024-03-31", 12, 6_894_000, rate_id(2024)),
            # 1..30 Apr: 30 x 5,745 NOK = 172,350 NOK
            ("2024-04", ALESUND, "2024-04-01", "2024-04-30", 30, 17_235_000, rate_id(2024)),
        ],
        True,
        id="open-episode-goes-on-in-the-next-month",
    ),
    pytest.param(
        "R7 R2; once the end is known the episode is no longer open",
        [
            f(ADMITTED, "2024-03-15T08:00", AAL),
            f(READY, "2024-03-20T10:00", AAL),
            f(NOTIFIED, "2024-03-20T12:00", AAL),
            f(CAN_RECEIVE, "2024-04-10T09:00", AAL),
        ],
        "2024-04-30",
        [
            ("2024-03", ALESUND, "2024-03-20", "2024-03-31", 12, 6_894_000, rate_id(2024)),
            # 1..9 Apr: 9 x 5,745 NOK = 51,705 NOK
            ("2024-04", ALESUND, "2024-04-01", "2024-04-09", 9, 5_170_500, rate_id(2024)),
        ],
        False,
        id="episode-ending-in-the-next-month-is-closed",
    ),
    pytest.param(
        "R1; domain.md s.1 without an admission notice there is no payment",
        [
            f(READY, "2022-09-12T09:00", BGO),
            f(NOTIFIED, "2022-09-12T09:30", BGO),
            f(CAN_RECEIVE, "2022-09-20T10:00", BGO),
        ],
        "2022-09-30",
        [],
        False,
        id="missing-admission-notice-pays-nothing",
    ),
    pytest.param(
        "R6; domain.md s.1 a bed-day with no rate waits as unrated, never priced at 0 (2013)",
        [
            f(ADMITTED, "2013-02-01T08:00", B12),
            f(READY, "2013-02-04T10:00", B12),
            f(NOTIFIED, "2013-02-04T10:30", B12),
            f(DISCHARGED, "2013-02-07T12:00", B12),
        ],
        "2013-02-28",
        [("2013-02", BERGEN_BEFORE_2020, "2013-02-04", "2013-02-06", 3, None, None)],
        False,
        id="year-2013-without-a-rate-is-unrated",
    ),
    pytest.param(
        "R6; domain.md s.1 a stay from a rated year into an unrated one",
        [
            f(ADMITTED, "2012-12-20T08:00", B12),
            f(READY, "2012-12-29T10:00", B12),
            f(NOTIFIED, "2012-12-29T10:30", B12),
            f(CAN_RECEIVE, "2013-01-03T12:00", B12),
        ],
        "2013-01-31",
        [
            # 29..31 Dec 2012: 3 x 4,000 NOK
            ("2012-12", BERGEN_BEFORE_2020, "2012-12-29", "2012-12-31", 3, 1_200_000, rate_id(2012)),
            ("2013-01", BERGEN_BEFORE_2020, "2013-01-01", "2013-01-02", 2, None, None),
        ],
        False,
        id="stay-from-2012-into-2013-is-rated-then-unrated",
    ),
    pytest.param(
        "R6 R7; domain.md s.1 2026 has no confirmed rate",
        [
            f(ADMITTED, "2025-12-22T08:00", AAL),
            f(READY, "2025-12-30T10:00", AAL),
            f(NOTIFIED, "2025-12-30T10:30", AAL),
        ],
        "2026-01-31",
        [
            # 30, 31 Dec 2025: 2 x 5,981 NOK = 11,962 NOK
            ("2025-12", ALESUND, "2025-12-30", "2025-12-31", 2, 1_196_200, rate_id(2025)),
            ("2026-01", ALESUND, "2026-01-01", "2026-01-31", 31, None, None),
        ],
        True,
        id="open-stay-into-2026-is-unrated-from-new-year",
    ),
    pytest.param(
        "R1; domain.md s.1 payment starts when ready AND notified: the later day",
        [
            f(ADMITTED, "2020-05-01T08:00", BJF),
            f(READY, "2020-05-04T23:50", BJF),
            f(NOTIFIED, "2020-05-05T00:10", BJF),
            f(CAN_RECEIVE, "2020-05-08T10:00", BJF),
        ],
        "2020-05-31",
        # ready on the 4th, notified on the 5th: 5..7 May, 3 x 5,036 NOK = 15,108 NOK
        [("2020-05", BJORNAFJORDEN, "2020-05-05", "2020-05-07", 3, 1_510_800, rate_id(2020))],
        False,
        id="payment-starts-at-the-later-of-ready-day-and-notice-day",
    ),
    pytest.param(
        "R1; domain.md s.1 the municipality must have been notified",
        [
            f(ADMITTED, "2020-05-25T08:00", BJF),
            f(READY, "2020-06-01T10:00", BJF),
            f(NOTIFIED, "2020-06-05T09:00", BJF),
            f(CAN_RECEIVE, "2020-06-07T10:00", BJF),
        ],
        "2020-06-30",
        # 1..4 Jun not notified yet; 5, 6 Jun: 2 x 5,036 NOK
        [("2020-06", BJORNAFJORDEN, "2020-06-05", "2020-06-06", 2, 1_007_200, rate_id(2020))],
        False,
        id="ready-notified-late-pays-from-the-notice",
    ),
    pytest.param(
        "R2; domain.md s.1 the end day is not paid",
        [
            f(ADMITTED, "2022-09-01T08:00", BGO),
            f(READY, "2022-09-12T09:00", BGO),
            f(NOTIFIED, "2022-09-12T09:30", BGO),
            f(CAN_RECEIVE, "2022-09-12T15:00", BGO),
        ],
        "2022-09-30",
        [],
        False,
        id="can-receive-on-the-start-day-pays-zero-days",
    ),
    pytest.param(
        "R2; domain.md s.1 the day the patient leaves hospital is not paid",
        [
            f(ADMITTED, "2022-09-01T08:00", BGO),
            f(READY, "2022-09-12T09:00", BGO),
            f(NOTIFIED, "2022-09-12T09:30", BGO),
            f(DISCHARGED, "2022-09-14T11:00", BGO),
        ],
        "2022-09-30",
        # 12, 13 Sep: 2 x 5,306 NOK = 10,612 NOK
        [("2022-09", BERGEN, "2022-09-12", "2022-09-13", 2, 1_061_200, rate_id(2022))],
        False,
        id="discharge-day-not-paid",
    ),
    pytest.param(
        "R2; domain.md s.1 whichever end comes first",
        [
            f(ADMITTED, "2022-09-01T08:00", BGO),
            f(READY, "2022-09-12T09:00", BGO),
            f(NOTIFIED, "2022-09-12T09:30", BGO),
            f(CAN_RECEIVE, "2022-09-15T10:00", BGO),
            f(DISCHARGED, "2022-09-19T11:00", BGO),
        ],
        "2022-09-30",
        # 12..14 Sep: 3 x 5,306 NOK = 15,918 NOK
        [("2022-09", BERGEN, "2022-09-12", "2022-09-14", 3, 1_591_800, rate_id(2022))],
        False,
        id="the-first-end-wins",
    ),
    pytest.param(
        "R2; a discharge ends the episode, later facts belong to no stay",
        [
            f(ADMITTED, "2022-09-01T08:00", BGO),
            f(READY, "2022-09-12T09:00", BGO),
            f(NOTIFIED, "2022-09-12T09:30", BGO),
            f(DISCHARGED, "2022-09-14T11:00", BGO),
            f(READY, "2022-09-20T09:00", BGO),
            f(NOTIFIED, "2022-09-20T09:30", BGO),
        ],
        "2022-09-30",
        [("2022-09", BERGEN, "2022-09-12", "2022-09-13", 2, 1_061_200, rate_id(2022))],
        False,
        id="facts-after-discharge-pay-nothing",
    ),
    pytest.param(
        "R1; domain.md s.1 days are Europe/Oslo calendar days (winter, UTC+1)",
        [
            f(ADMITTED, "2020-01-30T08:00", BJF),
            f(READY, "2020-02-02T23:30:00Z", BJF),  # 00:30 on 3 Feb in Oslo
            f(NOTIFIED, "2020-02-02T23:30:00Z", BJF),
            f(CAN_RECEIVE, "2020-02-05T12:00", BJF),
        ],
        "2020-02-29",
        # 3, 4 Feb (not 2 Feb): 2 x 5,036 NOK
        [("2020-02", BJORNAFJORDEN, "2020-02-03", "2020-02-04", 2, 1_007_200, rate_id(2020))],
        False,
        id="oslo-day-boundary-23-30-utc-is-the-next-oslo-day",
    ),
    pytest.param(
        "R1; domain.md s.1 days are Europe/Oslo calendar days (summer, UTC+2)",
        [
            f(ADMITTED, "2020-06-28T08:00", BJF),
            f(READY, "2020-07-01T22:30:00+00:00", BJF),  # 00:30 on 2 Jul in Oslo
            f(NOTIFIED, "2020-07-01T22:30:00+00:00", BJF),
            f(CAN_RECEIVE, "2020-07-05T21:30:00+00:00", BJF),  # 23:30 on 5 Jul in Oslo
        ],
        "2020-07-31",
        # 2, 3, 4 Jul: 3 x 5,036 NOK = 15,108 NOK
        [("2020-07", BJORNAFJORDEN, "2020-07-02", "2020-07-04", 3, 1_510_800, rate_id(2020))],
        False,
        id="oslo-day-boundary-in-summer-time",
    ),
    pytest.param(
        "R1; domain.md s.1 the admission must have been notified",
        [
            f(READY, "2023-04-03T10:00", BGO),
            f(NOTIFIED, "2023-04-03T10:30", BGO),
            f(ADMITTED, "2023-04-05T08:00", BGO),
            f(CAN_RECEIVE, "2023-04-10T10:00", BGO),
        ],
        "2023-04-30",
        # 5..9 Apr: 5 x 5,508 NOK = 27,540 NOK
        [("2023-04", BERGEN, "2023-04-05", "2023-04-09", 5, 2_754_000, rate_id(2023))],
        False,
        id="late-admission-notice-delays-the-start",
    ),
    pytest.param(
        "R4; the payer of a day is read from the latest fact on or before it",
        [
            f(ADMITTED, "2020-10-01T08:00", (BERGEN, BJORNAFJORDEN, SOMATIC)),
            f(READY, "2020-10-05T10:00", (BERGEN, BJORNAFJORDEN, SOMATIC)),
            f(NOTIFIED, "2020-10-05T11:00", (BERGEN, BJORNAFJORDEN, SOMATIC)),
            f(NOTIFIED, "2020-10-08T09:00", (BERGEN, BERGEN, SOMATIC)),
            f(CAN_RECEIVE, "2020-10-10T10:00", (BERGEN, BERGEN, SOMATIC)),
        ],
        "2020-10-31",
        [
            # 5..7 Oct staying in Bjørnafjorden: 3 x 5,036 NOK
            ("2020-10", BJORNAFJORDEN, "2020-10-05", "2020-10-07", 3, 1_510_800, rate_id(2020)),
            # 8, 9 Oct staying in Bergen: 2 x 5,036 NOK
            ("2020-10", BERGEN, "2020-10-08", "2020-10-09", 2, 1_007_200, rate_id(2020)),
        ],
        False,
        id="staying-municipality-changing-mid-stay-changes-the-payer",
    ),
    pytest.param(
        "R1 R3; only an end starts a new cycle: a repeated declaration keeps the notice",
        [
            f(ADMITTED, "2021-03-01T08:00", BGO),
            f(READY, "2021-03-02T10:00", BGO),
            f(NOTIFIED, "2021-03-02T11:00", BGO),
            f(READY, "2021-03-03T09:00", BGO),
            f(CAN_RECEIVE, "2021-03-06T10:00", BGO),
        ],
        "2021-03-31",
        # 2..5 Mar: 4 x 5,167 NOK = 20,668 NOK
        [("2021-03", BERGEN, "2021-03-02", "2021-03-05", 4, 2_066_800, rate_id(2021))],
        False,
        id="a-repeated-declaration-without-an-end-does-not-restart-the-cycle",
    ),
]


@pytest.mark.parametrize(("rule", "facts", "through", "expected", "last_open"), WORKED_EXAMPLES)
def test_a_worked_example_gives_exactly_the_expected_items(
    rule: str, facts: list[Fact], through: str, expected: list[Expected], last_open: bool
) -> None:
    items = rate(facts, through)

    assert [compact(item) for item in items] == expected, rule
    assert [item.open_ended for item in items] == [
        last_open and index == len(items) - 1 for index in range(len(items))
    ], rule
    for item in items:
        assert item.category is Category.DISCHARGE_READY_BED_DAYS
        assert item.payer_role is PayerRole.MUNICIPALITY
        assert item.health_trust == HELSE_BERGEN
        assert item.subject_id == "episode-1"
        assert item.service_month == Month.of(item.first_day) == Month.of(item.last_day)
        assert item.quantity == (item.last_day - item.first_day).days + 1
        if item.amount_ore is None:
            assert item.unit_price_ore is None and item.rule_id is None and not item.rated
        else:
            assert item.unit_price_ore is not None
            assert item.amount_ore == item.unit_price_ore * item.quantity


def test_every_row_of_the_table_cites_a_rule() -> None:
    for row in WORKED_EXAMPLES:
        rule = row.values[0]
        assert any(f"R{n}" in rule for n in range(1, 9)), row.id


def test_a_day_without_a_rate_is_never_priced_at_zero() -> None:
    items = rate(
        [
            f(ADMITTED, "2026-02-01T08:00", AAL),
            f(READY, "2026-02-02T10:00", AAL),
            f(NOTIFIED, "2026-02-02T10:30", AAL),
            f(CAN_RECEIVE, "2026-02-06T10:00", AAL),
        ],
        "2026-02-28",
    )

    assert [(i.quantity, i.unit_price_ore, i.amount_ore, i.rule_id) for i in items] == [(4, None, None, None)]


SHUFFLED_EPISODES = [
    pytest.param(row.values[1], row.values[2], id=row.id)
    for row in WORKED_EXAMPLES
    if row.id
    in {
        "withdrawn-and-redeclared-with-a-new-notice-pays-two-intervals",
        "payer-switch-2019-in-one-stay",
        "notice-and-declaration-at-the-same-instant-count",
        "late-admission-notice-delays-the-start",
        "staying-municipality-changing-mid-stay-changes-the-payer",
    }
]


@pytest.mark.parametrize(("facts", "through"), SHUFFLED_EPISODES)
def test_the_order_in_which_facts_arrive_does_not_change_the_items(facts: list[Fact], through: str) -> None:
    episode = facts_of(facts)  # event ids are fixed before shuffling
    expected = rate_episode("episode-1", HELSE_BERGEN, episode, NATIONAL, date.fromisoformat(through))
    assert expected, "the example must produce items to be a meaningful check"

    orders = [list(reversed(episode))]
    for seed in range(12):
        shuffled = list(episode)
        random.Random(seed).shuffle(shuffled)
        orders.append(shuffled)
    for order in orders:
        got = rate_episode("episode-1", HELSE_BERGEN, order, NATIONAL, date.fromisoformat(through))
        assert got == expected


def test_every_permutation_of_a_short_episode_gives_the_same_items() -> None:
    episode = facts_of(
        [
            f(ADMITTED, "2021-03-01T08:00", BGO),
            f(READY, "2021-03-02T10:00", BGO),
            f(NOTIFIED, "2021-03-02T10:00", BGO),
            f(WITHDRAWN, "2021-03-05T14:00", BGO),
            f(READY, "2021-03-08T09:00", BGO),
            f(NOTIFIED, "2021-03-09T10:00", BGO),
        ]
    )
    results = {
        tuple(rate_episode("e", HELSE_BERGEN, order, NATIONAL, date(2021, 3, 31)))
        for order in itertools.permutations(episode)
    }

    assert len(results) == 1
    (items,) = results
    assert [compact(i) for i in items] == [
        ("2021-03", BERGEN, "2021-03-02", "2021-03-04", 3, 1_550_100, rate_id(2021)),
        # 9..31 Mar, still open: 23 x 5,167 NOK = 118,841 NOK
        ("2021-03", BERGEN, "2021-03-09", "2021-03-31", 23, 11_884_100, rate_id(2021)),
    ]


def test_an_episode_without_facts_has_no_items() -> None:
    assert rate_episode("e", HELSE_BERGEN, [], NATIONAL, date(2024, 1, 31)) == []


# R8 [product]: an agreement may add a grace period after the notice (domain.md s.1,
# the Møre og Romsdal agreement's 24 h).

GRACE_RULE = {
    "id": "agreement.bjornafjorden-helse-bergen.grace",
    "parameter": Parameter.DISCHARGE_READY_GRACE_HOURS.value,
    "value": "24",
    "scope": "agreement",
    "municipality": BJORNAFJORDEN,
    "health_trust": HELSE_BERGEN,
    "valid_from": date(2020, 1, 1),
}


GRACE = f"+{GRACE_RULE['id']}"


def book_with_grace() -> TariffBook:
    document = national_document()
    return parse_rules({"rule": [*document["rule"], GRACE_RULE]})


def grace_episode(parties: tuple[str, str, str]) -> list[Fact]:
    return [
        f(ADMITTED, "2022-02-01T08:00", parties),
        f(READY, "2022-02-07T10:00", parties),
        f(NOTIFIED, "2022-02-07T10:30", parties),
        f(CAN_RECEIVE, "2022-02-11T09:00", parties),
    ]


@pytest.mark.parametrize(
    ("parties", "trust", "expected"),
    [
        pytest.param(
            BJF,
            HELSE_BERGEN,
            # notice 7 Feb 10:30 + 24 h -> from 8 Feb; 8..10 Feb: 3 x 5,306 NOK; the item
            # names the grace beside the rate, since it decided which days are paid
            [("2022-02", BJORNAFJORDEN, "2022-02-08", "2022-02-10", 3, 1_591_800, rate_id(2022) + GRACE)],
            id="the-agreement-pair-starts-the-day-after-the-notice",
        ),
        pytest.param(
            BGO,
            HELSE_BERGEN,
            # another municipality, same trust: from the notice day, 7..10 Feb: 4 x 5,306 NOK
            [("2022-02", BERGEN, "2022-02-07", "2022-02-10", 4, 2_122_400, rate_id(2022))],
            id="another-municipality-with-the-same-trust-has-no-grace",
        ),
        pytest.param(
            BJF,
            HELSE_FONNA,
            [("2022-02", BJORNAFJORDEN, "2022-02-07", "2022-02-10", 4, 2_122_400, rate_id(2022))],
            id="the-same-municipality-with-another-trust-has-no-grace",
        ),
        pytest.param(
            (BERGEN, BJORNAFJORDEN, SOMATIC),
            HELSE_BERGEN,
            # since 2019 the staying municipality pays, so its agreement applies
            [("2022-02", BJORNAFJORDEN, "2022-02-08", "2022-02-10", 3, 1_591_800, rate_id(2022) + GRACE)],
            id="the-agreement-of-the-staying-municipality-applies",
        ),
        pytest.param(
            (BJORNAFJORDEN, BERGEN, SOMATIC),
            HELSE_BERGEN,
            [("2022-02", BERGEN, "2022-02-07", "2022-02-10", 4, 2_122_400, rate_id(2022))],
            id="the-agreement-of-the-registered-municipality-does-not-apply-since-2019",
        ),
    ],
)
def test_a_grace_period_agreement_delays_payment_for_that_pair_only(
    parties: tuple[str, str, str], trust: str, expected: list[Expected]
) -> None:
    items = rate(grace_episode(parties), "2022-02-28", tariffs=book_with_grace(), trust=trust)

    assert [compact(item) for item in items] == expected


def test_without_a_grace_agreement_the_same_pair_starts_on_the_notice_day() -> None:
    items = rate(grace_episode(BJF), "2022-02-28")

    assert [compact(item) for item in items] == [
        ("2022-02", BJORNAFJORDEN, "2022-02-07", "2022-02-10", 4, 2_122_400, rate_id(2022))
    ]


def test_a_grace_period_is_not_applied_before_the_agreement_is_in_force() -> None:
    grace = TariffRule(
        id="agreement.grace.from-2023",
        parameter=Parameter.DISCHARGE_READY_GRACE_HOURS,
        value=Decimal(24),
        valid_from=date(2023, 1, 1),
        valid_until=None,
        scope=Scope.AGREEMENT,
        municipalities=frozenset({BJORNAFJORDEN}),
        health_trust=HELSE_BERGEN,
    )
    tariffs = build_book([*NATIONAL.rules, grace])

    items = rate(grace_episode(BJF), "2022-02-28", tariffs=tariffs)

    assert [compact(item) for item in items] == [
        ("2022-02", BJORNAFJORDEN, "2022-02-07", "2022-02-10", 4, 2_122_400, rate_id(2022))
    ]


@pytest.mark.parametrize(
    "notice",
    [
        pytest.param("2022-03-26T23:30", id="written-in-oslo-time"),
        pytest.param("2022-03-26T22:30:00Z", id="written-in-utc"),
        pytest.param("2022-03-26T23:30:00+01:00", id="written-with-an-offset"),
    ],
)
def test_a_grace_period_of_24_hours_is_24_real_hours_across_the_spring_clock_change(notice: str) -> None:
    # Clocks go forward on 27 Mar 2022. 23:30 on 26 Mar + 24 h = 00:30 on 28 Mar, Oslo time.
    items = rate(
        [
            f(ADMITTED, "2022-03-20T08:00", BJF),
            f(READY, notice, BJF),
            f(NOTIFIED, notice, BJF),
            f(CAN_RECEIVE, "2022-03-31T10:00", BJF),
        ],
        "2022-03-31",
        tariffs=book_with_grace(),
    )

    # 28..30 Mar: 3 x 5,306 NOK
    assert [compact(item) for item in items] == [
        ("2022-03", BJORNAFJORDEN, "2022-03-28", "2022-03-30", 3, 1_591_800, rate_id(2022) + GRACE)
    ]
