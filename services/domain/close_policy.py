"""When a month closes by itself (issue 4, close policy).

[product] With `AUTO_CLOSE_DAY` = d, the month before today (Europe/Oslo) is closed on
day d of the following month or later, if it is not closed yet. Months are closed in
order, so a month is only closed automatically when the one before it is closed too, or
when nothing was ever closed.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date

from services.domain.calendar import Month


def period_to_close(today: date, auto_close_day: int, closed: Collection[Month]) -> Month | None:
    if not 1 <= auto_close_day <= 28:
        raise ValueError("the automatic close day is a day of the month from 1 to 28")
    previous = Month.of(today.replace(day=1)).previous()
    if today.day < auto_close_day or previous in closed:
        return None
    if closed and previous.previous() not in closed and max(closed) < previous:
        return max(closed).next()  # catch up one month at a time, oldest first
    return previous
