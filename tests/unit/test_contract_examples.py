"""The whole messages published as examples (contracts/v1/examples.py, in the JSON Schemas
and the AsyncAPI document) are what intake accepts, one of every type, each on its topic."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from jsonschema import Draft202012Validator

from contracts.generate import ASYNCAPI_FILE, SCHEMA_DIR, SCHEMA_OF_TOPIC
from contracts.v1.examples import EXAMPLES
from contracts.v1.inbound import TOPIC_TYPES
from services.adapters.municipality_registry import load_registry
from services.intake.pseudonym import Pseudonymiser
from services.intake.validation import Accepted, Outcome, RawRecord, validate

CASES = [(topic, event_type) for topic, examples in EXAMPLES.items() for event_type in examples]


def _intake(topic: str, message: dict[str, object]) -> Outcome:
    """What intake's validation makes of `message` on `topic`."""
    record = RawRecord(topic, 0, 0, b"key", json.dumps(message).encode())
    return validate(
        record,
        now=datetime(2026, 1, 1, tzinfo=UTC),
        pseudonymise=Pseudonymiser(b"k" * 32),
        registry=load_registry(),
    )


def test_every_type_of_every_inbound_topic_has_an_example() -> None:
    assert {topic: set(examples) for topic, examples in EXAMPLES.items()} == {
        topic: set(types) for topic, types in TOPIC_TYPES.items()
    }


@pytest.mark.parametrize(("topic", "event_type"), CASES)
def test_each_example_is_accepted_by_intake_as_it_stands(topic: str, event_type: str) -> None:
    example = EXAMPLES[topic][event_type]

    outcome = _intake(topic, example)

    assert isinstance(outcome, Accepted), outcome
    assert outcome.type == event_type == example["type"]
    assert "patient_id" not in outcome.payload


def test_the_published_documents_carry_the_examples() -> None:
    asyncapi = json.loads(ASYNCAPI_FILE.read_text(encoding="utf-8"))
    published = [
        e["payload"] for m in asyncapi["components"]["messages"].values() for e in m.get("examples", [])
    ]
    schemas = [
        e
        for path in SCHEMA_DIR.glob("*-event.schema.json")
        for e in json.loads(path.read_text(encoding="utf-8")).get("examples", [])
    ]
    every = [example for examples in EXAMPLES.values() for example in examples.values()]

    def canonical(documents: list[dict]) -> list[str]:
        return sorted(json.dumps(d, sort_keys=True) for d in documents)

    assert canonical(published) == canonical(schemas) == canonical(every)


def _schema_of(topic: str) -> Draft202012Validator:
    path = SCHEMA_DIR / f"{SCHEMA_OF_TOPIC[topic]}.schema.json"
    return Draft202012Validator(json.loads(path.read_text(encoding="utf-8")))


@pytest.mark.parametrize(("topic", "event_type"), CASES)
def test_each_example_is_valid_under_its_published_json_schema(topic: str, event_type: str) -> None:
    errors = [e.message for e in _schema_of(topic).iter_errors(EXAMPLES[topic][event_type])]

    assert errors == []


@pytest.mark.parametrize(
    ("topic", "event_type", "change"),
    [
        ("samhandling.activity.v1", "activity_recorded", {"drg_points": "0.0000001"}),
        ("samhandling.activity.v1", "activity_recorded", {"drg_points": 0.873}),
        ("samhandling.activity.v1", "activity_recorded", {"surgical": "no"}),
        ("samhandling.discharge-ready.v1", "declared_ready", {"occurred_at": "1730000000"}),
        ("samhandling.discharge-ready.v1", "declared_ready", {"staying_municipality": "0001"}),
        ("samhandling.discharge-ready.v1", "discharged", {"destination": "elsewhere"}),
        ("samhandling.emergency-beds.v1", "emergency_bed_admitted", {"stay_id": ""}),
    ],
)
def test_what_the_schema_refuses_in_an_example_intake_refuses_too(
    topic: str, event_type: str, change: dict[str, object]
) -> None:
    message = EXAMPLES[topic][event_type] | change

    outcome = _intake(topic, message)

    assert list(_schema_of(topic).iter_errors(message)), "the schema refuses it"
    assert not isinstance(outcome, Accepted), "and so does intake"


