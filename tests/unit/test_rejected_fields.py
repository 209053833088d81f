"""A rejection keeps of a JSON object the fields the topic's contract names, and of the
others only their names: the contract says a field it does not name is not stored, and a
producer may have put a patient's name or phone number in one."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.v1 import topics
from contracts.v1.examples import EXAMPLES
from contracts.v1.named_fields import NAMED_FIELDS
from contracts.v1.outbound import ReasonCode
from services.intake.pseudonym import Pseudonymiser
from services.intake.rejected_fields import NOT_A_CONTRACT_FIELD
from services.intake.validation import (
    MAX_REJECTED_PAYLOAD_CHARS,
    RawRecord,
    Rejected,
    differing_fields,
    payload_digest,
    validate,
)

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
PATIENT = "31129956715"
DECLARED = EXAMPLES[topics.DISCHARGE_READY]["declared_ready"]
# The audit's message: a timestamp without an offset, and two fields no contract names.
AUDITED = DECLARED | {
    "occurred_at": "2025-10-06T09:30:00",
    "patient_name": "Kari Nordmann",
    "phone": "+47 912 34 567",
}


def _rejected(value: bytes, topic: str = topics.DISCHARGE_READY) -> Rejected:
    outcome = validate(RawRecord(topic, 0, 0, b"k", value), now=NOW, pseudonymise=Pseudonymiser(b"k" * 32))
    assert isinstance(outcome, Rejected), outcome
    return outcome


def test_a_rejection_keeps_the_names_of_fields_the_contract_does_not_name_but_not_their_values() -> None:
    rejected = _rejected(json.dumps(AUDITED).encode())

    kept = rejected.redacted_payload()

    assert rejected.reason == ReasonCode.TIMESTAMP_WITHOUT_OFFSET
    assert "Kari" not in kept and "Nordmann" not in kept and "912" not in kept
    document = json.loads(kept)
    assert document["patient_name"] == document["phone"] == NOT_A_CONTRACT_FIELD
    assert document["patient_id"] == "[redacted]"  # redacted after, as before
    assert {k: v for k, v in document.items() if k not in {"patient_name", "phone", "patient_id"}} == {
        k: v for k, v in AUDITED.items() if k not in {"patient_name", "phone", "patient_id"}
    }
    assert ", " not in kept and '": ' not in kept  # compact
    # The digest, and so the rejection id, are of what is kept.
    assert rejected.raw_hash == payload_digest(kept)


def test_a_field_the_contract_names_on_another_topic_is_not_kept_on_this_one() -> None:
    # An activity's fields sent on the discharge-ready topic: the contract of this topic
    # does not name them.
    value = json.dumps(AUDITED | {"drg": "127O", "ended_at": "2025-10-06T09:30:00+02:00"}).encode()

    document = json.loads(_rejected(value).redacted_payload())

    assert document["drg"] == document["ended_at"] == NOT_A_CONTRACT_FIELD


def test_what_is_nested_in_a_field_keeps_only_the_names_the_contract_gives_there() -> None:
    value = json.dumps(
        AUDITED
        | {
            "episode_id": {"id": "EP-1", "name": "Kari Nordmann"},  # the contract names nothing in it
            "source": ["dips", {"ward": "Kari Nordmann"}, [{"bed": 7}]],
            "contact": {"name": "Kari Nordmann", "phones": ["+47 912 34 567"]},
        }
    ).encode()

    document = json.loads(_rejected(value).redacted_payload())

    assert document["episode_id"] == {"id": NOT_A_CONTRACT_FIELD, "name": NOT_A_CONTRACT_FIELD}
    assert document["source"] == ["dips", {"ward": NOT_A_CONTRACT_FIELD}, [{"bed": NOT_A_CONTRACT_FIELD}]]
    assert document["contact"] == NOT_A_CONTRACT_FIELD


def test_a_command_keeps_the_fields_its_contract_names_in_a_nested_party() -> None:
    command = {
        "type": "open_dispute",
        "command_id": "not a uuid",
        "opened_by": {"role": "municipality", "id": "4601", "name": "Kari Nordmann"},
        "caller": "+47 912 34 567",
    }
    rejected = Rejected(
        RawRecord(topics.COMMANDS, 0, 0, None, json.dumps(command).encode()), ReasonCode.SCHEMA_VIOLATION, "x"
    )

    document = json.loads(rejected.redacted_payload())

    assert document["opened_by"] == {"role": "municipality", "id": "4601", "name": NOT_A_CONTRACT_FIELD}
    assert document["caller"] == NOT_A_CONTRACT_FIELD
    assert document["command_id"] == "not a uuid"


def test_a_message_with_only_contract_fields_is_kept_as_it_came() -> None:
    text = json.dumps(DECLARED | {"occurred_at": "2025-10-06T09:30:00"}, indent=1)

    kept = _rejected(text.encode()).redacted_payload()

    assert kept == text.replace(PATIENT, "[redacted]")


@pytest.mark.parametrize(
    "value",
    [
        b'[{"patient_name": "Kari Nordmann"}]',  # an array: not_an_object
        b'{"patient_name": "Kari Nordmann", ',  # cut short: not_json
        b'"Kari Nordmann"',
    ],
)
def test_a_payload_that_is_not_a_json_object_is_kept_as_it_came(value: bytes) -> None:
    # Nothing to tell a contract's field from another by: documented in contracts/v1/README.md.
    assert _rejected(value).redacted_payload() == value.decode()


@pytest.mark.parametrize(
    ("number", "kept_as"),
    [
        ("0.0000031129956715", "0.[redacted]"),
        ("31129956715000000000.0", "[redacted].0"),
        ("311299.56715", "[redacted]"),
    ],
)
def test_numbers_are_kept_as_written_so_the_redactor_sees_a_patient_id_in_them(
    number: str, kept_as: str
) -> None:
    # Read as floats and written again, they became 3.1129956715e-06 and 3.1129956715e+19:
    # the id's digits, no longer a run the redactor knows.
    text = json.dumps(AUDITED | {"source": "NUMBER"}).replace('"NUMBER"', number)

    kept = _rejected(text.encode()).redacted_payload()

    assert f'"source":{kept_as},' in kept, kept
    assert "1129956715" not in kept.replace(".", "")


def test_a_large_message_keeps_no_field_the_contract_does_not_name_and_is_still_cut() -> None:
    note = "Kari Nordmann " * 80_000  # over the 1 MB limit
    too_large = _rejected(json.dumps(AUDITED | {"note": note}).encode())
    long_source = _rejected(json.dumps(AUDITED | {"source": "x" * 200_000}).encode())

    assert too_large.reason == ReasonCode.MESSAGE_TOO_LARGE
    assert json.loads(too_large.redacted_payload())["note"] == NOT_A_CONTRACT_FIELD
    kept = long_source.redacted_payload()
    assert len(kept) == MAX_REJECTED_PAYLOAD_CHARS and "Kari" not in kept


def test_a_long_array_in_a_contract_field_is_written_only_as_far_as_it_is_kept() -> None:
    numbers = ",".join(["1.5"] * 300_000)
    document = {"patient_name": "Kari Nordmann"} | AUDITED | {"source": "NUMBERS"}
    value = json.dumps(document).replace('"NUMBERS"', f"[{numbers}]").encode()

    kept = _rejected(value).redacted_payload()

    assert MAX_REJECTED_PAYLOAD_CHARS - 4 <= len(kept) <= MAX_REJECTED_PAYLOAD_CHARS  # a number cut goes
    assert '"source":[1.5,1.5,' in kept and "Kari" not in kept


@pytest.mark.parametrize("kept", range(1, 11))
def test_a_patient_id_the_64_kib_cut_goes_through_leaves_none_of_its_digits(kept: int) -> None:
    head = '{"type":"no_such_type","source":"'
    filler = "x" * (MAX_REJECTED_PAYLOAD_CHARS - len(head) - kept)
    value = f'{head}{filler}{PATIENT}","patient_name":"Kari Nordmann"}}'.encode()

    kept_text = _rejected(value).redacted_payload()

    assert kept_text == head + filler


def test_nul_and_a_lone_surrogate_leave_a_payload_that_can_be_stored() -> None:
    text = json.dumps(AUDITED | {"\ud800": "\u0000Kari", "source": "a\u0000b\udc00"}).replace(
        '"type"', '\x00"type"'
    )

    kept = _rejected(text.encode("utf-8", errors="surrogatepass")).redacted_payload()

    assert "\x00" not in kept and "Kari" not in kept
    assert kept.encode("utf-8")  # PostgreSQL text takes it
    document = json.loads(kept)
    assert document["\ud800"] == NOT_A_CONTRACT_FIELD
    assert document["source"] == "a\u0000b\udc00"  # as the escapes it came as


@given(
    st.dictionaries(
        # Names without digits: a run of them is redacted, name or value.
        # Names no message of the topic has: hypothesis also tries the project's own string
        # constants, and found `destination` (a discharge's), which is kept as it should be.
        st.text(st.characters(blacklist_categories=["Nd", "Cs"]), min_size=1).filter(
            lambda k: k not in NAMED_FIELDS[topics.DISCHARGE_READY]
        ),
        st.recursive(
            st.text() | st.integers() | st.floats() | st.booleans() | st.none(),
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
            max_leaves=8,
        ),
        min_size=1,
        max_size=4,
    )
)
@settings(max_examples=200, deadline=None)
def test_nothing_sent_under_a_name_the_contract_does_not_give_is_kept(extra: dict[str, object]) -> None:
    marked = {key: ["SECRET", value] for key, value in extra.items()}
    text = json.dumps(AUDITED | marked, ensure_ascii=False)

    kept = _rejected(text.encode("utf-8", errors="surrogatepass")).redacted_payload()

    assert "SECRET" not in kept
    assert set(json.loads(kept)) == set(AUDITED) | set(extra)


@pytest.mark.parametrize(
    ("first", "again", "said"),
    [
        pytest.param({"a": 1, "b": 2}, {"a": 1, "b": 3}, ", in: b", id="one-field"),
        pytest.param({"a": 1}, {"a": 1, "c": 2}, ", in: c", id="a-field-added"),
        pytest.param({"a": 1, "c": 2}, {"a": 1}, ", in: c", id="a-field-left-out"),
        pytest.param(
            {"patient_pseudonym": "p1:x", "b": 1},
            {"patient_pseudonym": "p1:y", "b": 2},
            ", in: b, patient_id",
            id="the-pseudonym-named-as-the-patient-id",
        ),
        pytest.param(
            {"m": "3024", "municipality_mappings": {"m": "3024"}},
            {"m": "3201"},
            ", in: m",
            id="intakes-own-mappings-not-named",
        ),
        pytest.param(None, {"a": 1}, "", id="stored-one-not-found"),
        pytest.param({"a": 1}, {"a": 1}, "", id="nothing-differs"),
    ],
)
def test_a_conflict_names_the_fields_that_differ_and_never_their_values(first, again, said) -> None:
    assert differing_fields(first, again) == said


def test_a_rejection_names_the_event_by_its_source_id_and_trust_as_sent() -> None:
    bad_id = AUDITED | {"event_id": "not-a-uuid", "source": "dips.ahus"}

    identity = _rejected(json.dumps(bad_id).encode()).redacted_identity()

    assert identity == {
        "source": "dips.ahus",
        "event_id": "not-a-uuid",
        "health_trust": DECLARED["health_trust"],
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # a patient id in the source is redacted as it is in the payload, after NULs are dropped
        (AUDITED | {"source": f"ward-{PATIENT}"}, {"source": "ward-[redacted]"}),
        (AUDITED | {"source": "ward-311299\u000056715"}, {"source": "ward-[redacted]"}),
        # not text, empty, or longer than any id: left in the payload alone
        (AUDITED | {"source": 42, "event_id": "", "health_trust": "9" * 257}, {}),
    ],
    ids=["patient-id", "patient-id-split-by-nul", "not-text"],
)
def test_what_names_the_event_is_redacted_and_only_text(
    value: dict[str, object], expected: dict[str, str]
) -> None:
    identity = _rejected(json.dumps(value).encode()).redacted_identity()

    assert {k: v for k, v in identity.items() if k in expected or k == "source"} == expected
    assert PATIENT not in json.dumps(identity)


@pytest.mark.parametrize("value", [b"not json", b'["an", "array"]', b'{"source": "cut'], ids=str)
def test_a_payload_that_is_no_json_object_names_nothing(value: bytes) -> None:
    assert _rejected(value).redacted_identity() == {}


def test_a_refused_command_names_no_event() -> None:
    command = json.dumps(
        {"type": "close_period", "period": "2025-13", "source": "x", "event_id": "y"}
    ).encode()
    refused = Rejected(
        RawRecord(topics.COMMANDS, 0, 0, None, command), ReasonCode.SCHEMA_VIOLATION, "bad period"
    )

    assert refused.redacted_identity() == {}
