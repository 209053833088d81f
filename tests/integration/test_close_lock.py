"""A close commits in two transactions (the month completed, then its statements) under
one lock: no intake or dispute transaction, which take the lock shared, runs between them
or beside them, and the lock is given back however the close ends."""

from __future__ import annotations

import asyncpg
import pytest

from services.adapters.postgres import PERIODS_LOCK, periods_locked
from tests.integration.ledger_harness import Ledger

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
