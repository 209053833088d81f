"""Which subjects rating asks about closed months: the dates written in the facts' timestamps
decide for most, and the answer is the one the facts' Oslo days give."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from services.rating.service import _first_day, _may_owe

_AS_STORED = TypeAdapter(datetime)  # intake stores the contract's JSON form of each timestamp
_LARGEST_OFFSET = 24 * 60 - 1  # minutes: offsets are less than a day either way


def _stored(at: datetime) -> str:
    return str(_AS_STORED.dump_python(at, mode="json"))


# Offsets at the edges of what decides: Oslo's own two, a little more and less, the largest.
_EDGE_OFFSETS = [0, 60, 120, 180, 14 * 60, _LARGEST_OFFSET, -60, -12 * 60, -_LARGEST_OFFSET]


@st.composite
def timestamps_near(draw: st.DrawFn, day: date) -> str:
    """An instant within a day and a half of the end of `day` (mostly), written with any
    offset a timestamp may carry."""
    minutes = draw(st.one_of(st.integers(-36 * 60, 36 * 60), st.integers(-4 * 24 * 60, 5 * 24 * 60)))
    offset_minutes = draw(
        st.one_of(st.sampled_from(_EDGE_OFFSETS), st.integers(-_LARGEST_OFFSET, _LARGEST_OFFSET))
    )
    end_of_day = datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC)
    instant = end_of_day + timedelta(minutes=minutes)
    return _stored(instant.astimezone(timezone(timedelta(minutes=offset_minutes))))


@st.composite
def facts_near(draw: st.DrawFn, day: date) -> list[dict[str, Any]]:
    facts: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(0, 3))):
        fact: dict[str, Any] = {"occurred_at": draw(timestamps_near(day))}
        ended = draw(st.one_of(st.none(), st.just("absent"), timestamps_near(day)))
        if ended != "absent":
            fact["ended_at"] = ended
        facts.append(fact)
    return facts


@st.composite
def closed_and_facts(draw: st.DrawFn) -> tuple[date, list[dict[str, Any]]]:
    last_closed = draw(st.dates(date(2012, 1, 31), date(2030, 12, 31)))
    return last_closed, draw(facts_near(last_closed))


@settings(max_examples=1000, deadline=None)
@given(closed_and_facts())
def test_a_subject_may_owe_a_closed_month_exactly_when_its_first_oslo_day_is_in_one(
    case: tuple[date, list[dict[str, Any]]],
) -> None:
    last_closed, facts = case
    assert _may_owe(facts, last_closed) == (_first_day(facts) <= last_closed)


def test_facts_dated_well_after_the_last_closed_day_are_not_parsed() -> None:
    # Text that is no timestamp after its date: parsing it would raise.
    facts = [{"occurred_at": "2025-10-05T99:99", "ended_at": "2025-10-02Tnot a time"}]
    assert _may_owe(facts, date(2025, 9, 30)) is False


def test_a_fact_of_the_day_after_the_last_closed_one_is_worked_out() -> None:
    # 00:30 at +02:00 on 1 October is 00:30 in Oslo (summer time until late October).
    october = [{"occurred_at": "2025-10-01T00:30:00+02:00"}]
    assert _may_owe(october, date(2025, 9, 30)) is False
    # At +03:00 the same written time is 23:30 on 30 September in Oslo: a closed day.
    east = [{"occurred_at": "2025-10-01T00:30:00+03:00"}]
    assert _may_owe(east, date(2025, 9, 30)) is True


def test_an_activity_coded_after_the_close_but_ended_in_a_closed_month_may_owe_it() -> None:
    coded_late = [{"occurred_at": "2025-10-20T10:00:00+02:00", "ended_at": "2025-09-29T15:00:00+02:00"}]
    assert _may_owe(coded_late, date(2025, 9, 30)) is True
