"""Rejections: recorded once per bad message, and announced through the outbox."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import asyncpg

from contracts.v1 import topics
from contracts.v1.outbound import Rejection
from services.adapters import outbox
from services.intake.validation import RawRecord, Rejected, payload_digest

_NAMESPACE = uuid.UUID("9a3c1a52-2f55-4a53-8f2b-3b8f2f8a4c01")


def rejection_id(rejected: Rejected) -> uuid.UUID:
    return _id_of(rejected.record, rejected.raw_hash)


def _id_of(record: RawRecord, digest: bytes) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, f"{record.topic}/{record.partition}/{record.offset}/{digest.hex()}")


async def record(conn: asyncpg.Connection, rejections: Sequence[Rejected], now: datetime) -> int:
    """Insert the rejections not recorded before (a redelivered bad message is the same
    rejection) and enqueue each new one for the rejection topic."""
    if not rejections:
        return 0
    # Each payload redacted once: the digest, and so the id, are of it too.
    payloads = [r.redacted_payload() for r in rejections]
    digests = [payload_digest(p) for p in payloads]
    messages = [
        Rejection(
            rejection_id=_id_of(r.record, digest),
            topic=r.record.topic,
            partition=r.record.partition,
            offset=r.record.offset,
            key=r.redacted_key(),
            payload=payload,
            reason=r.reason,
            message=r.redacted_message(),
            rejected_at=now,
            **r.redacted_identity(),
        )
        for r, payload, digest in zip(rejections, payloads, digests, strict=True)
    ]
    rows = await conn.fetch(
        """
        INSERT INTO rejections (rejection_id, topic, partition, "offset", raw_hash, reason, message, key, payload,
                                rejected_at, source, event_id, health_trust)
        SELECT * FROM unnest($1::uuid[], $2::text[], $3::int[], $4::bigint[], $5::bytea[], $6::text[],
                             $7::text[], $8::text[], $9::text[], $10::timestamptz[], $11::text[], $12::text[],
                             $13::text[])
        ON CONFLICT DO NOTHING
        RETURNING rejection_id
        """,
        [m.rejection_id for m in messages],
        [m.topic for m in messages],
        [m.partition for m in messages],
        [m.offset for m in messages],
        digests,
        [m.reason.value for m in messages],
        [m.message for m in messages],
        [m.key for m in messages],
        [m.payload for m in messages],
        [now for _ in messages],
        [m.source for m in messages],
        [m.event_id for m in messages],
        [m.health_trust for m in messages],
    )
    new = {row["rejection_id"] for row in rows}
    await outbox.enqueue(
        conn,
        [(topics.REJECTED, m.key, m.model_dump_json().encode()) for m in messages if m.rejection_id in new],
    )
    return len(new)
