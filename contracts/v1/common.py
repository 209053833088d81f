"""Field types shared by every v1 message.

Each check raises a `PydanticCustomError` whose type is a rejection reason code, so the
intake can turn a validation failure into a precise reason without guessing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

from contracts.v1.identifiers import (
    ORGANISATION_NUMBER_PATTERN,
    PATIENT_ID_PATTERN,
    WELL_FORMED_MUNICIPALITY_NUMBER_PATTERN,
    is_valid_organisation_number,
    is_valid_patient_id,
)


class Contract(BaseModel):
    """Base of every wire message: immutable, and unknown fields are dropped rather than
    stored, so nothing a producer adds by mistake (a name, a phone number) reaches us."""

    model_config = ConfigDict(frozen=True, extra="ignore", str_strip_whitespace=False)


class CareArea(StrEnum):
    SOMATIC = "somatic"
    MENTAL_HEALTH = "mental_health"
    SUBSTANCE_ABUSE = "substance_abuse"


def _check_patient_id(value: str) -> str:
    if not is_valid_patient_id(value):
        raise PydanticCustomError(
            "invalid_patient_id", "patient_id is not a fødselsnummer or D-number with valid check digits"
        )
    return value


def _check_organisation_number(value: str) -> str:
    if not is_valid_organisation_number(value):
        raise PydanticCustomError(
            "invalid_organisation_number", "health_trust fails the organisation-number mod-11 check"
        )
    return value


def _text_matching(pattern: str, error_type: str, message: str, *, strict: bool = False) -> CoreSchema:
    """Text that pydantic-core matches against `pattern` itself, failing with our error."""
    return core_schema.custom_error_schema(
        core_schema.str_schema(pattern=pattern, strict=strict),
        custom_error_type=error_type,
        custom_error_message=message,
    )


class _CorePattern:
    """A check of form made by pydantic-core's own pattern, after the type's own checks, and
    failing with an error of ours. One to three municipality numbers come with every inbound
    event: a Python validator called from pydantic-core for each cost intake about 1.5 µs
    per event."""

    def __init__(self, pattern: str, error_type: str, message: str) -> None:
        self.pattern, self.error_type, self.message = pattern, error_type, message

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.chain_schema(
            [handler(source), _text_matching(self.pattern, self.error_type, self.message)]
        )


PatientId = Annotated[
    str,
    AfterValidator(_check_patient_id),
    Field(
        description=(
            "Fødselsnummer or D-number (11 digits, both check digits valid). Replaced by a keyed "
            "pseudonym on arrival: never stored, logged or published by the settlement service."
        ),
        json_schema_extra={"pattern": PATIENT_ID_PATTERN},
        examples=["31129956715"],
        repr=False,
    ),
]
OrganisationNumber = Annotated[
    str,
    AfterValidator(_check_organisation_number),
    Field(
        description="The health trust's 9-digit organisation number (mod-11 check digit).",
        json_schema_extra={"pattern": ORGANISATION_NUMBER_PATTERN},
        examples=["983974724"],
    ),
]
MunicipalityNumber = Annotated[
    str,
    _CorePattern(
        WELL_FORMED_MUNICIPALITY_NUMBER_PATTERN,
        "invalid_municipality_number",
        "a municipality number is four digits, county 01-99",
    ),
    Field(
        description="Kommunenummer, 4 digits with leading zero, as valid on the event's date.",
        json_schema_extra={"pattern": WELL_FORMED_MUNICIPALITY_NUMBER_PATTERN},
        examples=["4601"],
    ),
]
Source = Annotated[
    str,
    Field(
        pattern=r"^[a-z0-9][a-z0-9._-]{0,99}$",
        description="The producing system, lower case, e.g. `dips.helse-bergen`. Part of the dedup key.",
        examples=["dips.helse-bergen"],
    ),
]
SubjectId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$",
        description=(
            "The hospital's identifier of the episode, stay or activity; also the message key. "
            "Must not contain a patient identifier: an id holding 11 digits in a run (also as part "
            "of a longer run), or 6 and 5 digits with a space, dash, dot, `_`, `:` or `/` between, that pass a "
            "fødselsnummer's check digits is rejected (`patient_id_in_subject_id`). Digits pass "
            "them by chance too: about 2.4 % of ids like `EP-20251006NNNNN` are refused "
            "(`EP-2025100600091` is, `EP-2025100612345` is not). So use no run of 11 digits or "
            "more, and no 6 and 5 digits so joined: `EP-2025-000123`, not `EP-202510-00027`. The "
            "same holds for `source`."
        ),
        examples=["EP-2025-000123"],
    ),
]


_RFC3339_DATE_PREFIX = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"
_RFC3339_DATE = re.compile(_RFC3339_DATE_PREFIX)
_NOT_TEXT = "timestamp_not_text"
_NOT_TEXT_MESSAGE = "a timestamp is RFC 3339 text with a UTC offset"


def _require_text(value: object) -> object:
    # RFC 3339 text only: pydantic would otherwise read a number as epoch seconds, and a
    # string of digits too ("1730000000" was accepted as 2024-10-27T03:33:20Z).
    if isinstance(value, datetime) or (isinstance(value, str) and _RFC3339_DATE.match(value)):
        return value
    raise PydanticCustomError(_NOT_TEXT, _NOT_TEXT_MESSAGE)


class TextOnTheWire:
    """A value that is text on the wire, checked by pydantic-core itself when the input is
    JSON: a string matching `pattern` (failing with `error`, a type and message, if given),
    then read as the annotated type. From Python (models built in code, and intake's
    diagnosis of a message the JSON parser refused) `from_python` checks the value instead,
    with the same errors, before the type reads it.

    A Python validator called from pydantic-core for each timestamp cost intake about 1.5 µs
    per event (one to three timestamps each). The JSON Schema is `json_schema`, or the
    type's own."""

    def __init__(
        self,
        pattern: str,
        from_python: Callable[[object], object],
        *,
        error: tuple[str, str] | None = None,
        json_schema: JsonSchemaValue | None = None,
    ) -> None:
        self._pattern, self._from_python, self._error, self._json_schema = (
            pattern,
            from_python,
            error,
            json_schema,
        )

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        own = handler(source)
        text = (
            _text_matching(self._pattern, *self._error, strict=True)
            if self._error
            else core_schema.str_schema(pattern=self._pattern, strict=True)
        )
        return core_schema.json_or_python_schema(
            json_schema=core_schema.chain_schema([text, own]),
            python_schema=core_schema.no_info_before_validator_function(self._from_python, own),
        )

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        if self._json_schema is not None:
            return dict(self._json_schema)
        return handler(schema["python_schema"]["schema"])


