"""What the settlement service publishes: statements, rejections; and the commands it takes."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Literal
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
    note: str | None = Field(
        default=None, description="E.g. capped DRG points, or a municipality number mapped."
    )


class NetPayer(StrEnum):
    MUNICIPALITY = "municipality"
    HEALTH_TRUST = "health_trust"
    NONE = "none"


class CategoryTotal(Contract):
    category: Category
    municipality_pays_ore: int = Field(
        description="What the municipality owes the trust in this category (negative: a credit)."
    )
    health_trust_pays_ore: int = Field(
        description="What the trust owes the municipality in this category (negative: a credit)."
    )


class Totals(Contract):
    municipality_pays_ore: int = Field(
        description="Priced lines and adjustments the municipality pays (negative: a credit)."
    )
    health_trust_pays_ore: int = Field(
        description="Priced lines and adjustments the health trust pays (negative: a credit)."
    )
    net_ore: int = Field(ge=0, description="|municipality_pays - health_trust_pays|.")
    net_payer: NetPayer
    unrated_quantity: int = Field(ge=0, description="Units held as unrated (no tariff), not in the sums.")
    by_category: tuple[CategoryTotal, ...] = Field(
        default=(), description="Per category, what each party owes the other; the sums above add these up."
    )
    municipality_withheld_ore: int = Field(
        default=0,
        description="Held out of the municipality's payment for disputes opened (+) or released (-).",
    )
    health_trust_withheld_ore: int = Field(
        default=0, description="Held out of the trust's payment for disputes opened (+) or released (-)."
    )
    net_payable_ore: int = Field(
        default=0, ge=0, description="The net after amounts in dispute are held out."
    )
    net_payable_by: NetPayer = Field(default=NetPayer.NONE, description="Who pays `net_payable_ore`.")


class CausedBy(Contract):
    source: str
    event_id: UUID


class AdjustmentLine(Contract):
    """A difference booked for a month already closed: closed statements are never edited."""

    category: Category
    payer_role: PartyRole
    corrects_month: str = Field(pattern=PERIOD_PATTERN, description="The closed service month it corrects.")
    episode_id: str = Field(description="The episode, stay or activity it corrects.")
    quantity_delta: int
    amount_delta_ore: int = Field(description="New minus previously settled, in øre.")
    cause: Literal["event", "tariff", "dispute"]
    caused_by: CausedBy | None = Field(default=None, description="The event that caused it, for `event`.")
    dispute_id: UUID | None = Field(default=None, description="The dispute it resolves, for `dispute`.")
    note: str | None = None
    items_now: tuple[StatementItem, ...] | None = Field(
        default=None,
        description="For `event` and `tariff`: what `episode_id` now makes payable in `corrects_month` "
        "for `payer_role`, after this adjustment, as items of the statement of that month are given "
        "(the same fields). What the pair's statements settled for it before (the items of "
        "`corrects_month`'s statement, plus the `event` and `tariff` adjustments to them since) plus "
        "`quantity_delta` and `amount_delta_ore` is what these add up to: the sum of their `days`, and "
        "of their `amount_ore` (null, held, counting 0). Several when the days run under more than one "
        "rule, status or note, or with a gap. Empty when nothing stands for the month any more: an "
        "activity cancelled, a stay's days taken out of the month, or moved to another payer. Null for "
        "`dispute` (a ruling credits an amount; it changes no item: what stands is on the latest "
        "`event` or `tariff` adjustment, or the month's statement). Not on statements issued before "
        "2026-12-02.",
    )


class DisputeEntry(Contract):
    """A dispute of a line or item of an earlier statement, as it stands on this one."""

    dispute_id: UUID
    disputed_statement_id: UUID
    episode_id: str | None
    category: Category
    service_month: str = Field(pattern=PERIOD_PATTERN)
    payer_role: PartyRole = Field(description="Whose payment the disputed amount is held out of.")
    amount_ore: int = Field(gt=0)
    status: Literal["open", "upheld", "partially_upheld", "rejected"]
    effect: Literal["held", "open", "released", "resolved"] = Field(
        description="`held`: held out of this statement's payable net; `open`: still held; "
        "`released`: resolved, the hold is released and any agreed difference is an adjustment; "
        "`resolved`: opened and resolved since the pair's last statement, so never held, and any "
        "agreed difference is an adjustment on this statement."
    )
    agreed_ore: int | None = Field(default=None, description="For a resolution: the amount found not owed.")
    opened_by: str
    reason: str


class SettlementStatement(Contract):
    """A monthly statement for one municipality-trust pair, published once to each party
    with identical content except `recipient` and `counterparty`."""

    statement_id: UUID = Field(description="Same for both parties' copies; dedup on it.")
    period: str = Field(pattern=PERIOD_PATTERN, description="Europe/Oslo calendar month, YYYY-MM.")
    recipient: Party
    counterparty: Party
    sequence: int = Field(ge=1, description="1, 2, 3 ... per municipality-trust pair.")
    previous_statement_hash: str | None = Field(
        description="`statement_hash` of the pair's previous statement; null for the first."
    )
    lines: tuple[StatementLine, ...]
    items: tuple[StatementItem, ...]
    adjustments: tuple[AdjustmentLine, ...] = ()
    disputes: tuple[DisputeEntry, ...] = ()
    totals: Totals
    issued_at: datetime
    statement_hash: str = Field(
        description="`sha256:` and the lowercase hex SHA-256 of the canonical JSON (sorted keys, no "
        "spaces, non-ASCII characters as themselves, UTF-8) of this message without `recipient`, "
        "`counterparty` and `statement_hash`.",
        examples=["sha256:5d41402abc4b2a76b9719d911017c592e3b0c44298fc1c149afbf4c8996fb924"],
    )


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
    DISPUTE_REFUSED = "dispute_refused"


class Rejection(Contract):
    """An inbound message that was not accepted, with enough to find and fix it."""

    rejection_id: UUID
    topic: str
    partition: int
    offset: int
    key: str | None = Field(description="The message key, patient identifiers redacted.")
    payload: str = Field(
        description="The payload as text (invalid UTF-8 replaced), anything that looks like a patient "
        "identifier redacted, cut at 64 KiB. Of a JSON object, the value of each field the topic's "
        'contract does not name is replaced by "<not a contract field: not kept>", its name kept.'
    )
    reason: ReasonCode
    message: str = Field(description="What is wrong, for a person.")
    rejected_at: datetime
    # Additions within v1 (2026-12-02): a sender filters the topic by its source and finds the
    # event in its own outbox by its id, without parsing `payload`.
    source: str | None = Field(
        default=None,
        description="The rejected event's `source`, where its payload is a JSON object holding it as "
        "text of at most 256 characters (patient identifiers redacted); null otherwise, and for commands.",
    )
    event_id: str | None = Field(
        default=None,
        description="The rejected event's `event_id` as sent, not necessarily a valid UUID (that may be "
        "why it was rejected); as `source` otherwise.",
    )
    health_trust: str | None = Field(
        default=None, description="The rejected event's `health_trust` as sent; as `source` otherwise."
    )


class ClosePeriod(Contract):
    """Close a month: build and publish the statements of every pair with anything payable."""

    type: Literal["close_period"]
    period: str = Field(pattern=PERIOD_PATTERN, examples=["2026-10"])
    command_id: UUID = Field(description="Idempotency key: a command seen before is ignored.")


class OpenDispute(Contract):
    """Dispute an item or line of a published statement (domain.md section 5): the claim
    states the amount and its basis. Either party of the statement may open one."""

    type: Literal["open_dispute"]
    command_id: UUID = Field(description="Idempotency key.")
    dispute_id: UUID = Field(description="Chosen by the disputing party, to refer to the dispute later.")
    statement_id: UUID
    episode_id: str | None = Field(default=None, description="The item disputed; null for a whole line.")
    category: Category = Field(description="The disputed line's category.")
    service_month: str = Field(pattern=PERIOD_PATTERN, description="The disputed line's service month.")
    amount_ore: int = Field(
        gt=0,
        description="The amount disputed, in øre: at most what is still owed for the item (or the "
        "line): what the statement charged, changed by adjustments to that month since, less what "
        "other disputes of it claim (open: their amount; resolved: the agreed amount). A larger "
        "claim is refused (`dispute_refused`).",
    )
    opened_by: Party
    reason: str = Field(
        min_length=3,
        max_length=2000,
        description="The factual and legal basis of the claim. Published on the pair's statements: a "
        "dispute whose text holds a patient identifier is refused (`dispute_refused`); name the item "
        "by its episode id.",
    )


class ResolveDispute(Contract):
    """Record the outcome of a dispute: upheld in full, in part (with the agreed amount), or rejected."""

    type: Literal["resolve_dispute"]
    command_id: UUID
    dispute_id: UUID
    outcome: Literal["upheld", "partially_upheld", "rejected"]
    agreed_ore: int | None = Field(
        default=None, ge=0, description="For `partially_upheld`: the amount found not owed, in øre."
    )
    resolved_by: str = Field(
        min_length=1,
        description="Who records the outcome, e.g. the dispute board. No patient identifier (as `reason`).",
    )
    reason: str = Field(
        min_length=3,
        max_length=2000,
        description="Why. Published with the adjustment it makes: a patient identifier in it is refused "
        "(`dispute_refused`).",
    )


Command = Annotated[ClosePeriod | OpenDispute | ResolveDispute, Field(discriminator="type")]
