"""Europe/Oslo calendar days and months: the only clock the rules know."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

OSLO = ZoneInfo("Europe/Oslo")


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
        try:
            year_text, month_text = text.split("-")
            value = cls(int(year_text), int(month_text))
        except ValueError as exc:
            raise ValueError(f"not a month (YYYY-MM): {text!r}") from exc
        if not 1 <= value.month <= 12 or len(year_text) != 4 or len(month_text) != 2:
            raise ValueError(f"not a month (YYYY-MM): {text!r}")
        return value

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

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def days(first: date, end_exclusive: date) -> int:
    return max(0, (end_exclusive - first).days)
