"""Discharge-ready bed-days (domain.md section 1): the municipality pays the trust.

The rules, each cited in the worked-example tests:
- R1 payment starts on the first day on which the patient has been declared ready, the
  municipality has been notified of it, and the admission has been notified: the later of
  those days (regulation § 13). Without an admission notice nothing is payable.
- R2 payment ends on the day the municipality can receive, the status is withdrawn or the
  patient is discharged, whichever comes first; that day is not paid.
- R3 after an end, a new declaration starts a new cycle, which needs a new notice given
  after that declaration. [product] A notice before the declaration it would belong to
  does not count.
- R4 the payer is the registered municipality for days before 2019-01-01 and the staying
  municipality from then on, decided per day from the latest event on or before it.
  (A number changed after that event is settled afterwards: services.domain.renumbered.)
- R5 mental health and substance-abuse days are payable only from 2019-01-01.
- R6 each day is priced at the rate in force on that day; a day with no rate is held as
  unrated, never priced at 0.
- R7 an episode still open is paid through the day the caller asks for (the last day of
  the month being closed) and goes on in the next month.
- R8 [product] an agreement may add a grace period in hours after the notice before
  payment starts (Møre og Romsdal's 24 h).

The result does not depend on the order in which the events arrived: facts are ordered
by when they happened, and same-instant ties by milestone then event id.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

from services.domain.calendar import Month, oslo_day
from services.domain.ledger import Category, LedgerItem, PayerRole, day_runs, run_item
from services.domain.tariffs import Parameter, TariffBook, TariffRule

PAYER_SWITCH = date(2019, 1, 1)
MENTAL_HEALTH_PAYABLE_FROM = date(2019, 1, 1)
_ONE_DAY = timedelta(days=1)


class Milestone(StrEnum):
    ADMISSION_NOTIFIED = "admission_notified"
    DECLARED_READY = "declared_ready"
    MUNICIPALITY_NOTIFIED = "municipality_notified"
    MUNICIPALITY_CAN_RECEIVE = "municipality_can_receive"
    READY_WITHDRAWN = "ready_withdrawn"
    DISCHARGED = "discharged"


# Same-instant ties: a notice and a declaration at one instant both count before an end.
_TIE_ORDER = {m: i for i, m in enumerate(Milestone)}
_ENDS = {Milestone.MUNICIPALITY_CAN_RECEIVE, Milestone.READY_WITHDRAWN, Milestone.DISCHARGED}
SOMATIC = "somatic"


@dataclass(frozen=True, slots=True)
class EpisodeFact:
    """One milestone of an episode, as the rules need it (no patient identifier)."""

    milestone: Milestone
    occurred_at: datetime
    event_id: str
    registered_municipality: str
    staying_municipality: str
    care_area: str = SOMATIC
    # The Europe/Oslo day of `occurred_at`, worked out once: the rules ask for it several
    # times per fact, and an episode is rated again with each new fact.
    day: date = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "day", oslo_day(self.occurred_at))


@dataclass(frozen=True, slots=True)
class PaidInterval:
    first_day: date
    end_day: date | None  # exclusive; None while the episode is still running

    def days_through(self, last_day: date) -> int:
        end = self.end_day if self.end_day is not None else last_day + timedelta(days=1)
        return max(0, (min(end, last_day + timedelta(days=1)) - self.first_day).days)


def ordered(facts: Iterable[EpisodeFact]) -> list[EpisodeFact]:
    return sorted(facts, key=lambda f: (f.occurred_at, _TIE_ORDER[f.milestone], f.event_id))


def _paid_intervals(history: Sequence[EpisodeFact], grace: timedelta) -> list[PaidInterval]:
    """R1-R3 and R8: the intervals in which the episode's bed-days are payable. `history`
    is the episode's facts in time order (`ordered`)."""
    admission_day = next((f.day for f in history if f.milestone is Milestone.ADMISSION_NOTIFIED), None)
    if admission_day is None:
        return []  # R1: no admission notice, no payment
    intervals: list[PaidInterval] = []
    ready_day: date | None = None
    notified_day: date | None = None
    for fact in history:
        if fact.milestone is Milestone.DECLARED_READY and ready_day is None:
            ready_day, notified_day = fact.day, None
        elif fact.milestone is Milestone.MUNICIPALITY_NOTIFIED:
            if ready_day is not None and notified_day is None:
                # In UTC: adding hours to a Europe/Oslo wall-clock time would be 23 or 25
                # real hours across a daylight-saving change.
                notified_day = oslo_day(fact.occurred_at.astimezone(UTC) + grace)
        elif fact.milestone in _ENDS:
            if ready_day is not None and notified_day is not None:
                start = max(ready_day, notified_day, admission_day)
                if fact.day > start:
                    intervals.append(PaidInterval(start, fact.day))
            ready_day = notified_day = None
            if fact.milestone is Milestone.DISCHARGED:
                break  # the episode is over; anything later belongs to no stay
    if ready_day is not None and notified_day is not None:
        intervals.append(PaidInterval(max(ready_day, notified_day, admission_day), None))
    return intervals


