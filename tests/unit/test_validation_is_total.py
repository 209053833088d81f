"""Validation never raises, whatever the bytes: a message it cannot read is a rejection
with a reason, and that rejection can always be stored. An exception instead would fail
the batch, the batch would be delivered again, and the partition would stop on it for good.

The same hostile messages the fault scenarios send at volume (tests/faults/corpus.py) are
checked here one by one, without a broker or a database."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, date, datetime, timedelta, timezone

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.v1 import topics
from contracts.v1.identifiers import find_patient_ids, is_valid_patient_id, redact_patient_ids
from contracts.v1.outbound import ReasonCode
from services.adapters.municipality_registry import load_registry
from services.adapters.rejection_repository import rejection_id
from services.domain.calendar import oslo_day
from services.domain.municipalities import SplitMunicipality, UnknownMunicipality
from services.intake.pseudonym import Pseudonymiser
from services.intake.validation import MAX_REJECTED_PAYLOAD_CHARS, Accepted, RawRecord, Rejected, validate
from tests.faults.corpus import Hostile, hospital_month, hostile_messages

# Hostile values are large on purpose; hypothesis need not warn about printing them.
pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning")
NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
PSEUDONYMISE = Pseudonymiser(b"unit-test-key-" + b"k" * 32)
REGISTRY = load_registry()
TEMPLATES = hospital_month(200, 11, "unit-fuzz")
EXAMPLE = "31129956715"  # a valid fødselsnummer (domain.md)


def _validate(topic: str, value: bytes | None, key: bytes | None = b"k") -> Accepted | Rejected:
    record = RawRecord(topic, 0, 0, key, value)
    return validate(record, now=NOW, pseudonymise=PSEUDONYMISE, registry=REGISTRY)


@pytest.mark.parametrize(
    ("case", "value"),
    [
        ("arrays nested deeper than the parser recurses", b"[" * 100_000 + b"]" * 100_000),
        ("objects nested deeper than the parser recurses", b'{"a":' * 50_000 + b"1" + b"}" * 50_000),
        ("an unclosed nesting", b'{"type":' + b"[" * 100_000),
        ("an integer of more digits than Python converts", b'{"type": ' + b"9" * 5_000 + b"}"),
    ],
)
def test_json_that_python_refuses_to_read_is_rejected_as_not_json(case: str, value: bytes) -> None:
    outcome = _validate(topics.DISCHARGE_READY, value)

    assert isinstance(outcome, Rejected), case
    assert outcome.reason.value == "not_json"


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (None, "not JSON: the message is empty"),  # a tombstone
        (b"", "not JSON: the message is empty"),
        (b" \r\n\t", "not JSON: the message is empty but for whitespace"),
    ],
)
def test_an_empty_message_is_said_to_be_empty(value: bytes | None, says: str) -> None:
    outcome = _validate(topics.DISCHARGE_READY, value)

    assert isinstance(outcome, Rejected) and outcome.reason.value == "not_json"
    assert outcome.message == says


def test_json_framed_by_a_schema_registry_serializer_is_said_to_be_so() -> None:
    # KafkaJsonSchemaSerializer: magic byte 0, the schema id in four bytes, the JSON
    framed = b"\x00" + (4711).to_bytes(4, "big") + b'{"type": "declared_ready"}'
    outcome = _validate(topics.DISCHARGE_READY, framed)

    assert isinstance(outcome, Rejected) and outcome.reason.value == "not_json"
    assert outcome.message == (
        "not JSON: starts with a zero byte and a schema id (4711), the framing of Confluent Schema "
        "Registry serializers; send the JSON text alone"
    )


@pytest.mark.parametrize("encoding", ["utf-16-be", "utf-32-be"])
def test_json_in_an_encoding_that_starts_with_a_zero_byte_is_not_taken_for_framing(encoding: str) -> None:
    outcome = _validate(topics.DISCHARGE_READY, '{"type": "declared_ready"}'.encode(encoding))

    assert isinstance(outcome, Rejected) and outcome.reason.value in {"not_json", "not_utf8"}
    assert "schema id" not in outcome.message


def test_a_nul_byte_in_a_rejected_payload_or_key_is_replaced_so_the_rejection_can_be_stored() -> None:
    # PostgreSQL text cannot hold NUL: storing it raised, and the batch was redelivered forever.
    outcome = _validate(topics.DISCHARGE_READY, b'{"type": \x00 }', key=b"key\x00with nul")

    assert isinstance(outcome, Rejected) and outcome.reason.value == "not_json"
    assert "\x00" not in outcome.redacted_payload()
    assert "\x00" not in (outcome.redacted_key() or "")


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-be"])
def test_a_patient_id_in_a_payload_or_key_sent_as_utf_16_or_utf_32_is_redacted(encoding: str) -> None:
    # Each digit comes with one to three NUL bytes: replaced after redaction, they kept the
    # digits apart for the redactor, and the id was stored readable between the replacements.
    template = next(t for t in TEMPLATES if t.topic == topics.DISCHARGE_READY)
    value = json.dumps(template.value | {"patient_id": EXAMPLE}).encode(encoding)

    outcome = _validate(topics.DISCHARGE_READY, value, key=f"EP-{EXAMPLE}".encode(encoding))

    assert isinstance(outcome, Rejected)
    for stored in (outcome.redacted_payload(), outcome.redacted_key() or ""):
        assert "\x00" not in stored
        assert EXAMPLE not in "".join(c for c in stored if c.isascii()), stored


@pytest.mark.parametrize("kept", [1, 6, 9, 10])
def test_a_patient_id_in_utf_16_the_64_kib_cut_goes_through_leaves_none_of_its_digits(kept: int) -> None:
    head = '{"type": "no_such_type", "source": "'
    filler = "x" * (MAX_REJECTED_PAYLOAD_CHARS - len(head) - kept)
    value = (head + filler + EXAMPLE + '"}').encode("utf-16-le")

    outcome = _validate(topics.DISCHARGE_READY, value)

    assert isinstance(outcome, Rejected)
    assert not re.search(r"[0-9]", outcome.redacted_payload()[len(head) :])


@pytest.mark.parametrize("written", ["311299 56715", "311299-56715", "311299.56715"])
def test_a_patient_id_written_in_two_groups_is_found_and_redacted(written: str) -> None:
    assert find_patient_ids(f"EP-{written}") == [EXAMPLE]
    assert redact_patient_ids(f"id {written}!") == "id [redacted]!"


@pytest.mark.parametrize("text", [f"1{EXAMPLE}", f"{EXAMPLE}0", f"00{EXAMPLE}77"])
def test_a_patient_id_inside_a_longer_run_of_digits_is_redacted_with_the_run(text: str) -> None:
    assert redact_patient_ids(f"x {text} y") == "x [redacted] y"


@pytest.mark.parametrize(
    "written", [EXAMPLE, "311299 56715", "311299-56715", "".join(chr(0xFF10 + int(d)) for d in EXAMPLE)]
)
@pytest.mark.parametrize("kept", range(1, 11))
def test_a_patient_id_the_64_kib_cut_goes_through_leaves_none_of_its_digits_in_the_payload(
    written: str, kept: int
) -> None:
    # Redacting what is left after the cut missed the number it cut: 9 of its 11 digits
    # give away the whole of it (the other two are check digits).
    head = '{"type": "no_such_type", "source": "'
    payload, kept_whole = _cut_through(head, written, kept)

    assert payload.startswith(kept_whole)
    assert not re.search(r"\d", payload[len(head) :]), payload[-12:]


def _cut_through(head: str, written: str, kept: int, *, fill: str = "x", tail: str = '"}') -> tuple[str, str]:
    """The redacted payload of a rejected message whose 64 KiB cut goes through `written`,
    `kept` characters of it before the cut; and all of it that is before `written`. (`head`
    names fields of the contract only: the payload is kept as the text it came as.)"""
    filler = fill * (MAX_REJECTED_PAYLOAD_CHARS - len(head) - kept)
    outcome = _validate(topics.DISCHARGE_READY, (head + filler + written + tail).encode())
    assert isinstance(outcome, Rejected)
    return outcome.redacted_payload(), head + filler


EXPONENT_FORM = "3.1129956715e+10"  # EXAMPLE, to a JSON reader


@pytest.mark.parametrize("kept", range(1, len(EXPONENT_FORM)))
def test_a_patient_id_in_exponent_form_the_64_kib_cut_goes_through_leaves_none_of_its_digits(
    kept: int,
) -> None:
    head = '{"type": "no_such_type", "source": '
    payload, _ = _cut_through(head, EXPONENT_FORM, kept, fill=" ", tail="}")

    assert not re.search(r"\d", payload[len(head) :])


def test_a_patient_id_sent_as_a_number_in_exponent_form_is_redacted_in_the_rejection() -> None:
    template = next(t for t in TEMPLATES if t.topic == topics.DISCHARGE_READY)
    text = json.dumps(template.value | {"patient_id": "ID"}).replace('"ID"', EXPONENT_FORM)
    assert f"{json.loads(text)['patient_id']:.0f}" == EXAMPLE

    outcome = _validate(topics.DISCHARGE_READY, text.encode())

    assert isinstance(outcome, Rejected) and outcome.reason == ReasonCode.SCHEMA_VIOLATION
    assert '"patient_id": [redacted]' in outcome.redacted_payload()
    for stored in (outcome.redacted_payload(), outcome.redacted_message()):
        assert EXAMPLE not in stored.replace(".", "") and "1129956715" not in stored, stored


def test_a_patient_id_written_with_json_escapes_is_redacted_in_a_rejected_payload() -> None:
    # A JSON reader sees the digits: the payload is kept as the text it came as.
    template = next(t for t in TEMPLATES if t.topic == topics.DISCHARGE_READY)
    escaped = "".join(f"\\u{ord(c):04x}" for c in EXAMPLE)
    text = json.dumps(template.value | {"type": "no_such_type", "patient_id": "ID"}).replace(
        '"ID"', f'"{escaped}"'
    )

    outcome = _validate(topics.DISCHARGE_READY, text.encode())

    assert isinstance(outcome, Rejected) and outcome.reason == ReasonCode.UNKNOWN_TYPE
    assert json.loads(outcome.redacted_payload())["patient_id"] == "[redacted]"


def _escaped(separator: str) -> str:
    return "".join(f"\\u{ord(c):04x}" for c in f"{EXAMPLE[:6]}{separator}{EXAMPLE[6:]}")


@pytest.mark.parametrize("escaped", [_escaped("-"), _escaped("\u00a0")], ids=["dash", "no-break space"])
@pytest.mark.parametrize("kept", range(1, len(_escaped("-"))))
def test_a_patient_id_written_with_json_escapes_the_64_kib_cut_goes_through_leaves_none_of_it(
    escaped: str, kept: int
) -> None:
    head = '{"type": "no_such_type", "source": "'
    payload, kept_whole = _cut_through(head, escaped, kept)

    assert payload.startswith(kept_whole)
    assert payload[len(head) :].strip("x") == "", payload[-12:]


def test_a_payload_cut_in_a_long_run_of_digits_and_separators_is_cut_at_once() -> None:
    value = b'{"type": "no_such_type", "source": "' + b"1 2-3." * 50_000 + b'"}'

    outcome = _validate(topics.DISCHARGE_READY, value)

    assert isinstance(outcome, Rejected)
    assert outcome.redacted_payload() == '{"type": "no_such_type", "source": "'


def test_episode_ids_dates_and_uuids_are_not_mistaken_for_patient_ids() -> None:
    text = "EP-202510-000123 on 2025-10-06T10:00:00+02:00, event 0b9c4f5e-6a43-4d2e-9d5c-1f7f2f5e8a11"

    assert redact_patient_ids(text) == text
    assert find_patient_ids(text) == []


@given(hostile_messages(TEMPLATES))
@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_hostile_message_is_rejected_with_an_expected_reason_and_no_raw_patient_id(
    hostile: Hostile,
) -> None:
    outcome = _validate(hostile.topic, hostile.value, hostile.key)

    assert isinstance(outcome, Rejected), f"{hostile.kind} was accepted"
    assert not hostile.reasons or outcome.reason.value in hostile.reasons, (hostile.kind, outcome.reason)
    stored = outcome.redacted_payload() + (outcome.redacted_key() or "") + outcome.message
    assert "\x00" not in stored
    # Without what may keep the digits apart: separators, and what a byte not UTF-8 became.
    joined = stored.replace(" ", "").replace("-", "").replace("\ufffd", "")
    assert not [pid for pid in hostile.patient_ids if pid in joined]


OTHER_PATIENT_ID = next(
    c for c in (f"{n:011d}" for n in range(31129956716, 31130000000)) if is_valid_patient_id(c)
)


@pytest.mark.parametrize("written", ["{pid}", '"{pid}"', '{{"patient_id": "{pid}"}}', '{{"type": "{pid}"}}'])
def test_the_digest_kept_of_a_rejected_message_tells_nothing_of_a_patient_id_in_it(written: str) -> None:
    # The digest is stored (rejections.raw_hash) and the rejection id, published with the
    # message's topic, partition and offset, is made from it. Of the raw bytes, it was a
    # plain hash of the patient id for a message that is the id and little else: undone by
    # trying every number (the last two digits follow from the first nine; minutes).
    first, second = (
        _validate(topics.DISCHARGE_READY, written.format(pid=pid).encode(), key=None)
        for pid in (EXAMPLE, OTHER_PATIENT_ID)
    )

    assert isinstance(first, Rejected) and isinstance(second, Rejected)
    assert first.raw_hash == second.raw_hash
    assert rejection_id(first) == rejection_id(second)


def test_a_rejection_message_that_quotes_the_input_is_redacted_and_storable() -> None:
    # A parser's message may quote the input, e.g. a wrong discriminator tag in a command.
    rejected = Rejected(
        RawRecord(topics.COMMANDS, 0, 0, None, b"{}"),
        ReasonCode.SCHEMA_VIOLATION,
        f"Input tag '{EXAMPLE}\x00' found using 'type' does not match any of the expected tags",
    )

    assert EXAMPLE not in rejected.redacted_message()
    assert "\x00" not in rejected.redacted_message()


@pytest.mark.parametrize("before", range(24, 36))
def test_an_unknown_type_quoted_in_the_message_keeps_no_digits_of_a_patient_id_it_holds(before: int) -> None:
    # The message quotes at most 40 characters of the type: cut first and redacted after,
    # up to 10 of the id's 11 digits were left in it.
    template = next(t for t in TEMPLATES if t.topic == topics.DISCHARGE_READY)
    value = json.dumps(template.value | {"type": "x" * before + EXAMPLE + "-and-more-text"}).encode()

    outcome = _validate(topics.DISCHARGE_READY, value)

    assert isinstance(outcome, Rejected) and outcome.reason == ReasonCode.UNKNOWN_TYPE
    quoted = outcome.message.split(";")[0]
    assert not re.search(r"[0-9]", quoted), quoted
    assert EXAMPLE[:6] not in outcome.redacted_message()


@pytest.mark.parametrize("written", ["0", "1730000000", "1730000000.5", "yesterday"])
def test_a_time_that_is_not_rfc_3339_text_is_a_schema_violation_not_epoch_seconds(written: str) -> None:
    template = next(t for t in TEMPLATES if t.topic == topics.DISCHARGE_READY)
    value = json.dumps(template.value | {"occurred_at": written}).encode()

    outcome = _validate(topics.DISCHARGE_READY, value)

    assert isinstance(outcome, Rejected) and outcome.reason.value == "schema_violation"


@pytest.mark.parametrize(
    ("written", "reason"),
    [
        ("0", "schema_violation"),
        ("1730000000", "schema_violation"),
        ('"1730000000"', "schema_violation"),
        ('"yesterday"', "schema_violation"),
        ("true", "schema_violation"),
        ("null", "schema_violation"),
        ('"2025-10-06"', "timestamp_without_offset"),
        ('"2025-10-06T09:30:00"', "timestamp_without_offset"),
    ],
)
def test_a_timestamp_written_otherwise_than_as_rfc_3339_text_with_an_offset_is_rejected(
    written: str, reason: str
) -> None:
    template = next(t for t in TEMPLATES if t.topic == topics.DISCHARGE_READY)
    text = json.dumps(template.value | {"occurred_at": "WRITTEN"}).replace('"WRITTEN"', written)

    outcome = _validate(topics.DISCHARGE_READY, text.encode())

    assert isinstance(outcome, Rejected) and outcome.reason.value == reason
    assert outcome.message.startswith("occurred_at: ")


@pytest.mark.parametrize(
    ("written", "reason"),
    [
        ("2012-01-01T00:30:00+01:00", "occurred_before_2012"),  # 2011-12-31 23:30 UTC
        ("2012-01-01T23:30:00+23:45", "occurred_before_2012"),  # the next local day, still before
        ("2011-12-31T20:00:00-05:00", None),  # the local day before, the instant after
        ("2012-01-01T00:00:00+00:00", None),
        ("2026-01-16T12:00:00+00:00", None),  # exactly a day after NOW
        ("2026-01-16T12:00:01+00:00", "occurred_in_future"),
        ("2026-01-16T05:00:00-08:00", "occurred_in_future"),  # 13:00 UTC
        ("2026-01-15T22:30:00-14:00", "occurred_in_future"),  # the local day before the limit's
        ("2026-01-16T23:00:00+12:00", None),  # 11:00 UTC
        ("2026-01-17T10:00:00+23:00", None),  # the local day after the limit's, the instant before
    ],
)
def test_the_first_and_last_acceptable_instants_hold_in_every_time_zone(
    written: str, reason: str | None
) -> None:
    # Validation looks at the local date first and compares instants only near the edges:
    # these are the edges, from both sides of the date line.
    template = next(t for t in TEMPLATES if t.topic == topics.DISCHARGE_READY)
    value = json.dumps(template.value | {"occurred_at": written}).encode()

    outcome = validate(
        RawRecord(topics.DISCHARGE_READY, 0, 0, b"k", value), now=NOW, pseudonymise=PSEUDONYMISE
    )

    if reason is None:
        assert isinstance(outcome, Accepted), outcome
    else:
        assert isinstance(outcome, Rejected) and outcome.reason.value == reason, outcome


def test_a_source_holding_a_patient_id_is_rejected_every_time_it_comes() -> None:
    template = TEMPLATES[0]
    assert isinstance(_validate(template.topic, json.dumps(template.value).encode()), Accepted)
    for _ in range(2):  # what a source holds is remembered: the second answer must be the same
        document = dict(template.value) | {"source": f"dips.{EXAMPLE[:6]}-{EXAMPLE[6:]}"}
        outcome = _validate(template.topic, json.dumps(document).encode())
        assert isinstance(outcome, Rejected)
        assert outcome.reason == ReasonCode.PATIENT_ID_IN_SUBJECT_ID


@pytest.mark.parametrize(
    ("field", "value"),
    [("episode_id", f"EP-{EXAMPLE}01"), ("episode_id", f"0{EXAMPLE}"), ("source", f"dips.{EXAMPLE}0")],
)
def test_an_id_holding_a_patient_id_inside_a_longer_run_of_digits_is_rejected(field: str, value: str) -> None:
    # Accepted, the subject id is stored and published on every statement the episode is on.
    template = next(t for t in TEMPLATES if t.topic == topics.DISCHARGE_READY)

    outcome = _validate(template.topic, json.dumps(template.value | {field: value}).encode())

    assert isinstance(outcome, Rejected), outcome
    assert outcome.reason == ReasonCode.PATIENT_ID_IN_SUBJECT_ID
    assert outcome.message.startswith(f"{field} holds 11 digits"), outcome.message


@pytest.mark.parametrize("drg", [EXAMPLE, f"A{EXAMPLE}"])
def test_a_drg_code_holding_a_patient_id_is_rejected_not_stored(drg: str) -> None:
    # The code is free text of up to 16 letters and digits, stored with the event: a
    # patient id put in it by mistake was accepted and stored as it came.
    outcome = _validate(topics.ACTIVITY, _activity(drg=drg))

    assert isinstance(outcome, Rejected), outcome
    assert outcome.reason == ReasonCode.PATIENT_ID_IN_SUBJECT_ID
    assert outcome.message.startswith("drg holds 11 digits"), outcome.message


def test_neither_a_record_nor_its_outcome_shows_the_raw_bytes_when_printed() -> None:
    """A record or an outcome may end up in a log line or an assertion message; the raw
    key and value may hold a patient identifier."""
    template = next(t for t in TEMPLATES if t.topic == topics.DISCHARGE_READY)
    value = template.value | {"patient_id": EXAMPLE}
    record = RawRecord(template.topic, 3, 42, EXAMPLE.encode(), json.dumps(value).encode())
    outcome = validate(record, now=NOW, pseudonymise=PSEUDONYMISE, registry=REGISTRY)

    assert isinstance(outcome, Accepted)
    assert repr(record) == f"RawRecord(topic={template.topic!r}, partition=3, offset=42)"
    assert not find_patient_ids(repr(outcome)) and not find_patient_ids(str(outcome))


def test_an_accepted_event_carries_each_of_its_fields_under_its_own_name() -> None:
    # Accepted is made by position, for speed: a swap of two of its many text fields would
    # still type-check, so each is checked here by name.
    template = next(t for t in TEMPLATES if t.topic == topics.ACTIVITY)
    value = template.value | {"source": "dips.unit", "activity_id": "AK-unit-1", "health_trust": "983974724"}
    record = RawRecord(topics.ACTIVITY, 0, 7, b"AK-unit-1", json.dumps(value).encode())

    outcome = validate(record, now=NOW, pseudonymise=PSEUDONYMISE, registry=REGISTRY)

    assert isinstance(outcome, Accepted)
    assert outcome.record is record
    assert (outcome.family, outcome.type, outcome.source) == ("activity", value["type"], "dips.unit")
    assert (outcome.event_id, outcome.subject_id) == (value["event_id"], "AK-unit-1")
    assert outcome.health_trust == "983974724"
    assert outcome.occurred_at == datetime.fromisoformat(value["occurred_at"])
    assert outcome.payload["patient_pseudonym"] == PSEUDONYMISE(value["patient_id"])
    assert "patient_id" not in outcome.payload
    assert outcome.payload_json == orjson.dumps(outcome.payload, option=orjson.OPT_SORT_KEYS)
    assert outcome.content_hash == hashlib.sha256(outcome.payload_json).digest()
    assert outcome.dedup_key == ("dips.unit", value["event_id"])
    assert outcome.subject_key == "activity:983974724:AK-unit-1"


def _mapped_by_the_oslo_day(number: str, occurred_at: datetime) -> tuple[str, str | None] | str:
    """The reference: every number resolved on the event's Oslo day. (number in force,
    number mapped from) or the reason it is refused."""
    try:
        resolution = REGISTRY.resolve(number, oslo_day(occurred_at))
    except SplitMunicipality:
        return "municipality_number_split"
    except UnknownMunicipality:
        return "unknown_municipality_number"
    return resolution.number, resolution.mapped_from


NUMBERS = [*sorted(REGISTRY.numbers()), "9998", "9999"]  # and two never used
CHANGES = sorted(
    {p.valid_from for p in REGISTRY.periods} | {p.valid_until for p in REGISTRY.periods if p.valid_until}
)
NEAR_A_CHANGE = st.builds(
    lambda day, minutes: datetime.combine(day, datetime.min.time()) + timedelta(minutes=minutes),
    st.sampled_from([d for d in CHANGES if date(2012, 1, 3) < d < date(2026, 1, 13)]),
    st.integers(min_value=-3 * 24 * 60, max_value=3 * 24 * 60),
)
MOMENTS = st.one_of(
    st.datetimes(min_value=datetime(2012, 1, 2), max_value=datetime(2026, 1, 14)), NEAR_A_CHANGE
)
OFFSETS = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(
    lambda m: timezone(timedelta(minutes=m))
)


@given(st.sampled_from(NUMBERS), st.sampled_from(NUMBERS), MOMENTS, OFFSETS)
@settings(max_examples=1000, deadline=None)
def test_numbers_are_mapped_on_the_events_oslo_day_whatever_its_offset(
    registered: str, staying: str, moment: datetime, offset: timezone
) -> None:
    # Intake skips working out the Oslo day for a number in force for good since before the
    # event's local date: the outcome must be the same as resolving every number on it.
    occurred_at = moment.replace(tzinfo=offset)
    template = next(t for t in TEMPLATES if t.topic == topics.DISCHARGE_READY)
    value = template.value | {
        "occurred_at": occurred_at.isoformat(),
        "registered_municipality": registered,
        "staying_municipality": staying,
    }

    outcome = _validate(topics.DISCHARGE_READY, json.dumps(value).encode())

    expected = [_mapped_by_the_oslo_day(n, occurred_at) for n in (registered, staying)]
    refused = [e for e in expected if isinstance(e, str)]
    if refused:
        assert isinstance(outcome, Rejected) and outcome.reason.value == refused[0]
        return
    assert isinstance(outcome, Accepted), outcome
    fields = ("registered_municipality", "staying_municipality")
    assert [outcome.payload[f] for f in fields] == [e[0] for e in expected if not isinstance(e, str)]
    mapped = {f: e[1] for f, e in zip(fields, expected, strict=True) if not isinstance(e, str) and e[1]}
    assert outcome.payload.get("municipality_mappings", {}) == mapped


def _activity(**fields: object) -> bytes:
    template = next(t for t in TEMPLATES if t.topic == topics.ACTIVITY and "ended_at" in t.value)
    document = template.value | {"occurred_at": "2026-01-15T10:00:00+01:00"} | fields
    return json.dumps(document).encode()


def _activity_event(kind: str, **fields: object) -> bytes:
    """An activity event of type `kind`: a cancellation carries none of the activity's facts."""
    document = json.loads(_activity(type=kind, **fields))
    if kind == "activity_cancelled":
        for name in ("contact_kind", "drg", "drg_points", "surgical", "category", "started_at", "ended_at"):
            del document[name]
    return json.dumps(document).encode()