# Each row: a timestamp as written, and intake's reason for refusing it (None: accepted).
# The published pattern must say the same, without a format checker (a validator skips
# `format` unless told, and with one it is RFC 3339's, narrower than intake).
TIMESTAMPS = [
    ("2025-10-06T09:30:00+02:00", None),
    ("2025-10-06T09:30:00Z", None),
    ("2025-10-06T09:30:00.123456Z", None),
    ("2025-10-06T09:30:00.1234567890-01:30", None),  # digits past the microsecond are dropped
    ("2025-10-06T09:30:00,5+02:00", None),
    ("2025-10-06T09:30+02:00", None),
    ("2025-10-06t09:30:00z", None),
    ("2025-10-06 09:30:00+02:00", None),
    ("2025-10-06_09:30:00+02:00", None),
    ("2025-10-06T09:30:00+0200", None),
    ("2025-10-06T09:30:00\u221202:00", None),  # the minus sign, U+2212
    ("2025-10-06T09:30:00-00:00", None),
    ("2025-10-06T09:30:00+23:59", None),
    ("2025-10-06T23:59:59-23:59", None),
    ("2024-02-29T12:00:00Z", None),
    ("2025-10-31T12:00:00Z", None),
    ("2025-10-06T09:30:00", "timestamp_without_offset"),
    ("2025-10-06T09:30:00.5", "timestamp_without_offset"),
    ("2025-10-06", "timestamp_without_offset"),
    ("2025-10-06T09:30:00+02:00[Europe/Oslo]", "schema_violation"),  # Java's ZonedDateTime.toString()
    ("2025-10-06T09:30:00+25:00", "schema_violation"),
    ("2025-10-06T09:30:00+24:00", "schema_violation"),
    ("2025-10-06T09:30:00+02:60", "schema_violation"),
    ("2025-10-06T09:30:00+02", "schema_violation"),
    ("2025-10-06T09:30:00+2:00", "schema_violation"),
    ("2025-10-06T09:30:00+02:00:00", "schema_violation"),
    ("2025-10-06T09:30:00\u201002:00", "schema_violation"),  # a hyphen, U+2010
    ("2025-10-06T09:30:00 +02:00", "schema_violation"),
    ("2025-10-06T09:30:00UTC", "schema_violation"),
    ("2025-10-06T09:30:00.Z", "schema_violation"),
    ("2025-10-06T09:30.5Z", "schema_violation"),
    ("2025-10-06T09Z", "schema_violation"),
    ("2025-10-06T9:30:00Z", "schema_violation"),
    ("2025-10-06T24:00:00Z", "schema_violation"),
    ("2025-10-06T23:59:60Z", "schema_violation"),
    ("2025-10-06TT09:30:00Z", "schema_violation"),
    ("2025-10-06Z", "schema_violation"),
    ("2025-10-32T09:30:00Z", "schema_violation"),
    ("2025-09-31T09:30:00Z", "schema_violation"),
    ("2025-13-01T09:30:00Z", "schema_violation"),
    ("20251006T093000Z", "schema_violation"),
    ("2025-10-06T09:30:00+02:00 ", "schema_violation"),
]
# Where a timestamp is written, in which example (the contact made long enough to hold the
# table's times: a start after the end is refused for that).
TIMESTAMP_FIELDS = [
    ("samhandling.discharge-ready.v1", "declared_ready", "occurred_at"),
    ("samhandling.activity.v1", "activity_recorded", "started_at"),
    ("samhandling.activity.v1", "activity_corrected", "ended_at"),
]
_LONG_CONTACT = {"started_at": "2024-01-02T08:00:00+01:00", "ended_at": "2025-11-03T12:00:00+01:00"}