def _payer_of_day(history: Sequence[EpisodeFact], fact_days: Sequence[date], day: date) -> str | None:
    """R4 and R5: who pays for `day`, or None when the day is not payable. The latest fact
    on or before the day decides (the first fact, for a day before them all);
    `fact_days[i]` is `history[i].day`, in order as the history is in time order."""
    latest = history[max(bisect_right(fact_days, day) - 1, 0)]
    if latest.care_area != SOMATIC and day < MENTAL_HEALTH_PAYABLE_FROM:
        return None
    return latest.registered_municipality if day < PAYER_SWITCH else latest.staying_municipality


def _grace_for(history: Sequence[EpisodeFact], tariffs: TariffBook, health_trust: str) -> TariffRule | None:
    """R8: the agreement's grace period, looked up for the pair on the day of the first
    notice; `history` is in time order (`ordered`)."""
    notice = next((f for f in history if f.milestone is Milestone.MUNICIPALITY_NOTIFIED), None)
    if notice is None:
        return None
    payer = notice.registered_municipality if notice.day < PAYER_SWITCH else notice.staying_municipality
    return tariffs.find(Parameter.DISCHARGE_READY_GRACE_HOURS, notice.day, payer, health_trust)


def rate_episode(
    episode_id: str,
    health_trust: str,
    facts: Iterable[EpisodeFact],
    tariffs: TariffBook,
    through: date,
) -> list[LedgerItem]:
    """R1-R8: the ledger items of one episode, open intervals paid through `through`.

    Consecutive days with the same month, payer and rule make one item, so a stay across
    New Year or across the 2019 payer switch becomes two items.
    """
    history = ordered(facts)
    if not history:
        return []
    grace = _grace_for(history, tariffs, health_trust)
    intervals = _paid_intervals(history, timedelta(hours=float(grace.value)) if grace else timedelta(0))
    # Each fact's day once, not once per day paid: a close re-rates every running stay.
    fact_days = [fact.day for fact in history]
    items: list[LedgerItem] = []
    for interval in intervals:
        last = through if interval.end_day is None else interval.end_day - timedelta(days=1)

        def key_of(day: date) -> _RunKey | None:
            payer = _payer_of_day(history, fact_days, day)
            if payer is None:
                return None
            rule = tariffs.find(Parameter.DISCHARGE_READY_DAY_RATE_NOK, day, payer, health_trust)
            return ((day.year, day.month), payer, rule)

        def same_through(day: date) -> date:
            # A day's key changes only with the month, at the next fact's day, where a rate
            # begins or ends, and at the 2019 changes of payer and of what is payable.
            through = min(
                Month.of(day).last_day,
                tariffs.same_through(Parameter.DISCHARGE_READY_DAY_RATE_NOK, day),
            )
            following = bisect_right(fact_days, day)
            if following < len(fact_days):
                through = min(through, fact_days[following] - _ONE_DAY)
            for change in (PAYER_SWITCH, MENTAL_HEALTH_PAYABLE_FROM):
                if day < change:
                    through = min(through, change - _ONE_DAY)
            return through

        runs = day_runs(interval.first_day, last, key_of, same_through)
        for index, (key, run) in enumerate(runs):
            still_open = index == len(runs) - 1 and interval.end_day is None and run[-1] == last
            (year, month), payer, rule = key
            item = run_item(
                Category.DISCHARGE_READY_BED_DAYS,
                episode_id,
                health_trust,
                payer,
                PayerRole.MUNICIPALITY,
                Month(year, month),
                run,
                rule,
                open_ended=still_open,
            )
            if grace is not None and item.rule_id is not None:
                # The grace decided which days are paid: the item names it beside the rate,
                # so a party can see (and dispute) why payment began when it did.
                item = replace(item, rule_id=f"{item.rule_id}+{grace.id}")
            items.append(item)
    return items


# The month as (year, month): a key is made and compared for every day paid, and plain
# tuples of ints cost a fraction of a `Month` made and compared each time.
_RunKey = tuple[tuple[int, int], str, TariffRule | None]
