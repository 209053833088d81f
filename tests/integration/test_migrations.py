"""Migrations that change what is stored: an existing database is carried over, or the
upgrade stops and says why, before anything is dropped."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime

import asyncpg
import pytest
from alembic import command
from alembic.script import ScriptDirectory

from services.adapters.ledger_repository import payloads_by_subject
from services.adapters.migrations import alembic_config, upgrade
from services.adapters.postgres import create_pool
from services.runtime.embedded import EmbeddedPostgres
from services.settlement.reconciliation import reconcile
from tests.integration.databases import own_database

pytestmark = pytest.mark.integration

MONTH = date(2024, 3, 1)
PAIR = ("4601", "983974724")
ITEM_COLUMNS = (
    "subject_key", "service_month", "part", "category", "subject_id", "health_trust", "municipality",
    "payer_role", "first_day", "last_day", "quantity", "unit_price_ore", "amount_ore", "statement_id",
)  # fmt: skip


@pytest.fixture
def server(request: pytest.FixtureRequest, postgres_cluster: EmbeddedPostgres) -> Iterator[str]:
    """An empty database of the test's own (from template0, as a new cluster's), in the
    session's cluster: these tests migrate and read one database, and need nothing of a
    server to themselves (no roles, settings or restarts)."""
    with own_database(postgres_cluster.url, request.node.nodeid, template="template0") as url:
        yield url


async def _sql(server: str, statement: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(server)
    try:
        return await conn.fetch(statement)
    finally:
        await conn.close()


def _item(subject: str, statement_id: uuid.UUID | None, month: date = MONTH) -> tuple[object, ...]:
    return (
        f"discharge_ready:{PAIR[1]}:{subject}", month, 0, "discharge_ready_bed_days", subject, PAIR[1], PAIR[0],
        "municipality", month, month, 1, 500_000, 500_000, statement_id,
    )  # fmt: skip


async def _settled_month(url: str, items: list[tuple[object, ...]], statement: uuid.UUID) -> None:
    """A closed month as revision 0007 stored it: a statement, and items marked with it."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("INSERT INTO closed_periods (period) VALUES ($1)", MONTH)
        await conn.execute(
            "INSERT INTO statements (statement_id, period, municipality, health_trust, body, issued_at, "
            "sequence, hash) VALUES ($1, $2, $3, $4, '{\"lines\": []}', $5, 1, 'sha256:0')",
            statement,
            MONTH,
            *PAIR,
            datetime(2024, 4, 2, tzinfo=UTC),
        )
        await conn.copy_records_to_table("ledger_items", records=items, columns=ITEM_COLUMNS)
    finally:
        await conn.close()


def test_items_keep_their_statement_when_the_column_goes(server: str) -> None:
    command.upgrade(alembic_config(server), "0007")
    statement = uuid.uuid4()
    open_month = date(2024, 4, 1)
    asyncio.run(
        _settled_month(server, [_item("EP-1", statement), _item("EP-2", None, open_month)], statement)
    )

    upgrade(server)

    async def check() -> None:
        pool = await create_pool(server, max_size=1)
        try:
            async with pool.acquire() as conn:
                columns = {r["column_name"] for r in await conn.fetch(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = 'ledger_items'"
                )}  # fmt: skip
                assert "statement_id" not in columns
                settled = await reconcile(conn, *PAIR, MONTH)
                assert settled.settled_on == [str(statement)]
                pending = await reconcile(conn, *PAIR, open_month)
                assert pending.settled_on == []
                assert [i["statement_id"] for i in pending.items] == [None]
        finally:
            pool.terminate()

    asyncio.run(check())


@pytest.mark.parametrize(
    "marked",
    [
        pytest.param("another", id="an item marked with another statement"),
        pytest.param(None, id="an item of a closed month on no statement"),
    ],
)
def test_the_upgrade_stops_where_items_and_statements_disagree(server: str, marked: str | None) -> None:
    command.upgrade(alembic_config(server), "0007")
    statement = uuid.uuid4()
    odd = uuid.uuid4() if marked == "another" else None
    asyncio.run(_settled_month(server, [_item("EP-1", statement), _item("EP-2", odd)], statement))

    with pytest.raises(Exception, match="1 ledger items are not settled on their month's statement"):
        upgrade(server)

    async def column_kept() -> bool:
        conn = await asyncpg.connect(server)
        try:
            return bool(
                await conn.fetchval(
                    "SELECT count(*) FROM information_schema.columns "
                    "WHERE table_name = 'ledger_items' AND column_name = 'statement_id'"
                )
            )
        finally:
            await conn.close()

    assert asyncio.run(column_kept()), "nothing is dropped when the upgrade stops"


def test_the_statement_order_index_may_be_built_beforehand(server: str) -> None:
    """An operator builds it concurrently on a large ledger; the migration accepts it."""
    command.upgrade(alembic_config(server), "0008")

    asyncio.run(
        _sql(
            server,
            "CREATE INDEX CONCURRENTLY ledger_items_statement_order ON ledger_items (service_month, "
            'municipality COLLATE "C", health_trust COLLATE "C", category COLLATE "C", '
            'subject_id COLLATE "C", first_day, subject_key COLLATE "C", part)',
        )
    )
    upgrade(server)
    indexes = {
        r["indexname"]
        for r in asyncio.run(
            _sql(server, "SELECT indexname FROM pg_indexes WHERE tablename = 'ledger_items'")
        )
    }
    assert "ledger_items_statement_order" in indexes
    assert "ledger_items_month" not in indexes


