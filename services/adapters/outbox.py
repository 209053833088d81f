"""Transactional outbox: enqueue inside the business transaction, publish afterwards.

Delivery is at least once: a relay that dies after publishing and before marking the rows
publishes them again, and consumers dedup on the message's own id (`statement_id`,
`rejection_id`). Only one relay publishes at a time (an advisory lock), so messages of one
key leave in the order they were written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

import asyncpg
from aiokafka.errors import MessageSizeTooLargeError

from services.adapters.postgres import TRANSIENT_DB_ERRORS, UnitOfWork

log = logging.getLogger(__name__)
OUTBOX_LOCK = 7_301_2013

Publish = Callable[[str, str | None, bytes], Awaitable[None]]


async def enqueue(conn: asyncpg.Connection, messages: Sequence[tuple[str, str | None, bytes]]) -> None:
    """(topic, key, payload) rows, written in the caller's transaction."""
    if messages:
        # COPY numbers the rows in the order given, which is the order they are published in.
        await conn.copy_records_to_table("outbox", columns=["topic", "key", "payload"], records=messages)


async def backlog(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"))


class OutboxRelay:
    def __init__(
        self, pool: asyncpg.Pool, publish: Publish, *, batch: int = 500, batch_bytes: int = 32 * 2**20
    ) -> None:
        self._pool = pool
        self._publish = publish
        self._batch = batch
        # A statement may be tens of megabytes (every item of a large municipality's month):
        # a batch is also bounded by its bytes, so the relay's memory stays small. The
        # first pending message is always taken, however large, alone if it must be.
        self._batch_bytes = batch_bytes

    async def publish_pending(self) -> int:
        """Publish one batch of pending messages; returns how many were published."""
        async with UnitOfWork(self._pool) as uow:
            if not await uow.conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", OUTBOX_LOCK):
                return 0
            rows = await uow.conn.fetch(
                """
                SELECT id, topic, key, payload FROM (
                    SELECT id, topic, key, payload,
                           sum(octet_length(payload)) OVER (ORDER BY id) - octet_length(payload) AS before
                    FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT $1
                ) pending
                WHERE before + octet_length(payload) <= $2 OR before = 0 ORDER BY id
                """,
                self._batch,
                self._batch_bytes,
            )
            if not rows:
                return 0
            # Sent in order and awaited together: the producer keeps per-partition order.
            await asyncio.gather(*(self._publish(r["topic"], r["key"], bytes(r["payload"])) for r in rows))
            await uow.conn.execute(
                "UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])", [r["id"] for r in rows]
            )
            await uow.commit()
            return len(rows)

    async def run(self, stop: asyncio.Event, poll_seconds: float) -> None:
        delay = poll_seconds
        while not stop.is_set():
            try:
                published = await self.publish_pending()
                delay = poll_seconds
            except TRANSIENT_DB_ERRORS as exc:
                log.warning("outbox relay: database unavailable (%s); retrying", type(exc).__name__)
                published, delay = 0, min(5.0, delay * 2)
            except MessageSizeTooLargeError as exc:
                # Retrying cannot help, and the rows behind it wait (a pair's statements
                # must leave in order): say exactly what to change. The backlog alert fires.
                log.error(
                    "outbox relay: a message is larger than the producer may send (%s); publishing "
                    "waits until KAFKA_MAX_MESSAGE_BYTES and the topic's max.message.bytes allow it "
                    "(docs/operations.md)",
                    exc,
                )
                published, delay = 0, 5.0
            except Exception:
                # The broker may be away; the rows stay pending and are sent on a later pass.
                log.exception("outbox relay: publish failed; retrying")
                published, delay = 0, min(5.0, delay * 2)
            if not published:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=delay)
