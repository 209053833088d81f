"""Generate a month of hospital events for municipality-trust pairs.

Deterministic from the seed. Patient identifiers are synthetic but have valid check
digits, exactly like real ones, so the pseudonymisation and the privacy scans are tested
on the real shape.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from contracts.v1 import topics
from services.domain.calendar import OSLO, Month

# (health trust, its municipalities) - real organisation and municipality numbers.
DEMO_PAIRS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("983974724", ("4601", "4624", "4626")),  # Haukeland (Helse Bergen): Bergen, Bjørnafjorden, Øygarden
    ("993467049", ("0301",)),  # Oslo universitetssykehus: Oslo
    ("883974832", ("5001",)),  # St. Olavs: Trondheim
    ("983974899", ("5501",)),  # UNN: Tromsø
)

_K1 = (3, 7, 6, 1, 8, 9, 4, 5, 2)
_K2 = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)


def synthetic_patient_id(rng: random.Random) -> str:
    """A fødselsnummer-shaped number with valid check digits."""
    while True:
        born = date(1930, 1, 1) + timedelta(days=rng.randrange(0, 365 * 80))
        digits = born.strftime("%d%m%y") + f"{rng.randrange(0, 1000):03d}"
        k1 = 11 - sum(int(d) * w for d, w in zip(digits, _K1, strict=True)) % 11
        k1 = 0 if k1 == 11 else k1
        if k1 == 10:
            continue
        digits += str(k1)
        k2 = 11 - sum(int(d) * w for d, w in zip(digits, _K2, strict=True)) % 11
        k2 = 0 if k2 == 11 else k2
        if k2 == 10:
            continue
        return digits + str(k2)


@dataclass(frozen=True)
class Published:
    topic: str
    key: str
    value: dict[str, Any]


class Hospital:
    def __init__(self, period: Month, seed: int = 2012, source_prefix: str = "dips") -> None:
        self.period = period
        self.rng = random.Random(seed)
        self._source_prefix = source_prefix
        self._counter = 0

    def _at(self, day: date, hour: int | None = None) -> str:
        h = self.rng.randrange(7, 22) if hour is None else hour
        instant = datetime.combine(day, time(h, self.rng.randrange(60)), OSLO)
        return instant.isoformat()

    def _base(
        self, event_type: str, trust: str, occurred_at: str, patient: str, care_area: str
    ) -> dict[str, Any]:
        return {
            "event_id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            "type": event_type,
            "source": f"{self._source_prefix}.{trust}",
            "occurred_at": occurred_at,
            "health_trust": trust,
            "patient_id": patient,
            "care_area": care_area,
        }

    def _next_id(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}-{self.period.year}{self.period.month:02d}-{self._counter:06d}"

    def episode(self, trust: str, municipality: str, *, staying: str | None = None) -> list[Published]:
        """One discharge-ready episode: admitted, declared ready, notified, then received,
        discharged, withdrawn-and-redeclared, or still waiting at month end."""
        rng = self.rng
        first, last = self.period.first_day, self.period.last_day
        patient = synthetic_patient_id(rng)
        episode_id = self._next_id("EP")
        care_area = rng.choices(["somatic", "mental_health", "substance_abuse"], [85, 10, 5])[0]
        admitted = first + timedelta(days=rng.randrange(0, 24))
        ready = admitted + timedelta(days=rng.randrange(1, 5))
        notified = ready + timedelta(days=rng.choice([0, 0, 0, 1]))
        common = {
            "episode_id": episode_id,
            "registered_municipality": municipality,
            "staying_municipality": staying or municipality,
        }

        def event(kind: str, day: date, **extra: Any) -> Published:
            value = self._base(kind, trust, self._at(day), patient, care_area) | common | extra
            return Published(topics.DISCHARGE_READY, episode_id, value)

        events = [
            event("admission_notified", admitted),
            event("declared_ready", ready),
            event("municipality_notified", notified),
        ]
        ending = rng.choices(["can_receive", "discharged", "withdrawn", "open"], [50, 20, 10, 20])[0]
        wait = rng.randrange(1, 12)
        end = notified + timedelta(days=wait)
        if ending == "open" or end > last:
            return [e for e in events if date.fromisoformat(e.value["occurred_at"][:10]) <= last]
        if ending == "can_receive":
            events.append(event("municipality_can_receive", end))
            discharge = min(end + timedelta(days=1), last)
            events.append(event("discharged", discharge, destination="municipal_service"))
        elif ending == "discharged":
            events.append(event("discharged", end, destination=rng.choice(["home", "municipal_service"])))
        else:
            events.append(event("ready_withdrawn", end))
            again = end + timedelta(days=rng.randrange(1, 4))
            if again + timedelta(days=2) <= last:
                events.append(event("declared_ready", again))
                events.append(event("municipality_notified", again))
                events.append(event("municipality_can_receive", again + timedelta(days=2)))
        return events

    def emergency_stay(self, trust: str, municipality: str) -> list[Published]:
        patient = synthetic_patient_id(self.rng)
        stay_id = self._next_id("KAD")
        admitted = self.period.first_day + timedelta(days=self.rng.randrange(0, 26))
        discharged = admitted + timedelta(days=self.rng.randrange(1, 4))
        out = []
        for kind, day in (("emergency_bed_admitted", admitted), ("emergency_bed_discharged", discharged)):
            if day <= self.period.last_day:
                value = self._base(kind, trust, self._at(day), patient, "somatic") | {
                    "stay_id": stay_id,
                    "municipality": municipality,
                }
                out.append(Published(topics.EMERGENCY_BEDS, stay_id, value))
        return out

    def activity(self, trust: str, municipality: str) -> list[Published]:
        rng = self.rng
        patient = synthetic_patient_id(rng)
        activity_id = self._next_id("ACT")
        day = self.period.first_day + timedelta(days=rng.randrange(0, 27))
        kind = rng.choice(["inpatient", "day_patient", "outpatient", "outpatient"])
        ended = day + timedelta(days=rng.randrange(1, 6) if kind == "inpatient" else 0)
        value = self._base("activity_recorded", trust, self._at(ended, 20), patient, "somatic") | {
            "activity_id": activity_id,
            "registered_municipality": municipality,
            "contact_kind": kind,
            "drg": rng.choice(["127O", "089R", "014A", "901B", "544A"]),
            "drg_points": str(Decimal(rng.randrange(50, 4000)) / 1000),
            "surgical": rng.random() < 0.25,
            "category": rng.choices(
                ["ordinary", "birth", "newborn", "costly_drug", "lab_imaging"], [80, 5, 5, 5, 5]
            )[0],
            "started_at": self._at(day, 8),
            "ended_at": self._at(ended, 19),
        }
        return [Published(topics.ACTIVITY, activity_id, value)]

    def month(
        self,
        pairs: tuple[tuple[str, tuple[str, ...]], ...] = DEMO_PAIRS,
        episodes_per_pair: int = 6,
        emergency_heavy: frozenset[str] = frozenset(),
    ) -> list[Published]:
        """A realistic month: episodes, emergency-bed stays and activity per pair, in the
        order a hospital would send them (by time, families interleaved).

        Municipalities in `emergency_heavy` run many emergency beds and rarely leave a
        patient waiting in hospital: there the trust ends up the net payer.
        """
        out: list[Published] = []
        for trust, municipalities in pairs:
            for municipality in municipalities:
                heavy = municipality in emergency_heavy
                for _ in range(1 if heavy else episodes_per_pair):
                    out.extend(self.episode(trust, municipality))
                for _ in range(4 * episodes_per_pair if heavy else max(1, episodes_per_pair // 3)):
                    out.extend(self.emergency_stay(trust, municipality))
                for _ in range(episodes_per_pair):
                    out.extend(self.activity(trust, municipality))
        out.sort(key=lambda p: p.value["occurred_at"])
        return out


def iter_encoded(events: list[Published]) -> Iterator[tuple[str, bytes, bytes]]:
    import json

    for e in events:
        yield e.topic, e.key.encode(), json.dumps(e.value).encode()
