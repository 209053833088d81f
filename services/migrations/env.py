"""Alembic environment: plain SQL migrations, run over asyncpg through SQLAlchemy."""

from __future__ import annotations

import asyncio

import asyncpg
from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

config = context.config


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=None, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    database_url: str = config.attributes["database_url"]  # services.adapters.migrations

    async def connect() -> asyncpg.Connection:
        return await asyncpg.connect(database_url)

    # The dialect only: asyncpg makes the connection from the URL (alembic_config says why).
    engine = create_async_engine("postgresql+asyncpg://", async_creator=connect, poolclass=pool.NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(_run)
        await connection.commit()
    await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `settlement migrate`")
asyncio.run(_run_async())
