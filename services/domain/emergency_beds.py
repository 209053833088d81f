"""Municipal emergency beds (domain.md section 2): the health trust pays the municipality.

- E1 [product] the rate is an agreement parameter of the municipality-trust pair, per
  emergency-bed day, effective-dated; the trust pays the municipality.
- E2 the admission day counts, the discharge day does not, and a stay counts at least
  one day (admitted and discharged on the same day is one day).
- E3 a pair with no agreed rate owes nothing for these stays, and the statement says why
  (the days are shown as not payable, with the reason).
- E4 a stay still running is counted through the day the caller asks for (the last day of
  the month being closed), like a discharge-ready episode.

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


class StayMilestone(StrEnum):
    ADMITTED = "emergency_bed_admitted"
    DISCHARGED = "emergency_bed_discharged"


@dataclass(frozen=True, slots=True)
class StayFact:
    milestone: StayMilestone
    occurred_at: datetime
    event_id: str
    municipality: str


def stay_days(facts: Iterable[StayFact]) -> tuple[date, date | None] | None:
    """E2: (first day, end day exclusive or None while running), or None without an admission."""
    history = sorted(facts, key=lambda f: (f.occurred_at, f.milestone != StayMilestone.ADMITTED, f.event_id))
    admitted = next((f for f in history if f.milestone is StayMilestone.ADMITTED), None)
    if admitted is None:
        return None
    first = oslo_day(admitted.occurred_at)
    discharged = next(
        (
            f
            for f in history
            if f.milestone is StayMilestone.DISCHARGED and f.occurred_at >= admitted.occurred_at
        ),
        None,
    )
    if discharged is None:
        return first, None
    return first, max(oslo_day(discharged.occurred_at), first + timedelta(days=1))


def rate_stay(
    stay_id: str, health_trust: str, facts: Iterable[StayFact], tariffs: TariffBook, through: date
) -> list[LedgerItem]:
    facts = list(facts)
    days = stay_days(facts)
    if days is None:
        return []
    first, end = days
    last = through if end is None else end - timedelta(days=1)
    municipality = min(facts, key=lambda f: (f.occurred_at, f.event_id)).municipality
    runs = day_runs(
        first,
        last,
        lambda day: (
            Month.of(day),
            tariffs.find(Parameter.EMERGENCY_BED_DAY_RATE_NOK, day, municipality, health_trust),
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
                not_payable_reason=None if rule else NO_AGREED_RATE,
            )
        )
    return items