@pytest.mark.parametrize("kind", ["activity_recorded", "activity_corrected"])
@pytest.mark.parametrize(
    ("number", "ended_at", "expected"),
    [
        # 1507 Ålesund was split on 2024-01-01: a 2024 correction of a 2023 activity carries it.
        ("1507", "2023-12-20T14:30:00+01:00", ("1507", None)),
        ("1508", "2023-12-20T14:30:00+01:00", "unknown_municipality_number"),  # not yet in 2023
        ("1507", "2024-01-02T14:30:00+01:00", "municipality_number_split"),
        # 0219 Bærum became 3024 in 2020 and 3201 in 2024: a 2014 activity stays with 0219.
        ("0219", "2014-03-10T14:30:00+01:00", ("0219", None)),
        ("3024", "2014-03-10T14:30:00+01:00", "unknown_municipality_number"),
        # The activity's day is its end's Oslo day, not its UTC date: 2024-01-01 in Oslo.
        ("3024", "2023-12-31T23:30:00+00:00", ("3201", "3024")),
        ("3024", "2023-12-31T22:30:00+00:00", ("3024", None)),
    ],
)
def test_an_activitys_municipality_number_is_read_on_the_activitys_day_not_the_events(
    kind: str, number: str, ended_at: str, expected: tuple[str, str | None] | str
) -> None:
    # Read on the day the event was sent (2024-01-03), 1507 was refused as split and 1508
    # taken for a 2023 activity, and a correction of a 2014 activity sent now moved its
    # charge to the successor: a -1/+1 pair of adjustments between two municipalities.
    value = _activity_event(
        kind,
        occurred_at="2024-01-03T10:00:00+01:00",
        started_at="2012-01-01T00:00:00+01:00",
        ended_at=ended_at,
        registered_municipality=number,
    )

    outcome = _validate(topics.ACTIVITY, value)

    if isinstance(expected, str):
        assert isinstance(outcome, Rejected) and outcome.reason.value == expected, outcome
        assert outcome.message.startswith("registered_municipality: "), outcome.message
        return
    assert isinstance(outcome, Accepted), outcome
    settled_on, mapped_from = expected
    assert outcome.payload["registered_municipality"] == settled_on
    assert outcome.payload.get("municipality_mappings") == (
        {"registered_municipality": mapped_from} if mapped_from else None
    )


