"""Runs of days asked once per stretch give exactly the runs asked day by day.

The rules key every day (month, payer, rate) and `day_runs` groups equal keys into items.
Asking once per stretch (`same_through`) is only an optimisation: for any facts, tariffs
and closing day, the items must be those of asking every day, which these properties
check against the day-by-day reading on generated episodes and stays, with rates that
begin and end mid-month, a gap without a rate, and the 2019 changes of payer and of what
is payable.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.domain import discharge_ready, emergency_beds, ledger
from services.domain.discharge_ready import EpisodeFact, Milestone, rate_episode
from services.domain.emergency_beds import StayFact, StayMilestone, rate_stay
from services.domain.ledger import LedgerItem
from services.domain.tariffs import Parameter, Scope, TariffBook, TariffRule, build_book

TRUST = "983974724"
OSLO, STAVANGER = "0301", "1103"
START = date(2018, 10, 1)  # a window around the 2019 changes and a new year's rates
DAYS = 200


def day(offset: int) -> date:
    return START + timedelta(days=offset)


def national(parameter: Parameter, prefix: str) -> list[TariffRule]:
    """A rate for each year of the window but one stretch: days held for want of a rate."""
    return [
        TariffRule(f"{prefix}.2018", parameter, Decimal("4622.50"), date(2018, 1, 1), date(2018, 11, 20)),
        TariffRule(f"{prefix}.2019", parameter, Decimal("4757"), date(2018, 12, 3), date(2019, 3, 17)),
        TariffRule(f"{prefix}.later", parameter, Decimal("4900"), date(2019, 3, 17), None),
    ]


@st.composite
def books(draw: st.DrawFn) -> TariffBook:
    """The national rates, and an agreement for Oslo that begins and may end mid-month."""
    rules = national(Parameter.DISCHARGE_READY_DAY_RATE_NOK, "dr") + national(
        Parameter.EMERGENCY_BED_DAY_RATE_NOK, "eb"
    )
    begins = draw(st.integers(0, DAYS))
    ends = draw(st.one_of(st.none(), st.integers(begins + 1, DAYS + 30)))
    for parameter in (Parameter.DISCHARGE_READY_DAY_RATE_NOK, Parameter.EMERGENCY_BED_DAY_RATE_NOK):
        rules.append(
            TariffRule(
                f"agreement.{parameter.value}",
                parameter,
                Decimal("5100"),
                day(begins),
                None if ends is None else day(ends),
                scope=Scope.AGREEMENT,
                municipalities=frozenset({OSLO}),
                health_trust=TRUST,
            )
        )
    return build_book(rules)


def instants() -> st.SearchStrategy[datetime]:
    return st.integers(0, DAYS * 24 - 1).map(
        lambda hours: datetime(2018, 10, 1, tzinfo=UTC) + timedelta(hours=hours)
    )


@st.composite
def episodes(draw: st.DrawFn) -> list[EpisodeFact]:
    return [
        EpisodeFact(
            milestone=draw(st.sampled_from(Milestone)),
            occurred_at=draw(instants()),
            event_id=f"e{n}",
            registered_municipality=draw(st.sampled_from((OSLO, STAVANGER))),
            staying_municipality=draw(st.sampled_from((OSLO, STAVANGER))),
            care_area=draw(st.sampled_from(("somatic", "somatic", "mental_health"))),
        )
        for n in range(draw(st.integers(1, 8)))
    ]


@st.composite
def stays(draw: st.DrawFn) -> list[StayFact]:
    municipality = draw(st.sampled_from((OSLO, STAVANGER)))
    facts = [StayFact(StayMilestone.ADMITTED, draw(instants()), "admitted", municipality)]
    if draw(st.booleans()):
        facts.append(StayFact(StayMilestone.DISCHARGED, draw(instants()), "discharged", municipality))
    return facts


def day_by_day(first: date, last: date, key_of: Any, same_through: Any = None) -> Any:
    return ledger.day_runs(first, last, key_of)  # every day asked: the reference


ADMISSION_FIRST = [
    EpisodeFact(Milestone.ADMISSION_NOTIFIED, datetime(2018, 10, 1, tzinfo=UTC), "a", OSLO, OSLO),
    EpisodeFact(Milestone.DECLARED_READY, datetime(2018, 10, 3, tzinfo=UTC), "b", OSLO, OSLO),
    EpisodeFact(Milestone.MUNICIPALITY_NOTIFIED, datetime(2018, 10, 3, 1, tzinfo=UTC), "c", OSLO, OSLO),
]


@settings(max_examples=300, deadline=None)
@given(books(), episodes(), st.booleans(), st.integers(0, DAYS + 30))
def test_an_episode_rated_by_stretches_is_the_episode_rated_day_by_day(
    tariffs: TariffBook, facts: list[EpisodeFact], admitted_first: bool, through: int
) -> None:
    # Most generated histories pay nothing; these open with an episode that pays.
    facts = ADMISSION_FIRST + facts if admitted_first else facts
    by_stretches = rate_episode("EP-1", TRUST, facts, tariffs, day(through))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(discharge_ready, "day_runs", day_by_day)
        assert by_stretches == rate_episode("EP-1", TRUST, facts, tariffs, day(through))


@settings(max_examples=300, deadline=None)
@given(books(), stays(), st.integers(0, DAYS + 30))
def test_a_stay_rated_by_stretches_is_the_stay_rated_day_by_day(
    tariffs: TariffBook, facts: list[StayFact], through: int
) -> None:
    by_stretches = rate_stay("EB-1", TRUST, facts, tariffs, day(through))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(emergency_beds, "day_runs", day_by_day)
        assert by_stretches == rate_stay("EB-1", TRUST, facts, tariffs, day(through))


@settings(max_examples=200, deadline=None)
@given(books(), st.integers(-30, DAYS + 30), st.sampled_from(Parameter))
def test_a_rate_found_for_a_day_holds_through_its_stretch(
    tariffs: TariffBook, offset: int, parameter: Parameter
) -> None:
    first = day(offset)
    through = tariffs.same_through(parameter, first)
    assert through >= first
    for pair in ((OSLO, TRUST), (STAVANGER, TRUST), (OSLO, "974749025")):
        found = tariffs.find(parameter, first, *pair)
        stretch = (min(through, first + timedelta(days=400)) - first).days
        assert all(
            tariffs.find(parameter, first + timedelta(days=n), *pair) == found for n in range(stretch + 1)
        )
        if through < date.max:  # and the next day is where some rule begins or ends
            assert any(r.valid_from == through + timedelta(days=1) or r.valid_until == through + timedelta(days=1)
                       for r in tariffs.rules if r.parameter is parameter)  # fmt: skip


def test_stretches_pay_what_days_pay_across_the_2019_changes() -> None:
    """A worked example: Oslo registered, staying in Stavanger, in mental health care from
    2018-12-20 to 2019-01-05: unpaid until 2019, then paid, by Stavanger from 2019."""
    facts = [
        EpisodeFact(Milestone.ADMISSION_NOTIFIED, datetime(2018, 12, 1, 8, tzinfo=UTC), "a", OSLO, STAVANGER,
                    "mental_health"),
        EpisodeFact(Milestone.DECLARED_READY, datetime(2018, 12, 20, 8, tzinfo=UTC), "b", OSLO, STAVANGER,
                    "mental_health"),
        EpisodeFact(Milestone.MUNICIPALITY_NOTIFIED, datetime(2018, 12, 20, 9, tzinfo=UTC), "c", OSLO,
                    STAVANGER, "mental_health"),
        EpisodeFact(Milestone.DISCHARGED, datetime(2019, 1, 6, 8, tzinfo=UTC), "d", OSLO, STAVANGER,
                    "mental_health"),
    ]  # fmt: skip
    items: list[LedgerItem] = rate_episode("EP-1", TRUST, facts, build_book(national(
        Parameter.DISCHARGE_READY_DAY_RATE_NOK, "dr")), day(DAYS))  # fmt: skip
    assert [(i.municipality, i.first_day, i.last_day, i.quantity, i.amount_ore) for i in items] == [
        (STAVANGER, date(2019, 1, 1), date(2019, 1, 5), 5, 5 * 475_700)
    ]
