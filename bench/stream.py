"""A national-shaped event stream, deterministic from a seed.

Proportions follow domain.md "Scale": co-financed activity is most of the volume (every
somatic contact), discharge-ready episodes a few percent, emergency-bed stays fewer still.
Every municipality in force on the month's first day is paired with one of the 20 health
trusts, so a stream covers hundreds of municipality-trust pairs.
"""

from __future__ import annotations

import random

from services.adapters.municipality_registry import load_registry
from services.domain.calendar import Month
from services.simulator.hospital import Hospital, Published

TRUSTS = (
    "983971636", "993467049", "883971752", "983971709", "983971768", "983975259", "983975267",
    "983975240", "894166762", "983974724", "983974694", "983974732", "983974678", "883974832",
    "997005562", "983974791", "983974880", "983974899", "983974910", "983974929",
)  # fmt: skip
FAMILY_WEIGHTS = {"activity": 95, "episode": 4, "emergency": 1}  # by subject: ~85 % of events are activity


def pairs(period: Month) -> list[tuple[str, str]]:
    municipalities = sorted(load_registry().numbers_valid_on(period.first_day))
    return [(TRUSTS[i % len(TRUSTS)], m) for i, m in enumerate(municipalities)]


DEFAULT_PERIOD = Month(2025, 10)


def national_stream(
    events: int, *, seed: int = 2012, period: Month = DEFAULT_PERIOD, source: str = "bench"
) -> list[Published]:
    """At least `events` events (whole subjects), in the order a hospital would send them."""
    rng = random.Random(seed)
    hospital = Hospital(period, seed=seed, source_prefix=source)
    everyone = pairs(period)
    kinds, weights = zip(*FAMILY_WEIGHTS.items(), strict=True)
    out: list[Published] = []
    while len(out) < events:
        trust, municipality = everyone[rng.randrange(len(everyone))]
        kind = rng.choices(kinds, weights)[0]
        if kind == "activity":
            out.extend(hospital.activity(trust, municipality))
        elif kind == "episode":
            out.extend(hospital.episode(trust, municipality))
        else:
            out.extend(hospital.emergency_stay(trust, municipality))
    out.sort(key=lambda p: p.value["occurred_at"])
    return out
