"""Effective-dated tariff rules with a scope, loaded from data an operator edits.

A rule sets one parameter (a bed-day rate, a share, a cap) for a date window and a scope:
national; one agreement (a municipality-trust pair); or a trial for named municipalities.
The most specific rule in force on a day wins: agreement, then trial, then national.
Two rules for the same parameter and the same scope that overlap in time are refused at
load time, naming both, because the price of a day must never depend on file order.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from services.domain.ledger import Category
from services.domain.municipalities import MunicipalityPeriod, Registry

# Answers `TariffBook.find` keeps (per parameter, day and pair: about 130,000 a year for
# activity alone); bounded so an intake replaying years stays well inside its memory.
FOUND_KEPT = 100_000


class TariffError(ValueError):
    """The tariff data cannot be used; the message says which rule and why."""


class Parameter(StrEnum):
    DISCHARGE_READY_DAY_RATE_NOK = "discharge_ready_day_rate_nok"
    EMERGENCY_BED_DAY_RATE_NOK = "emergency_bed_day_rate_nok"
    CO_FINANCING_SHARE = "co_financing_share"
    CO_FINANCING_UNIT_PRICE_NOK = "co_financing_unit_price_nok"
    CO_FINANCING_CAP_POINTS = "co_financing_cap_points"
    DISCHARGE_READY_GRACE_HOURS = "discharge_ready_grace_hours"


class Scope(StrEnum):
    NATIONAL = "national"
    TRIAL = "trial"
    AGREEMENT = "agreement"


_SPECIFICITY = {Scope.AGREEMENT: 0, Scope.TRIAL: 1, Scope.NATIONAL: 2}


@dataclass(frozen=True, slots=True)
class TariffRule:
    id: str
    parameter: Parameter
    value: Decimal
    valid_from: date
    valid_until: date | None  # exclusive; None = until further notice
    scope: Scope = Scope.NATIONAL
    municipalities: frozenset[str] = frozenset()  # trial: the participants; agreement: the one party
    health_trust: str | None = None  # agreement only
    source: str = ""

    def in_force(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_until is None or day < self.valid_until)

    def applies_to(self, municipality: str, health_trust: str) -> bool:
        if self.scope is Scope.NATIONAL:
            return True
        if self.scope is Scope.TRIAL:
            return municipality in self.municipalities
        return municipality in self.municipalities and health_trust == self.health_trust

    def _same_scope(self, other: TariffRule) -> bool:
        if self.parameter is not other.parameter or self.scope is not other.scope:
            return False
        if self.scope is Scope.NATIONAL:
            return True
        if self.scope is Scope.TRIAL:
            return bool(self.municipalities & other.municipalities)
        return self.municipalities == other.municipalities and self.health_trust == other.health_trust

    def _overlaps(self, other: TariffRule) -> bool:
        starts_before_other_ends = other.valid_until is None or self.valid_from < other.valid_until
        ends_after_other_starts = self.valid_until is None or other.valid_from < self.valid_until
        return starts_before_other_ends and ends_after_other_starts


@dataclass(frozen=True, slots=True)
class TariffBook:
    rules: tuple[TariffRule, ...]
    # The book never changes, so an answer holds for good; rating asks the same few
    # questions (a pair, a day, three parameters) for thousands of events a second.
    _found: dict[tuple[Parameter, date, str, str], TariffRule | None] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )
    _changes: dict[Parameter, list[date]] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    def find(
        self, parameter: Parameter, day: date, municipality: str, health_trust: str
    ) -> TariffRule | None:
        """The most specific rule for `parameter` in force on `day` for the pair, if any."""
        key = (parameter, day, municipality, health_trust)
        try:
            return self._found[key]
        except KeyError:
            pass
        if len(self._found) >= FOUND_KEPT:
            self._found.clear()  # bounded: a cache, not a second book
        found = self._found[key] = self._find(parameter, day, municipality, health_trust)
        return found

    def same_through(self, parameter: Parameter, day: date) -> date:
        """The last day from `day` on through which `find` answers for `parameter`, for every
        pair, what it answers on `day`: the day before the next on which a rule for it
        begins or ends (`date.max` if none does). Rules come into and go out of force only
        on those days, and which applies to a pair does not depend on the day."""
        changes = self._changes.get(parameter)
        if changes is None:
            changes = self._changes[parameter] = sorted(
                {
                    d
                    for r in self.rules
                    if r.parameter is parameter
                    for d in (r.valid_from, r.valid_until)
                    if d is not None
                }
            )
        following = bisect_right(changes, day)
        return changes[following] - timedelta(days=1) if following < len(changes) else date.max

    def _find(
        self, parameter: Parameter, day: date, municipality: str, health_trust: str
    ) -> TariffRule | None:
        candidates = [
            r
            for r in self.rules
            if r.parameter is parameter and r.in_force(day) and r.applies_to(municipality, health_trust)
        ]
        if not candidates:
            return None
        return min(candidates, key=lambda r: _SPECIFICITY[r.scope])

    def fingerprint(self) -> str:
        """Changes whenever any rule changes: a close compares it with the last close's to
        know whether days already priced or held may now have another price."""
        import hashlib

        text = "\n".join(_signature(r) for r in sorted(self.rules, key=lambda r: r.id))
        return hashlib.sha256(text.encode()).hexdigest()

    def windows(self) -> dict[str, PricedWindow]:
        """Each rule, by all it says (its signature), with the days and parties it prices."""
        return {_signature(r): PricedWindow.of(r) for r in self.rules}

    def for_pair(self, day: date, municipality: str, health_trust: str) -> list[TariffRule]:
        """Every parameter's winning rule on `day` for the pair (for `settlement tariffs`)."""
        found = (self.find(p, day, municipality, health_trust) for p in Parameter)
        return [r for r in found if r is not None]


