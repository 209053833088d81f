"""How the services tell a database outage (services/adapters/postgres.py): once when it
begins, naming why, a reminder now and then, once when it is over, whichever of a process's
tasks find it; and a connection the server closed is a lost connection, not a failed unit
of work. (tests/integration/test_database_outage.py stops a real server.)"""

from __future__ import annotations

import logging

import asyncpg
import pytest

from services.adapters.postgres import ConnectionLost, DatabaseOutage, UnitOfWork, retry_transient

# What asyncpg says of the next statement on a connection whose server has said goodbye.
DROPPED = asyncpg.InternalClientError("cannot switch to state 15; another operation (2) is in progress")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _said(caplog: pytest.LogCaptureFixture, level: int = logging.INFO) -> list[str]:
    return [f"{r.levelname} {r.getMessage()}" for r in caplog.records if r.levelno >= level]


def test_an_outage_is_one_warning_with_its_cause_reminders_while_it_lasts_and_one_line_when_over(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, "services.adapters.postgres")
    clock = Clock()
    outage = DatabaseOutage("db.example:5432/settlement", remind_every=60, clock=clock)
    gone = FileNotFoundError(2, "No such file or directory")

    for second in range(0, 150, 5):  # three writers and the relay, every five seconds
        clock.now = 1000.0 + second
        for what in ("intake batch", "intake batch", "intake batch", "outbox relay"):
            outage.failed(what, gone, 5.0)
    clock.now = 1152.0
    outage.back("outbox relay")
    outage.back("intake batch")

    assert _said(caplog) == [
        "WARNING intake batch: database unavailable (FileNotFoundError: [Errno 2] No such file or "
        "directory); retrying until the database at db.example:5432/settlement is back",
        "WARNING database still unavailable after 60s (FileNotFoundError: [Errno 2] No such file or "
        "directory); retrying",
        "WARNING database still unavailable after 120s (FileNotFoundError: [Errno 2] No such file or "
        "directory); retrying",
        "INFO database available again after 152s; outbox relay went through",
    ]
    assert len(_said(caplog, logging.DEBUG)) == 4 * 30 + 1  # every retry, for whoever looks


def test_only_an_attempt_begun_since_the_outage_began_can_end_it_and_the_other_way_round(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    clock = Clock()
    outage = DatabaseOutage(clock=clock)
    committing, cut_off = outage.attempt(), outage.attempt()  # two writes under way

    outage.failed("intake batch", asyncpg.exceptions.ConnectionDoesNotExistError("closed"), 0.2, cut_off)
    outage.back("intake batch", committing)  # committed as the server went: says nothing of it
    connecting, retrying = outage.attempt(), outage.attempt()
    clock.now += 7
    outage.back("outbox relay", retrying)
    outage.failed("intake batch", FileNotFoundError(2, "No such file or directory"), 5.0, connecting)

    assert _said(caplog) == [
        "WARNING intake batch: database unavailable (ConnectionDoesNotExistError: closed); "
        "retrying until the database is back",
        "INFO database available again after 7s; outbox relay went through",
    ]


def test_a_conflict_between_transactions_is_said_at_once_and_is_no_outage(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    outage = DatabaseOutage()

    outage.failed("close 2025-10", asyncpg.exceptions.DeadlockDetectedError("deadlock detected"), 0.2)
    outage.back("close 2025-10")

    assert _said(caplog) == ["WARNING close 2025-10: DeadlockDetectedError; retrying in 0.2s"]


async def test_an_operation_that_waits_out_an_outage_says_so_once_each_way(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    failures = [ConnectionRefusedError(111, "Connect call failed"), TimeoutError(), OSError()]

    async def operation() -> str:
        if failures:
            raise failures.pop(0)
        return "written"

    assert await retry_transient(operation, what="intake batch", first_delay=0.001) == "written"
    said = _said(caplog)
    assert len(said) == 2 and said[0].startswith("WARNING intake batch: database unavailable (")
    assert "ConnectionRefusedError: [Errno 111] Connect call failed" in said[0]
    assert said[1].startswith("INFO database available again after ")


class Transaction:
    def __init__(self, start: BaseException | None = None) -> None:
        self._start = start

    async def start(self) -> None:
        if self._start is not None:
            raise self._start

    async def commit(self) -> None:
        pass

    async def rollback(self) -> None:
        pass


class Connection:
    def __init__(self, start: BaseException | None = None) -> None:
        self._start = start

    def transaction(self) -> Transaction:
        return Transaction(self._start)


class Pool:
    """Hands out one connection; its release fails as `release` says (asyncpg closes a
    connection whose reset fails, and raises)."""

    def __init__(self, connection: Connection, release: BaseException | None = None) -> None:
        self._connection = connection
        self._release = release
        self.released = 0

    async def acquire(self) -> Connection:
        return self._connection

    async def release(self, connection: Connection) -> None:
        self.released += 1
        if self._release is not None:
            raise self._release


def _unit(pool: Pool) -> UnitOfWork:
    return UnitOfWork(pool)  # type: ignore[arg-type]


async def test_a_connection_the_server_closed_before_the_transaction_began_is_a_lost_connection() -> None:
    pool = Pool(Connection(start=DROPPED), release=DROPPED)

    with pytest.raises(ConnectionLost) as raised:
        async with _unit(pool):
            pass

    assert raised.value.__cause__ is DROPPED and pool.released == 1


async def test_a_connection_the_server_closed_between_statements_is_a_lost_connection() -> None:
    pool = Pool(Connection(), release=DROPPED)

    with pytest.raises(ConnectionLost):
        async with _unit(pool):
            raise DROPPED


async def test_a_committed_unit_stands_when_its_connection_fails_to_reset_on_release() -> None:
    pool = Pool(Connection(), release=DROPPED)

    async with _unit(pool) as uow:
        await uow.commit()

    assert pool.released == 1


async def test_a_units_own_error_is_not_replaced_by_its_connection_failing_on_release() -> None:
    pool = Pool(Connection(), release=asyncpg.exceptions.ConnectionDoesNotExistError("closed"))

    with pytest.raises(asyncpg.exceptions.AdminShutdownError):
        async with _unit(pool):
            raise asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command")


async def test_an_internal_client_error_of_another_kind_is_raised_as_it_is() -> None:
    encoder = asyncpg.InternalClientError("no binary format encoder for type widget (OID 16385)")

    with pytest.raises(asyncpg.InternalClientError) as raised:
        async with _unit(Pool(Connection())):
            raise encoder

    assert raised.value is encoder
