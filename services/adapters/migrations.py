"""Apply the database migrations (Alembic, plain SQL) to a PostgreSQL URL."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from services.adapters.stores import checked_database_url, database_named

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(database_url: str) -> Config:
    """The migrations connect with `database_url` as the services do: asyncpg reads it
    itself, libpq's parameters and all (`sslmode`, `sslrootcert`, `host` of a socket).
    SQLAlchemy, given the URL, handed those to `asyncpg.connect()` as keywords it does not
    take: a URL that asked for TLS could not be migrated."""
    # Alembic and SQLAlchemy are imported here, by the commands that migrate: half a second
    # that every other command would wait for.
    from alembic.config import Config

    checked_database_url(database_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["database_url"] = database_url  # read by env.py
    return config


def upgrade(database_url: str) -> None:
    """Bring the schema to the newest revision. Safe to run on every start. A database that
    is away is `Unreachable`."""
    from alembic import command

    config = alembic_config(database_url)
    with database_named(database_url):
        command.upgrade(config, "head")
