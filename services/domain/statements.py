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
    municipality_withheld_ore: int = 0  # held out for open disputes (+) or released (-)
    health_trust_withheld_ore: int = 0
    net_payable_ore: int = 0
    net_payable_by: NetPayer = NetPayer.NONE


@dataclass(frozen=True, slots=True)
class Adjustment:
    """A difference booked for a closed month: new facts, a new tariff, or a dispute's outcome."""

    category: Category
    payer_role: PayerRole
    corrects_month: Month
    subject_id: str
    quantity_delta: int
    amount_delta_ore: int
    cause: str
    caused_by: tuple[str, str] | None = None
    dispute_id: str | None = None
    note: str | None = None
    # What the subject now makes payable in the month corrected, for this side: what was
    # settled plus this difference. Kept so a finance officer can check the difference
    # against the item it leads to without access to the ledger. None for a dispute's
    # credit (it changes no item) and for adjustments recorded before items were kept.
    items_now: tuple[LedgerItem, ...] | None = None


@dataclass(frozen=True, slots=True)
class DisputeMovement:
    """How a dispute moves money on this statement: `held` out of what its payer pays,
    `released` back after its resolution, or `open` (held earlier, still open)."""

    dispute_id: str
    payer_role: PayerRole
    amount_ore: int
    effect: str

    @property
    def withheld_ore(self) -> int:
        return {"held": self.amount_ore, "released": -self.amount_ore}.get(self.effect, 0)


_LineKey = tuple[Category, PayerRole, Month, ItemStatus, int | None, str | None, str | None]


def _key(item: LedgerItem) -> _LineKey:
    status = item.status
    unit = None if item.category in INDIVIDUALLY_PRICED else item.unit_price_ore
    note = (
        item.not_payable_reason
        if status is ItemStatus.NOT_PAYABLE
        else UNRATED_NOTE
        if status is ItemStatus.UNRATED
        else _mapping_of(item)
    )
    return (item.category, item.payer_role, item.service_month, status, unit, item.rule_id, note)


MAPPING_PREFIX = "municipality number "


def _mapping_of(item: LedgerItem) -> str | None:
    """A retired municipality number settled on its successor is said on the line too."""
    return next((part for part in (item.note or "").split("; ") if part.startswith(MAPPING_PREFIX)), None)


def summarise(items: Iterable[LedgerItem]) -> tuple[list[Line], Totals]:
    """Lines and totals of items alone (no adjustments, no disputes)."""
    lines = _lines(items)
    return lines, totals_of(lines)


def _lines(items: Iterable[LedgerItem]) -> list[Line]:
    """Lines per category, payer, month, status, price and rule (totals: `totals_of`).

    Unrated items (no tariff yet) and not-payable ones (a rule says nothing is owed) get
    lines of their own with no amount: shown with why, and kept out of every sum.
    """
    quantities: dict[_LineKey, int] = {}
    amounts: dict[_LineKey, int] = {}
    for item in items:
        key = _key(item)
        quantities[key] = quantities.get(key, 0) + item.quantity
        amounts[key] = amounts.get(key, 0) + (item.amount_ore or 0)
    return [
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


def settle(
    items: Iterable[LedgerItem],
    adjustments: Iterable[Adjustment] = (),
    disputes: Iterable[DisputeMovement] = (),
) -> tuple[list[Line], Totals]:
    """A statement's lines and totals: its items, plus adjustments to closed months, with
    amounts in dispute held out of what is payable."""
    lines = _lines(items)
    return lines, totals_of(lines, adjustments, disputes)


def totals_of(
    lines: Iterable[Line], adjustments: Iterable[Adjustment] = (), disputes: Iterable[DisputeMovement] = ()
) -> Totals:
    lines = list(lines)
    adjustments = list(adjustments)
    unrated = sum(line.quantity for line in lines if line.status is ItemStatus.UNRATED)
    by_category = []
    for category in Category:
        mine = [line for line in lines if line.category is category and line.rated]
        corrections = [a for a in adjustments if a.category is category]
        if not corrections and not any(line.category is category for line in lines):
            continue

        def owed(
            role: PayerRole, mine: list[Line] = mine, corrections: list[Adjustment] = corrections
        ) -> int:
            return sum(line.amount_ore or 0 for line in mine if line.payer_role is role) + sum(
                a.amount_delta_ore for a in corrections if a.payer_role is role
            )

        by_category.append(
            CategoryTotal(category, owed(PayerRole.MUNICIPALITY), owed(PayerRole.HEALTH_TRUST))
        )
    municipality_pays = sum(c.municipality_pays_ore for c in by_category)
    health_trust_pays = sum(c.health_trust_pays_ore for c in by_category)
    net = municipality_pays - health_trust_pays
    movements = list(disputes)
    municipality_withheld = sum(d.withheld_ore for d in movements if d.payer_role is PayerRole.MUNICIPALITY)
    health_trust_withheld = sum(d.withheld_ore for d in movements if d.payer_role is PayerRole.HEALTH_TRUST)
    payable = (municipality_pays - municipality_withheld) - (health_trust_pays - health_trust_withheld)
    return Totals(
        municipality_pays_ore=municipality_pays,
        health_trust_pays_ore=health_trust_pays,
        net_ore=abs(net),
        net_payer=_payer(net),
        unrated_quantity=unrated,
        by_category=tuple(by_category),
        municipality_withheld_ore=municipality_withheld,
        health_trust_withheld_ore=health_trust_withheld,
        net_payable_ore=abs(payable),
        net_payable_by=_payer(payable),
    )


def _payer(net: int) -> NetPayer:
    """Positive: the municipality owes the trust on balance."""
    return NetPayer.MUNICIPALITY if net > 0 else NetPayer.HEALTH_TRUST if net < 0 else NetPayer.NONE


def _line_order(key: _LineKey) -> tuple[str, str, Month, str, int, str, bool, str]:
    # Total, so lines come in one order whatever order the items were read in (lines told
    # apart only by their note, e.g. a mapped municipality number, came in reading order).
    category, payer, month, status, price, rule, note = key
    return (
        category.value,
        payer.value,
        month,
        status.value,
        price or 0,
        rule or "",
        note is not None,
        note or "",
    )
