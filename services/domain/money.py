"""Money is integer øre. Rates may be fractional (`Decimal`); this is the one place that
rounds a computed amount to øre."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

ORE_PER_KRONE = 100


def round_to_ore(amount_ore: Decimal) -> int:
    """Half away from zero, as on a Norwegian invoice."""
    return int(amount_ore.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def nok_to_ore(nok: Decimal) -> int:
    return round_to_ore(nok * ORE_PER_KRONE)


def format_nok(ore: int) -> str:
    """12 000,00 style is for people; statements and logs use this unambiguous form."""
    sign = "-" if ore < 0 else ""
    kroner, rest = divmod(abs(ore), ORE_PER_KRONE)
    return f"{sign}{kroner:,}.{rest:02d} NOK".replace(",", " ")