def test_events_stored_as_jsonb_are_carried_over_and_read_as_before(server: str) -> None:
    command.upgrade(alembic_config(server), "0009")
    subject = "activity:983974724:ACT-MIGRATED"
    payload = {"activity_id": "ACT-MIGRATED", "drg_points": "1.25", "surgical": False}

    async def store() -> None:
        conn = await asyncpg.connect(server)
        try:
            await conn.execute(
                "INSERT INTO inbound_events (source, event_id, family, type, subject_key, health_trust, "
                'occurred_at, content_hash, payload, topic, partition, "offset") '
                "VALUES ('migr', $1, 'activity', 'activity_recorded', $2, '983974724', now(), '\\x00', "
                "$3::jsonb, 't', 0, 0)",
                uuid.uuid4(),
                subject,
                json.dumps(payload),
            )
        finally:
            await conn.close()

    asyncio.run(store())
    upgrade(server)

    async def read() -> tuple[str, dict[str, list[dict[str, object]]]]:
        pool = await create_pool(server, max_size=1)
        try:
            async with pool.acquire() as conn:
                kind = await conn.fetchval(
                    "SELECT data_type FROM information_schema.columns "
                    "WHERE table_name = 'inbound_events' AND column_name = 'payload'"
                )
                return kind, await payloads_by_subject(conn, [subject])
        finally:
            pool.terminate()

    kind, facts = asyncio.run(read())
    assert kind == "json"
    assert facts == {subject: [payload]}


def test_the_subject_hash_index_may_be_built_beforehand(server: str) -> None:
    """As 0009's index: an operator builds it concurrently on a large ledger first."""
    command.upgrade(alembic_config(server), "0010")

    asyncio.run(
        _sql(
            server,
            "CREATE INDEX CONCURRENTLY inbound_events_subject_hash ON inbound_events USING hash (subject_key)",
        )
    )
    upgrade(server)
    indexes = {
        r["indexname"]: r["indexdef"]
        for r in asyncio.run(
            _sql(server, "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'inbound_events'")
        )
    }
    assert "USING hash (subject_key)" in indexes["inbound_events_subject_hash"]
    assert "inbound_events_subject" not in indexes


def test_a_url_with_libpq_parameters_is_migrated_as_the_services_connect_with_it(server: str) -> None:
    # `sslmode` is how a database that requires TLS is asked for. asyncpg reads it; given to
    # SQLAlchemy, it became a keyword asyncpg.connect() does not take, and nothing migrated.
    url = f"{server}&sslmode=disable&application_name=samhandling-migrate"

    upgrade(url)

    [row] = asyncio.run(_sql(url, "SELECT version_num FROM alembic_version"))
    assert row["version_num"] == ScriptDirectory.from_config(alembic_config(url)).get_current_head()


def test_statement_bodies_are_moved_into_parts_byte_for_byte(server: str) -> None:
    """0017 moves each stored body into parts; read through `statements` it is the text that
    was stored, whatever its length and wherever a letter of two bytes falls."""
    command.upgrade(alembic_config(server), "0016")
    # As a close stored them: compact JSON, keys in the contract's order (not jsonb's).
    bodies = {
        uuid.uuid4(): json.dumps(
            {"z": 1, "a": [], "note": "Tromsø"}, ensure_ascii=False, separators=(",", ":")
        ),
        uuid.uuid4(): json.dumps(
            {
                "lines": [
                    {"episode_id": f"EP-{n}", "note": "Bjørnafjorden" + "x" * (n % 5)} for n in range(900)
                ]
            },
            ensure_ascii=False,
            separators=(",", ":"),
        ),
    }

    async def store() -> None:
        conn = await asyncpg.connect(server)
        try:
            for sequence, (sid, body) in enumerate(bodies.items(), start=1):
                await conn.execute(
                    "INSERT INTO statements (statement_id, period, municipality, health_trust, body, issued_at, "
                    "sequence, hash) VALUES ($1, $2, $3, $4, $5::json, $6, $7, 'sha256:0')",
                    sid,
                    date(2024, 2 + sequence, 1),
                    *PAIR,
                    body,
                    datetime(2024, 4, 2, tzinfo=UTC),
                    sequence,
                )
        finally:
            await conn.close()

    asyncio.run(store())
    upgrade(server)
    rows = asyncio.run(_sql(server, "SELECT statement_id, body::text AS body, body_bytes FROM statements"))
    assert {r["statement_id"]: r["body"] for r in rows} == bodies
    assert {r["statement_id"]: bytes(r["body_bytes"]) for r in rows} == {
        k: v.encode() for k, v in bodies.items()
    }
    parts = asyncio.run(
        _sql(server, "SELECT statement_id, count(*) AS n FROM statement_body_parts GROUP BY 1")
    )
    assert {r["statement_id"]: r["n"] for r in parts} == {
        sid: -(-len(body.encode()) // 8000) for sid, body in bodies.items()
    }
