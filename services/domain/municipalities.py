"""Municipality numbers over time: which number designates which municipality on a day.

A municipality number (kommunenummer) is only meaningful together with a date: the 2020
reform merged and renumbered most municipalities, and on 2024-01-01 the split counties
renumbered theirs again and 1507 Ålesund was split into 1508 Ålesund and 1580 Haram.

The registry is a list of periods, one per number and stretch of time it was in force.
A period that ended names its successors: the numbers that took over the day it was
retired. `Registry.resolve(number, day)` answers with

- the number itself, when it is in force on `day`;
- its successor, with `mapped_from` set to the number given, when it was retired before
  `day` and had exactly one successor, following the chain through later changes
  (0219 Bærum -> 3024 in 2020 -> 3201 in 2024);
- `SplitMunicipality` when the chain reaches a number that was split into several, since
  the event alone cannot say which of them it belongs to;
- `UnknownMunicipality` when the number never existed, or did not exist yet on `day`.

Everything here is pure; `services.adapters.municipality_registry` reads the shipped file.
The registry is checked when it is built, so a lookup can rely on every successor being in
force the day its predecessor was retired.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from itertools import pairwise

COLUMNS = ("number", "name", "valid_from", "valid_until", "successors")

_NUMBER = re.compile(r"[0-9]{4}")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

# Answers `Registry.resolve` keeps. 500,000 held 73 MB; a year of national traffic asks about
# 130,000 (number, day) pairs, so a year's replay clears it about once.
RESOLVED_KEPT = 100_000


class RegistryError(ValueError):
    """The registry data cannot be used; the message says which line or number and why."""


class MunicipalityNumberError(ValueError):
    """A municipality number that cannot be settled on for the day of an event."""

    def __init__(self, message: str, *, number: str, day: date) -> None:
        super().__init__(message)
        self.number = number
        self.day = day


class UnknownMunicipality(MunicipalityNumberError):
    """The number never existed, or did not exist yet on the day."""


class SplitMunicipality(MunicipalityNumberError):
    """The number (or a number it was merged into) was split into several municipalities
    before the day, so no single successor can be chosen."""

    def __init__(
        self,
        message: str,
        *,
        number: str,
        day: date,
        split_number: str,
        split_on: date,
        successors: tuple[str, ...],
    ) -> None:
        super().__init__(message, number=number, day=day)
        self.split_number = split_number  # the number that was split: `number` or a later one
        self.split_on = split_on
        self.successors = successors


@dataclass(frozen=True, slots=True)
class MunicipalityPeriod:
    number: str
    name: str
    valid_from: date
    valid_until: date | None  # exclusive; None = in force until further notice
    successors: tuple[str, ...] = ()  # who took over on valid_until

    def in_force(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_until is None or day < self.valid_until)


@dataclass(frozen=True, slots=True)
class Resolution:
    number: str  # the number in force on the day
    mapped_from: str | None = None  # the retired number given, when it was mapped

    @property
    def mapped(self) -> bool:
        return self.mapped_from is not None


class Registry:
    """Validated municipality periods; refuses inconsistent data when it is built."""

    def __init__(self, periods: Iterable[MunicipalityPeriod]) -> None:
        by_number: dict[str, list[MunicipalityPeriod]] = {}
        for period in periods:
            by_number.setdefault(period.number, []).append(period)
        if not by_number:
            raise RegistryError("the municipality registry is empty")
        for own in by_number.values():
            own.sort(key=lambda p: p.valid_from)
        self._periods = {number: tuple(own) for number, own in sorted(by_number.items())}
        self._all = tuple(p for own in self._periods.values() for p in own)
        self._resolved: dict[tuple[str, date], Resolution] = {}  # intake asks the same few thousand
        # The day from which each number is in force with no end set: most numbers, for
        # nearly every event, and past that day a lookup needs no calendar day at all.
        self._for_good_from = {
            n: own[-1].valid_from for n, own in self._periods.items() if own[-1].valid_until is None
        }
        self._check()

    # ------------------------------------------------------------------ reading

    @property
    def periods(self) -> tuple[MunicipalityPeriod, ...]:
        return self._all

    def numbers(self) -> frozenset[str]:
        return frozenset(self._periods)

    def periods_of(self, number: str) -> tuple[MunicipalityPeriod, ...]:
        """The periods of `number`, oldest first; none for a number not in the registry."""
        return self._periods.get(number, ())

    def numbers_valid_on(self, day: date) -> frozenset[str]:
        return frozenset(number for number in self._periods if self.period_on(number, day) is not None)

    def in_force_for_good_from(self, number: str) -> date | None:
        """The first day from which `number` is in force with no end set (so `resolve`
        answers the number itself on that day and every day after it), or None."""
        return self._for_good_from.get(number)

    def period_on(self, number: str, day: date) -> MunicipalityPeriod | None:
        for period in self._periods.get(number, ()):
            if period.in_force(day):
                return period
        return None

    def resolve(self, number: str, day: date) -> Resolution:
        """The number that designates, on `day`, the municipality the given number designated."""
        found = self._resolved.get((number, day))
        if found is None:
            found = self._resolve(number, day)
            if len(self._resolved) >= RESOLVED_KEPT:
                self._resolved.clear()  # bounded: a cache, not a second registry
            self._resolved[(number, day)] = found
        return found

    def _resolve(self, number: str, day: date) -> Resolution:
        own = self._periods.get(number)
        if own is None:
            reason = (
                "is not in the municipality registry" if _NUMBER.fullmatch(number) else "is not four digits"
            )
            raise UnknownMunicipality(f"municipality number {number!r} {reason}", number=number, day=day)
        if any(p.in_force(day) for p in own):
            return Resolution(number)
        ended = [p for p in own if p.valid_until is not None and p.valid_until <= day]
        if not ended:
            raise UnknownMunicipality(
                f"municipality number {number} is not in force on {day.isoformat()}: "
                f"the registry has it from {own[0].valid_from.isoformat()}",
                number=number,
                day=day,
            )
        period = ended[-1]
        steps: list[str] = []
        while True:
            retired_on = period.valid_until
            assert retired_on is not None  # the loop only follows periods that ended
            if len(period.successors) > 1:
                names = " and ".join(f"{s} {self._in_force(s, retired_on).name}" for s in period.successors)
                who = f"{number} became {', then '.join(steps)}, and {period.number}" if steps else number
                raise SplitMunicipality(
                    f"municipality number {who} was split on {retired_on.isoformat()} into {names}; "
                    f"an event dated {day.isoformat()} cannot be settled on one of them",
                    number=number,
                    day=day,
                    split_number=period.number,
                    split_on=retired_on,
                    successors=period.successors,
                )
            (successor,) = period.successors
            steps.append(f"{successor} on {retired_on.isoformat()}")
            period = self._in_force(successor, retired_on)
            if period.in_force(day):
                return Resolution(successor, mapped_from=number)

    def name_of(self, number: str, day: date) -> str:
        """The name of the municipality `number` designates on `day` (after any mapping)."""
        resolved = self.resolve(number, day).number
        period = self.period_on(resolved, day)
        assert period is not None
        return period.name

    # ------------------------------------------------------------------ checking

    def _in_force(self, number: str, day: date) -> MunicipalityPeriod:
        period = self.period_on(number, day)
        if period is None:  # excluded by _check
            raise RegistryError(f"{number} is not in force on {day.isoformat()}")
        return period

    def _check(self) -> None:
        for number, own in self._periods.items():
            for earlier, later in pairwise(own):
                if earlier.valid_until is None or later.valid_from < earlier.valid_until:
                    raise RegistryError(
                        f"{number}: the periods from {earlier.valid_from.isoformat()} and from "
                        f"{later.valid_from.isoformat()} overlap"
                    )
        for period in self.periods:
            label = f"{period.number} {period.name} (from {period.valid_from.isoformat()})"
            if period.valid_until is None:
                if period.successors:
                    raise RegistryError(
                        f"{label}: a number still in force (no valid_until) cannot have successors"
                    )
                continue
            if not period.successors:
                raise RegistryError(
                    f"{label}: retired on {period.valid_until.isoformat()} without successors"
                )
            for successor in period.successors:
                if self.period_on(successor, period.valid_until) is None:
                    raise RegistryError(
                        f"{label}: successor {successor} is not in force on "
                        f"{period.valid_until.isoformat()}, the day {period.number} was retired"
                    )


# ---------------------------------------------------------------------- parsing


def parse_registry(text: str, source: str = "registry") -> Registry:
    """Read the CSV format of docs/municipalities.md: `#` lines are comments, then a header
    `number,name,valid_from,valid_until,successors`, then one period a line."""
    header_seen = False
    periods: list[MunicipalityPeriod] = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = next(csv.reader([line]))
        where = f"{source}:{line_number}"
        if not header_seen:
            if tuple(f.strip() for f in fields) != COLUMNS:
                raise RegistryError(f"{where}: expected the header {','.join(COLUMNS)}, got {line!r}")
            header_seen = True
            continue
        periods.append(_period(fields, where))
    if not header_seen:
        raise RegistryError(f"{source}: no header line {','.join(COLUMNS)}")
    try:
        return Registry(periods)
    except RegistryError as exc:
        raise RegistryError(f"{source}: {exc}") from exc


def _period(fields: list[str], where: str) -> MunicipalityPeriod:
    if len(fields) != len(COLUMNS):
        raise RegistryError(f"{where}: expected {len(COLUMNS)} fields, got {len(fields)}")
    number, name, valid_from, valid_until, successors = (f.strip() for f in fields)
    if not _NUMBER.fullmatch(number):
        raise RegistryError(f"{where}: number {number!r} is not four digits")
    if not name:
        raise RegistryError(f"{where}: {number} has no name")
    start = _date(valid_from, where, "valid_from")
    end = _date(valid_until, where, "valid_until") if valid_until else None
    if end is not None and end <= start:
        raise RegistryError(
            f"{where}: {number} valid_until {valid_until} is not after valid_from {valid_from}"
        )
    following = tuple(s.strip() for s in successors.split(";")) if successors else ()
    for successor in following:
        if not _NUMBER.fullmatch(successor):
            raise RegistryError(f"{where}: successor {successor!r} of {number} is not four digits")
    if len(set(following)) != len(following):
        raise RegistryError(f"{where}: {number} names a successor twice")
    if number in following:
        raise RegistryError(f"{where}: {number} names itself as its successor")
    return MunicipalityPeriod(number, name, start, end, following)


def _date(text: str, where: str, column: str) -> date:
    try:
        if not _ISO_DATE.fullmatch(text):
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise RegistryError(f"{where}: {column} {text!r} is not an ISO date (YYYY-MM-DD)") from None