@pytest.mark.parametrize(
    ("number", "expected"),
    [("1507", "1507"), ("0219", "0219"), ("3201", "3201"), ("9999", "unknown_municipality_number")],
)
def test_a_cancellation_keeps_the_number_it_gives_when_the_registry_knows_it(
    number: str, expected: str
) -> None:
    # It names no activity day to read the number on, and prices nothing: a 2024
    # cancellation of an activity recorded under 1507 in 2023 was refused as split.
    value = _activity_event(
        "activity_cancelled", occurred_at="2024-01-03T10:00:00+01:00", registered_municipality=number
    )

    outcome = _validate(topics.ACTIVITY, value)

    if expected == "unknown_municipality_number":
        assert isinstance(outcome, Rejected) and outcome.reason.value == expected, outcome
        assert outcome.message.startswith("registered_municipality: "), outcome.message
        return
    assert isinstance(outcome, Accepted), outcome
    assert outcome.payload["registered_municipality"] == expected
    assert "municipality_mappings" not in outcome.payload


@given(st.sampled_from(NUMBERS), MOMENTS, OFFSETS, MOMENTS, OFFSETS)
@settings(max_examples=500, deadline=None)
def test_an_activitys_number_is_mapped_on_its_ends_oslo_day_whatever_the_offsets_and_when_it_was_sent(
    registered: str, ended: datetime, ended_offset: timezone, sent: datetime, sent_offset: timezone
) -> None:
    # As for the milestones, intake skips working out the Oslo day for a number in force for
    # good since before the local date of the instant it reads the number on: here `ended_at`.
    ended_at, occurred_at = ended.replace(tzinfo=ended_offset), sent.replace(tzinfo=sent_offset)
    value = _activity(
        occurred_at=occurred_at.isoformat(),
        started_at=ended_at.isoformat(),
        ended_at=ended_at.isoformat(),
        registered_municipality=registered,
    )

    outcome = _validate(topics.ACTIVITY, value)

    expected = _mapped_by_the_oslo_day(registered, ended_at)
    if isinstance(expected, str):
        assert isinstance(outcome, Rejected) and outcome.reason.value == expected
        return
    assert isinstance(outcome, Accepted), outcome
    assert outcome.payload["registered_municipality"] == expected[0]
    mapped = {"registered_municipality": expected[1]} if expected[1] else {}
    assert outcome.payload.get("municipality_mappings", {}) == mapped


