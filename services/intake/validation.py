"""From raw Kafka bytes to an accepted event or a rejection with a reason code.

Pure: the clock and the pseudonymiser are parameters. The raw patient identifier lives
only inside this function; what leaves it carries the pseudonym.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any, NamedTuple

import orjson
from pydantic import ConfigDict, TypeAdapter, ValidationError

from contracts.v1 import topics
from contracts.v1.identifiers import (
    PATIENT_ID_FORMS,
    find_patient_ids,
    redact_patient_ids,
    without_a_number_at_the_end,
)
from contracts.v1.inbound import (
    TOPIC_TYPES,
    ActivityCancelled,
    ActivityFacts,
    ActivityMessage,
    AnyInbound,
    DischargeReadyMessage,
    EmergencyBedMessage,
)
from contracts.v1.outbound import ReasonCode
from services.domain.calendar import oslo_day
from services.domain.municipalities import Registry, SplitMunicipality, UnknownMunicipality
from services.intake.pseudonym import Pseudonymiser
from services.intake.rejected_fields import contract_fields_only, identifying_fields, storable

MAX_MESSAGE_BYTES = 1_000_000
MAX_REJECTED_PAYLOAD_CHARS = 64 * 1024
EARLIEST = datetime(2012, 1, 1, tzinfo=UTC)  # the reform's first day; Oslo midnight is earlier still
MAX_FUTURE = timedelta(days=1)
_ONE_DAY = timedelta(days=1)
_EARLIEST_DAY_TO_CHECK = EARLIEST.date() + _ONE_DAY

FAMILY_OF_TOPIC = {
    topics.DISCHARGE_READY: "discharge_ready",
    topics.EMERGENCY_BEDS: "emergency_beds",
    topics.ACTIVITY: "activity",
}
# The JSON parser caches only the keys' strings: the values are mostly ids seen once, and
# caching them too cost about 1 µs per event (docs/performance.md, round 7).
_PARSE_ONCE_SEEN_VALUES = ConfigDict(cache_strings="keys")
_ADAPTERS: dict[str, TypeAdapter[Any]] = {
    topics.DISCHARGE_READY: TypeAdapter(DischargeReadyMessage, config=_PARSE_ONCE_SEEN_VALUES),
    topics.EMERGENCY_BEDS: TypeAdapter(EmergencyBedMessage, config=_PARSE_ONCE_SEEN_VALUES),
    topics.ACTIVITY: TypeAdapter(ActivityMessage, config=_PARSE_ONCE_SEEN_VALUES),
}
# Each topic's validator itself, for the one-pass parse of every inbound event: called
# directly, not through `TypeAdapter.validate_json`, whose keyword arguments passed on in
# Python cost about 0.4 µs per event (measured, docs/performance.md).
_PARSERS = {topic: adapter.validator for topic, adapter in _ADAPTERS.items()}
SUBJECT_FIELD = {"discharge_ready": "episode_id", "emergency_beds": "stay_id", "activity": "activity_id"}
# pydantic error types that are a reason of their own; anything else is a schema violation.
_REASON_OF_ERROR = {
    "invalid_patient_id": ReasonCode.INVALID_PATIENT_ID,
    "invalid_organisation_number": ReasonCode.INVALID_ORGANISATION_NUMBER,
    "invalid_municipality_number": ReasonCode.INVALID_MUNICIPALITY_NUMBER,
    "timezone_aware": ReasonCode.TIMESTAMP_WITHOUT_OFFSET,
}


# RawRecord and Accepted are made for every inbound event: named tuples, immutable like a
# frozen dataclass, are made in a third of the time (a frozen dataclass sets each field
# through object.__setattr__), about 2 µs of intake's CPU per event between them.


class RawRecord(NamedTuple):
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None

    def __repr__(self) -> str:
        # Raw bytes may hold a patient identifier: keep them out of every repr and log line.
        return f"RawRecord(topic={self.topic!r}, partition={self.partition}, offset={self.offset})"

    @property
    def place(self) -> str:
        """Where the record is, as logs and `settlement rejections` write it: topic[partition]@offset."""
        return f"{self.topic}[{self.partition}]@{self.offset}"


class Accepted(NamedTuple):
    record: RawRecord
    family: str
    type: str
    source: str
    event_id: str
    subject_id: str
    health_trust: str
    occurred_at: datetime
    payload: dict[str, Any]  # JSON-ready, `patient_pseudonym` instead of `patient_id`
    content_hash: bytes
    payload_json: bytes  # `payload` as canonical JSON, encoded once for the hash and the database
    # Made once, here: the write looks each of them up several times per event.
    dedup_key: tuple[str, str]
    subject_key: str


@dataclass(frozen=True, slots=True)
class Rejected:
    record: RawRecord
    reason: ReasonCode
    message: str

    @property
    def raw_hash(self) -> bytes:
        return payload_digest(self.redacted_payload())

    def redacted_payload(self) -> str:
        """The payload as it is kept: a JSON object with the values of the fields the topic's
        contract does not name replaced (`contract_fields_only`), otherwise the text as it
        came; cut at 64 KiB, patient ids redacted."""
        raw = self.record.value or b""
        text = contract_fields_only(self.record.topic, raw, MAX_REJECTED_PAYLOAD_CHARS)
        if text is not None:
            cut = len(text) > MAX_REJECTED_PAYLOAD_CHARS
        else:
            text = storable(raw[: MAX_REJECTED_PAYLOAD_CHARS * 4].decode("utf-8", errors="replace"))
            cut = len(text) > MAX_REJECTED_PAYLOAD_CHARS or len(raw) > MAX_REJECTED_PAYLOAD_CHARS * 4
        if cut:
            text = without_a_number_at_the_end(text[:MAX_REJECTED_PAYLOAD_CHARS])
        return redact_patient_ids(text)

    def redacted_identity(self) -> dict[str, str]:
        """The message's `source`, `event_id` and `health_trust` where it has them as text,
        patient ids redacted as in the payload; nothing for a command's fields."""
        if self.record.topic not in topics.INBOUND:
            return {}
        found = identifying_fields(self.record.value or b"")
        return {name: redact_patient_ids(storable(value)) for name, value in found.items()}

    def redacted_message(self) -> str:
        """The reason in words. Ours, but it may quote the input (a parser's message names a
        wrong discriminator tag, say), so it is redacted too."""
        return redact_patient_ids(storable(self.message))

    def redacted_key(self) -> str | None:
        if self.record.key is None:
            return None
        return redact_patient_ids(storable(self.record.key.decode("utf-8", errors="replace")))


