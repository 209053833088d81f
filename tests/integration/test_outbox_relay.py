"""The relay publishes pending messages in the order they were written, in batches bounded
by count and by bytes (a statement may be tens of megabytes), and never skips one that is
larger than a batch on its own."""

from __future__ import annotations

import pytest

from services.adapters import outbox
from services.adapters.outbox import OutboxRelay
from tests.integration.ledger_harness import Ledger

pytestmark = pytest.mark.integration


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
