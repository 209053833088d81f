"""`settlement verify` checks each statement's hash over the message as it was published.

It parsed each message into today's contract model and wrote it out again: a statement
issued before `AdjustmentLine.items_now` was added then gained `"items_now":null` in each
adjustment, and every such statement read as altered, and the chain after it as broken.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
import pytest

from contracts.v1.outbound import SettlementStatement
from services.cli import ledger_commands
from services.domain.calendar import Month
from services.domain.chain import statement_hash
from services.domain.ledger import Category, LedgerItem, PayerRole
from services.domain.statements import Adjustment
from services.runtime.environment import Endpoints
from services.settlement.statements import build_statements

BERGEN, HELSE_BERGEN = "4601", "983974724"
ENDPOINTS = Endpoints("broker.example:9092", "postgresql://db.example/settlement", "00" * 32, embedded=False)


def as_issued_before_items_now() -> list[dict[str, Any]]:
    """Both copies of a statement with an adjustment, as the service issued it before
    `items_now`: no such key in its adjustments, and its hash over that."""
    item = LedgerItem(
        category=Category.DISCHARGE_READY_BED_DAYS,
        subject_id="EP-1",
        health_trust=HELSE_BERGEN,
        municipality=BERGEN,
        payer_role=PayerRole.MUNICIPALITY,
        service_month=Month(2025, 2),
        first_day=date(2025, 2, 3),
        last_day=date(2025, 2, 5),
        quantity=3,
        unit_price_ore=598_100,
        amount_ore=3 * 598_100,
        rule_id="national.discharge-ready.2025",
    )
    late = Adjustment(
        Category.DISCHARGE_READY_BED_DAYS,
        PayerRole.MUNICIPALITY,
        Month(2025, 1),
        "EP-0",
        -2,
        -1_196_200,
        "event",
    )
    issued = datetime(2025, 3, 1, 6, 0, tzinfo=UTC)
    copies = []
    for copy in build_statements(Month(2025, 2), BERGEN, HELSE_BERGEN, [item], issued, adjustments=[late]):
        message = copy.model_dump(mode="json")
        for adjustment in message["adjustments"]:
            del adjustment["items_now"]
        message["statement_hash"] = statement_hash(message)
        copies.append(message)
    return copies


class StoredStatements:
    """The database's side: the statement as stored (its body parsed and as bytes, its hash),
    for every query."""

    def __init__(self, message: dict[str, Any]) -> None:
        body = {k: v for k, v in message.items() if k not in ("recipient", "counterparty")}
        self.rows = [
            {
                "statement_id": message["statement_id"],
                "sequence": message["sequence"],
                "body": body,
                "body_bytes": json.dumps(body, ensure_ascii=False).encode(),
                "hash": message["statement_hash"],
            }
        ]

    async def fetch(self, query: str, *args: object) -> list[dict[str, Any]]:
        return self.rows

    async def set_type_codec(self, *args: object, **kwargs: object) -> None:
        pass

    async def close(self) -> None:
        pass


async def test_a_statement_issued_before_a_field_was_added_verifies_as_published(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    copies = as_issued_before_items_now()
    raw = [json.dumps(m, ensure_ascii=False).encode() for m in copies]
    assert b"items_now" not in raw[0]
    # Today's model reads it, and writes it out otherwise: hashed as written again, it fails.
    again = SettlementStatement.model_validate_json(raw[0]).model_dump(mode="json")
    assert statement_hash(again) != copies[0]["statement_hash"]

    async def connect(url: str) -> StoredStatements:
        return StoredStatements(copies[0])

    async def published(kafka: object) -> list[tuple[SettlementStatement, bytes]]:
        return [(SettlementStatement.model_validate_json(r), r) for r in raw]

    monkeypatch.setattr(asyncpg, "connect", connect)
    monkeypatch.setattr(ledger_commands, "read_published", published)
    assert await ledger_commands._verify(ENDPOINTS, BERGEN, HELSE_BERGEN) == []


@pytest.mark.parametrize(
    ("stored", "problem"),
    [
        (b'{"statement_id": "cut sh', "its stored body is not a JSON object: it was altered"),
        (b"\xff\xfe", "its stored body is not a JSON object: it was altered"),
        (None, "its body is missing from the database"),
    ],
    ids=["not JSON", "not UTF-8", "missing"],
)
async def test_a_body_altered_in_the_database_is_reported_not_raised(
    monkeypatch: pytest.MonkeyPatch, stored: bytes | None, problem: str
) -> None:
    copies = as_issued_before_items_now()
    raw = [json.dumps(m, ensure_ascii=False).encode() for m in copies]
    database = StoredStatements(copies[0])
    database.rows[0]["body_bytes"] = stored

    async def connect(url: str) -> StoredStatements:
        return database

    async def published(kafka: object) -> list[tuple[SettlementStatement, bytes]]:
        return [(SettlementStatement.model_validate_json(r), r) for r in raw]

    monkeypatch.setattr(asyncpg, "connect", connect)
    monkeypatch.setattr(ledger_commands, "read_published", published)
    sid = copies[0]["statement_id"]
    assert await ledger_commands._verify(ENDPOINTS, BERGEN, HELSE_BERGEN) == [
        f"database: statement {sid} (sequence 1): {problem}",
        f"statement {sid} was published but is not in the database",
    ]