def payload_digest(redacted_payload: str) -> bytes:
    """A rejected message's digest, of its payload as it is kept, redacted: it tells apart
    messages at one position that differ in what is kept, and nothing of a patient id in
    them. (Of the raw bytes, it was a plain hash of the id for a message that is the id and
    little else, undone by trying every number; the rejection id, published, is made from it.)"""
    return hashlib.sha256(redacted_payload.encode()).digest()


Outcome = Accepted | Rejected


_MUNICIPALITY_FIELDS = ("registered_municipality", "staying_municipality", "municipality")


def validate(
    record: RawRecord, *, now: datetime, pseudonymise: Pseudonymiser, registry: Registry | None = None
) -> Outcome:
    raw = record.value or b""
    if len(raw) > MAX_MESSAGE_BYTES:
        return Rejected(
            record, ReasonCode.MESSAGE_TOO_LARGE, f"{len(raw)} bytes; the limit is {MAX_MESSAGE_BYTES}"
        )
    parser = _PARSERS.get(record.topic)
    try:
        raw.decode("utf-8")  # the same check the diagnosis makes, so both paths agree on what is text
        if parser is None:
            raise LookupError(record.topic)
        # One pass in pydantic-core over the raw bytes: most messages are valid, and for
        # them parsing to Python objects first (json.loads) only to validate those costs
        # as much again. Anything it refuses is diagnosed the slow way, for its reason.
        event: AnyInbound = parser.validate_json(raw)
    except (UnicodeDecodeError, LookupError, ValidationError):
        diagnosed = _diagnose(record, raw)
        if isinstance(diagnosed, Rejected):
            return diagnosed
        event = diagnosed
    return _accepted(record, event, now, pseudonymise, registry)