@pytest.mark.parametrize(
    ("started_at", "ended_at", "reason", "message"),
    [
        ("2025-10-02T08:00:00+02:00", "2025-10-06T14:30:00+02:00", None, None),
        ("2011-12-20T08:00:00+01:00", "2012-01-02T14:30:00+01:00", None, None),  # began before the reform
        (
            "2011-12-20T08:00:00+01:00",
            "2011-12-31T23:59:59+00:00",
            "occurred_before_2012",
            "ended_at is before",
        ),
        (
            "2026-01-15T08:00:00+00:00",
            "2026-01-16T12:00:01+00:00",
            "occurred_in_future",
            "ended_at is more than",
        ),
        (
            "2104-01-15T08:00:00+01:00",
            "2104-01-15T14:30:00+01:00",
            "occurred_in_future",
            "ended_at is more than",
        ),
        ("2025-10-06T14:30:01+02:00", "2025-10-06T14:30:00+02:00", "schema_violation", "started_at is after"),
        ("2025-10-06T13:30:00+00:00", "2025-10-06T14:30:00+02:00", "schema_violation", "started_at is after"),
        ("2025-10-06T12:30:00+00:00", "2025-10-06T14:30:00+02:00", None, None),  # the same instant
    ],
)
def test_an_activity_ending_outside_the_acceptable_range_or_before_it_began_is_rejected(
    started_at: str, ended_at: str, reason: str | None, message: str | None
) -> None:
    # The end's day prices the activity: a mistyped year was accepted and priced under that
    # year's rules (or none), and the hospital was never told. (Oslo's number is in force
    # on every day here: the activity's number is read on its day.)
    outcome = _validate(
        topics.ACTIVITY, _activity(started_at=started_at, ended_at=ended_at, registered_municipality="0301")
    )

    if reason is None:
        assert isinstance(outcome, Accepted), outcome
    else:
        assert isinstance(outcome, Rejected) and outcome.reason.value == reason, outcome
        assert message is not None and outcome.message.startswith(message), outcome.message


