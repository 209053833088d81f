"""The oracle: what the statements must say, computed from the published events by the
pure rules alone (no broker, no database, no re-rating machinery)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date

from contracts.v1 import topics
from services.domain.calendar import Month
from services.domain.ledger import LedgerItem
from services.domain.statements import Line, Totals, summarise
from services.domain.tariffs import TariffBook
from services.rating.service import rate_subject
from services.simulator.hospital import Published

_FAMILY = {
    topics.DISCHARGE_READY: ("discharge_ready", "episode_id"),
    topics.EMERGENCY_BEDS: ("emergency_beds", "stay_id"),
    topics.ACTIVITY: ("activity", "activity_id"),
}


def expected_items(events: Iterable[Published], tariffs: TariffBook, through: date) -> list[LedgerItem]:
    """Every ledger item the events make payable, open stays paid through `through`."""
    subjects: dict[str, list[dict]] = defaultdict(list)
    seen: set[tuple[str, str]] = set()
    for event in events:
        if (event.value["source"], event.value["event_id"]) in seen:
            continue  # a redelivery is the same fact
        seen.add((event.value["source"], event.value["event_id"]))
        family, id_field = _FAMILY[event.topic]
        subjects[f"{family}:{event.value['health_trust']}:{event.value[id_field]}"].append(event.value)
    return [
        item for key, payloads in subjects.items() for item in rate_subject(key, payloads, tariffs, through)
    ]


def expected_statements(
    events: Iterable[Published], tariffs: TariffBook, period: Month
) -> dict[tuple[str, str], tuple[list[Line], Totals]]:
    """(municipality, health trust) -> the lines and totals of that pair's statement."""
    by_pair: dict[tuple[str, str], list[LedgerItem]] = defaultdict(list)
    for item in expected_items(events, tariffs, period.last_day):
        if item.service_month == period:
            by_pair[(item.municipality, item.health_trust)].append(item)
    return {pair: summarise(items) for pair, items in by_pair.items()}