def _accepted(
    record: RawRecord,
    event: AnyInbound,
    now: datetime,
    pseudonymise: Pseudonymiser,
    registry: Registry | None,
) -> Outcome:
    occurred_at = event.occurred_at
    out_of_range = _out_of_range(record, "occurred_at", occurred_at, now)
    if out_of_range is not None:
        return out_of_range
    # The instant whose Oslo day the event's municipality numbers are read on: the day of
    # the event, or of the activity (below).
    numbers_at: datetime | None = occurred_at
    if isinstance(event, ActivityFacts):
        # The activity's day is its end's (it prices the activity): an end mistyped into
        # another year would otherwise be accepted and priced under that year's rules, or
        # under none, with nobody told.
        out_of_range = _out_of_range(record, "ended_at", event.ended_at, now)
        if out_of_range is not None:
            return out_of_range
        if event.started_at > event.ended_at:
            return Rejected(record, ReasonCode.SCHEMA_VIOLATION, "started_at is after ended_at")
        # Its number is the one in force on the activity's day, also in a correction sent
        # years later: read on the correction's own day, a number retired since was refused
        # (split) or moved the charge to its successor, and one not yet in force on the
        # activity's day was taken.
        numbers_at = event.ended_at
    elif isinstance(event, ActivityCancelled):
        # A cancellation carries no activity day (the activity's other events do, and they
        # may not have come yet): its number, which prices nothing, is kept as given.
        numbers_at = None
    family = FAMILY_OF_TOPIC[record.topic]
    subject_field = SUBJECT_FIELD[family]
    subject_id: str = getattr(event, subject_field)
    source = event.source
    holder: str | None = None
    if find_patient_ids(subject_id):
        holder = subject_field
    elif _holds_patient_id(source):
        holder = "source"
    elif isinstance(event, ActivityFacts) and find_patient_ids(event.drg):
        holder = "drg"  # the producer's text too, stored with the event
    if holder is not None:
        return Rejected(
            record,
            ReasonCode.PATIENT_ID_IN_SUBJECT_ID,
            f"{holder} holds {PATIENT_ID_FORMS}; an id must not contain a patient identifier",
        )
    # All fields, and the patient id taken out after: dumping with `exclude` cost more. The
    # model's serializer itself, as `model_dump` calls it, without the dozen keyword
    # arguments it passes on in Python (about 0.6 µs per event).
    payload = event.__pydantic_serializer__.to_python(event, mode="json")
    del payload["patient_id"]
    payload["patient_pseudonym"] = pseudonymise(event.patient_id)
    if registry is not None:
        mapped = (
            _resolve_municipalities(payload, numbers_at, registry)
            if numbers_at is not None
            else _known_municipalities(payload, registry)
        )
        if mapped is not None:
            return Rejected(record, *mapped)
    canonical = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
    event_id: str = payload["event_id"]
    health_trust = event.health_trust
    return Accepted(  # by position: keywords cost more, for every event
        record,
        family,
        event.type,
        source,
        event_id,
        subject_id,
        health_trust,
        occurred_at,
        payload,
        hashlib.sha256(canonical).digest(),
        canonical,
        (source, event_id),
        f"{family}:{health_trust}:{subject_id}",
    )


def _out_of_range(record: RawRecord, field_name: str, at: datetime, now: datetime) -> Rejected | None:
    """Before the reform began, or more than a day in the future. The local date alone
    settles both for all but the days at their edges (an offset is less than a day);
    comparing instants across time zones costs more."""
    local_day = at.date()
    if local_day <= _EARLIEST_DAY_TO_CHECK and at < EARLIEST:
        return Rejected(
            record,
            ReasonCode.OCCURRED_BEFORE_2012,
            f"{field_name} is before 2012-01-01, when the reform began",
        )
    latest, check_latest_from = _latest_acceptable(now)
    if local_day >= check_latest_from and at > latest:
        return Rejected(
            record, ReasonCode.OCCURRED_IN_FUTURE, f"{field_name} is more than a day in the future"
        )
    return None


# Confluent's wire format: magic byte 0, then a 4-byte schema id, then the serialized value.
_REGISTRY_FRAME = 5


@lru_cache(maxsize=4)  # one `now` per batch
def _latest_acceptable(now: datetime) -> tuple[datetime, date]:
    """The latest instant an event may have happened at, and the first local day on which
    an event may be later than that (an offset is less than a day)."""
    latest = now + MAX_FUTURE
    return latest, latest.date() - _ONE_DAY


@lru_cache(maxsize=1024)  # a source names a producing system: a handful per hospital
def _holds_patient_id(source: str) -> bool:
    return bool(find_patient_ids(source))


