"""Transactional outbox: enqueue inside the business transaction, publish afterwards.

Delivery is at least once: a relay that dies after publishing and before marking the rows
publishes them again, and consumers dedup on the message's own id (`statement_id`,
`rejection_id`). Only one relay publishes at a time (an advisory lock), so messages of one
key leave in the order they were written.

A row carries its message's bytes (a rejection), or names a statement and the party it is
for: the relay makes that party's copy from the statement's stored body when it publishes
it, so a close does not write every statement three times (migration 0007).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import date
from typing import NamedTuple
from uuid import UUID

import asyncpg
from aiokafka.errors import MessageSizeTooLargeError

from contracts.v1.outbound import Party, PartyRole
from services.adapters.postgres import TRANSIENT_DB_ERRORS, DatabaseOutage, UnitOfWork
from services.adapters.stores import connect_database

log = logging.getLogger(__name__)
OUTBOX_LOCK = 7_301_2013

Publish = Callable[[str, str | None, bytes], Awaitable[None]]


class OutboxMessage(NamedTuple):
    id: int
    topic: str
    key: str | None
    payload: bytes


async def enqueue(conn: asyncpg.Connection, messages: Sequence[tuple[str, str | None, bytes]]) -> None:
    """(topic, key, payload) rows, written in the caller's transaction."""
    if messages:
        # COPY numbers the rows in the order given, which is the order they are published in.
        await conn.copy_records_to_table("outbox", columns=["topic", "key", "payload"], records=messages)


class IssuedStatement(NamedTuple):
    """A statement just stored, whose parties' copies are to be published."""

    statement_id: UUID
    body: bytes  # as stored in `statements.body`
    municipality: str
    health_trust: str


async def enqueue_statements(
    conn: asyncpg.Connection, topic: str, statements: Sequence[IssuedStatement], *, only_to: str | None = None
) -> int:
    """Two rows per statement (one, to the party `only_to`), written in the caller's
    transaction after the statements: each names the statement and a party (the
    municipality's first), keyed by that party, with the size its copy will have (what the
    relay counts against a batch's bound). Returns how many."""
    rows = [
        (
            topic,
            f"{role.value}:{party}",
            s.statement_id,
            role.value,
            copy_size(s.body, role, s.municipality, s.health_trust),
        )
        for s in statements
        for role, party in (
            (PartyRole.MUNICIPALITY, s.municipality),
            (PartyRole.HEALTH_TRUST, s.health_trust),
        )
        if only_to is None or party == only_to
    ]
    if rows:
        await conn.copy_records_to_table(
            "outbox", columns=["topic", "key", "statement_id", "recipient", "copy_bytes"], records=rows
        )
    return len(rows)


async def enqueue_issued_again(
    conn: asyncpg.Connection, topic: str, period: date | None, *, only_to: str | None = None
) -> tuple[int, int]:
    """A month's statements (every month's, for `None`; those with the party `only_to`)
    queued to be published again, each copy byte for byte as first published (the relay
    makes it from the stored body), in the order the closes issued them: for a party whose
    consumer lost them, or a topic that did (the embedded broker keeps nothing across
    restarts). Returns (statements, copies)."""
    found = await conn.fetch(
        "SELECT statement_id, body_bytes AS body, municipality, health_trust "
        "FROM statements WHERE ($1::date IS NULL OR period = $1) "
        "AND ($2::text IS NULL OR $2 IN (municipality, health_trust)) "
        'ORDER BY period, municipality COLLATE "C", health_trust COLLATE "C"',
        period,
        only_to,
    )
    statements = [
        IssuedStatement(r["statement_id"], bytes(r["body"]), r["municipality"], r["health_trust"])
        for r in found
    ]
    return len(statements), await enqueue_statements(conn, topic, statements, only_to=only_to)


async def issue_again(
    database_url: str, topic: str, period: date | None, *, only_to: str | None = None
) -> tuple[int, int]:
    """`enqueue_issued_again` on a connection and in a transaction of its own (the commands')."""
    conn = await connect_database(database_url)
    try:
        async with conn.transaction():
            return await enqueue_issued_again(conn, topic, period, only_to=only_to)
    finally:
        await conn.close()


# A stored body begins `{"statement_id":"<uuid>","period":"YYYY-MM","sequence":`: neither
# value can contain this, so its first occurrence is where the model has the parties.
_AFTER_PARTIES = b',"sequence":'


def addressed_copy(body: bytes, recipient: PartyRole, municipality: str, health_trust: str) -> bytes:
    """One party's copy of a statement, made from the body the database keeps: the body's
    bytes with `recipient` and `counterparty` put in where the contract's model has them
    (after `period`), each as the model serialises it. Byte for byte the copy the model
    gives, with the body's items as they were stored.

    The outbox names the statement and the recipient instead of keeping two copies of
    every statement (migration 0007); the relay makes each copy when it publishes it.
    """
    at = body.find(_AFTER_PARTIES)
    if at < 0 or not body.startswith(b'{"statement_id":') or b',"period":' not in body[:at]:
        raise ValueError("not a stored statement body: no `statement_id`, `period`, `sequence` at its start")
    whole = memoryview(body)  # a body may be tens of megabytes: sliced without copying
    return b"".join((whole[:at], _addressed(recipient, municipality, health_trust), whole[at:]))


