"""Municipal emergency beds (domain.md section 2): the health trust pays the municipality.

- E1 [product] the rate is an agreement parameter of the municipality-trust pair, per
  emergency-bed day, effective-dated; the trust pays the municipality.
- E2 the admission day counts, the discharge day does not, and a stay counts at least
  one day (admitted and discharged on the same day is one day).
- E3 a pair with no agreed rate owes nothing for these stays, and the statement says why
  (the days are shown as not payable, with the reason).
- E4 a stay still running is counted through the day the caller asks for (the last day of
  the month being closed), like a discharge-ready episode.
- E5 [product] a discharge before the stay's admission, and none after it, leaves the
  stay's end unknown: a wrong time on one of the two (milestones cannot be withdrawn).
  Its days are shown from the admission on as not payable, with the reason, until a
  discharge after the admission arrives (or an admission before that discharge). Paying
  it as running would pay for an end nobody knows, month after month; leaving it out
  would hide from the municipality that its stay arrived.

Order of arrival does not matter: the first admission and the first discharge after it,
by when they happened, define the stay.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from services.domain.calendar import Month, oslo_day
from services.domain.ledger import Category, LedgerItem, PayerRole, day_runs, run_item
from services.domain.tariffs import Parameter, TariffBook

NO_AGREED_RATE = "no emergency-bed rate agreed for this pair: nothing owed"
END_UNKNOWN = (
    "discharged before admitted: the end of the stay is unknown, nothing owed until a "
    "discharge after the admission is sent"
)


class StayMilestone(StrEnum):
    ADMITTED = "emergency_bed_admitted"
    DISCHARGED = "emergency_bed_discharged"


@dataclass(frozen=True, slots=True)
class StayFact:
    milestone: StayMilestone
    occurred_at: datetime
    event_id: str
    municipality: str


@dataclass(frozen=True, slots=True)
class Stay:
    first_day: date
    end_day: date | None  # exclusive; None while running, or when the end is unknown (E5)
    end_unknown: bool = False


def stay_days(facts: Iterable[StayFact]) -> Stay | None:
    """E2 and E5: the stay the facts define, or None without an admission."""
    history = sorted(facts, key=lambda f: (f.occurred_at, f.milestone != StayMilestone.ADMITTED, f.event_id))
    admitted = next((f for f in history if f.milestone is StayMilestone.ADMITTED), None)
    if admitted is None:
        return None
    first = oslo_day(admitted.occurred_at)
    discharges = [f for f in history if f.milestone is StayMilestone.DISCHARGED]
    discharged = next((f for f in discharges if f.occurred_at >= admitted.occurred_at), None)
    if discharged is None:
        # E5: the admission sorts first at one instant, so any discharge left came before it.
        return Stay(first, None, end_unknown=bool(discharges))
    return Stay(first, max(oslo_day(discharged.occurred_at), first + timedelta(days=1)))


def rate_stay(
    stay_id: str, health_trust: str, facts: Iterable[StayFact], tariffs: TariffBook, through: date
) -> list[LedgerItem]:
    facts = list(facts)
    stay = stay_days(facts)
    if stay is None:
        return []
    first, end = stay.first_day, stay.end_day
    last = through if end is None else end - timedelta(days=1)
    municipality = min(facts, key=lambda f: (f.occurred_at, f.event_id)).municipality
    runs = day_runs(
        first,
        last,
        lambda day: (
            Month.of(day),
            None
            if stay.end_unknown
            else tariffs.find(Parameter.EMERGENCY_BED_DAY_RATE_NOK, day, municipality, health_trust),
        ),
        # the key changes only with the month and where a rate begins or ends
        lambda day: min(
            Month.of(day).last_day, tariffs.same_through(Parameter.EMERGENCY_BED_DAY_RATE_NOK, day)
        ),
    )
    items: list[LedgerItem] = []
    for index, ((month, rule), run) in enumerate(runs):
        items.append(
            run_item(
                Category.EMERGENCY_BED_DAYS,
                stay_id,
                health_trust,
                municipality,
                PayerRole.HEALTH_TRUST,
                month,
                run,
                rule,
                open_ended=index == len(runs) - 1 and end is None and run[-1] == last,
                not_payable_reason=END_UNKNOWN if stay.end_unknown else None if rule else NO_AGREED_RATE,
            )
        )
    return items
