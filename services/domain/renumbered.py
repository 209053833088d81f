"""Ledger items settled on the municipality number of their days (docs/municipalities.md).

Intake maps a number retired before its event's day. A stay that runs past a change of
numbers (events in December, days in January) is settled here, item by item: an item never
spans a month and numbers change on 1 January, so the number of an item's first day is that
of all its days.

- M1 a number retired with one successor (a merger or a renumbering, 3024 Bærum -> 3201)
  moves the item to the successor, and the item says so.
- M2 [product] a number split into several (1507 Ålesund -> 1508 Ålesund, 1580 Haram)
  designates no municipality on the item's days, and nothing in the facts says which part
  the patient belongs to. Where a later event decides who pays (discharge-ready days, R4:
  the latest event on or before each day; an activity, A3: its latest fact), the days are
  held, not payable, with a reason naming the parts and the event that moves the days to
  one of them. Billed to the old number they would go to a municipality that no longer
  exists; guessed onto one part, to one that may not be the patient's.
- M3 [product] an emergency-bed stay is settled on the municipality of its first event, so
  no event the hospital can send after the split moves it: its days stay on the number, at
  its agreement's rate, and the item says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from services.domain.discharge_ready import PAYER_SWITCH
from services.domain.ledger import Category, LedgerItem
from services.domain.municipalities import MunicipalityNumberError, Registry, SplitMunicipality
from services.domain.statements import MAPPING_PREFIX


def settle_numbers(
    items: Iterable[LedgerItem], registry: Registry | None, mapped_at_intake: Mapping[str, str]
) -> list[LedgerItem]:
    """M1-M3 for each item. `mapped_at_intake` is what intake mapped for the subject's
    events (successor -> retired number given); without a registry only that is said."""
    out = []
    for item in items:
        number, old = item.municipality, mapped_at_intake.get(item.municipality)
        if registry is not None:
            try:
                resolution = registry.resolve(number, item.first_day)
            except SplitMunicipality as split:
                item = _split(item, split, registry)
            except MunicipalityNumberError:
                pass  # not yet in force on the item's days: no change of number to speak of
            else:
                if resolution.mapped_from is not None:
                    number, old = resolution.number, old or resolution.mapped_from
        if old is not None:
            mapping = f"{MAPPING_PREFIX}{old} retired: settled on its successor {number}"
            item = replace(
                item, municipality=number, note=f"{item.note}; {mapping}" if item.note else mapping
            )
        out.append(item)
    return out


def _split(item: LedgerItem, split: SplitMunicipality, registry: Registry) -> LedgerItem:
    """M2 and M3: the item of a split number, held or noted."""
    number, day = item.municipality, split.split_on.isoformat()
    parts = [f"{s} {registry.name_of(s, split.split_on)}" for s in split.successors]
    became = "" if split.split_number == number else f" became {split.split_number}, which"
    said = f"{MAPPING_PREFIX}{number}{became} was split on {day} into {_listed(parts, 'and')}"
    either = _listed(list(split.successors), "or")
    if item.category is Category.EMERGENCY_BED_DAYS:
        # The note comes first: a line shows the first note that names a municipality number.
        rest = f"; {item.note}" if item.note else ""
        kept = f"{said}: settled on {number}, the municipality of the stay's first event, which no event dated after the split changes"
        return replace(item, note=kept + rest)
    if item.category is Category.DISCHARGE_READY_BED_DAYS:
        role = "registered" if item.first_day < PAYER_SWITCH else "staying"
        event = (
            f"a municipality_notified of the episode dated {day} naming {either} as its {role} municipality"
        )
    else:
        event = (
            f"an activity_corrected dated on or after {day} naming {either} as its registered municipality"
        )
    return replace(
        item,
        unit_price_ore=None,
        amount_ore=None,
        rule_id=None,
        not_payable_reason=f"{said}: nothing owed on {number} until the hospital sends {event}",
    )


def _listed(words: list[str], conjunction: str) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} {conjunction} {words[-1]}"