def _signature(rule: TariffRule) -> str:
    return (
        f"{rule.id}|{rule.parameter.value}|{rule.value}|{rule.valid_from}|{rule.valid_until}|"
        f"{rule.scope.value}|{','.join(sorted(rule.municipalities))}|{rule.health_trust}"
    )


# What a rule's parameter prices: a change of the rule may change items of that category.
CATEGORY_OF_PARAMETER = {
    Parameter.DISCHARGE_READY_DAY_RATE_NOK: Category.DISCHARGE_READY_BED_DAYS,
    Parameter.DISCHARGE_READY_GRACE_HOURS: Category.DISCHARGE_READY_BED_DAYS,
    Parameter.EMERGENCY_BED_DAY_RATE_NOK: Category.EMERGENCY_BED_DAYS,
    Parameter.CO_FINANCING_SHARE: Category.ACTIVITY_CO_FINANCING,
    Parameter.CO_FINANCING_UNIT_PRICE_NOK: Category.ACTIVITY_CO_FINANCING,
    Parameter.CO_FINANCING_CAP_POINTS: Category.ACTIVITY_CO_FINANCING,
}


# Rates the law sets nationally for every day from a date on (domain.md section 1): a day
# without one holds its discharge-ready days as unrated, which is right for a year nobody has
# published yet and a forgotten step every year after (the shipped book ends with 2025).
NATIONAL_RATES_REQUIRED = {Parameter.DISCHARGE_READY_DAY_RATE_NOK: date(2012, 1, 1)}


@dataclass(frozen=True, slots=True)
class NationalCover:
    """Whether the book has a national rule of `parameter` in force on `day`, and for how long."""

    parameter: Parameter
    day: date
    ends: date | None  # in force: the first day the national rules stop covering; None: no end set
    missing_since: date | None  # not in force: the first day of the stretch without a rule

    @property
    def in_force(self) -> bool:
        return self.missing_since is None

    @property
    def missing_days(self) -> int:
        """Days from `missing_since` through `day`: what waits unrated for the rule (0 in force)."""
        return 0 if self.missing_since is None else max(0, (self.day - self.missing_since).days + 1)

    @property
    def days_left(self) -> float:
        """Days from `day` through the last one covered (infinite with no end set; 0 if missing)."""
        if self.missing_since is not None:
            return 0
        return float("inf") if self.ends is None else (self.ends - self.day).days


