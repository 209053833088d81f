"""Re-rate subjects from all their stored facts, within the caller's transaction.

Rating a subject always starts from all its facts, never from the previous result, which
is what makes the outcome independent of the order events arrive in. Months already closed
are never rewritten: a difference there is recorded as a late change, pending.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

import asyncpg

from services.adapters import ledger_repository as repo
from services.domain.activity import ActivityFact, rate_activity
from services.domain.calendar import Month, oslo_day
from services.domain.discharge_ready import EpisodeFact, Milestone, rate_episode
from services.domain.emergency_beds import StayFact, StayMilestone, rate_stay
from services.domain.ledger import LedgerItem
from services.domain.municipalities import Registry
from services.domain.renumbered import settle_numbers
from services.domain.tariffs import TariffBook


@dataclass(frozen=True, slots=True)
class RerateResult:
    items_written: int
    late_changes: int


# By value, for every fact of every subject rated: calling the enum looks its value up
# through two Python calls, ten times the cost of the dictionary. Payloads were validated
# against the contract on the way in, so every type is one of these.
_MILESTONES = {m.value: m for m in Milestone}
_STAY_MILESTONES = {m.value: m for m in StayMilestone}
_TWO_DAYS = timedelta(days=2)


def _episode_fact(payload: Mapping[str, Any]) -> EpisodeFact:
    return EpisodeFact(
        milestone=_MILESTONES[payload["type"]],
        occurred_at=datetime.fromisoformat(payload["occurred_at"]),
        event_id=payload["event_id"],
        registered_municipality=payload["registered_municipality"],
        staying_municipality=payload["staying_municipality"],
        care_area=payload["care_area"],
    )


def _stay_fact(payload: Mapping[str, Any]) -> StayFact:
    return StayFact(
        milestone=_STAY_MILESTONES[payload["type"]],
        occurred_at=datetime.fromisoformat(payload["occurred_at"]),
        event_id=payload["event_id"],
        municipality=payload["municipality"],
    )


def _activity_fact(payload: Mapping[str, Any]) -> ActivityFact:
    ended = payload.get("ended_at")
    points = payload.get("drg_points")
    return ActivityFact(
        type=payload["type"],
        occurred_at=datetime.fromisoformat(payload["occurred_at"]),
        event_id=payload["event_id"],
        registered_municipality=payload["registered_municipality"],
        care_area=payload["care_area"],
        drg_points=Decimal(points) if points is not None else None,
        surgical=bool(payload.get("surgical", False)),
        category=payload.get("category", "ordinary"),
        ended_at=datetime.fromisoformat(ended) if ended else None,
    )


def rate_subject(
    subject_key: str,
    payloads: Sequence[Mapping[str, Any]],
    tariffs: TariffBook,
    through_floor: date,
    municipalities: Registry | None = None,
) -> list[LedgerItem]:
    """Pure: the items of one subject (episode, stay or activity) from all its facts."""
    family, health_trust, subject_id = subject_key.split(":", 2)
    if not payloads:
        return []
    if family == "activity":  # one item, on its own day: no stay to pay through a month
        items = rate_activity(subject_id, health_trust, [_activity_fact(p) for p in payloads], tariffs)
    elif family == "discharge_ready":
        episode = [_episode_fact(p) for p in payloads]
        through = _paid_through(episode, through_floor)
        items = rate_episode(subject_id, health_trust, episode, tariffs, through)
    elif family == "emergency_beds":
        stay = [_stay_fact(p) for p in payloads]
        through = _paid_through(stay, through_floor)
        items = rate_stay(subject_id, health_trust, stay, tariffs, through)
    else:
        raise ValueError(f"no rules for the event family {family!r}")
    return _with_municipality_mappings(items, payloads, municipalities)


def _paid_through(facts: Sequence[EpisodeFact] | Sequence[StayFact], floor: date) -> date:
    """An open stay is paid through the end of its latest fact's month, or `floor`."""
    # The Oslo day of the latest instant is the latest Oslo day: one conversion, not one per fact.
    return max(Month.of(oslo_day(max(f.occurred_at for f in facts))).last_day, floor)


def _with_municipality_mappings(
    items: list[LedgerItem], payloads: Sequence[Mapping[str, Any]], municipalities: Registry | None
) -> list[LedgerItem]:
    """Every item settled on the number of its days, saying so (services.domain.renumbered):
    what intake mapped for the subject's events, a number retired since mapped to its
    successor, a number split since held or noted."""
    if not items:  # most activities: no share in force, or excluded
        return items
    given: dict[str, str] = {}
    for payload in payloads:
        for field_name, old in (payload.get("municipality_mappings") or {}).items():
            given[payload[field_name]] = old
    return settle_numbers(items, municipalities, given)


