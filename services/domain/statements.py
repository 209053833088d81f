"""A pair's monthly statement: ledger items summed into lines, and the net between parties."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from services.domain.calendar import Month
from services.domain.ledger import Category, LedgerItem, PayerRole


class NetPayer(StrEnum):
    MUNICIPALITY = "municipality"
    HEALTH_TRUST = "health_trust"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class Line:
    category: Category
    payer_role: PayerRole
    service_month: Month
    rated: bool
    quantity: int
    unit_price_ore: int | None
    amount_ore: int | None
    rule_id: str | None


@dataclass(frozen=True, slots=True)
class Totals:
    municipality_pays_ore: int
    health_trust_pays_ore: int
    net_ore: int
    net_payer: NetPayer
    unrated_quantity: int


_LineKey = tuple[Category, PayerRole, Month, bool, int | None, str | None]


def summarise(items: Iterable[LedgerItem]) -> tuple[list[Line], Totals]:
    """Lines per category, payer, month, price and rule; totals over the priced ones only.

    Unrated items become their own lines with no amount: they are shown, held, and kept
    out of every sum, so a missing tariff can never look like a price of zero.
    """
    quantities: dict[_LineKey, int] = {}
    amounts: dict[_LineKey, int] = {}
    for item in items:
        key = (
            item.category,
            item.payer_role,
            item.service_month,
            item.rated,
            item.unit_price_ore,
            item.rule_id,
        )
        quantities[key] = quantities.get(key, 0) + item.quantity
        amounts[key] = amounts.get(key, 0) + (item.amount_ore or 0)
    lines = [
        Line(
            category=key[0],
            payer_role=key[1],
            service_month=key[2],
            rated=key[3],
            quantity=quantities[key],
            unit_price_ore=key[4],
            amount_ore=amounts[key] if key[3] else None,
            rule_id=key[5],
        )
        for key in sorted(quantities, key=_line_order)
    ]
    return lines, totals_of(lines)


def totals_of(lines: Iterable[Line]) -> Totals:
    municipality_pays = health_trust_pays = unrated = 0
    for line in lines:
        if not line.rated:
            unrated += line.quantity
        elif line.payer_role is PayerRole.MUNICIPALITY:
            municipality_pays += line.amount_ore or 0
        else:
            health_trust_pays += line.amount_ore or 0
    net = municipality_pays - health_trust_pays
    payer = NetPayer.MUNICIPALITY if net > 0 else NetPayer.HEALTH_TRUST if net < 0 else NetPayer.NONE
    return Totals(municipality_pays, health_trust_pays, abs(net), payer, unrated)


def _line_order(key: _LineKey) -> tuple[str, str, Month, bool, int, str]:
    category, payer, month, rated, price, rule = key
    return (category.value, payer.value, month, not rated, price or 0, rule or "")