def national_cover(book: TariffBook, parameter: Parameter, day: date) -> NationalCover:
    """How the book's national rules of `parameter` cover `day`: rules that follow one another
    without a gap count as one stretch (a rule a year is how rates are published)."""
    required_from = NATIONAL_RATES_REQUIRED.get(parameter, date.min)
    national = sorted(
        (r for r in book.rules if r.parameter is parameter and r.scope is Scope.NATIONAL),
        key=lambda r: r.valid_from,
    )
    current = next((r for r in national if r.in_force(day)), None)
    if current is None:
        ended = [r.valid_until for r in national if r.valid_until is not None and r.valid_until <= day]
        return NationalCover(parameter, day, None, max([required_from, *ended]))
    ends = current.valid_until
    for rule in national:  # by start: a rule starting where the stretch ends carries it on
        if (
            ends is not None
            and rule.valid_from <= ends
            and (rule.valid_until is None or rule.valid_until > ends)
        ):
            ends = rule.valid_until
    return NationalCover(parameter, day, ends, None)


@dataclass(frozen=True, slots=True)
class PricedWindow:
    """The days a rule is in force and the pairs it applies to: where a change of the rule
    (a new value, a new rule, one removed) may change a price."""

    parameter: Parameter
    valid_from: date
    valid_until: date | None  # exclusive; None = until further notice
    municipalities: frozenset[str]  # empty: every municipality
    health_trust: str | None  # None: every health trust

    @classmethod
    def of(cls, rule: TariffRule) -> PricedWindow:
        return cls(rule.parameter, rule.valid_from, rule.valid_until, rule.municipalities, rule.health_trust)

    @property
    def category(self) -> Category:
        return CATEGORY_OF_PARAMETER[self.parameter]


def changed_windows(
    before: Mapping[str, PricedWindow], now: Mapping[str, PricedWindow]
) -> list[PricedWindow]:
    """Where prices may differ between two books: the windows of the rules either has and
    the other has not (a rule whose value or dates changed is in both, as it was and as it
    is). Rules the books share change nothing."""
    return [w for key, w in sorted(before.items()) if key not in now] + [
        w for key, w in sorted(now.items()) if key not in before
    ]


def build_book(rules: Iterable[TariffRule]) -> TariffBook:
    ordered = tuple(rules)
    seen: dict[str, TariffRule] = {}
    for rule in ordered:
        if rule.id in seen:
            raise TariffError(f"two tariff rules share the id {rule.id!r}")
        seen[rule.id] = rule
    for i, a in enumerate(ordered):
        for b in ordered[i + 1 :]:
            if a._same_scope(b) and a._overlaps(b):
                raise TariffError(
                    f"tariff rules {a.id!r} and {b.id!r} set {a.parameter.value} for the same "
                    f"{a.scope.value} scope over overlapping dates "
                    f"({a.valid_from}..{a.valid_until or 'open'} and {b.valid_from}..{b.valid_until or 'open'})"
                )
    return TariffBook(ordered)


def parse_rules(document: Mapping[str, Any]) -> TariffBook:
    """Read the `[[rule]]` tables of a tariff document (see docs/tariffs.md)."""
    raw_rules = document.get("rule", [])
    if not isinstance(raw_rules, list):
        raise TariffError("the tariff document must hold an array of [[rule]] tables")
    return build_book(_parse_rule(raw, index) for index, raw in enumerate(raw_rules))


