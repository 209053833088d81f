"""Closing a period: complete the month, then build each pair's statement and enqueue it
for both parties, settling the month; two transactions, under one lock."""

from __future__ import annotations

import logging
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from contracts.v1 import topics
from contracts.v1.outbound import Category as WireCategory
from contracts.v1.outbound import DisputeEntry, PartyRole
from services.adapters import ledger_repository as repo
from services.adapters import outbox, tariff_books
from services.adapters import statement_repository as statements_repo
from services.adapters.outbox import IssuedStatement
from services.adapters.postgres import UnitOfWork, periods_locked
from services.adapters.statement_repository import Pair, RenderedItems
from services.domain.calendar import Month, oslo_day
from services.domain.ledger import PayerRole
from services.domain.municipalities import Registry
from services.domain.statements import DisputeMovement
from services.domain.tariffs import PricedWindow, TariffBook, changed_windows
from services.rating.service import rerate
from services.settlement.disputes import credits_to_what_is_owed
from services.settlement.month_rendering import rendered_month, summed_month
from services.settlement.statements import encode_statements

log = logging.getLogger(__name__)


_NO_ITEMS = RenderedItems(0, b"")
RERATE_CHUNK = 5_000  # subjects re-rated at a time by a close (their facts are read together)
# Subjects a transaction re-rates for a changed book before the close's lock: intake's chunk
# at most, so that it takes no more of PostgreSQL's lock table than an intake transaction.
PRERATE_CHUNK = 250
ANALYZE_EVERY = 5_000  # subjects: how often that re-rating brings the adjustments' statistics up to date


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
    await _rate_a_changed_book_first(pool, tariffs, period, command_id, municipalities)
    # Two transactions under one lock: intake, disputes and other closes wait for both.
    async with periods_locked(pool) as conn:
        # Stays still running, days held for want of a tariff, and, when the tariff book
        # changed since the last re-rating, what its changed rules price, are rated now:
        # through this month, and with today's tariffs (a new price for a closed month: an
        # adjustment). Committed before the close, so that the connections rendering the
        # month read them; should the close then fail, they are what the next attempt rates
        # again. A changed book's subjects were rated already, before the lock: what is left
        # here is what intake may have changed since (running stays, days still held).
        async with conn.transaction():
            if await _handled(conn, period, command_id):
                return CloseResult(period, already_closed=True, statements=0, items=0)
            fingerprint = tariffs.fingerprint()
            keys = await _subjects_to_rate(conn, tariffs, period, await _earlier_books(conn, tariffs))
            await tariff_books.remember(conn, tariffs, complete=True)
            # In chunks: a re-rating holds its subjects' facts at once.
            for start in range(0, len(keys), RERATE_CHUNK):
                await rerate(
                    conn,
                    keys[start : start + RERATE_CHUNK],
                    tariffs,
                    through=period.last_day,
                    cause="tariff",
                    municipalities=municipalities,
                )
            await credits_to_what_is_owed(conn)
        # Repeatable read: the month's items are counted and rendered in one snapshot,
        # shared with the connections rendering it (month_rendering).
        async with conn.transaction(isolation="repeatable_read"):
            # New under the lock: the first transaction found neither it nor the period.
            await _remember(conn, command_id)
            issued = await _issue_statements(pool, conn, period, now)
            await conn.execute(
                "INSERT INTO closed_periods (period, command_id, tariff_fingerprint) VALUES ($1, $2, $3)",
                period.first_day,
                command_id,
                fingerprint,
            )
    log.info("closed %s: %d statements over %d items", period, issued.statements, issued.items)
    return CloseResult(period, already_closed=False, statements=issued.statements, items=issued.items)


