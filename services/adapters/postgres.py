"""The asyncpg pool and a small unit of work: one transaction, rolled back unless committed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, TypeVar

import asyncpg
import orjson

log = logging.getLogger(__name__)
T = TypeVar("T")

# Errors that mean "the database is not there right now": wait and try again, never reject.
TRANSIENT_DB_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.SerializationError,
    asyncpg.exceptions.DeadlockDetectedError,
)

# Transaction-level advisory lock: intake holds it shared, a period close exclusively, so
# an event is either in a closed month's statement or seen as late, never half of each.
PERIODS_LOCK = 7_301_2012
# The first key of the two-key advisory locks a writer holds per subject (lock_subjects).
SUBJECTS_LOCK_SPACE = 2012_0101


def _json_binary(value: Any) -> bytes:
    """json's binary form is the text itself. Bytes or text already encoded as JSON go as
    they are: intake's payloads and a statement's body are written as they were encoded."""
    if isinstance(value, bytes):
        return value
    return value.encode() if isinstance(value, str) else orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec(
        "json", encoder=_json_binary, decoder=orjson.loads, schema="pg_catalog", format="binary"
    )


async def create_pool(database_url: str, *, min_size: int = 1, max_size: int = 4) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        database_url, min_size=min_size, max_size=max_size, init=_init_connection
    )
    assert pool is not None
    return pool


class UnitOfWork:
    """`async with UnitOfWork(pool) as uow:` then `uow.conn` inside one transaction."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._conn: asyncpg.pool.PoolConnectionProxy | None = None
        self._tx: asyncpg.transaction.Transaction | None = None
        self._committed = False

    @property
    def conn(self) -> asyncpg.Connection:
        assert self._conn is not None, "use the unit of work inside `async with`"
        return self._conn

    async def __aenter__(self) -> UnitOfWork:
        self._conn = await self._pool.acquire()
        try:
            self._tx = self._conn.transaction()
            await self._tx.start()
        except BaseException:
            await self._pool.release(self._conn)
            raise
        return self

    async def commit(self) -> None:
        assert self._tx is not None
        await self._tx.commit()
        self._committed = True

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if not self._committed and self._tx is not None:
                try:
                    await self._tx.rollback()
                except TRANSIENT_DB_ERRORS:
                    pass  # the connection is gone; so is the transaction
        finally:
            if self._conn is not None:
                await self._pool.release(self._conn)

    async def lock_periods(self, *, exclusive: bool) -> None:
        fn = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
        await self.conn.execute(f"SELECT {fn}($1)", PERIODS_LOCK)

    async def lock_subjects(self, subject_keys: Iterable[str]) -> None:
        """One writer per subject until commit, taken in one order (no deadlock).

        A subject's facts are read and re-rated in the transaction that adds new ones; two
        transactions adding facts of one subject at once would each rate it without the
        other's, and the later commit would leave it priced from part of its facts (days
        unbilled, silently). The contract's key keeps a subject on one partition, but not
        every producer's partitioner puts a key where another's does (librdkafka's default
        is not Java's), a producer may key otherwise, partitions may be added, and a
        rebalance briefly gives a partition two owners: so the lock is the subject's own.
        Taken before the facts are read: under read committed, the reads after it see what
        the transaction it waited for committed. (The two-key form, in a space of its own.)"""
        keys = sorted({zlib.crc32(key.encode()) - 2**31 for key in subject_keys})
        if keys:
            await self.conn.execute(
                "SELECT pg_advisory_xact_lock($1::int, k) FROM unnest($2::int[]) AS k",
                SUBJECTS_LOCK_SPACE,
                keys,
            )


@asynccontextmanager
async def periods_locked(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """A connection holding the periods lock exclusively until the block ends, across as
    many transactions as it runs: a close that commits in steps, with no intake
    transaction (which takes the lock shared) between them."""
    async with pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock($1)", PERIODS_LOCK)
        try:
            yield conn
        finally:
            # On a broken connection the lock went with the session; and the pool resets a
            # connection it takes back (pg_advisory_unlock_all), should this fail otherwise.
            with contextlib.suppress(*TRANSIENT_DB_ERRORS):
                await conn.execute("SELECT pg_advisory_unlock($1)", PERIODS_LOCK)


async def export_snapshot(conn: asyncpg.Connection) -> str:
    """The transaction's snapshot, for other connections to read exactly what it sees
    (`use_snapshot`) while it lasts."""
    return str(await conn.fetchval("SELECT pg_export_snapshot()"))


async def use_snapshot(conn: asyncpg.Connection, snapshot: str) -> None:
    """At the start of a repeatable-read transaction: see what `export_snapshot`'s did."""
    if not _SNAPSHOT_ID.fullmatch(snapshot):
        raise ValueError(f"not a snapshot id: {snapshot!r}")
    await conn.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")  # takes no parameters


_SNAPSHOT_ID = re.compile(r"[0-9A-F]+-[0-9A-F]+(-[0-9]+)?")


async def retry_transient(
    operation: Callable[[], Awaitable[T]],
    *,
    what: str,
    first_delay: float = 0.2,
    max_delay: float = 5.0,
) -> T:
    """Run `operation` until it succeeds or fails for a reason that is not transient.

    There is no attempt limit on purpose: a database outage must pause processing, and
    must never turn valid events into rejections.
    """
    delay = first_delay
    while True:
        try:
            return await operation()
        except TRANSIENT_DB_ERRORS as exc:
            log.warning("%s: database unavailable (%s); retrying in %.1fs", what, type(exc).__name__, delay)
            await asyncio.sleep(delay)
            delay = min(max_delay, delay * 2)
