"""What the fault scenarios send: a simulated hospital month, and hostile input drawn by
hypothesis strategies, each hostile message with the rejection reasons it may get."""

from __future__ import annotations

import dataclasses
import json
import random
import typing
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from contracts.v1 import topics
from contracts.v1.inbound import TOPIC_TYPES, AnyInbound
from services.domain.calendar import Month
from services.simulator.hospital import Hospital, Published

PERIOD = Month(2025, 10)
# Real trusts with some of their municipalities: 14 pairs, so 14 statements to each side.
PAIRS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("983974724", ("4601", "4624", "4626", "4627", "4631")),  # Haukeland
    ("993467049", ("0301", "3201", "3203")),  # Oslo universitetssykehus
    ("883974832", ("5001", "5028", "5035")),  # St. Olavs
    ("983974899", ("5501", "5503", "5532")),  # UNN
)
_EVENTS_PER_UNIT = 85  # what Hospital.month makes per `episodes_per_pair` over PAIRS
ANY_REASON: frozenset[str] = frozenset()  # rejected, whatever the reason


def hospital_month(events: int, seed_value: int, source_prefix: str = "hospital") -> list[Published]:
    """About `events` valid events of October 2025 over PAIRS, in the order a hospital sends them."""
    per_pair = max(1, round(events / _EVENTS_PER_UNIT))
    return Hospital(PERIOD, seed=seed_value, source_prefix=source_prefix).month(PAIRS, per_pair)


def encode(events: Sequence[Published]) -> list[tuple[str, bytes | None, bytes | None]]:
    return [(e.topic, e.key.encode(), json.dumps(e.value).encode()) for e in events]


def patient_ids(events: Sequence[Published]) -> set[str]:
    return {e.value["patient_id"] for e in events}


@dataclass(frozen=True)
class Hostile:
    kind: str
    topic: str
    key: bytes | None
    value: bytes | None
    reasons: frozenset[str]  # the acceptable rejection reasons; empty: any
    patient_ids: frozenset[str] = frozenset()  # raw identifiers it carries, for the privacy scan
    headers: tuple[tuple[str, bytes], ...] = ()

    def message(self) -> tuple[str, bytes | None, bytes | None, tuple[tuple[str, bytes], ...]]:
        return (self.topic, self.key, self.value, self.headers)


# ---------------------------------------------------------------- the contract, read from the code
_MODELS = {
    typing.get_args(cls.model_fields["type"].annotation)[0]: cls for cls in typing.get_args(AnyInbound)
}
_KNOWN_TYPES = frozenset().union(*TOPIC_TYPES.values())
_SUBJECT_FIELD = {
    topics.DISCHARGE_READY: "episode_id",
    topics.EMERGENCY_BEDS: "stay_id",
    topics.ACTIVITY: "activity_id",
}
_MUNICIPALITY_FIELDS = ("registered_municipality", "staying_municipality", "municipality")


def _required_fields(value: dict[str, Any]) -> list[str]:
    model = _MODELS[value["type"]]
    return sorted(name for name, f in model.model_fields.items() if f.is_required())


def _json(document: Any) -> bytes:
    return json.dumps(document).encode()


def _as_published(template: Published) -> tuple[str, dict[str, Any], str]:
    return template.topic, dict(template.value), template.value["patient_id"]


_pid_forms = st.sampled_from(["plain", "spaced", "dashed", "digit_before", "digit_after"])


def _pid_written(pid: str, form: str) -> str:
    return {
        "plain": pid,
        "spaced": f"{pid[:6]} {pid[6:]}",  # how a fødselsnummer is often written
        "dashed": f"{pid[:6]}-{pid[6:]}",
        "digit_before": "1" + pid,
        "digit_after": pid + "0",
    }[form]


@st.composite
def _key(draw: st.DrawFn, template: Published) -> tuple[bytes | None, str | None]:
    """The message key: the subject's, one with a patient id, arbitrary bytes, or none."""
    choice = draw(st.integers(0, 9))
    if choice < 6:
        return template.key.encode(), None
    if choice < 8:
        return f"fuzz-{template.value['patient_id']}".encode(), template.value["patient_id"]
    if choice < 9:
        return draw(st.binary(max_size=40)), None
    return None, None


def _hostile(
    draw: st.DrawFn, kind: str, template: Published, topic: str, value: bytes | None, reasons: set[str]
) -> Hostile:
    key, key_pid = draw(_key(template))
    pids = {template.value["patient_id"]} | ({key_pid} if key_pid else set())
    return Hostile(kind, topic, key, value, frozenset(reasons), frozenset(pids))


