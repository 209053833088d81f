"""SQL for closing a period: what a pair's next statement carries, and the chain."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg

from services.domain.calendar import Month
from services.domain.ledger import Category, PayerRole
from services.domain.statements import Adjustment

Pair = tuple[str, str]  # municipality, health trust


async def unsettled_adjustments(conn: asyncpg.Connection) -> dict[Pair, list[tuple[int, Adjustment]]]:
    rows = await conn.fetch("SELECT * FROM adjustments WHERE statement_id IS NULL ORDER BY id")
    found: dict[Pair, list[tuple[int, Adjustment]]] = {}
    for r in rows:
        if r["quantity_delta"] == 0 and r["amount_delta_ore"] == 0:
            continue
        found.setdefault((r["municipality"], r["health_trust"]), []).append(
            (
                r["id"],
                Adjustment(
                    category=Category(r["category"]),
                    payer_role=PayerRole(r["payer_role"]),
                    corrects_month=Month.of(r["corrects_month"]),
                    subject_id=r["subject_id"],
                    quantity_delta=r["quantity_delta"],
                    amount_delta_ore=r["amount_delta_ore"],
                    cause=r["cause"],
                    caused_by=(r["caused_by_source"], str(r["caused_by_event_id"]))
                    if r["caused_by_source"]
                    else None,
                    dispute_id=str(r["dispute_id"]) if r["dispute_id"] else None,
                    note=r["note"],
                ),
            )
        )
    return found


async def disputes_to_show(conn: asyncpg.Connection) -> dict[Pair, list[asyncpg.Record]]:
    """Open disputes (held now or still held) and resolved ones whose hold is not yet released."""
    rows = await conn.fetch(
        """
        SELECT * FROM disputes
        WHERE status = 'open' OR (held_on IS NOT NULL AND released_on IS NULL)
        ORDER BY opened_at, dispute_id
        """
    )
    found: dict[Pair, list[asyncpg.Record]] = {}
    for r in rows:
        found.setdefault((r["municipality"], r["health_trust"]), []).append(r)
    return found


@dataclass(frozen=True)
class ChainHead:
    sequence: int
    hash: str | None


async def chain_heads(conn: asyncpg.Connection) -> dict[Pair, ChainHead]:
    rows = await conn.fetch(
        """
        SELECT DISTINCT ON (municipality, health_trust) municipality, health_trust, sequence, hash
        FROM statements ORDER BY municipality, health_trust, sequence DESC
        """
    )
    return {(r["municipality"], r["health_trust"]): ChainHead(r["sequence"], r["hash"]) for r in rows}


async def insert_statements(conn: asyncpg.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """(statement_id, period, municipality, health_trust, body, issued_at, sequence, previous_hash, hash)"""
    await conn.executemany(
        """
        INSERT INTO statements (statement_id, period, municipality, health_trust, body, issued_at,
                                sequence, previous_hash, hash)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
        """,
        rows,
    )


async def settle_rows(
    conn: asyncpg.Connection,
    period: Month,
    adjustment_ids: dict[UUID, list[int]],
    held: dict[UUID, list[UUID]],
    released: dict[UUID, list[UUID]],
) -> None:
    """Mark the month's items, the adjustments and the dispute movements as on their statement."""
    await conn.execute(
        """
        UPDATE ledger_items li SET statement_id = s.statement_id
        FROM statements s
        WHERE li.service_month = $1 AND li.statement_id IS NULL
          AND s.period = $1 AND s.municipality = li.municipality AND s.health_trust = li.health_trust
        """,
        period.first_day,
    )
    for statement, ids in adjustment_ids.items():
        await conn.execute(
            "UPDATE adjustments SET statement_id = $1 WHERE id = ANY($2::bigint[])", statement, ids
        )
    for statement, disputes in held.items():
        await conn.execute(
            "UPDATE disputes SET held_on = $1 WHERE dispute_id = ANY($2::uuid[])", statement, disputes
        )
    for statement, disputes in released.items():
        await conn.execute(
            "UPDATE disputes SET released_on = $1 WHERE dispute_id = ANY($2::uuid[])", statement, disputes
        )
