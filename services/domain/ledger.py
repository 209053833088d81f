"""Ledger items: what one episode, stay or activity makes payable in one service month."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, TypeVar

from services.domain.calendar import Month
from services.domain.money import nok_to_ore, round_to_ore

if TYPE_CHECKING:
    from services.domain.tariffs import TariffRule


class Category(StrEnum):
    DISCHARGE_READY_BED_DAYS = "discharge_ready_bed_days"
    EMERGENCY_BED_DAYS = "emergency_bed_days"
    ACTIVITY_CO_FINANCING = "activity_co_financing"


class PayerRole(StrEnum):
    MUNICIPALITY = "municipality"
    HEALTH_TRUST = "health_trust"


UNRATED_NOTE = "unrated: no tariff"


class ItemStatus(StrEnum):
    PRICED = "priced"
    UNRATED = "unrated"  # no tariff yet: held, shown, never priced at 0
    NOT_PAYABLE = "not_payable"  # a rule says nothing is owed (e.g. no agreed rate); shown with why


@dataclass(frozen=True, slots=True)
class LedgerItem:
    category: Category
    subject_id: str
    health_trust: str
    municipality: str
    payer_role: PayerRole
    service_month: Month
    first_day: date
    last_day: date  # inclusive
    quantity: int
    unit_price_ore: int | None  # None: unrated, held until a tariff exists
    amount_ore: int | None
    rule_id: str | None
    open_ended: bool = False  # the stay was still running at `last_day`
    not_payable_reason: str | None = None
    note: str | None = None  # e.g. a retired municipality number mapped to its successor

    @property
    def rated(self) -> bool:
        return self.amount_ore is not None

    @property
    def status(self) -> ItemStatus:
        if self.not_payable_reason is not None:
            return ItemStatus.NOT_PAYABLE
        return ItemStatus.PRICED if self.amount_ore is not None else ItemStatus.UNRATED


def price_units(quantity: int, rate_nok: Decimal | None) -> tuple[int | None, int | None]:
    """Unit price and amount in øre for `quantity` units at a NOK rate; (None, None) when
    there is no rate, because an unknown price is not zero."""
    if rate_nok is None:
        return None, None
    unit_ore = nok_to_ore(rate_nok)
    return unit_ore, round_to_ore(Decimal(unit_ore) * quantity)


Key = TypeVar("Key", bound=Hashable)
_ONE_DAY = timedelta(days=1)


def day_runs(
    first: date,
    last: date,
    key_of: Callable[[date], Key | None],
    same_through: Callable[[date], date] | None = None,
) -> list[tuple[Key, list[date]]]:
    """The days from `first` to `last` grouped into runs of consecutive days with the same
    key (month, payer, rule ...), in order. A day keyed None is in no run and ends the one
    before it. Each run becomes one ledger item, so a key must change at every boundary an
    item may not cross.

    `same_through(day)`, if given, is a day through which `key_of` is known to give what it
    gives on `day`: the days between are not asked again. The runs are the same either way
    (a close re-rates thousands of stays a month long, and asking once per day was most of
    its work)."""
    runs: list[tuple[Key, list[date]]] = []
    current: Key | None = None
    day = first
    while day <= last:
        key = key_of(day)
        through = max(day, min(same_through(day), last)) if same_through is not None else day
        days = list(map(date.fromordinal, range(day.toordinal(), through.toordinal() + 1)))
        if key is not None and key == current:
            runs[-1][1].extend(days)
        elif key is not None:
            runs.append((key, days))
        current = key
        day = through + _ONE_DAY
    return runs


def run_item(
    category: Category,
    subject_id: str,
    health_trust: str,
    municipality: str,
    payer_role: PayerRole,
    month: Month,
    run: list[date],
    rule: TariffRule | None,
    *,
    open_ended: bool,
    not_payable_reason: str | None = None,
) -> LedgerItem:
    """One run of `day_runs` as a ledger item: its days at the rule's rate, or held without
    a rule (a price unknown is not zero)."""
    unit_price_ore, amount_ore = price_units(len(run), rule.value if rule else None)
    return LedgerItem(
        category=category,
        subject_id=subject_id,
        health_trust=health_trust,
        municipality=municipality,
        payer_role=payer_role,
        service_month=month,
        first_day=run[0],
        last_day=run[-1],
        quantity=len(run),
        unit_price_ore=unit_price_ore,
        amount_ore=amount_ore,
        rule_id=rule.id if rule else None,
        open_ended=open_ended,
        not_payable_reason=not_payable_reason,
    )
