"""Run a multi-statement SQL script inside an Alembic migration.

SQLAlchemy's asyncpg dialect prepares every statement, and PostgreSQL refuses to prepare
several at once; asyncpg's own `execute` without arguments runs a whole script. We reach it
through the connection Alembic is migrating, so the script stays in that transaction.
"""

from __future__ import annotations

from alembic import op
from sqlalchemy.util import await_only


def execute_script(sql: str) -> None:
    driver_connection = op.get_bind().connection.dbapi_connection.driver_connection  # type: ignore[union-attr]
    await_only(driver_connection.execute(sql))