def _parse_rule(raw: Mapping[str, Any], index: int) -> TariffRule:
    rule_id = str(raw.get("id") or f"#{index + 1}")
    try:
        parameter = Parameter(raw["parameter"])
        scope = Scope(raw.get("scope", "national"))
        raw_value = raw["value"]
        valid_from = raw["valid_from"]
        valid_until = raw.get("valid_until")
    except KeyError as exc:
        raise TariffError(f"tariff rule {rule_id!r} lacks {exc.args[0]!r}") from exc
    except ValueError as exc:
        raise TariffError(f"tariff rule {rule_id!r}: {exc}") from exc
    value = _number(raw_value)
    if value is None:
        raise TariffError(f"tariff rule {rule_id!r}: value must be a number, not {raw_value!r}")
    if not _is_date(valid_from) or (valid_until is not None and not _is_date(valid_until)):
        raise TariffError(f"tariff rule {rule_id!r}: valid_from/valid_until must be dates (YYYY-MM-DD)")
    if valid_until is not None and valid_until <= valid_from:
        raise TariffError(f"tariff rule {rule_id!r}: valid_until must be after valid_from")
    if value < 0:
        raise TariffError(f"tariff rule {rule_id!r}: value must not be negative")
    municipalities = frozenset(str(m) for m in raw.get("municipalities", ()))
    if "municipality" in raw:
        municipalities |= {str(raw["municipality"])}
    health_trust = raw.get("health_trust")
    if scope is Scope.TRIAL and not municipalities:
        raise TariffError(f"tariff rule {rule_id!r}: a trial names its municipalities")
    if scope is Scope.AGREEMENT and (len(municipalities) != 1 or not health_trust):
        raise TariffError(
            f"tariff rule {rule_id!r}: an agreement names one municipality and one health_trust"
        )
    if scope is Scope.NATIONAL and (municipalities or health_trust):
        raise TariffError(f"tariff rule {rule_id!r}: a national rule names no parties")
    return TariffRule(
        id=rule_id,
        parameter=parameter,
        value=value,
        valid_from=valid_from,
        valid_until=valid_until,
        scope=scope,
        municipalities=municipalities,
        health_trust=str(health_trust) if health_trust else None,
        source=str(raw.get("source", "")),
    )


def _number(raw: Any) -> Decimal | None:
    """A finite decimal, or None (a boolean, NaN or infinity is no price)."""
    if isinstance(raw, bool):
        return None
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _is_date(value: Any) -> bool:
    """A calendar date; a TOML date-time is a `datetime`, which is a `date` subclass but
    cannot be compared with the days the rules are asked about."""
    return isinstance(value, date) and not isinstance(value, datetime)


def check_municipalities(book: TariffBook, registry: Registry) -> None:
    """Refuse a rule naming a municipality number that is in force on none of the rule's
    days: it could never apply (a typo, or a number retired in a reform before the rule
    began), so the price agreed would silently not be charged."""
    for rule in book.rules:
        for number in sorted(rule.municipalities):
            periods = registry.periods_of(number)
            if not periods:
                raise TariffError(
                    f"tariff rule {rule.id!r}: {number} is not a municipality number in the registry"
                )
            if not any(
                _overlap(rule.valid_from, rule.valid_until, p.valid_from, p.valid_until) for p in periods
            ):
                known = "; ".join(_period_text(p) for p in periods)
                raise TariffError(
                    f"tariff rule {rule.id!r} ({_window(rule.valid_from, rule.valid_until)}): municipality "
                    f"{number} is in force on none of its days ({known}), so the rule could never apply"
                )


def _overlap(start: date, end: date | None, other_start: date, other_end: date | None) -> bool:
    return (end is None or other_start < end) and (other_end is None or start < other_end)


def _window(start: date, end: date | None) -> str:
    return f"from {start}" + (f" until {end}" if end else ", until further notice")


def _period_text(period: MunicipalityPeriod) -> str:
    text = f"{period.name} {_window(period.valid_from, period.valid_until)}"
    return text + (f", then {', '.join(period.successors)}" if period.successors else "")