async def _rate_a_changed_book_first(
    pool: asyncpg.Pool,
    tariffs: TariffBook,
    period: Month,
    command_id: UUID | None,
    municipalities: Registry | None,
) -> None:
    """When the tariff book changed since the last re-rating, rate what it may price otherwise
    before the close takes its lock, a few hundred subjects a transaction, as intake writes
    (the periods lock shared, then the subjects' locks): a rate added for a year held without
    one, or corrected for a past year, re-rates a year of subjects, minutes nationally, and
    intake waited for all of it while the close held its lock. The book is recorded as used
    but incomplete before the first chunk commits, and complete after the last: a close that
    stops half-way compares its next attempt's book with both books, so it rates all of them
    again with the same book (re-rating a subject already priced by it books nothing) and
    undoes what it priced with another (a change rolled back). The close itself then finds
    the book unchanged and re-rates only what intake may have changed since."""
    async with pool.acquire() as conn:
        if await _closed_or_done(conn, period, command_id):
            return
        earlier = await _earlier_books(conn, tariffs)
        if not earlier and not await repo.subjects_pending_without_items(conn):
            return
        keys = await _subjects_to_rate(conn, tariffs, period, earlier)
        await tariff_books.remember(conn, tariffs, complete=False)
    log.info("re-rating %d subjects for the tariff book before closing %s", len(keys), period)
    for start in range(0, len(keys), PRERATE_CHUNK):
        chunk = keys[start : start + PRERATE_CHUNK]
        async with UnitOfWork(pool) as uow:
            await uow.lock_periods(exclusive=False)
            await uow.lock_subjects(chunk)
            if start % ANALYZE_EVERY < PRERATE_CHUNK:
                # The re-rating adds pending adjustments by the thousand; on statistics from
                # before, the planner read them all for each chunk's few (the unsettled
                # index, filtered by subject): 0.7 ms a subject instead of 0.3 (a rehearsal).
                await uow.conn.execute("ANALYZE adjustments")
            await rerate(
                uow.conn,
                chunk,
                tariffs,
                through=period.last_day,
                cause="tariff",
                municipalities=municipalities,
            )
            await uow.commit()
        if (start + len(chunk)) // 10_000 > start // 10_000:  # minutes nationally: say how far
            log.info("re-rated %d of %d subjects before closing %s", start + len(chunk), len(keys), period)
    async with UnitOfWork(pool) as uow:
        await tariff_books.remember(uow.conn, tariffs, complete=True)
        await uow.commit()


async def _earlier_books(conn: asyncpg.Connection, tariffs: TariffBook) -> list[str]:
    """The books other than `tariffs` whose prices may stand in the ledger: the one the last
    complete re-rating used (a close whose statements then failed has still re-rated with
    it) and any a re-rating started with since and did not finish. Before migration 0012,
    the last close's."""
    books = await tariff_books.used_since_complete(conn) or [
        await conn.fetchval(
            "SELECT tariff_fingerprint FROM closed_periods WHERE tariff_fingerprint IS NOT NULL "
            "ORDER BY period DESC LIMIT 1"
        )
    ]
    return [book for book in books if book is not None and book != tariffs.fingerprint()]


async def _subjects_to_rate(
    conn: asyncpg.Connection, tariffs: TariffBook, period: Month, earlier: Sequence[str]
) -> list[str]:
    """Stays still running, days held up to `period` in months not closed, what the book may
    price otherwise than the `earlier` books (`_earlier_books`), and, once after migration
    0015, the subjects of adjustments pending without their items now (so that no statement
    from now on lacks them)."""
    # What the changed rules price, held days among them (a rule added for a year without a
    # rate covers that year's held days). Only when an earlier book's rules were not kept
    # are the closed months' held days all rated again instead: every later change did so,
    # re-rating each subject ever held (a national year's) for nothing once its days had
    # been priced.
    priced_otherwise = await _priced_otherwise(conn, earlier, tariffs)
    subjects = await repo.subjects_to_extend(conn, period, closed_months_too=priced_otherwise is None)
    subjects += priced_otherwise or []
    subjects += await repo.subjects_pending_without_items(conn)
    return sorted(set(subjects))