async def rerate(
    conn: asyncpg.Connection,
    subject_keys: Iterable[str],
    tariffs: TariffBook,
    *,
    through: date | None = None,
    causes: Mapping[str, tuple[str, str]] | None = None,
    cause: str = "event",
    municipalities: Registry | None = None,
    facts: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
) -> RerateResult:
    """Recompute and store the items of `subject_keys`, and what closed months are owed.

    Open stays are paid through the later of `through`, the end of the month of their
    latest fact and the end of the latest closed month, so re-rating never shortens
    what a close has already extended. Closed months are never rewritten: the difference
    between what the facts now give and what was booked for a closed month is a pending
    adjustment, settled on the pair's next statement.

    `facts`, when given, holds every fact of each subject as the caller already has them
    (intake: those stored before its batch, read in this transaction, plus the batch's
    own); otherwise they are read here.
    """
    keys = sorted(set(subject_keys))
    if not keys:
        return RerateResult(0, 0)
    closed = await repo.closed_months(conn)
    floor = max([m.last_day for m in closed] + ([through] if through else []), default=date(2012, 1, 1))
    payloads = facts if facts is not None else await repo.payloads_by_subject(conn, keys)
    # Only a subject with a fact (or an activity that ended) on or before the last closed day can
    # owe a closed month anything: for the rest (most of a day's traffic) the adjustment queries
    # are skipped.
    last_closed = max((m.last_day for m in closed), default=None)
    touching = [k for k in keys if last_closed is not None and _may_owe(payloads.get(k, []), last_closed)]
    booked = await repo.booked_sums(conn, touching) if touching else {}
    earlier = await repo.pending_adjustment_causes(conn, touching) if touching else {}
    touches = set(touching)

    to_write: list[tuple[str, int, LedgerItem]] = []
    adjustments: list[repo.PendingAdjustment] = []
    running: list[str] = []
    for key in keys:
        items = rate_subject(key, payloads.get(key, []), tariffs, floor, municipalities)
        if any(item.open_ended for item in items):
            running.append(key)
        by_month: dict[Month, list[LedgerItem]] = defaultdict(list)
        for item in items:
            by_month[item.service_month].append(item)
        for month, month_items in by_month.items():
            if month not in closed:
                to_write.extend((key, part, item) for part, item in enumerate(month_items))
        if key in touches:
            new_cause = (cause, causes[key]) if causes and key in causes else None
            adjustments.extend(_differences(key, items, closed, booked.get(key, {}), new_cause, earlier))
    await repo.replace_unsettled_items(conn, keys, to_write)
    if touching:
        await repo.replace_pending_adjustments(conn, touching, adjustments)
    stays = [k for k in keys if not k.startswith("activity:")]  # an activity never runs on
    if stays:
        await repo.mark_running(conn, stays, running)
    return RerateResult(len(to_write), len(adjustments))


def _may_owe(payloads: Sequence[Mapping[str, Any]], last_closed: date) -> bool:
    """Whether a subject's facts can give an item on or before `last_closed`.

    Asked for every subject intake rates once any month is closed, i.e. always in a
    deployment. Most facts are of days long after the last closed one, and their timestamps'
    own dates say so without parsing them: a fact's Oslo day is at most a day before the
    date written in its timestamp (an offset is less than a day; Oslo's is one or two hours),
    so a subject whose every date is two days after `last_closed` or later owes nothing.
    Timestamps are stored as the contract's JSON gives them, the date first (YYYY-MM-DD), and
    such dates compare as text as they do as dates. The rest are worked out (`_first_day`)."""
    later = _two_days_after(last_closed)
    if all(p["occurred_at"] >= later and (p.get("ended_at") or later) >= later for p in payloads):
        return False
    return _first_day(payloads) <= last_closed


@lru_cache(maxsize=16)  # one last closed day for all of a batch's subjects
def _two_days_after(day: date) -> str:
    return (day + _TWO_DAYS).isoformat()


def _first_day(payloads: Sequence[Mapping[str, Any]]) -> date:
    """The earliest day a subject's facts can give an item on."""
    if not payloads:
        return date.max
    # An activity is priced on the day it ended, and recorded (`occurred_at`) when coded,
    # often weeks later: one recorded after the month it ended in closed owes that month.
    ended = [p["ended_at"] for p in payloads if p.get("ended_at")]
    # As in `_paid_through`: the Oslo day of the earliest instant is the earliest Oslo day.
    return oslo_day(min(datetime.fromisoformat(at) for at in [*(p["occurred_at"] for p in payloads), *ended]))


def _differences(
    key: str,
    items: Sequence[LedgerItem],
    closed: set[Month],
    booked: Mapping[tuple[Month, repo.Side], repo.Booked],
    new_cause: tuple[str, tuple[str, str]] | None,
    earlier: Mapping[tuple[str, Month, repo.Side], tuple[str, tuple[str, str] | None]],
) -> list[repo.PendingAdjustment]:
    """Per closed month and side: what the facts give now minus what was booked (`booked`:
    this subject's sums), with the items the facts give now (none where nothing stands)."""
    now: dict[tuple[Month, repo.Side], list[LedgerItem]] = defaultdict(list)
    subject_id = key.split(":", 2)[2]
    for item in items:
        if item.service_month in closed:
            side = (item.municipality, item.health_trust, item.category.value, item.payer_role.value)
            now[(item.service_month, side)].append(item)
    sides = set(now) | set(booked)
    out = []
    for month, side in sorted(sides):
        items_now = tuple(sorted(now.get((month, side), ()), key=lambda i: (i.first_day, i.last_day)))
        quantity = sum(item.quantity for item in items_now)
        amount = sum(item.amount_ore or 0 for item in items_now)  # held days are booked at 0, too
        before = booked.get((month, side), repo.Booked(0, 0))
        if (quantity, amount) == (before.quantity, before.amount_ore):
            continue  # a correction that changes nothing books nothing
        caused_by: tuple[str, str] | None
        if new_cause is not None:
            cause, caused_by = new_cause[0], new_cause[1]
        else:
            cause, caused_by = earlier.get((key, month, side), ("tariff", None))
        out.append(
            repo.PendingAdjustment(
                subject_key=key,
                subject_id=subject_id,
                corrects_month=month,
                side=side,
                quantity_delta=quantity - before.quantity,
                amount_delta_ore=amount - before.amount_ore,
                cause=cause,
                caused_by=caused_by,
                note=None,
                items_now=items_now,
            )
        )
    return out