@st.composite
def truncated(draw: st.DrawFn, templates: Sequence[Published]) -> Hostile:
    template = draw(st.sampled_from(templates))
    raw = _json(template.value)
    cut = draw(st.integers(0, len(raw) - 1))
    return _hostile(draw, "truncated", template, template.topic, raw[:cut], {"not_json", "not_utf8"})


@st.composite
def malformed(draw: st.DrawFn, templates: Sequence[Published]) -> Hostile:
    template = draw(st.sampled_from(templates))
    value = draw(
        st.one_of(
            st.binary(max_size=600),
            st.text(max_size=300).map(str.encode),
            st.binary(min_size=1, max_size=200).map(lambda b: _json(template.value)[:40] + b),
        )
    )
    return _hostile(draw, "malformed", template, template.topic, value, set(ANY_REASON))


_json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)


@st.composite
def not_an_object(draw: st.DrawFn, templates: Sequence[Published]) -> Hostile:
    template = draw(st.sampled_from(templates))
    document = draw(
        st.one_of(_json_scalars, st.lists(st.recursive(_json_scalars, st.lists, max_leaves=8), max_size=5))
    )
    return _hostile(draw, "not_an_object", template, template.topic, _json(document), {"not_an_object"})


@st.composite
def nested_too_deep(draw: st.DrawFn, templates: Sequence[Published]) -> Hostile:
    """Valid JSON syntax nested beyond what the parser will recurse into (or nearly)."""
    template = draw(st.sampled_from(templates))
    depth = draw(st.integers(500, 100_000))
    shape = draw(st.sampled_from(["array", "object", "unclosed"]))
    if shape == "array":
        value, reasons = b"[" * depth + b"]" * depth, {"not_json", "not_an_object"}
    elif shape == "object":
        value, reasons = b'{"a":' * depth + b"1" + b"}" * depth, {"not_json", "unknown_type"}
    else:
        value, reasons = b'{"type":' + b"[" * depth, {"not_json"}
    return _hostile(draw, f"nested_{shape}", template, template.topic, value, reasons)


@st.composite
def huge_number(draw: st.DrawFn, templates: Sequence[Published]) -> Hostile:
    """An integer longer than Python will convert (4300 digits) in an otherwise valid event."""
    template = draw(st.sampled_from(templates))
    digits = "9" * draw(st.integers(4_301, 20_000))
    field = draw(st.sampled_from([f for f in _required_fields(template.value) if f != "type"]))
    raw = json.dumps(template.value | {field: "__HUGE__"}).replace('"__HUGE__"', digits).encode()
    return _hostile(draw, "huge_number", template, template.topic, raw, {"not_json"})


@st.composite
def nul_bytes(draw: st.DrawFn, templates: Sequence[Published]) -> Hostile:
    template = draw(st.sampled_from(templates))
    raw = _json(template.value)
    at = draw(st.integers(0, len(raw)))
    value = raw[:at] + b"\x00" * draw(st.integers(1, 3)) + raw[at:]
    return _hostile(draw, "nul_bytes", template, template.topic, value, {"not_json"})


@st.composite
def wrongly_encoded(draw: st.DrawFn, templates: Sequence[Published]) -> Hostile:
    template = draw(st.sampled_from(templates))
    encoding = draw(
        st.sampled_from(["utf-16", "utf-16-le", "utf-16-be", "utf-32", "latin-1", "cp1252", "utf-8-sig"])
    )
    # Unknown fields are ignored, so this one only adds letters outside ASCII.
    document = template.value | {"note": "pasient på Tromsø, ærlig talt"}
    value = json.dumps(document, ensure_ascii=False).encode(encoding)
    reasons = {"not_json"} if encoding == "utf-8-sig" else {"not_utf8", "not_json"}
    return _hostile(draw, f"encoding_{encoding}", template, template.topic, value, reasons)


