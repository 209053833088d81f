"""Inbound events: what hospital systems publish on the three inbound topics.

Each topic carries one family; `type` discriminates within it. The key of every message is
the episode, stay or activity id, so one subject's events stay in order on one partition
(the rules do not depend on that order, but it keeps re-rating cheap).
"""

from __future__ import annotations

import re
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field
from pydantic_core import PydanticCustomError

from contracts.v1 import topics
from contracts.v1.common import (
    CareArea,
    Contract,
    MunicipalityNumber,
    OccurredAt,
    OrganisationNumber,
    PatientId,
    Source,
    SubjectId,
    TextOnTheWire,
    Timestamp,
)


class InboundEvent(Contract):
    """Fields every inbound event carries."""

    event_id: UUID = Field(
        description="Unique per `source`; `source` + `event_id` is the dedup key. A redelivery "
        "with identical content is a no-op; different content under the same key is rejected "
        "(`duplicate_conflict`; the first one stands). A rejected event is not stored: fixed, it "
        "may be sent again under the same key and is accepted as new. Identical means the same fields with the "
        "same values as read: a timestamp is compared as written, offset included "
        "(`+01:00` and `Z` for one instant differ), and a decimal with its digits (`0.5` and "
        "`0.50` differ), so a producer must resend an event as it first sent it.",
        examples=["0b9c4f5e-6a43-4d2e-9d5c-1f7f2f5e8a11"],
    )
    source: Source
    occurred_at: OccurredAt
    health_trust: OrganisationNumber
    patient_id: PatientId
    care_area: CareArea = Field(
        description="Somatic care, mental health care or substance-abuse treatment (TSB)."
    )


# -- samhandling.discharge-ready.v1 -------------------------------------------------------


class DischargeDestination(StrEnum):
    MUNICIPAL_SERVICE = "municipal_service"
    HOME = "home"
    DECEASED = "deceased"
    OTHER_INSTITUTION = "other_institution"


class DischargeReadyEvent(InboundEvent):
    """A milestone of a hospital episode, as in the PLO messages and the national register."""

    episode_id: SubjectId
    registered_municipality: MunicipalityNumber = Field(
        description="Where the patient is registered (folkeregistrert): the payer for bed-days before 2019-01-01."
    )
    staying_municipality: MunicipalityNumber = Field(
        description="Where the patient is staying (oppholdskommune): the payer for bed-days from 2019-01-01."
    )


class AdmissionNotified(DischargeReadyEvent):
    """The municipality was notified of the admission. Without it no bed-day is payable: an
    episode without one is accepted and priced at nothing, with no rejection, until it arrives."""

    type: Literal["admission_notified"]


class DeclaredReady(DischargeReadyEvent):
    """The physician declared the patient discharge-ready."""

    type: Literal["declared_ready"]


class MunicipalityNotified(DischargeReadyEvent):
    """The municipality was notified that the patient is discharge-ready. It is the notice of
    a `declared_ready` before it (by `occurred_at`; one at the same instant counts): a notice
    timed before the declaration, with none after it, pays nothing, and nothing rejects it.
    After an end (`municipality_can_receive`, `ready_withdrawn`, `discharged`), a new
    declaration needs a new notice."""

    type: Literal["municipality_notified"]


class MunicipalityCanReceive(DischargeReadyEvent):
    """The municipality said it can receive the patient: payment ends, this day unpaid."""

    type: Literal["municipality_can_receive"]


class ReadyWithdrawn(DischargeReadyEvent):
    """The discharge-ready status was withdrawn (new illness, re-admission): payment ends, this day unpaid."""

    type: Literal["ready_withdrawn"]


class Discharged(DischargeReadyEvent):
    """The patient left hospital: payment ends, this day unpaid."""

    type: Literal["discharged"]
    destination: DischargeDestination = Field(description="Where the patient went.")


DischargeReadyMessage = Annotated[
    AdmissionNotified
    | DeclaredReady
    | MunicipalityNotified
    | MunicipalityCanReceive
    | ReadyWithdrawn
    | Discharged,
    Field(discriminator="type"),
]

# -- samhandling.emergency-beds.v1 --------------------------------------------------------


class EmergencyBedEvent(InboundEvent):
    """A stay in a municipal emergency bed (øyeblikkelig hjelp døgnopphold, KAD)."""

    stay_id: SubjectId
    municipality: MunicipalityNumber = Field(description="The municipality running the emergency bed.")


class EmergencyBedAdmitted(EmergencyBedEvent):
    type: Literal["emergency_bed_admitted"]


class EmergencyBedDischarged(EmergencyBedEvent):
    type: Literal["emergency_bed_discharged"]


EmergencyBedMessage = Annotated[EmergencyBedAdmitted | EmergencyBedDischarged, Field(discriminator="type")]

# -- samhandling.activity.v1 --------------------------------------------------------------


class ContactKind(StrEnum):
    INPATIENT = "inpatient"
    DAY_PATIENT = "day_patient"
    OUTPATIENT = "outpatient"


class ActivityCategory(StrEnum):
    ORDINARY = "ordinary"
    BIRTH = "birth"
    NEWBORN = "newborn"
    COSTLY_DRUG = "costly_drug"
    LAB_IMAGING = "lab_imaging"


class ActivityEvent(InboundEvent):
    """A hospital contact, for municipal co-financing."""

    activity_id: SubjectId
    registered_municipality: MunicipalityNumber = Field(
        description="Where the patient is registered: the payer of co-financing."
    )