def copy_size(body: bytes, recipient: PartyRole, municipality: str, health_trust: str) -> int:
    """The size of `addressed_copy(body, ...)` in bytes, without making it."""
    return len(body) + len(_addressed(recipient, municipality, health_trust))


def _addressed(recipient: PartyRole, municipality: str, health_trust: str) -> bytes:
    parties = (
        Party(role=PartyRole.MUNICIPALITY, id=municipality),
        Party(role=PartyRole.HEALTH_TRUST, id=health_trust),
    )
    to, other = parties if recipient == PartyRole.MUNICIPALITY else parties[::-1]
    return b"".join(
        (
            b',"recipient":',
            to.model_dump_json().encode(),
            b',"counterparty":',
            other.model_dump_json().encode(),
        )
    )


async def backlog(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"))


async def stored_messages(
    conn: asyncpg.Connection, *, after_id: int = 0, topic: str | None = None
) -> list[OutboxMessage]:
    """Every message in the outbox after `after_id`, published or not, in order and as the
    relay publishes it (for tests and tools: it holds them all at once)."""
    rows = await conn.fetch(
        "SELECT id, topic, key, payload, statement_id, recipient FROM outbox "
        "WHERE id > $1 AND ($2::text IS NULL OR topic = $2) ORDER BY id",
        after_id,
        topic,
    )
    return await _messages(conn, rows)


async def _messages(conn: asyncpg.Connection, rows: Sequence[asyncpg.Record]) -> list[OutboxMessage]:
    """Each row's message: its payload, or its statement's copy for its recipient. A body is
    read once however many of the rows name it (both copies usually leave together)."""
    named = list({r["statement_id"] for r in rows if r["payload"] is None})
    statements: dict[UUID, asyncpg.Record] = {}
    if named:
        # The body as the bytes stored (the json column would be parsed twice: by the server
        # and by the connection's codec).
        found = await conn.fetch(
            "SELECT statement_id, municipality, health_trust, body_bytes AS body "
            "FROM statements WHERE statement_id = ANY($1::uuid[])",
            named,
        )
        statements = {s["statement_id"]: s for s in found}
    messages = []
    for r in rows:
        if r["payload"] is not None:
            payload = bytes(r["payload"])
        else:
            s = statements[r["statement_id"]]
            if s["body"] is None:  # its parts deleted in the database: held here, as an altered body is
                raise ValueError(f"statement {r['statement_id']}: its body is missing from the database")
            payload = addressed_copy(
                s["body"], PartyRole(r["recipient"]), s["municipality"], s["health_trust"]
            )
        messages.append(OutboxMessage(r["id"], r["topic"], r["key"], payload))
    return messages


class OutboxRelay:
    def __init__(
        self,
        pool: asyncpg.Pool,
        publish: Publish,
        *,
        batch: int = 500,
        batch_bytes: int = 32 * 2**20,
        outage: DatabaseOutage | None = None,
    ) -> None:
        self._pool = pool
        self._publish = publish
        self._outage = outage if outage is not None else DatabaseOutage()
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
            # A message's size: its payload's (read from the value's header, not the value),
            # or, for a statement's copy, the size written with the row.
            rows = await uow.conn.fetch(
                """
                SELECT id, topic, key, payload, statement_id, recipient FROM (
                    SELECT id, topic, key, payload, statement_id, recipient, size,
                           sum(size) OVER (ORDER BY id) - size AS before
                    FROM (
                        SELECT id, topic, key, payload, statement_id, recipient,
                               coalesce(octet_length(payload), copy_bytes) AS size
                        FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT $1
                    ) pending
                ) sized
                WHERE before + size <= $2 OR before = 0 ORDER BY id
                """,
                self._batch,
                self._batch_bytes,
            )
            if not rows:
                return 0
            messages = await _messages(uow.conn, rows)
            # Sent in order and awaited together: the producer keeps per-partition order.
            await asyncio.gather(*(self._publish(m.topic, m.key, m.payload) for m in messages))
            await uow.conn.execute(
                "UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])", [r["id"] for r in rows]
            )
            await uow.commit()
            return len(rows)

    async def run(self, stop: asyncio.Event, poll_seconds: float) -> None:
        delay = poll_seconds
        while not stop.is_set():
            attempt = self._outage.attempt()
            try:
                published = await self.publish_pending()
                delay = poll_seconds
                self._outage.back("outbox relay", attempt)
            except TRANSIENT_DB_ERRORS as exc:
                published, delay = 0, min(5.0, delay * 2)
                self._outage.failed("outbox relay", exc, delay, attempt)
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
