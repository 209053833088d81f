"""From a pair's ledger items, adjustments and disputes to the wire statement, once per
recipient, chained to the pair's previous statement."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from contracts.v1.outbound import (
    AdjustmentLine,
    CategoryTotal,
    CausedBy,
    DisputeEntry,
    LineStatus,
    NetPayer,
    Party,
    PartyRole,
    SettlementStatement,
    StatementItem,
    StatementLine,
    Totals,
)
from contracts.v1.outbound import Category as WireCategory
from services.domain.calendar import Month
from services.domain.chain import statement_hash, statement_hash_with_items, with_items
from services.domain.ledger import LedgerItem
from services.domain.statements import Adjustment, DisputeMovement, settle

_NAMESPACE = uuid.UUID("5d0b6c8e-4f0e-4b5e-9a57-2f0d3c9e7a10")


def statement_id(period: Month, municipality: str, health_trust: str) -> uuid.UUID:
    """Deterministic, so a close that is retried after a crash issues the same statement."""
    return uuid.uuid5(_NAMESPACE, f"{period}/{municipality}/{health_trust}")


def build_statements(
    period: Month,
    municipality: str,
    health_trust: str,
    items: Sequence[LedgerItem],
    issued_at: datetime,
    *,
    sequence: int = 1,
    previous_hash: str | None = None,
    adjustments: Sequence[Adjustment] = (),
    disputes: Sequence[tuple[DisputeMovement, DisputeEntry]] = (),
) -> tuple[SettlementStatement, SettlementStatement]:
    """The municipality's copy and the health trust's copy: same id, content and hash.

    The reference for `encode_statements`, which gives the same JSON and hash without a
    model per item.
    """
    common = _common(
        period, municipality, health_trust, items, issued_at, sequence, previous_hash, adjustments, disputes
    )
    common["items"] = tuple(
        wire_item(item) for item in sorted(items, key=lambda i: (i.category.value, i.subject_id, i.first_day))
    )
    municipality_party, trust_party = _parties(municipality, health_trust)
    draft = SettlementStatement(recipient=municipality_party, counterparty=trust_party, **common)
    common["statement_hash"] = statement_hash(draft.model_dump(mode="json"))
    return (
        SettlementStatement(recipient=municipality_party, counterparty=trust_party, **common),
        SettlementStatement(recipient=trust_party, counterparty=municipality_party, **common),
    )


def wire_item(item: LedgerItem) -> StatementItem:
    """A ledger item as a statement shows it: among the month's items, or as an
    adjustment's item now (the same fields, so the two compare field by field)."""
    return StatementItem(
        category=WireCategory(item.category.value),
        episode_id=item.subject_id,
        service_month=str(item.service_month),
        first_day=item.first_day,
        last_day=item.last_day,
        days=item.quantity,
        amount_ore=item.amount_ore,
        status=LineStatus(item.status.value),
        rule=item.rule_id,
        note=item.not_payable_reason or item.note,
    )


@dataclass(frozen=True)
class EncodedStatement:
    statement_id: uuid.UUID
    sequence: int
    previous_hash: str | None
    hash: str
    # What the database keeps (as JSON text): everything both copies share. Each party's
    # copy is made from it when it is published (`outbox.addressed_copy`).
    body: bytes


def encode_statements(
    period: Month,
    municipality: str,
    health_trust: str,
    line_items: Sequence[LedgerItem],
    items: bytes,
    issued_at: datetime,
    *,
    sequence: int = 1,
    previous_hash: str | None = None,
    adjustments: Sequence[Adjustment] = (),
    disputes: Sequence[tuple[DisputeMovement, DisputeEntry]] = (),
) -> EncodedStatement:
    """`build_statements` for a month of a million items: the same JSON and the same hash.

    The statement around the items is the contract's model with no items; the items come
    rendered as canonical JSON (from SQL, with sorted keys; the array's contents without
    brackets) and are put in its place, both to hash and to publish: an item's keys are in
    another order than the model's, which JSON does not distinguish. `line_items` only
    make the lines and totals: the items, or sums of items that share everything a line is
    keyed on.
    """
    common = _common(
        period,
        municipality,
        health_trust,
        line_items,
        issued_at,
        sequence,
        previous_hash,
        adjustments,
        disputes,
    )
    municipality_party, trust_party = _parties(municipality, health_trust)
    shell = SettlementStatement(recipient=municipality_party, counterparty=trust_party, **common)
    digest = statement_hash_with_items(shell.model_dump(mode="json"), items)
    common["statement_hash"] = digest
    statement = SettlementStatement(recipient=municipality_party, counterparty=trust_party, **common)
    body = statement.model_dump_json(exclude={"recipient", "counterparty"}).encode()
    return EncodedStatement(
        statement_id=common["statement_id"],
        sequence=sequence,
        previous_hash=previous_hash,
        hash=digest,
        body=with_items(body, items),
    )


