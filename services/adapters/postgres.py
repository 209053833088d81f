"""The asyncpg pool and a small unit of work: one transaction, rolled back unless committed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, TypeVar

import asyncpg
import orjson

log = logging.getLogger(__name__)
T = TypeVar("T")
# Connections per service process: the outbox relay's, and the rest for intake's writes or
# the close's readers (Settings.database_pool_size). Two is the least: a writer and the relay.
DEFAULT_POOL_SIZE = 4
SMALLEST_POOL_SIZE = 2

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
# Of those, the ones that mean two transactions met, not that the database is away.
_CONFLICTS = (asyncpg.exceptions.SerializationError, asyncpg.exceptions.DeadlockDetectedError)

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


async def create_pool(database_url: str, *, max_size: int = DEFAULT_POOL_SIZE) -> asyncpg.Pool:
    """The pool, with one connection made at once: a database that is away is found here.

    No connection floor (`min_size=0`): asyncpg 0.32 keeps a floor by reconnecting in a task
    of its own, which logs a warning with a traceback at every attempt while the database is
    away. Every use of the pool reconnects anyway when it acquires, under the services' own
    retries, which say what waits and why in a line (`retry_transient`, the outbox relay)."""
    pool = await asyncpg.create_pool(database_url, min_size=0, max_size=max_size, init=_init_connection)
    assert pool is not None
    try:
        async with pool.acquire():
            pass
    except BaseException:
        pool.terminate()
        raise
    return pool


class ConnectionLost(ConnectionError):
    """The server closed a connection of the pool while it sat idle or between statements
    (shut down, terminated). asyncpg reads the server's farewell (a FATAL error) as an
    error nobody asked for, and refuses the next statement on that connection with an
    `InternalClientError` of its protocol's state, before it notices the socket's end
    (MagicStack/asyncpg#784). As an `OSError`, this is one of `TRANSIENT_DB_ERRORS`."""


def _dropped_by_server(exc: BaseException) -> bool:
    # State 2 is asyncpg's "consuming an error until the server is ready again": at the start
    # of a statement, only an error the server sent unasked leaves it there.
    return isinstance(exc, asyncpg.InternalClientError) and "another operation (2) is in progress" in str(exc)


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
        except BaseException as exc:
            await self._release()
            if _dropped_by_server(exc):
                raise ConnectionLost("the server closed the connection") from exc
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
                except Exception as failed:
                    if not (isinstance(failed, TRANSIENT_DB_ERRORS) or _dropped_by_server(failed)):
                        raise
                    # the connection is gone; so is the transaction
        finally:
            await self._release()
        if exc is not None and _dropped_by_server(exc):
            raise ConnectionLost("the server closed the connection") from exc

    async def _release(self) -> None:
        """Give the connection back. Should it fail to reset (the server closed it under
        us), asyncpg closes it and makes a new one when one is next needed. That is no
        failure of the unit's, whose transaction committed, rolled back, or went with the
        connection: it failed a unit that had committed, and took the place of a unit's own
        error."""
        if self._conn is None:
            return
        try:
            await self._pool.release(self._conn)
        except (*TRANSIENT_DB_ERRORS, asyncpg.InternalClientError) as exc:
            log.debug("a connection failed to reset on release and was closed (%s)", type(exc).__name__)

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


@asynccontextmanager
async def planner_settings(conn: asyncpg.Connection, **settings: str) -> AsyncIterator[None]:
    """Planner `settings` (e.g. enable_sort="off") for the queries inside, in `conn`'s
    transaction, and as they were after it: the transaction goes on. Should a query inside
    fail, they stay until the transaction's rollback, which undoes them."""
    before = [(name, await conn.fetchval("SELECT current_setting($1)", name)) for name in settings]
    for name, value in settings.items():
        await conn.execute("SELECT set_config($1, $2, true)", name, value)
    yield
    for name, value in before:
        await conn.execute("SELECT set_config($1, $2, true)", name, value)


class DatabaseOutage:
    """What a process says of the database being away, whichever of its tasks finds it so:
    one warning when the first finds it, naming why; a reminder every `remind_every` seconds
    while it stays away; one line when a task gets through again. (Each task said so at
    every retry, three writers and the relay a dozen lines a minute, and none said when the
    outage was over.) Conflicts between transactions are no outage and are said at once.

    Only an attempt begun since the last change tells of the next one: a write that commits
    just as another finds the server shutting down does not end the outage that began under
    it, and a connection that fails after another task got through does not begin one."""

    def __init__(
        self,
        where: str = "",
        *,
        remind_every: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._database = f"the database at {where}" if where else "the database"
        self._remind_every = remind_every
        self._clock = clock
        self._since: float | None = None
        self._reminded = 0.0
        self._changes = 0  # outages begun and ended

    def attempt(self) -> int:
        """To be given to `failed` or `back` with the outcome of the attempt begun now."""
        return self._changes

    def failed(self, what: str, exc: BaseException, retry_in: float, attempt: int | None = None) -> None:
        if isinstance(exc, _CONFLICTS):
            log.warning("%s: %s; retrying in %.1fs", what, type(exc).__name__, retry_in)
            return
        cause = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        now = self._clock()
        if self._since is None and attempt in (None, self._changes):
            self._since = self._reminded = now
            self._changes += 1
            log.warning(
                "%s: database unavailable (%s); retrying until %s is back", what, cause, self._database
            )
        elif self._since is not None and now - self._reminded >= self._remind_every:
            self._reminded = now
            log.warning("database still unavailable after %.0fs (%s); retrying", now - self._since, cause)
        else:
            log.debug("%s: database unavailable (%s); retrying in %.1fs", what, cause, retry_in)

    def back(self, what: str, attempt: int | None = None) -> None:
        if self._since is not None and attempt in (None, self._changes):
            log.info(
                "database available again after %.0fs; %s went through", self._clock() - self._since, what
            )
            self._since = None
            self._changes += 1


async def retry_transient(
    operation: Callable[[], Awaitable[T]],
    *,
    what: str,
    outage: DatabaseOutage | None = None,
    first_delay: float = 0.2,
    max_delay: float = 5.0,
) -> T:
    """Run `operation` until it succeeds or fails for a reason that is not transient.

    There is no attempt limit on purpose: a database outage must pause processing, and
    must never turn valid events into rejections. `outage`: the process's, shared by its
    tasks, so that an outage is told once (a call of its own without).
    """
    if outage is None:
        outage = DatabaseOutage()
    delay = first_delay
    while True:
        attempt = outage.attempt()
        try:
            result = await operation()
        except TRANSIENT_DB_ERRORS as exc:
            outage.failed(what, exc, delay, attempt)
            await asyncio.sleep(delay)
            delay = min(max_delay, delay * 2)
        else:
            outage.back(what, attempt)
            return result
