"""Connecting to the database and the broker, with one named error when either cannot be
reached: a command, or a service starting, then says so in a line (`services.cli.main`), not
in a traceback of the driver's internals. Where it is said, a database URL never shows its
password."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, urlsplit

import asyncpg
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaConnectionError

from services.adapters.kafka_connection import KafkaConnection
from services.adapters.postgres import DEFAULT_POOL_SIZE, create_pool

# What connecting can fail with when the server is away, refuses us, or has no such database.
_DATABASE_AWAY = (
    OSError,  # refused, no route, unknown host, timed out (TimeoutError is an OSError)
    asyncpg.exceptions.InvalidAuthorizationSpecificationError,  # wrong user or password
    asyncpg.exceptions.InvalidCatalogNameError,  # no such database
    asyncpg.exceptions.CannotConnectNowError,  # starting up or shutting down
    asyncpg.exceptions.TooManyConnectionsError,
)


class Unreachable(RuntimeError):
    """A store the command needs could not be reached; the message names it and why."""


class DatabaseUrlUnusable(ValueError):
    """`DATABASE_URL` is not a PostgreSQL URL; the message says why, never the password."""


def checked_database_url(url: str) -> str:
    """`url` if it is a PostgreSQL URL with a numeric port (or none), else
    `DatabaseUrlUnusable`: asyncpg and the migrations otherwise failed deep inside with a
    page of traceback (`invalid DSN`, `invalid literal for int()`)."""
    parts = urlsplit(url)
    if parts.scheme not in {"postgresql", "postgres"}:
        raise DatabaseUrlUnusable("not a PostgreSQL URL: postgresql://user:password@host:port/database")
    try:
        parts.port  # noqa: B018 (urlsplit parses the port only when asked)
    except ValueError:
        raise DatabaseUrlUnusable(
            "its port is not a number: postgresql://user:password@host:port/database"
        ) from None
    return url


class _Startable(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@contextlib.contextmanager
def database_named(url: str) -> Iterator[None]:
    """A database that is away, within, is `Unreachable`, named by `database_location`."""
    try:
        yield
    except _DATABASE_AWAY as exc:
        missing = _missing_files(url) if isinstance(exc, FileNotFoundError) else []
        # asyncpg does not say which file it looked for: a certificate the URL names, not the
        # server, is what is missing then
        why = f"no such file: {', '.join(missing)}" if missing else str(exc)
        raise Unreachable(f"the database at {database_location(url)}: {why}") from exc


def _missing_files(url: str) -> list[str]:
    """The files a database URL names for TLS (libpq's `sslrootcert`, `sslcert`, `sslkey`)
    that do not exist, as `name=path`."""
    query = parse_qs(urlsplit(url).query)
    return [
        f"{name}={path}"
        for name in ("sslrootcert", "sslcert", "sslkey")
        for path in query.get(name, [])
        if not Path(path).expanduser().exists()
    ]


async def create_pool_or_say_where(url: str, *, max_size: int = DEFAULT_POOL_SIZE) -> asyncpg.Pool:
    """The services' pool, at start-up: a database that is away is `Unreachable`."""
    with database_named(url):
        return await create_pool(url, max_size=max_size)


async def connect_database(url: str) -> asyncpg.Connection:
    checked_database_url(url)
    with database_named(url):
        return await asyncpg.connect(url)


@contextlib.contextmanager
def broker_named(kafka: KafkaConnection) -> Iterator[None]:
    """A broker that is away, within, is `Unreachable`, named by its bootstrap servers."""
    try:
        yield
    except (KafkaConnectionError, OSError) as exc:
        raise Unreachable(f"the broker at {kafka}: {exc}") from exc


async def start_kafka_client(client: _Startable, kafka: KafkaConnection) -> None:
    try:
        with broker_named(kafka):
            await client.start()
    except Unreachable:
        with contextlib.suppress(Exception):
            await client.stop()  # or it warns of itself as unclosed when collected
        raise


async def reach_broker(kafka: KafkaConnection) -> None:
    """Bootstrap from the broker once, and let go: a service starting checks that its broker
    answers before FastStream makes its clients. A producer FastStream made for a broker that
    is away is never closed (FastStream keeps it only once it has started) and complains of it
    in the log when it is collected, after the service's one line. A broker that is away is
    `Unreachable`."""
    client = AIOKafkaClient(client_id="samhandling-start", **kafka.client_options())
    try:
        with broker_named(kafka):
            await client.bootstrap()
    finally:
        await client.close()


def database_location(url: str) -> str:
    """Host, port and database of a PostgreSQL URL, or its socket directory: never the
    user's password."""
    parts = urlsplit(url)
    host = parts.hostname or (parse_qs(parts.query).get("host") or ["local socket"])[0]
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # not a number: asyncpg says so in its own words
        port = ""
    return f"{host}{port}{parts.path or ''}"