# At most 4 digits before the point (the weight is at most 1000) and 6 after (weights are
# published with 3): room for no 11-digit number, so no patient id can ride in it.
_DECIMAL_TEXT = r"^[0-9]{1,4}(\.[0-9]{1,6})?$"
_DECIMAL_TEXT_PATTERN = re.compile(_DECIMAL_TEXT)


def _decimal_or_its_text(value: object) -> object:
    """From Python (models built in code, and intake's diagnosis of a refused message): a
    Decimal, or text as on the wire; never a float, whose digits are not what was meant."""
    if isinstance(value, Decimal) or (isinstance(value, str) and _DECIMAL_TEXT_PATTERN.fullmatch(value)):
        return value
    if isinstance(value, str):
        raise PydanticCustomError(
            "string_pattern_mismatch", "String should match pattern '{pattern}'", {"pattern": _DECIMAL_TEXT}
        )
    raise PydanticCustomError("string_type", "Input should be a valid string")


# The published form of a DRG weight: decimal text from 0 to 1000, as intake takes it
# (`_DECIMAL_TEXT`, then at most 1000), a schema having no `maximum` for text.
_DRG_POINTS_SCHEMA_PATTERN = r"^(([0-9]{1,3}|0[0-9]{3})(\.[0-9]{1,6})?|1000(\.0{1,6})?)$"

# A decimal written as text, and only as text: the JSON Schema says so, and a JSON number
# (read through a float) or an exponent would otherwise be accepted by the service while a
# producer testing against the schema sees it refused.
_DrgPointsText = TextOnTheWire(
    _DECIMAL_TEXT,
    _decimal_or_its_text,
    json_schema={"type": "string", "pattern": _DRG_POINTS_SCHEMA_PATTERN},
)


class ActivityFacts(ActivityEvent):
    contact_kind: ContactKind
    drg: str = Field(
        min_length=1,
        max_length=16,
        pattern=r"^[0-9A-Za-z]+$",
        description="The DRG code. Like the ids, it must not hold a patient identifier (`patient_id_in_subject_id`).",
        examples=["127O"],
    )
    drg_points: Annotated[Decimal, Field(ge=0, le=1000), _DrgPointsText] = Field(
        description='DRG weight as decimal text, from "0" to "1000" with at most 6 decimals, e.g. '
        '"0.873" (not a JSON number).',
        examples=["0.873"],
    )
    surgical: bool = Field(
        strict=True,  # `true` or `false` only: "yes" or 0 are refused, not read as a flag
        description="Whether the DRG is a surgical DRG (excluded from co-financing).",
    )
    category: ActivityCategory
    started_at: Timestamp = Field(
        description="When the contact began, RFC 3339 with a UTC offset. Not after `ended_at`; "
        "may be before 2012 (a stay that ended after the reform began).",
        examples=["2025-10-02T08:00:00+02:00"],
    )
    ended_at: Timestamp = Field(
        description="When the contact ended, RFC 3339 with a UTC offset. Its Europe/Oslo calendar "
        "day is the activity's day: the rules in force on it price the activity, "
        "`registered_municipality` is the number in force on it (also in a correction sent later), "
        "and its month is the service month. Must be on or after 2012-01-01 and at most one day in "
        "the future.",
        examples=["2025-10-06T14:30:00+02:00"],
    )


class ActivityRecorded(ActivityFacts):
    """An activity as first recorded. Its `occurred_at` is when it was recorded (in the example,
    half an hour after `ended_at`), not when the contact took place: of an activity's events
    the latest by `occurred_at` stands, so its corrections and cancellation must be timed
    after it."""

    type: Literal["activity_recorded"]


class ActivityCorrected(ActivityFacts):
    """Replaces every earlier fact of the same activity. Of an activity's events the latest
    by `occurred_at` stands (of two at one instant, the one whose `event_id` sorts last as
    text), so a correction's `occurred_at` is when it was made, not when the activity was. One
    timed before the recording (or at its instant, with an `event_id` sorting first) is
    accepted and has no effect: nothing rejects it."""

    type: Literal["activity_corrected"]


class ActivityCancelled(ActivityEvent):
    """Removes the activity: it is no longer payable. Like a correction, it stands when it is
    the activity's latest event by `occurred_at` (of two at one instant, the one whose
    `event_id` sorts last as text); one timed before the recording has no effect. It names
    no activity day, and prices nothing: its `registered_municipality` is kept as given, any
    number the municipality registry has."""

    type: Literal["activity_cancelled"]


ActivityMessage = Annotated[
    ActivityRecorded | ActivityCorrected | ActivityCancelled, Field(discriminator="type")
]

TOPIC_TYPES: dict[str, frozenset[str]] = {
    topics.DISCHARGE_READY: frozenset(
        {
            "admission_notified",
            "declared_ready",
            "municipality_notified",
            "municipality_can_receive",
            "ready_withdrawn",
            "discharged",
        }
    ),
    topics.EMERGENCY_BEDS: frozenset({"emergency_bed_admitted", "emergency_bed_discharged"}),
    topics.ACTIVITY: frozenset({"activity_recorded", "activity_corrected", "activity_cancelled"}),
}

AnyInbound = (
    AdmissionNotified
    | DeclaredReady
    | MunicipalityNotified
    | MunicipalityCanReceive
    | ReadyWithdrawn
    | Discharged
    | EmergencyBedAdmitted
    | EmergencyBedDischarged
    | ActivityRecorded
    | ActivityCorrected
    | ActivityCancelled
)