async def _priced_otherwise(
    conn: asyncpg.Connection, earlier: Sequence[str], tariffs: TariffBook
) -> list[str] | None:
    """Subjects `tariffs` may price otherwise than the `earlier` books: re-rated now, so a
    rate corrected for days already priced reaches every subject it prices (an adjustment,
    caused by the tariff, for a closed month), not only those a new event happens to
    re-rate. None when an earlier book's rules were not kept."""
    now = tariffs.windows()
    windows: list[PricedWindow] = []
    for fingerprint in earlier:
        before = await tariff_books.windows_of(conn, fingerprint)
        if before is None:
            log.warning(
                "the tariff book changed since the last close, whose book was not kept (closed before "
                "migration 0012): only days held without a price are rated again"
            )
            return None
        windows += changed_windows(before, now)
    return await repo.subjects_priced_within(conn, windows) if windows else []


async def _handled(conn: asyncpg.Connection, period: Month, command_id: UUID | None) -> bool:
    """The command was handled before, or the period is closed already."""
    if command_id is not None and await _command_done(conn, command_id):
        return True
    if await _closed(conn, period):
        await _remember(conn, command_id)  # it was handled, by doing nothing
        return True
    return False


async def _closed_or_done(conn: asyncpg.Connection, period: Month, command_id: UUID | None) -> bool:
    return (command_id is not None and await _command_done(conn, command_id)) or await _closed(conn, period)


async def _command_done(conn: asyncpg.Connection, command_id: UUID) -> bool:
    return bool(await conn.fetchval("SELECT true FROM processed_commands WHERE command_id = $1", command_id))


async def _closed(conn: asyncpg.Connection, period: Month) -> bool:
    return bool(await conn.fetchval("SELECT true FROM closed_periods WHERE period = $1", period.first_day))


async def _remember(conn: asyncpg.Connection, command_id: UUID | None) -> None:
    if command_id is not None:
        await conn.execute(
            "INSERT INTO processed_commands (command_id, type) VALUES ($1, 'close_period')", command_id
        )


async def carries_what_is_pending(conn: asyncpg.Connection, period: Month) -> bool:
    """[product] Whether the statements of `period` carry the adjustments and dispute
    movements pending for their pairs: not when a later month is closed already. A month
    closed after later ones (a month skipped, or one before the first closed, for late
    events) settles its own items; what is pending waits for the next statement of a month
    at least as late as every month closed (a hospital integration audit found a statement
    for 2014-06 carrying 2025-12's adjustments). (docs/domain.md, section 6)"""
    latest = await conn.fetchval("SELECT max(period) FROM closed_periods")
    return latest is None or Month.of(latest) <= period


