"""When a month closes by itself: a table of worked examples of the close policy."""

from datetime import date

import pytest

from services.domain.calendar import Month
from services.domain.close_policy import period_to_close

M = Month.parse


@pytest.mark.parametrize(
    ("today", "day", "closed", "expected"),
    [
        pytest.param(date(2026, 11, 4), 5, {M("2026-09")}, None, id="before-the-close-day-nothing"),
        pytest.param(
            date(2026, 11, 5), 5, {M("2026-09")}, M("2026-10"), id="on-the-close-day-the-month-before"
        ),
        pytest.param(date(2026, 11, 23), 5, {M("2026-09")}, M("2026-10"), id="later-in-the-month-still"),
        pytest.param(date(2026, 11, 23), 5, {M("2026-10")}, None, id="already-closed-nothing"),
        pytest.param(date(2026, 1, 10), 5, {M("2025-11")}, M("2025-12"), id="across-new-year"),
        pytest.param(
            date(2026, 11, 23), 5, {M("2026-07")}, M("2026-08"), id="behind-catches-up-oldest-first"
        ),
        pytest.param(date(2026, 11, 23), 5, set(), M("2026-10"), id="nothing-ever-closed-the-month-before"),
    ],
)
def test_the_month_before_closes_on_the_configured_day_in_order(today, day, closed, expected) -> None:
    assert period_to_close(today, day, closed) == expected


def test_a_close_day_past_the_28th_is_refused_because_february_lacks_it() -> None:
    with pytest.raises(ValueError, match="1 to 28"):
        period_to_close(date(2026, 3, 30), 30, set())