def _reason(outcome: Outcome) -> str | None:
    return None if isinstance(outcome, Accepted) else outcome.reason.value


@pytest.mark.parametrize(("topic", "event_type", "field"), TIMESTAMP_FIELDS)
@pytest.mark.parametrize(("written", "reason"), TIMESTAMPS)
def test_the_published_schema_takes_a_timestamp_exactly_when_intake_does(
    topic: str, event_type: str, field: str, written: str, reason: str | None
) -> None:
    contact = _LONG_CONTACT if topic == "samhandling.activity.v1" else {}
    message = EXAMPLES[topic][event_type] | contact | {field: written}

    outcome = _intake(topic, message)
    schema_errors = list(_schema_of(topic).iter_errors(message))

    assert _reason(outcome) == reason
    assert bool(schema_errors) == (reason is not None), [e.message for e in schema_errors]


# Each row: a DRG weight as written, and intake's reason for refusing it (None: accepted).
DRG_POINTS = [
    ("0", None),
    ("0.873", None),
    ("999.999999", None),
    ("0999", None),
    ("1000", None),
    ("1000.000000", None),
    ("1000.000001", "schema_violation"),
    ("1000.5", "schema_violation"),
    ("1001", "schema_violation"),
    ("1500", "schema_violation"),
    ("9999.9", "schema_violation"),
    ("10000", "schema_violation"),
    ("0.0000001", "schema_violation"),
    ("1000.0000000", "schema_violation"),
    ("1000.", "schema_violation"),
    (".5", "schema_violation"),
    ("-0", "schema_violation"),
    ("1e2", "schema_violation"),
    ("0,873", "schema_violation"),
    (0.873, "schema_violation"),
]


@pytest.mark.parametrize("event_type", ["activity_recorded", "activity_corrected"])
@pytest.mark.parametrize(("written", "reason"), DRG_POINTS)
def test_the_published_schema_takes_a_drg_weight_exactly_when_intake_does(
    event_type: str, written: object, reason: str | None
) -> None:
    topic = "samhandling.activity.v1"
    message = EXAMPLES[topic][event_type] | {"drg_points": written}

    outcome = _intake(topic, message)
    schema_errors = list(_schema_of(topic).iter_errors(message))

    assert _reason(outcome) == reason
    assert bool(schema_errors) == (reason is not None), [e.message for e in schema_errors]


# The ids the contract names (SubjectId's description, in every inbound schema, and the README),
# and what intake makes of each.
NAMED_IDS = [
    ("EP-2025-000123", None),
    ("EP-2025100612345", None),
    ("EP-2025100600091", "patient_id_in_subject_id"),  # 25100600091 passes the check digits
    ("EP-202510-00027", "patient_id_in_subject_id"),  # 202510 and 00027: 20251000027 passes them
]


@pytest.mark.parametrize(("subject_id", "reason"), NAMED_IDS)
def test_an_id_the_contract_names_is_judged_by_intake_as_the_contract_says(
    subject_id: str, reason: str | None
) -> None:
    topic = "samhandling.discharge-ready.v1"
    published = json.loads((SCHEMA_DIR / "discharge-ready-event.schema.json").read_text(encoding="utf-8"))
    description = published["$defs"]["DeclaredReady"]["properties"]["episode_id"]["description"]
    readme = (SCHEMA_DIR.parent / "README.md").read_text(encoding="utf-8")

    outcome = _intake(topic, EXAMPLES[topic]["declared_ready"] | {"episode_id": subject_id})

    assert f"`{subject_id}`" in description and f"`{subject_id}`" in readme
    assert _reason(outcome) == reason


def test_about_2_4_percent_of_ids_of_the_named_form_hold_digits_that_pass_as_a_patient_id() -> None:
    from contracts.v1.identifiers import find_patient_ids

    refused = sum(bool(find_patient_ids(f"EP-20251006{n:05d}")) for n in range(100_000))

    assert refused == 2_430  # "about 2.4 %"
