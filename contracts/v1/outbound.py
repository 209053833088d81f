"""What the settlement service publishes: statements, rejections; and the commands it takes."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Literal
from uuid import UUID

from pydantic import Field

from contracts.v1.common import Contract

PERIOD_PATTERN = r"^20[0-9]{2}-(0[1-9]|1[0-2])$"


class PartyRole(StrEnum):
    MUNICIPALITY = "municipality"
    HEALTH_TRUST = "health_trust"


class Party(Contract):
    role: PartyRole
    id: str = Field(description="Kommunenummer for a municipality, organisation number for a health trust.")

    @property
    def key(self) -> str:
        """The Kafka key statements to this party carry, e.g. `municipality:4601`."""
        return f"{self.role.value}:{self.id}"


class LineStatus(StrEnum):
    PRICED = "priced"
    UNRATED = "unrated"
    NOT_PAYABLE = "not_payable"


class Category(StrEnum):
    DISCHARGE_READY_BED_DAYS = "discharge_ready_bed_days"
    EMERGENCY_BED_DAYS = "emergency_bed_days"
    ACTIVITY_CO_FINANCING = "activity_co_financing"


class StatementLine(Contract):
    """One sum on a statement: all items of one category, payer, price, rule and service month."""

    category: Category
    payer_role: PartyRole = Field(description="Who pays this line.")
    service_month: str = Field(pattern=PERIOD_PATTERN, description="The month the service was given.")
    status: LineStatus = Field(
        description="`unrated`: no tariff was configured for these days, so they are held, shown and "
        "not priced (never priced at 0); they are priced when the operator adds the rate. "
        "`not_payable`: a rule says nothing is owed (e.g. no agreed emergency-bed rate); `note` says why."
    )
    quantity: int = Field(ge=0, description="Bed-days, or activities.")
    unit_price_ore: int | None = Field(
        description="Price per unit in øre; null when not priced, or when each unit has its own price "
        "(co-financed activities: see the items)."
    )
    amount_ore: int | None = Field(description="The line's amount in øre; null when not priced.")
    rule: str | None = Field(
        description="The tariff rule(s) that priced the line, `+`-joined when several parameters did."
    )
    note: str | None = Field(default=None, description="Why a line is held or not payable, in words.")


class StatementItem(Contract):
    """What one episode, stay or activity contributed. Never carries a patient identifier."""

    category: Category
    episode_id: str = Field(description="The hospital's episode, stay or activity id.")
    service_month: str = Field(pattern=PERIOD_PATTERN)
    first_day: date
    last_day: date = Field(description="Last paid day (inclusive).")
    days: int = Field(ge=0)
    amount_ore: int | None = Field(description="Null when unrated.")
    status: LineStatus
    rule: str | None
    note: str | None = Field(default=None, description="E.g. capped DRG points, or a municipality number mapped.")


class NetPayer(StrEnum):
    MUNICIPALITY = "municipality"
    HEALTH_TRUST = "health_trust"
    NONE = "none"


class CategoryTotal(Contract):
    category: Category
    municipality_pays_ore: int = Field(ge=0, description="What the municipality owes the trust in this category.")
    health_trust_pays_ore: int = Field(ge=0, description="What the trust owes the municipality in this category.")


class Totals(Contract):
    municipality_pays_ore: int = Field(ge=0, description="Sum of priced lines the municipality pays.")
    health_trust_pays_ore: int = Field(ge=0, description="Sum of priced lines the health trust pays.")
    net_ore: int = Field(ge=0, description="|municipality_pays - health_trust_pays|.")
    net_payer: NetPayer
    unrated_quantity: int = Field(ge=0, description="Units held as unrated (no tariff), not in the sums.")
    by_category: tuple[CategoryTotal, ...] = Field(
        default=(), description="Per category, what each party owes the other; the sums above add these up."
    )


class SettlementStatement(Contract):
    """A monthly statement for one municipality-trust pair, published once to each party
    with identical content except `recipient` and `counterparty`."""

    statement_id: UUID = Field(description="Same for both parties' copies; dedup on it.")
    period: str = Field(pattern=PERIOD_PATTERN, description="Europe/Oslo calendar month, YYYY-MM.")
    recipient: Party
    counterparty: Party
    lines: tuple[StatementLine, ...]
    items: tuple[StatementItem, ...]
    totals: Totals
    issued_at: datetime


class ReasonCode(StrEnum):
    """Why an inbound message was rejected. Each bad-input case has its own code."""

    MESSAGE_TOO_LARGE = "message_too_large"
    NOT_UTF8 = "not_utf8"
    NOT_JSON = "not_json"
    NOT_AN_OBJECT = "not_an_object"
    UNKNOWN_TYPE = "unknown_type"
    WRONG_TOPIC = "wrong_topic"
    SCHEMA_VIOLATION = "schema_violation"
    INVALID_PATIENT_ID = "invalid_patient_id"
    INVALID_ORGANISATION_NUMBER = "invalid_organisation_number"
    INVALID_MUNICIPALITY_NUMBER = "invalid_municipality_number"
    UNKNOWN_MUNICIPALITY_NUMBER = "unknown_municipality_number"
    MUNICIPALITY_NUMBER_SPLIT = "municipality_number_split"
    TIMESTAMP_WITHOUT_OFFSET = "timestamp_without_offset"
    OCCURRED_IN_FUTURE = "occurred_in_future"
    OCCURRED_BEFORE_2012 = "occurred_before_2012"
    PATIENT_ID_IN_SUBJECT_ID = "patient_id_in_subject_id"
    DUPLICATE_CONFLICT = "duplicate_conflict"
    PROCESSING_FAILED = "processing_failed"
    PERIOD_NOT_CLOSABLE = "period_not_closable"


class Rejection(Contract):
    """An inbound message that was not accepted, with enough to find and fix it."""

    rejection_id: UUID
    topic: str
    partition: int
    offset: int
    key: str | None = Field(description="The message key, patient identifiers redacted.")
    payload: str = Field(
        description="The payload as text (invalid UTF-8 replaced), anything that looks like a patient "
        "identifier redacted, cut at 64 KiB."
    )
    reason: ReasonCode
    message: str = Field(description="What is wrong, for a person.")
    rejected_at: datetime


class ClosePeriod(Contract):
    """Close a month: build and publish the statements of every pair with anything payable."""

    type: Literal["close_period"]
    period: str = Field(pattern=PERIOD_PATTERN, examples=["2026-10"])
    command_id: UUID = Field(description="Idempotency key: a command seen before is ignored.")