# The published form of a timestamp: what intake takes, no more and no less (a producer's
# validator skips `format` unless told, so this is what it applies). Intake checks only the
# date prefix itself and leaves the rest to pydantic-core's datetime parser, which takes a
# little more than RFC 3339: `t`, a space or `_` for the `T`, no seconds, a fraction of any
# length after `.` or `,`, `z` for `Z`, an offset without its colon or signed with U+2212.
# Not in the pattern, and refused by intake: 29 February of a common year, year 0, and a
# field's range. Plain groups, no lookaround: the regex subset JSON Schema recommends.
# tests/unit/test_contract_examples.py holds the two to agreement over a table.
_HOUR, _MINUTE = "([01][0-9]|2[0-3])", "[0-5][0-9]"
_MONTH_DAY = "((0[1-9]|1[0-2])-(0[1-9]|[12][0-9])|(0[13-9]|1[0-2])-30|(0[13578]|1[02])-31)"
_TIMESTAMP_SCHEMA_PATTERN = (
    f"^[0-9]{{4}}-{_MONTH_DAY}[Tt _]{_HOUR}:{_MINUTE}(:{_MINUTE}([.,][0-9]+)?)?"
    f"([Zz]|[+\u2212-]{_HOUR}:?{_MINUTE})$"
)

# On the wire a timestamp is a JSON string starting with a date; from Python it may also be
# a datetime (`_require_text`).
Timestamp = Annotated[
    AwareDatetime,
    TextOnTheWire(
        _RFC3339_DATE_PREFIX,
        _require_text,
        error=(_NOT_TEXT, _NOT_TEXT_MESSAGE),
        json_schema={"type": "string", "format": "date-time", "pattern": _TIMESTAMP_SCHEMA_PATTERN},
    ),
]
"""An instant on the wire: RFC 3339 text with a UTC offset."""

OccurredAt = Annotated[
    Timestamp,
    Field(
        description=(
            "When it happened, RFC 3339 with a UTC offset. For discharge-ready milestones and "
            "emergency-bed stays, when the milestone took place: the Europe/Oslo calendar day of "
            "this instant is the day the rules use. For an activity event, when the activity was "
            "recorded, corrected or cancelled, not when the contact took place (`started_at`, "
            "`ended_at`): of an activity's events the latest by `occurred_at` stands. Must be on "
            "or after 2012-01-01 and at most one day in the future."
        ),
        examples=["2025-10-06T09:30:00+02:00"],
    ),
]
