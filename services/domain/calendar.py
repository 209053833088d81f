"""Europe/Oslo calendar days and months: the only clock the rules know."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

OSLO = ZoneInfo("Europe/Oslo")
_MONTH_PATTERN = re.compile(r"([0-9]{4})-([0-9]{2})")


def oslo_day(instant: datetime) -> date:
    """The Europe/Oslo calendar day of an aware instant."""
    if instant.tzinfo is None:
        raise ValueError("a naive datetime has no calendar day")
    return instant.astimezone(OSLO).date()


@dataclass(frozen=True, order=True, slots=True)
class Month:
    """A calendar month, the unit of settlement. Written `YYYY-MM`."""

    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        # ASCII digits only: int() alone would also take "+3", " 3", "2_24" and non-Latin digits.
        match = _MONTH_PATTERN.fullmatch(text)
        if match is None or int(match[1]) < 1 or not 1 <= int(match[2]) <= 12:
            raise ValueError(f"not a month (YYYY-MM): {text!r}")
        return cls(int(match[1]), int(match[2]))

    @classmethod
    def of(cls, day: date) -> Month:
        return cls(day.year, day.month)

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def last_day(self) -> date:
        return self.next().first_day - timedelta(days=1)

    def next(self) -> Month:
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    def previous(self) -> Month:
        return Month(self.year - 1, 12) if self.month == 1 else Month(self.year, self.month - 1)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def days(first: date, end_exclusive: date) -> int:
    return max(0, (end_exclusive - first).days)


def days_through(first: date, last: date) -> int:
    """Days from `first` through `last`, both counted, as bed-days are; 0 when `last` is before."""
    return days(first, last + timedelta(days=1))
