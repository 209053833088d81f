"""A pair's monthly statement: ledger items summed into lines, per-category sums in both
directions, and one net amount with its payer."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from services.domain.calendar import Month
from services.domain.ledger import UNRATED_NOTE, Category, ItemStatus, LedgerItem, PayerRole


class NetPayer(StrEnum):
    MUNICIPALITY = "municipality"
    HEALTH_TRUST = "health_trust"
    NONE = "none"


# Categories whose items each carry their own price (an activity's DRG points differ), so
# their lines sum amounts and show no single unit price.
INDIVIDUALLY_PRICED = {Category.ACTIVITY_CO_FINANCING}


@dataclass(frozen=True, slots=True)
class Line:
    category: Category
    payer_role: PayerRole
    service_month: Month
    status: ItemStatus
    quantity: int
    unit_price_ore: int | None
    amount_ore: int | None
    rule_id: str | None
    note: str | None = None

    @property
    def rated(self) -> bool:
        return self.status is ItemStatus.PRICED


@dataclass(frozen=True, slots=True)
class CategoryTotal:
    category: Category
    municipality_pays_ore: int
    health_trust_pays_ore: int


@dataclass(frozen=True, slots=True)
class Totals:
    municipality_pays_ore: int
    health_trust_pays_ore: int
    net_ore: int
    net_payer: NetPayer
    unrated_quantity: int
    by_category: tuple[CategoryTotal, ...] = ()


_LineKey = tuple[Category, PayerRole, Month, ItemStatus, int | None, str | None, str | None]


def _key(item: LedgerItem) -> _LineKey:
    status = item.status
    unit = None if item.category in INDIVIDUALLY_PRICED else item.unit_price_ore
    note = (
        item.not_payable_reason
        if status is ItemStatus.NOT_PAYABLE
        else UNRATED_NOTE
        if status is ItemStatus.UNRATED
        else None
    )
    return (item.category, item.payer_role, item.service_month, status, unit, item.rule_id, note)


def summarise(items: Iterable[LedgerItem]) -> tuple[list[Line], Totals]:
    """Lines per category, payer, month, status, price and rule; totals over priced lines.

    Unrated items (no tariff yet) and not-payable ones (a rule says nothing is owed) get
    lines of their own with no amount: shown with why, and kept out of every sum.
    """
    quantities: dict[_LineKey, int] = {}
    amounts: dict[_LineKey, int] = {}
    for item in items:
        key = _key(item)
        quantities[key] = quantities.get(key, 0) + item.quantity
        amounts[key] = amounts.get(key, 0) + (item.amount_ore or 0)
    lines = [
        Line(
            category=key[0],
            payer_role=key[1],
            service_month=key[2],
            status=key[3],
            quantity=quantities[key],
            unit_price_ore=key[4] if key[3] is ItemStatus.PRICED else None,
            amount_ore=amounts[key] if key[3] is ItemStatus.PRICED else None,
            rule_id=key[5],
            note=key[6],
        )
        for key in sorted(quantities, key=_line_order)
    ]
    return lines, totals_of(lines)


def totals_of(lines: Iterable[Line]) -> Totals:
    lines = list(lines)
    unrated = sum(line.quantity for line in lines if line.status is ItemStatus.UNRATED)
    by_category = []
    for category in Category:
        mine = [line for line in lines if line.category is category and line.rated]
        if not any(line.category is category for line in lines):
            continue
        by_category.append(
            CategoryTotal(
                category,
                sum(line.amount_ore or 0 for line in mine if line.payer_role is PayerRole.MUNICIPALITY),
                sum(line.amount_ore or 0 for line in mine if line.payer_role is PayerRole.HEALTH_TRUST),
            )
        )
    municipality_pays = sum(c.municipality_pays_ore for c in by_category)
    health_trust_pays = sum(c.health_trust_pays_ore for c in by_category)
    net = municipality_pays - health_trust_pays
    payer = NetPayer.MUNICIPALITY if net > 0 else NetPayer.HEALTH_TRUST if net < 0 else NetPayer.NONE
    return Totals(municipality_pays, health_trust_pays, abs(net), payer, unrated, tuple(by_category))


def _line_order(key: _LineKey) -> tuple[str, str, Month, str, int, str]:
    category, payer, month, status, price, rule, _note = key
    return (category.value, payer.value, month, status.value, price or 0, rule or "")
