"""From a pair's ledger items to the wire statement, once per recipient."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from contracts.v1.outbound import (
    Category,
    CategoryTotal,
    LineStatus,
    NetPayer,
    Party,
    PartyRole,
    SettlementStatement,
    StatementItem,
    StatementLine,
    Totals,
)
from services.domain.calendar import Month
from services.domain.ledger import LedgerItem
from services.domain.statements import summarise

_NAMESPACE = uuid.UUID("5d0b6c8e-4f0e-4b5e-9a57-2f0d3c9e7a10")


def statement_id(period: Month, municipality: str, health_trust: str) -> uuid.UUID:
    """Deterministic, so a close that is retried after a crash issues the same statement."""
    return uuid.uuid5(_NAMESPACE, f"{period}/{municipality}/{health_trust}")


def build_statements(
    period: Month, municipality: str, health_trust: str, items: Sequence[LedgerItem], issued_at: datetime
) -> tuple[SettlementStatement, SettlementStatement]:
    """The municipality's copy and the health trust's copy: same id, lines and totals."""
    lines, totals = summarise(items)
    wire_lines = tuple(
        StatementLine(
            category=Category(line.category.value),
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
    wire_items = tuple(
        StatementItem(
            category=Category(item.category.value),
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
        for item in sorted(items, key=lambda i: (i.category.value, i.subject_id, i.first_day))
    )
    wire_totals = Totals(
        municipality_pays_ore=totals.municipality_pays_ore,
        health_trust_pays_ore=totals.health_trust_pays_ore,
        net_ore=totals.net_ore,
        net_payer=NetPayer(totals.net_payer.value),
        unrated_quantity=totals.unrated_quantity,
        by_category=tuple(
            CategoryTotal(
                category=Category(c.category.value),
                municipality_pays_ore=c.municipality_pays_ore,
                health_trust_pays_ore=c.health_trust_pays_ore,
            )
            for c in totals.by_category
        ),
    )
    municipality_party = Party(role=PartyRole.MUNICIPALITY, id=municipality)
    trust_party = Party(role=PartyRole.HEALTH_TRUST, id=health_trust)
    common = {
        "statement_id": statement_id(period, municipality, health_trust),
        "period": str(period),
        "lines": wire_lines,
        "items": wire_items,
        "totals": wire_totals,
        "issued_at": issued_at,
    }
    return (
        SettlementStatement(recipient=municipality_party, counterparty=trust_party, **common),
        SettlementStatement(recipient=trust_party, counterparty=municipality_party, **common),
    )
