"""Databases of their own in the session's one embedded PostgreSQL (conftest.py's
`postgres_cluster`): a cluster takes about 1.5 s to start and 0.4 s to stop, a database
copied from a migrated template a few tens of milliseconds. Everything the tests use is
per database in PostgreSQL (tables, statistics, advisory locks), so these stay out of each
other's way as separate clusters did."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
from collections.abc import Iterator
from urllib.parse import quote, urlsplit

import asyncpg

MAX_NAME = 63  # PostgreSQL's NAMEDATALEN - 1: a longer identifier is cut off


def database_name(label: str) -> str:
    """`label` (a module's or a test's name) as a database name: lower case letters, digits
    and underscores; a long one is cut and told apart from others cut alike by a hash of it."""
    name = re.sub(r"[^a-z0-9_]+", "_", label.lower()).strip("_") or "db"
    if len(name) > MAX_NAME:
        name = f"{name[: MAX_NAME - 9]}_{hashlib.sha256(label.encode()).hexdigest()[:8]}"
    return name


def database_url(cluster_url: str, name: str) -> str:
    """The cluster's URL naming database `name` instead: the same user, socket and
    parameters (`?host=` the socket directory, as the embedded PostgreSQL gives it)."""
    return urlsplit(cluster_url)._replace(path="/" + quote(name, safe="")).geturl()


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def execute(url: str, *statements: str) -> None:
    """Run statements outside a transaction (CREATE and DROP DATABASE must), one connection."""

    async def run() -> None:
        conn = await asyncpg.connect(url)
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())


def create_database(cluster_url: str, name: str, *, template: str) -> str:
    """A new database `name` copied from `template`; its URL."""
    execute(cluster_url, f"CREATE DATABASE {_identifier(name)} TEMPLATE {_identifier(template)}")
    return database_url(cluster_url, name)


def make_template(cluster_url: str, name: str) -> None:
    """Mark database `name` a template no one connects to: a copy is refused while anyone
    is connected to its template."""
    execute(cluster_url, f"ALTER DATABASE {_identifier(name)} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false")


def drop_database(cluster_url: str, name: str) -> None:
    """Drop database `name`, ending whatever connections a test left open to it."""
    execute(cluster_url, f"DROP DATABASE IF EXISTS {_identifier(name)} WITH (FORCE)")


@contextlib.contextmanager
def own_database(cluster_url: str, label: str, *, template: str) -> Iterator[str]:
    """A database named after `label`, copied from `template`, dropped on leaving: its URL."""
    name = database_name(label)
    url = create_database(cluster_url, name, template=template)
    try:
        yield url
    finally:
        drop_database(cluster_url, name)
