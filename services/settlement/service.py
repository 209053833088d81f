"""Closing a period: complete the month, build each pair's statement, settle its items and
enqueue both copies, all in one transaction."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from contracts.v1 import topics
from services.adapters import ledger_repository as repo
from services.adapters import outbox
from services.adapters.postgres import UnitOfWork
from services.domain.calendar import Month, oslo_day
from services.domain.ledger import LedgerItem
from services.domain.municipalities import Registry
from services.domain.tariffs import TariffBook
from services.rating.service import rerate
from services.settlement.statements import build_statements

log = logging.getLogger(__name__)


class PeriodNotClosable(ValueError):
    """The period cannot be closed (it has not ended yet)."""


@dataclass(frozen=True)
class CloseResult:
    period: Month
    already_closed: bool
    statements: int
    items: int


async def close_period(
    pool: asyncpg.Pool,
    tariffs: TariffBook,
    period: Month,
    *,
    command_id: UUID | None,
    clock: Callable[[], datetime],
    municipalities: Registry | None = None,
) -> CloseResult:
    now = clock()
    if period.last_day >= oslo_day(now):
        raise PeriodNotClosable(f"{period} has not ended yet (today is {oslo_day(now)} in Oslo)")
    async with UnitOfWork(pool) as uow:
        conn = uow.conn
        await uow.lock_periods(exclusive=True)
        if command_id is not None:
            first_time = await conn.fetchval(
                "INSERT INTO processed_commands (command_id, type) VALUES ($1, 'close_period') "
                "ON CONFLICT DO NOTHING RETURNING true",
                command_id,
            )
            if not first_time:
                return CloseResult(period, already_closed=True, statements=0, items=0)
        if await conn.fetchval("SELECT true FROM closed_periods WHERE period = $1", period.first_day):
            await uow.commit()  # keep the command id: it was handled, by doing nothing
            return CloseResult(period, already_closed=True, statements=0, items=0)

        # Stays still running, and days held unrated, are rated through this month now.
        await rerate(
            conn,
            await repo.subjects_to_extend(conn, period),
            tariffs,
            through=period.last_day,
            municipalities=municipalities,
        )

        rows = await conn.fetch(
            "SELECT * FROM ledger_items WHERE service_month = $1 AND statement_id IS NULL",
            period.first_day,
        )
        by_pair: dict[tuple[str, str], list[LedgerItem]] = defaultdict(list)
        for row in rows:
            by_pair[(row["municipality"], row["health_trust"])].append(repo.item_from_row(row))

        statement_rows = []
        messages: list[tuple[str, str | None, bytes]] = []
        for (municipality, health_trust), items in sorted(by_pair.items()):
            to_municipality, to_trust = build_statements(period, municipality, health_trust, items, now)
            statement_rows.append(
                (
                    to_municipality.statement_id,
                    period.first_day,
                    municipality,
                    health_trust,
                    to_municipality.model_dump(mode="json", exclude={"recipient", "counterparty"}),
                    now,
                )
            )
            for copy in (to_municipality, to_trust):
                messages.append((topics.SETTLEMENTS, copy.recipient.key, copy.model_dump_json().encode()))
        await conn.executemany(
            "INSERT INTO statements (statement_id, period, municipality, health_trust, body, issued_at) "
            "VALUES ($1, $2, $3, $4, $5, $6)",
            statement_rows,
        )
        await conn.execute(
            """
            UPDATE ledger_items li SET statement_id = s.statement_id
            FROM statements s
            WHERE li.service_month = $1 AND li.statement_id IS NULL
              AND s.period = $1 AND s.municipality = li.municipality AND s.health_trust = li.health_trust
            """,
            period.first_day,
        )
        await outbox.enqueue(conn, messages)
        await conn.execute(
            "INSERT INTO closed_periods (period, command_id) VALUES ($1, $2)", period.first_day, command_id
        )
        await uow.commit()
    log.info("closed %s: %d statements over %d items", period, len(statement_rows), len(rows))
    return CloseResult(period, already_closed=False, statements=len(statement_rows), items=len(rows))
