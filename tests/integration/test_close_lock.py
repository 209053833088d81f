"""A close commits in two transactions (the month completed, then its statements) under
one lock: no intake or dispute transaction, which take the lock shared, runs between them
or beside them, and the lock is given back however the close ends."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from services.adapters.postgres import PERIODS_LOCK, SUBJECTS_LOCK_SPACE, UnitOfWork, periods_locked
from services.domain.tariffs import build_book
from services.settlement import service as settlement_service
from tests.integration.ledger_harness import Ledger, discharge_ready_of, national_rate

pytestmark = pytest.mark.integration


async def shared_lock_free(pool: asyncpg.Pool) -> bool:
    """What an intake transaction would find: can it take the periods lock shared now?"""
    async with pool.acquire() as conn, conn.transaction():
        return bool(await conn.fetchval("SELECT pg_try_advisory_xact_lock_shared($1)", PERIODS_LOCK))


async def test_the_lock_spans_the_close_transactions(ledger: Ledger) -> None:
    assert await shared_lock_free(ledger.pool)
    async with periods_locked(ledger.pool) as conn:
        async with conn.transaction():
            await conn.execute("SELECT 1")
        assert not await shared_lock_free(ledger.pool), "between the close's transactions"
        async with conn.transaction():
            assert not await shared_lock_free(ledger.pool)
    assert await shared_lock_free(ledger.pool)


async def test_the_lock_is_given_back_when_the_close_fails(ledger: Ledger) -> None:
    with pytest.raises(asyncpg.DivisionByZeroError):
        async with periods_locked(ledger.pool) as conn, conn.transaction():
            await conn.execute("SELECT 1 / 0")
    assert await shared_lock_free(ledger.pool)


async def test_a_changed_book_is_rated_before_the_close_takes_its_lock_and_intake_goes_on_meanwhile(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Found rehearsing the 2026 rate's addition: the close after it re-rated every held
    # subject under its lock, and intake waited for all of it (46 s for 55,000 episodes).
    # Now the close rates them first, as intake writes: the periods lock shared, then the
    # subjects' own. A transaction holding a held subject's lock (intake writing that
    # episode) keeps the close waiting, while other intake transactions go on.
    trust, municipality = "983974724", "4624"
    dr = discharge_ready_of(trust, municipality)
    await ledger.send(
        dr("admission_notified", "2026-01-05T10:00:00+01:00", episode_id="EP-HELD"),
        dr("declared_ready", "2026-01-06T09:00:00+01:00", episode_id="EP-HELD"),
        dr("municipality_notified", "2026-01-06T11:00:00+01:00", episode_id="EP-HELD"),
        dr("municipality_can_receive", "2026-01-16T09:00:00+01:00", episode_id="EP-HELD"),
    )
    await ledger.close("2026-01")  # no rate for 2026 in the shipped book: 10 days held
    async with ledger.pool.acquire() as conn:
        [subject] = await conn.fetchval("SELECT array_agg(DISTINCT subject_key) FROM ledger_items")
    rate = national_rate(2026, "6200")

    under_the_lock: list[str] = []  # subjects the close re-rated while intake had to wait
    rerate = settlement_service.rerate

    async def recording(conn: asyncpg.Connection, keys: list[str], *args: Any, **kwargs: Any) -> Any:
        if not await shared_lock_free(ledger.pool):
            under_the_lock.extend(keys)
        return await rerate(conn, keys, *args, **kwargs)

    monkeypatch.setattr(settlement_service, "rerate", recording)

    async with UnitOfWork(ledger.pool) as writing:  # intake, writing the held episode
        await writing.lock_periods(exclusive=False)
        await writing.lock_subjects([subject])
        close = asyncio.create_task(
            ledger.close("2026-02", tariffs=build_book([*ledger.tariffs.rules, rate]))
        )
        await waiting_for_a_subject(ledger.pool, close)
        assert await shared_lock_free(ledger.pool), "intake waits while the close re-rates"
    result = await asyncio.wait_for(close, 30)

    assert (result.already_closed, result.statements) == (False, 1)  # the pair's
    feb = (await ledger.published(f"municipality:{municipality}"))[-1][1]
    assert [(a["episode_id"], a["corrects_month"], a["amount_delta_ore"]) for a in feb["adjustments"]] == [
        ("EP-HELD", "2026-01", 10 * 620_000)
    ]
    assert under_the_lock == [], "the close rated the changed book's subjects again under its lock"
    assert await shared_lock_free(ledger.pool)


async def waiting_for_a_subject(pool: asyncpg.Pool, close: asyncio.Task[object]) -> None:
    """Until a transaction waits for a subject's advisory lock (the close's re-rating)."""
    async with pool.acquire() as conn:
        for _ in range(200):
            assert not close.done(), "the close ended without waiting for the subject being written"
            if await conn.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND classid = $1",
                SUBJECTS_LOCK_SPACE & 0xFFFFFFFF,
            ):
                return
            await asyncio.sleep(0.05)
    raise AssertionError("nothing waited for the subject's lock in 10 s")