@pytest.mark.parametrize(
    ("field", "written"),
    [
        ("drg_points", "0.054"),  # a JSON number: read through a float
        ("drg_points", '"1e2"'),
        ("drg_points", '".5"'),
        ("drg_points", '"+0.5"'),
        ("drg_points", '" 0.5"'),
        ("drg_points", '"0.5\\n"'),
        ("drg_points", '"1000.0001"'),
        ("drg_points", f'"0.{EXAMPLE}"'),  # room for a patient id: at most 6 decimals
        ("drg_points", '"12345"'),
        ("surgical", '"yes"'),
        ("surgical", '"false"'),
        ("surgical", "0"),
        ("registered_municipality", '"0001"'),
    ],
)
def test_what_the_published_schema_refuses_intake_refuses_too(field: str, written: str) -> None:
    # Producers test against the JSON Schemas: the service must not accept what they refuse
    # ("yes" was read as a surgical DRG, which excludes the activity from co-financing).
    text = _activity(**{field: "WRITTEN"}).decode()
    outcome = _validate(topics.ACTIVITY, text.replace('"WRITTEN"', written).encode())

    assert isinstance(outcome, Rejected), outcome
    assert outcome.reason in {ReasonCode.SCHEMA_VIOLATION, ReasonCode.INVALID_MUNICIPALITY_NUMBER}, outcome
    assert outcome.message.startswith(f"{field}: "), outcome.message


@pytest.mark.parametrize("written", ["0", "1000", "0.054", "0.0540", "12.5", "0.123456"])
def test_drg_points_written_as_decimal_text_are_accepted_with_their_digits(written: str) -> None:
    outcome = _validate(topics.ACTIVITY, _activity(drg_points=written))

    assert isinstance(outcome, Accepted), outcome
    assert outcome.payload["drg_points"] == written


@pytest.mark.parametrize(
    ("field", "value"),
    [("activity_id", f"ACT-{EXAMPLE[:6]}-{EXAMPLE[6:]}"), ("source", f"dips.{EXAMPLE[:6]}.{EXAMPLE[6:]}")],
)
def test_the_rejection_of_an_id_holding_a_patient_id_names_the_field(field: str, value: str) -> None:
    outcome = _validate(topics.ACTIVITY, _activity(**{field: value}))

    assert isinstance(outcome, Rejected) and outcome.reason == ReasonCode.PATIENT_ID_IN_SUBJECT_ID
    assert outcome.message.startswith(f"{field} holds 11 digits"), outcome.message
    assert EXAMPLE[6:] not in outcome.message
