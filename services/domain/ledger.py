"""Ledger items: what one episode, stay or activity makes payable in one service month."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

from services.domain.calendar import Month
from services.domain.money import nok_to_ore, round_to_ore


class Category(StrEnum):
    DISCHARGE_READY_BED_DAYS = "discharge_ready_bed_days"
    EMERGENCY_BED_DAYS = "emergency_bed_days"
    ACTIVITY_CO_FINANCING = "activity_co_financing"


class PayerRole(StrEnum):
    MUNICIPALITY = "municipality"
    HEALTH_TRUST = "health_trust"


UNRATED_NOTE = "unrated: no tariff"


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

    @property
    def rated(self) -> bool:
        return self.amount_ore is not None


def price_units(quantity: int, rate_nok: Decimal | None) -> tuple[int | None, int | None]:
    """Unit price and amount in øre for `quantity` units at a NOK rate; (None, None) when
    there is no rate, because an unknown price is not zero."""
    if rate_nok is None:
        return None, None
    unit_ore = nok_to_ore(rate_nok)
    return unit_ore, round_to_ore(Decimal(unit_ore) * quantity)
