"""A statement carries every item of its pair's month, so a large municipality's statement
is far over Kafka's default limit of 1 MB a message (the 1 M-item benchmark found it: about
330 bytes an item). Published through the real relay and broker, it must arrive whole, and
not hold up the outbox behind it."""

from __future__ import annotations

import json
import random
import uuid

import pytest

from contracts.v1 import topics
from services.domain.calendar import Month
from services.settlement.verification import verify_published
from tests.integration.conftest import db_value, produce, read_topic, wait_until

pytestmark = pytest.mark.integration

TRUST, MUNICIPALITY = "983974694", "1516"  # a pair no other test on the shared stack uses
PERIOD = Month(2013, 6)  # co-financing's national share is in force, its unit price is not: every
ACTIVITIES = 5_200  # activity is an unrated item, listed on the statement all the same


def _activity(n: int, rng: random.Random) -> tuple[str, bytes | None, bytes]:
    day = 1 + n % 28
    value = {
        "event_id": str(uuid.uuid4()),
        "type": "activity_recorded",
        "source": "itest-large",
        "occurred_at": f"2013-06-{day:02d}T20:00:00+02:00",
        "health_trust": TRUST,
        "patient_id": "31129956715",
        "care_area": "somatic",
        "activity_id": f"ACT-LARGE-{n:06d}",
        "registered_municipality": MUNICIPALITY,
        "contact_kind": "outpatient",
        "drg": "901B",
        "drg_points": str(rng.randrange(50, 4000) / 1000),
        "surgical": False,
        "category": "ordinary",
        "started_at": f"2013-06-{day:02d}T08:00:00+02:00",
        "ended_at": f"2013-06-{day:02d}T19:00:00+02:00",
    }
    return topics.ACTIVITY, value["activity_id"].encode(), json.dumps(value).encode()


def test_a_statement_over_one_megabyte_is_published_whole_to_both_parties(stack) -> None:  # type: ignore[no-untyped-def]
    endpoints, _group, _state = stack
    rng = random.Random(13)
    produce(endpoints, [_activity(n, rng) for n in range(ACTIVITIES)])
    wait_until(
        lambda: (
            db_value(endpoints, "SELECT count(*) FROM ledger_items WHERE subject_id LIKE 'ACT-LARGE-%'")
            == ACTIVITIES
        ),
        what="every activity rated",
    )
    command = {"type": "close_period", "period": str(PERIOD), "command_id": str(uuid.uuid4())}
    produce(endpoints, [(topics.COMMANDS, str(PERIOD).encode(), json.dumps(command).encode())])

    def published() -> list[dict]:
        return [v for _k, v in read_topic(endpoints, topics.SETTLEMENTS) if v["period"] == str(PERIOD)]

    wait_until(lambda: len(published()) == 2, timeout=120, what="both copies of the statement published")
    copies = published()
    for copy in copies:
        size = len(json.dumps(copy, separators=(",", ":"), ensure_ascii=False).encode())
        assert size > 1_048_576, f"the statement is {size} bytes: the test must cross Kafka's default limit"
        assert len(copy["items"]) == ACTIVITIES
        assert {item["status"] for item in copy["items"]} == {"unrated"}
    assert copies[0]["statement_hash"] == copies[1]["statement_hash"]
    assert verify_published(copies, MUNICIPALITY, TRUST) == (1, [])
    assert db_value(endpoints, "SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0
