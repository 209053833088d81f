"""`DATABASE_POOL_SIZE`: how many connections a service process holds, and how many of them
intake writes with at once (all but the outbox relay's)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from pydantic import ValidationError

from services.domain.tariffs import TariffBook
from services.intake.pseudonym import Pseudonymiser
from services.intake.service import IntakeDeps
from services.settings import load_settings

BASE = {
    "DATABASE_URL": "postgresql://u:p@db.example/settlement",
    "PSEUDONYM_KEY": "k" * 32,
    "KAFKA_BOOTSTRAP_SERVERS": "kafka.example:9092",
}


class _Pool:
    """Only what IntakeDeps asks of a pool at construction."""

    def __init__(self, size: int) -> None:
        self._size = size

    def get_max_size(self) -> int:
        return self._size


def _deps(size: int) -> IntakeDeps:
    return IntakeDeps(
        cast(Any, _Pool(size)), cast(TariffBook, None), Pseudonymiser(b"t" * 32), lambda: datetime.now(UTC)
    )


async def _writes_at_once(deps: IntakeDeps) -> int:
    taken = 0
    while not deps.writes.locked():
        await deps.writes.acquire()
        taken += 1
    return taken


@pytest.mark.parametrize(("size", "writers"), [(2, 1), (4, 3), (9, 8)])
async def test_intake_writes_with_every_connection_but_the_relays(size: int, writers: int) -> None:
    assert await asyncio.wait_for(_writes_at_once(_deps(size)), 1) == writers


def test_the_default_is_four_connections_and_fewer_than_two_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in BASE.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SECRETS_DIR", raising=False)
    monkeypatch.delenv("DATABASE_POOL_SIZE", raising=False)
    assert load_settings().database_pool_size == 4
    monkeypatch.setenv("DATABASE_POOL_SIZE", "12")
    assert load_settings().database_pool_size == 12
    monkeypatch.setenv("DATABASE_POOL_SIZE", "1")
    with pytest.raises(ValidationError, match="database_pool_size"):
        load_settings()