def _diagnose(record: RawRecord, raw: bytes) -> AnyInbound | Rejected:
    """Why a message the fast path refused is refused, step by step: each step has its
    own reason code, which the one-pass parse cannot tell apart. This is the path every
    message took before the fast one, so what it accepts (an unknown field holding NaN,
    which Python's parser reads and pydantic's does not) is accepted as it always was."""

    def reject(reason: ReasonCode, message: str) -> Rejected:
        return Rejected(record, reason, message)

    if raw[:1] == b"\x00" and raw[_REGISTRY_FRAME : _REGISTRY_FRAME + 1] == b"{":
        # Java clients are often set up with Confluent's Schema Registry serializers, whose
        # JSON Schema one puts a zero byte and a schema id before the JSON: say so, rather
        # than "column 1". (JSON in UTF-16 or UTF-32 also starts with a zero byte, not so.)
        schema_id = int.from_bytes(raw[1:_REGISTRY_FRAME], "big")
        return reject(
            ReasonCode.NOT_JSON,
            f"not JSON: starts with a zero byte and a schema id ({schema_id}), the framing of Confluent "
            "Schema Registry serializers; send the JSON text alone",
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return reject(ReasonCode.NOT_UTF8, f"not UTF-8 at byte {exc.start}")
    if not text.strip():  # a tombstone, or a producer that sent nothing
        return reject(
            ReasonCode.NOT_JSON, "not JSON: the message is empty" + (" but for whitespace" if text else "")
        )
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        return reject(ReasonCode.NOT_JSON, f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
    except RecursionError:
        return reject(ReasonCode.NOT_JSON, "not JSON we read: nested deeper than the parser goes")
    except ValueError:  # an integer of more than 4300 digits (sys.get_int_max_str_digits)
        return reject(ReasonCode.NOT_JSON, "not JSON we read: a number with too many digits")
    if not isinstance(document, dict):
        return reject(ReasonCode.NOT_AN_OBJECT, f"a JSON {type(document).__name__}, not an object")
    event_type = document.get("type")
    allowed = TOPIC_TYPES.get(record.topic, frozenset())
    if not isinstance(event_type, str) or not any(event_type in t for t in TOPIC_TYPES.values()):
        return reject(
            ReasonCode.UNKNOWN_TYPE, f"unknown type {_short(event_type)}; this topic takes {sorted(allowed)}"
        )
    if event_type not in allowed:
        return reject(ReasonCode.WRONG_TOPIC, f"type {event_type!r} does not belong on {record.topic}")
    try:
        return _ADAPTERS[record.topic].validate_python(document)  # type: ignore[no-any-return]
    except ValidationError as exc:
        return _rejection_of(record, exc)


def _resolve_municipalities(
    payload: dict[str, Any], at: datetime, registry: Registry
) -> tuple[ReasonCode, str] | None:
    """Numbers retired before the Oslo day of `at` (the event's day, or the activity's) are
    replaced by their one successor, and the payload keeps what was mapped
    (`municipality_mappings`); a split or unknown number is a rejection with its own reason."""
    # The Oslo day of `at` is at most a day before its own local date (an offset is under
    # a day; Oslo's is one or two hours): a number in force for good since a day before
    # that date is in force on that Oslo day, with no need to work the day out.
    local_day = at.date()
    day: date | None = None
    mappings: dict[str, str] = {}
    for field_name in _MUNICIPALITY_FIELDS:
        number = payload.get(field_name)
        if number is None:
            continue
        for_good_from = registry.in_force_for_good_from(number)
        if for_good_from is not None and for_good_from < local_day:
            continue
        if day is None:
            day = oslo_day(at)
        try:
            resolution = registry.resolve(number, day)
        except SplitMunicipality as exc:
            return ReasonCode.MUNICIPALITY_NUMBER_SPLIT, f"{field_name}: {exc}"
        except UnknownMunicipality as exc:
            return ReasonCode.UNKNOWN_MUNICIPALITY_NUMBER, f"{field_name}: {exc}"
        if resolution.mapped_from is not None:
            payload[field_name] = resolution.number
            mappings[field_name] = resolution.mapped_from
    if mappings:
        payload["municipality_mappings"] = mappings
    return None


def _known_municipalities(payload: dict[str, Any], registry: Registry) -> tuple[ReasonCode, str] | None:
    """For an event with no day of its own to read its numbers on: each must be a number
    the registry has, on some day; it is kept as given."""
    for field_name in _MUNICIPALITY_FIELDS:
        number = payload.get(field_name)
        if number is not None and not registry.periods_of(number):
            return ReasonCode.UNKNOWN_MUNICIPALITY_NUMBER, (
                f"{field_name}: municipality number {number!r} is not in the municipality registry"
            )
    return None


def _rejection_of(record: RawRecord, exc: ValidationError) -> Rejected:
    errors = exc.errors(include_input=False, include_url=False)
    reason = next(
        (_REASON_OF_ERROR[e["type"]] for e in errors if e["type"] in _REASON_OF_ERROR),
        ReasonCode.SCHEMA_VIOLATION,
    )
    # The message names fields and problems, never the offending values: they may be personal data.
    parts = [f"{'.'.join(str(p) for p in e['loc'][1:]) or '(message)'}: {e['msg']}" for e in errors[:10]]
    return Rejected(record, reason, "; ".join(parts))


def _short(value: object) -> str:
    # Redacted before it is cut: a patient id the cut went through would not be after.
    text = redact_patient_ids(repr(value))
    return text if len(text) <= 40 else text[:37] + "..."


def differing_fields(first: Mapping[str, Any] | None, again: Mapping[str, Any]) -> str:
    """The fields in which an event sent again under its id differs from the one stored, as
    ", in: a, b", by name only (a value may be a patient's). The pseudonym is named as the patient
    id it stands for; what intake added of its own (the municipality mappings) follows the
    fields it was made from, and is not named. Empty when the stored one is not found."""
    if first is None:
        return ""
    names = sorted(
        "patient_id" if name == "patient_pseudonym" else name
        for name in set(first) | set(again)
        if name != "municipality_mappings" and first.get(name) != again.get(name)
    )
    return f", in: {', '.join(names)}" if names else ""
