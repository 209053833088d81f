"""What a rejection keeps of a message that is a JSON object: the fields the topic's
contract names, and of the others only their names.

The contract promises that a field it does not name is not stored; a rejection stored and
published the whole payload, so a patient's name or phone number sent beside a bad
timestamp was kept and sent on. Pure, and run on the rejection path only.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from contracts.v1.named_fields import NAMED_FIELDS, FieldTree

NOT_A_CONTRACT_FIELD = "<not a contract field: not kept>"
# A rejected message is read whole for its fields up to this size: twice intake's limit,
# past Kafka's default one (1 MiB). Reading is JSON parsing, as the diagnosis of a refused
# message does anyway (milliseconds a megabyte; a fifth of a second for one of numbers);
# a message larger still is kept as the text it came as, cut at 64 KiB.
MAX_READ_BYTES = 2_000_000


class _AsWritten(str):
    """A JSON number with a fraction or exponent, or a constant (`NaN`), as it was written:
    read as a float and written again, its digits may move out of the redactor's sight
    (`0.0000031129956715` becomes `3.1129956715e-06`). Integers are read exactly (one of
    more than 4,300 digits is not read at all: not JSON, to intake's diagnosis too)."""

    __slots__ = ()


def storable(text: str) -> str:
    """PostgreSQL text cannot hold NUL: it is dropped. (Storing it raised, the batch was
    delivered again, and its partition stopped for good.) Dropped, not replaced, and before
    redaction: text in UTF-16 or UTF-32 has NULs beside every digit, and they kept a patient
    id's digits apart for the redactor."""
    return text.replace("\x00", "")


# The fields a sender finds its own event by, published beside a rejection (`Rejection`).
IDENTIFYING_FIELDS = ("source", "event_id", "health_trust")
# Longer than any of them may be: such a value is left in the payload alone.
MAX_IDENTIFYING_CHARS = 256


def identifying_fields(raw: bytes) -> dict[str, str]:
    """The `source`, `event_id` and `health_trust` of a rejected message that is a JSON
    object, where each is text of a sensible length, as sent (before redaction, which the
    caller does). A hospital's integration team filters the rejection topic by its source
    and finds the event in its own outbox by its id, without parsing the payload (which is
    cut at 64 KiB, and not always JSON)."""
    if len(raw) > MAX_READ_BYTES:
        return {}
    try:
        document = json.loads(storable(raw.decode("utf-8", errors="replace")))
    except (RecursionError, ValueError):
        return {}
    if not isinstance(document, dict):
        return {}
    return {
        name: value
        for name in IDENTIFYING_FIELDS
        if isinstance(value := document.get(name), str) and 0 < len(value) <= MAX_IDENTIFYING_CHARS
    }


def contract_fields_only(topic: str, raw: bytes, keep_chars: int) -> str | None:
    """`raw`, a JSON object, with the values of the fields the topic's contract does not
    name (at any depth) replaced by `NOT_A_CONTRACT_FIELD` and their names kept (a misspelt
    name is what the producer needs to see), as compact JSON: its first `keep_chars`
    characters at least, what is kept of it. None when it is no JSON object read here, or
    when nothing in those characters is replaced: it is then kept as it came.

    Kept as it came, its first `keep_chars` characters hold no value of a field the contract
    does not name either: compact JSON writes each value as early as the text it came as
    does, or earlier (no spaces; no escape longer than the one it came as; a key sent twice
    is where it first was)."""
    names = NAMED_FIELDS.get(topic)
    if names is None or len(raw) > MAX_READ_BYTES:
        return None
    try:
        document = json.loads(
            storable(raw.decode("utf-8", errors="replace")),  # NULs dropped first, as for any text kept
            parse_float=_AsWritten,
            parse_constant=_AsWritten,
        )
    except (RecursionError, ValueError):  # not JSON (a JSONDecodeError is a ValueError), or too deep
        return None
    if not isinstance(document, dict):
        return None
    text, replaced = _compact(document, names, keep_chars)
    if not replaced:
        return None
    # A lone surrogate (`\ud800` in the JSON) is no character UTF-8 can hold: written back
    # as the escape it came as, not left to fail the insert.
    return text.encode("utf-8", errors="backslashreplace").decode("utf-8")


_PLACEHOLDER = _AsWritten(json.dumps(NOT_A_CONTRACT_FIELD))
_LITERALS = {True: "true", False: "false", None: "null"}
_END = object()


def _compact(document: dict[str, Any], names: FieldTree, keep_chars: int) -> tuple[str, bool]:
    """`document` as JSON without spaces, a placeholder for what `names` does not name:
    the text, and whether anything was replaced in it. Written until it is longer than
    `keep_chars`, no further: a million numbers cost no more to write than the 64 KiB kept.
    Without recursion: a document may be nested as deep as the parser goes."""
    out = ["{"]
    length = 1
    replaced = False
    # Open objects and arrays, innermost last: their entries still to write, the names
    # given inside them, and whether one of their entries is written yet.
    open_: list[tuple[Iterator[Any], FieldTree, bool]] = [(iter(document.items()), names, True)]
    started = False
    while open_:
        entries, named, is_object = open_[-1]
        entry: Any = next(entries, _END)
        if entry is _END:
            open_.pop()
            out.append("}" if is_object else "]")
            length += 1
            started = True
            continue
        if started:
            out.append(",")
            length += 1
        started = True
        value, inner = entry, named
        if is_object:
            key, value = entry
            label = json.dumps(key, ensure_ascii=False) + ":"
            out.append(label)
            length += len(label)
            if key not in named:
                value, inner = _PLACEHOLDER, {}
                replaced = True
            else:
                inner = named[key]
        if isinstance(value, dict):
            out.append("{")
            open_.append((iter(value.items()), inner, True))
            started = False
            length += 1
        elif isinstance(value, list):
            out.append("[")
            open_.append((iter(value), inner, False))
            started = False
            length += 1
        else:
            written = _scalar(value)
            out.append(written)
            length += len(written)
        if length > keep_chars:
            break
    return "".join(out), replaced


def _scalar(value: _AsWritten | str | bool | int | None) -> str:
    if isinstance(value, _AsWritten):
        return value
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool) or value is None:
        return _LITERALS[value]
    return str(value)  # an integer, exactly
