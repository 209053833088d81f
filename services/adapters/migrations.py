"""Apply the database migrations (Alembic, plain SQL) to a PostgreSQL URL."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from services.adapters.stores import checked_database_url, database_named

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(database_url: str) -> Config:
    """The migrations connect with `database_url` as the services do: asyncpg reads it
    itself, libpq's parameters and all (`sslmode`, `sslrootcert`, `host` of a socket).
    SQLAlchemy, given the URL, handed those to `asyncpg.connect()` as keywords it does not
    take: a URL that asked for TLS could not be migrated."""
    checked_database_url(database_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["database_url"] = database_url  # read by env.py
    return config


def upgrade(database_url: str) -> None:
    """Bring the schema to the newest revision. Safe to run on every start. A database that
    is away is `Unreachable`."""
    config = alembic_config(database_url)
    with database_named(database_url):
        command.upgrade(config, "head")