def _parties(municipality: str, health_trust: str) -> tuple[Party, Party]:
    return Party(role=PartyRole.MUNICIPALITY, id=municipality), Party(
        role=PartyRole.HEALTH_TRUST, id=health_trust
    )


def _common(
    period: Month,
    municipality: str,
    health_trust: str,
    items: Sequence[LedgerItem],
    issued_at: datetime,
    sequence: int,
    previous_hash: str | None,
    adjustments: Sequence[Adjustment],
    disputes: Sequence[tuple[DisputeMovement, DisputeEntry]],
) -> dict[str, Any]:
    """Every field of a statement but the parties, with no items and no hash yet."""
    lines, totals = settle(items, adjustments, [movement for movement, _ in disputes])
    wire_lines = tuple(
        StatementLine(
            category=WireCategory(line.category.value),
            payer_role=PartyRole(line.payer_role.value),
            service_month=str(line.service_month),
            status=LineStatus(line.status.value),
            quantity=line.quantity,
            unit_price_ore=line.unit_price_ore,
            amount_ore=line.amount_ore,
            rule=line.rule_id,
            note=line.note,
        )
        for line in lines
    )
    wire_adjustments = tuple(
        AdjustmentLine(
            category=WireCategory(a.category.value),
            payer_role=PartyRole(a.payer_role.value),
            corrects_month=str(a.corrects_month),
            episode_id=a.subject_id,
            quantity_delta=a.quantity_delta,
            amount_delta_ore=a.amount_delta_ore,
            cause=a.cause,
            caused_by=CausedBy(source=a.caused_by[0], event_id=uuid.UUID(a.caused_by[1]))
            if a.caused_by
            else None,
            dispute_id=uuid.UUID(a.dispute_id) if a.dispute_id else None,
            note=a.note,
            items_now=None if a.items_now is None else tuple(map(wire_item, a.items_now)),
        )
        for a in sorted(
            adjustments, key=lambda a: (a.corrects_month, a.category.value, a.subject_id, a.payer_role.value)
        )
    )
    wire_totals = Totals(
        municipality_pays_ore=totals.municipality_pays_ore,
        health_trust_pays_ore=totals.health_trust_pays_ore,
        net_ore=totals.net_ore,
        net_payer=NetPayer(totals.net_payer.value),
        unrated_quantity=totals.unrated_quantity,
        by_category=tuple(
            CategoryTotal(
                category=WireCategory(c.category.value),
                municipality_pays_ore=c.municipality_pays_ore,
                health_trust_pays_ore=c.health_trust_pays_ore,
            )
            for c in totals.by_category
        ),
        municipality_withheld_ore=totals.municipality_withheld_ore,
        health_trust_withheld_ore=totals.health_trust_withheld_ore,
        net_payable_ore=totals.net_payable_ore,
        net_payable_by=NetPayer(totals.net_payable_by.value),
    )
    return {
        "statement_id": statement_id(period, municipality, health_trust),
        "period": str(period),
        "sequence": sequence,
        "previous_statement_hash": previous_hash,
        "lines": wire_lines,
        "items": (),
        "adjustments": wire_adjustments,
        "disputes": tuple(entry for _, entry in sorted(disputes, key=lambda d: str(d[1].dispute_id))),
        "totals": wire_totals,
        "issued_at": issued_at,
        "statement_hash": "",
    }


def stored_body(statement: SettlementStatement) -> dict[str, Any]:
    """What the database keeps of a statement: everything both copies share."""
    return statement.model_dump(mode="json", exclude={"recipient", "counterparty"})
