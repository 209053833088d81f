"""Inbound events: what hospital systems publish on the three inbound topics.

Each topic carries one family; `type` discriminates within it. The key of every message is
the episode, stay or activity id, so one subject's events stay in order on one partition
(the rules do not depend on that order, but it keeps re-rating cheap).
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field

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
)


class InboundEvent(Contract):
    """Fields every inbound event carries."""

    event_id: UUID = Field(
        description="Unique per `source`; `source` + `event_id` is the dedup key. A redelivery "
        "with identical content is a no-op; different content under the same key is rejected.",
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
    """The municipality was notified of the admission. Without it no bed-day is payable."""

    type: Literal["admission_notified"]


class DeclaredReady(DischargeReadyEvent):
    """The physician declared the patient discharge-ready."""

    type: Literal["declared_ready"]


class MunicipalityNotified(DischargeReadyEvent):
    """The municipality was notified that the patient is discharge-ready."""

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


class ActivityFacts(ActivityEvent):
    contact_kind: ContactKind
    drg: str = Field(min_length=1, max_length=16, pattern=r"^[0-9A-Za-z]+$", examples=["127O"])
    drg_points: Decimal = Field(
        ge=0,
        le=1000,
        description='DRG weight as a decimal string, e.g. "0.873".',
        examples=["0.873"],
        json_schema_extra={"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$"},
    )
    surgical: bool = Field(description="Whether the DRG is a surgical DRG (excluded from co-financing).")
    category: ActivityCategory
    started_at: OccurredAt
    ended_at: OccurredAt


class ActivityRecorded(ActivityFacts):
    type: Literal["activity_recorded"]


class ActivityCorrected(ActivityFacts):
    """Replaces every earlier fact of the same activity."""

    type: Literal["activity_corrected"]


class ActivityCancelled(ActivityEvent):
    """Removes the activity: it is no longer payable."""

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