_wrong_typed = st.one_of(
    st.none(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


@st.composite
def schema_violation(draw: st.DrawFn, templates: Sequence[Published]) -> Hostile:
    template = draw(st.sampled_from(templates))
    document = dict(template.value)
    field = draw(st.sampled_from(_required_fields(document)))
    if draw(st.booleans()):
        del document[field]
        kind = f"missing_{field}"
    else:
        document[field] = draw(_wrong_typed)
        kind = f"mistyped_{field}"
    reasons = {"unknown_type"} if field == "type" else {"schema_violation"}
    return _hostile(draw, kind, template, template.topic, _json(document), reasons)


@st.composite
def bad_identifier(draw: st.DrawFn, templates: Sequence[Published]) -> Hostile:
    template = draw(st.sampled_from(templates))
    document = dict(template.value)
    which = draw(st.sampled_from(["patient_id", "health_trust", "municipality"]))
    if which == "patient_id":
        form = draw(_pid_forms)
        pid = document["patient_id"]
        if form == "plain":  # a wrong check digit: any other last digit is wrong
            document["patient_id"] = pid[:10] + str((int(pid[10]) + draw(st.integers(1, 9))) % 10)
        else:
            document["patient_id"] = _pid_written(pid, form)
        kind, reasons = f"patient_id_{form}", {"invalid_patient_id"}
    elif which == "health_trust":
        trust = document["health_trust"]
        document["health_trust"] = trust[:8] + str((int(trust[8]) + draw(st.integers(1, 9))) % 10)
        kind, reasons = "organisation_number", {"invalid_organisation_number"}
    else:
        field = draw(st.sampled_from([f for f in _MUNICIPALITY_FIELDS if f in document]))
        document[field] = draw(
            st.sampled_from(["46O1", "123", "12345", "0001", "00", "", "4601 ", "9999", "2399"])
        )
        kind, reasons = "municipality_number", {"invalid_municipality_number", "unknown_municipality_number"}
    return _hostile(draw, kind, template, template.topic, _json(document), reasons)


@st.composite
def bad_time(draw: st.DrawFn, templates: Sequence[Published]) -> Hostile:
    template = draw(st.sampled_from(templates))
    document = dict(template.value)
    how = draw(st.sampled_from(["no_offset", "future", "before_2012", "year_1", "epoch_number", "garbage"]))
    now = datetime.now(UTC)
    value: object
    if how == "no_offset":
        value, reasons = "2025-10-06T10:00:00", {"timestamp_without_offset"}
    elif how == "future":
        value = (now + timedelta(days=draw(st.integers(2, 2_000_000)))).isoformat()
        reasons = {"occurred_in_future"}
    elif how == "before_2012":
        value = (
            datetime(2011, 12, 31, 22, 0, tzinfo=UTC) - timedelta(days=draw(st.integers(0, 700_000)))
        ).isoformat()
        reasons = {"occurred_before_2012"}
    elif how == "year_1":
        value, reasons = "0001-01-01T00:00:00+01:00", {"occurred_before_2012"}
    elif how == "epoch_number":
        value, reasons = draw(st.integers(0, 2**40)), {"schema_violation"}
    else:
        value, reasons = draw(st.text(max_size=30)), {"schema_violation"}
    document["occurred_at"] = value
    return _hostile(draw, f"time_{how}", template, template.topic, _json(document), reasons)


@st.composite
def patient_id_in_subject(draw: st.DrawFn, templates: Sequence[Published]) -> Hostile:
    template = draw(st.sampled_from(templates))
    document = dict(template.value)
    pid = template.value["patient_id"]
    written = draw(st.sampled_from([pid, f"{pid[:6]}-{pid[6:]}", f"{pid[:6]}.{pid[6:]}"]))
    if draw(st.booleans()):
        document[_SUBJECT_FIELD[template.topic]] = draw(
            st.sampled_from([written, f"EP-{written}", f"{written}-1"])
        )
        kind = "patient_id_in_subject_id"
    else:
        document["source"] = f"dips.{written}"
        kind = "patient_id_in_source"
    return _hostile(draw, kind, template, template.topic, _json(document), {"patient_id_in_subject_id"})


@st.composite
def wrong_topic(draw: st.DrawFn, templates: Sequence[Published]) -> Hostile:
    template = draw(st.sampled_from(templates))
    topic = draw(st.sampled_from([t for t in topics.INBOUND if t != template.topic]))
    return _hostile(draw, "wrong_topic", template, topic, _json(template.value), {"wrong_topic"})


@st.composite
def unknown_type(draw: st.DrawFn, templates: Sequence[Published]) -> Hostile:
    template = draw(st.sampled_from(templates))
    event_type = draw(st.text(max_size=30).filter(lambda t: t not in _KNOWN_TYPES))
    document = template.value | {"type": event_type}
    return _hostile(draw, "unknown_type", template, template.topic, _json(document), {"unknown_type"})


@st.composite
def tombstone(draw: st.DrawFn, templates: Sequence[Published]) -> Hostile:
    template = draw(st.sampled_from(templates))
    return _hostile(draw, "tombstone", template, template.topic, None, {"not_json"})


@st.composite
def lying_content_type(draw: st.DrawFn, templates: Sequence[Published]) -> Hostile:
    """A header that promises JSON or text over a body that is neither."""
    template = draw(st.sampled_from(templates))
    content_type = draw(
        st.sampled_from(["application/json", "text/plain", "application/json; charset=utf-8"])
    )
    value = draw(
        st.one_of(
            st.just(b"\xff\xfe not text"),
            st.just(b'{"type": ' + b"9" * 5000 + b"}"),
            st.binary(min_size=1, max_size=100),
            st.just(_json(template.value)[:-1]),
        )
    )
    hostile = _hostile(draw, "lying_content_type", template, template.topic, value, set(ANY_REASON))
    return dataclasses.replace(hostile, headers=(("content-type", content_type.encode()),))


def hostile_messages(templates: Sequence[Published]) -> st.SearchStrategy[Hostile]:
    return st.one_of(
        truncated(templates),
        malformed(templates),
        not_an_object(templates),
        nested_too_deep(templates),
        huge_number(templates),
        nul_bytes(templates),
        wrongly_encoded(templates),
        schema_violation(templates),
        bad_identifier(templates),
        bad_time(templates),
        patient_id_in_subject(templates),
        wrong_topic(templates),
        unknown_type(templates),
        tombstone(templates),
        lying_content_type(templates),
    )


_BAD_PERIODS = ["2025-13", "2025-1", "25-10", "", "2025-10-01", "abcd-ef", "2025–10", "２０２５-10"]


@st.composite
def hostile_command(draw: st.DrawFn) -> Hostile:
    """Commands that must be refused: never a valid close of a month that has ended."""
    command: dict[str, Any] = {"type": "close_period", "period": "2025-10", "command_id": str(uuid.uuid4())}
    how = draw(st.sampled_from(["period", "future", "no_id", "bad_id", "type", "bytes", "dispute"]))
    if how == "period":
        command["period"] = draw(st.one_of(st.sampled_from(_BAD_PERIODS), st.integers(), st.none()))
    elif how == "future":
        command["period"] = draw(st.sampled_from(["2099-12", "2030-01", f"{datetime.now(UTC):%Y-%m}"]))
    elif how == "no_id":
        del command["command_id"]
    elif how == "bad_id":
        command["command_id"] = draw(st.one_of(st.text(max_size=10), st.integers()))
    elif how == "type":
        command["type"] = draw(
            st.text(max_size=15).filter(
                lambda t: t not in {"close_period", "open_dispute", "resolve_dispute"}
            )
        )
    elif how == "dispute":
        command = {"type": draw(st.sampled_from(["open_dispute", "resolve_dispute"]))} | draw(
            st.dictionaries(
                st.sampled_from(["command_id", "dispute_id", "reason"]), st.text(max_size=8), max_size=2
            )
        )
    value = draw(st.binary(max_size=200)) if how == "bytes" else _json(command)
    return Hostile(f"command_{how}", topics.COMMANDS, b"fuzz-command", value, ANY_REASON)


def draw_examples(strategy: st.SearchStrategy[Any], count: int, seed_value: int) -> list[Any]:
    """`count` examples of `strategy`, the same ones for the same seed: hypothesis as a
    generator of test input (no shrinking; the scenario checks them all at once)."""
    drawn: list[Any] = []

    @seed(seed_value)
    @settings(
        max_examples=count,
        phases=[Phase.generate],
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(example: Any) -> None:
        drawn.append(example)

    attempt = 0
    while len(drawn) < count and attempt < 5:
        collect()
        attempt += 1
    return drawn[:count]


def oversized(templates: Sequence[Published], count: int, rng: random.Random) -> list[Hostile]:
    """Messages over the 1 MB limit: a few, they are big."""
    out = []
    for _ in range(count):
        template = rng.choice(templates)
        value = _json(template.value | {"note": "x" * rng.randrange(1_000_001, 1_300_000)})
        out.append(
            Hostile(
                "oversized",
                template.topic,
                template.key.encode(),
                value,
                frozenset({"message_too_large"}),
                frozenset({template.value["patient_id"]}),
            )
        )
    return out


def conflicting_copies(valid: Sequence[Published], count: int, rng: random.Random) -> list[Hostile]:
    """Events already sent, again under the same (source, event_id) with other content: the
    first one stands, the second is a `duplicate_conflict`. Same key, so same partition and
    after the original."""
    out = []
    for event in rng.sample(list(valid), count):
        value = dict(event.value)
        value["care_area"] = "mental_health" if value["care_area"] != "mental_health" else "somatic"
        out.append(
            Hostile(
                "duplicate_conflict",
                event.topic,
                event.key.encode(),
                _json(value),
                frozenset({"duplicate_conflict"}),
                frozenset({value["patient_id"]}),
            )
        )
    return out