async def _issue_statements(
    pool: asyncpg.Pool, conn: asyncpg.Connection, period: Month, now: datetime
) -> _Issued:
    """Every pair's statement for `period`, stored and enqueued, its adjustments and dispute
    movements marked as on it."""
    # The items go from SQL to the statement as rendered JSON, a range of pairs at a time;
    # lines and totals come from their sums per line key. No object per item, and not the
    # whole month in memory: a month may have a million items, hundreds of megabytes.
    sums = await summed_month(pool, conn, period)
    if await carries_what_is_pending(conn, period):
        adjustments = await statements_repo.unsettled_adjustments(conn)
        disputes = await statements_repo.disputes_to_show(conn)
    else:
        adjustments, disputes = {}, {}
    heads = await statements_repo.chain_heads(conn)

    issued = _Issued(conn)
    adjustment_ids: dict[UUID, list[int]] = {}
    held: dict[UUID, list[UUID]] = defaultdict(list)
    released: dict[UUID, list[UUID]] = defaultdict(list)

    def issue(pair: Pair, items: RenderedItems) -> None:
        municipality, health_trust = pair
        head = heads.get(pair)
        movements = [_dispute_movement(d) for d in disputes.get(pair, [])]
        statement = encode_statements(
            period,
            municipality,
            health_trust,
            sums.lines.get(pair, []),
            items.canonical,
            now,
            sequence=head.sequence + 1 if head else 1,
            previous_hash=head.hash if head else None,
            adjustments=[a for _, a in adjustments.get(pair, [])],
            disputes=movements,
        )
        sid = statement.statement_id
        issued.add(
            (
                sid,
                period.first_day,
                municipality,
                health_trust,
                statement.body,
                now,
                statement.sequence,
                statement.previous_hash,
                statement.hash,
            ),
            IssuedStatement(sid, statement.body, municipality, health_trust),
            items.count,
        )
        adjustment_ids[sid] = [adjustment_id for adjustment_id, _ in adjustments.get(pair, [])]
        for movement, _entry in movements:
            if movement.effect == "held":
                held[sid].append(UUID(movement.dispute_id))
            elif movement.effect in ("released", "resolved"):
                released[sid].append(UUID(movement.dispute_id))

    # Every pair with items, adjustments or disputes, in one sorted order: the items'
    # pairs come sorted, the others are merged in between.
    others = deque(sorted(set(adjustments) | set(disputes)))
    async with aclosing(rendered_month(pool, conn, period, sums.items)) as month:
        async for pair, items in month:
            while others and others[0] < pair:
                issue(others.popleft(), _NO_ITEMS)
            if others and others[0] == pair:
                others.popleft()
            issue(pair, items)
            await issued.write_if_large()
    for pair in others:
        issue(pair, _NO_ITEMS)
    await issued.write()
    await statements_repo.settle_rows(conn, adjustment_ids, held, released)
    return issued


class _Issued:
    """Statements and the outbox rows that name them (one per party: the relay makes each
    copy from the stored body), written in the close's transaction a few megabytes at a
    time, in the order they were issued (the outbox publishes in that order)."""

    WRITE_AT_BYTES = 16 * 2**20  # of statement bodies

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn
        self._rows: list[tuple[Any, ...]] = []
        self._issued: list[IssuedStatement] = []
        self._bytes = 0
        self.statements = 0
        self.items = 0

    def add(self, row: tuple[Any, ...], issued: IssuedStatement, items: int) -> None:
        self._rows.append(row)
        self._issued.append(issued)
        self._bytes += len(issued.body)
        self.statements += 1
        self.items += items

    async def write_if_large(self) -> None:
        if self._bytes >= self.WRITE_AT_BYTES:
            await self.write()

    async def write(self) -> None:
        if self._rows:
            await statements_repo.insert_statements(self._conn, self._rows)
            await outbox.enqueue_statements(self._conn, topics.SETTLEMENTS, self._issued)
        self._rows, self._issued, self._bytes = [], [], 0


def _dispute_movement(row: asyncpg.Record) -> tuple[DisputeMovement, DisputeEntry]:
    """An open dispute not yet held is held now; one held earlier and still open is shown;
    a resolved one whose amount was held is released (its outcome is an adjustment); one
    opened and resolved since the last statement, never held, is shown once as resolved:
    both parties see every dispute, whatever its timing (domain.md section 5)."""
    if row["status"] == "open":
        effect = "open" if row["held_on"] else "held"
    else:
        effect = "released" if row["held_on"] else "resolved"
    movement = DisputeMovement(
        dispute_id=str(row["dispute_id"]),
        payer_role=PayerRole(row["payer_role"]),
        amount_ore=row["amount_ore"],
        effect=effect,
    )
    entry = DisputeEntry(
        dispute_id=row["dispute_id"],
        disputed_statement_id=row["statement_id"],
        episode_id=row["subject_id"],
        category=WireCategory(row["category"]),
        service_month=str(Month.of(row["service_month"])),
        payer_role=PartyRole(row["payer_role"]),
        amount_ore=row["amount_ore"],
        status=row["status"],
        effect=effect,
        agreed_ore=row["agreed_ore"],
        opened_by=row["opened_by"],
        reason=row["reason"],
    )
    return movement, entry
