"""Publish-to-ledger latency at a fixed offered load, and what its figures are made of.

p50 and p99 alone do not say why a p99 is high: one stall of a second (a few hundred
events late together) and a phase slow throughout read alike. So each phase also gives the
worst delay of the events sent in each second, and the median delay to the start of the
transaction that recorded the event as well as to its commit: the part spent before
intake began writing (fetching, validating, waiting behind the batch before) against the
write itself.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import asyncpg
from aiokafka import AIOKafkaProducer

from bench.stream import national_stream
from services.runtime.environment import Endpoints

SOURCE = "bench-latency"


@dataclass(frozen=True)
class Delivery:
    """One event of the phase: when it was sent, and when the transaction that recorded
    it started and committed (seconds since the epoch, this machine's clock)."""

    sent: float
    started: float
    committed: float


@dataclass(frozen=True)
class LatencyFigures:
    events: int = 0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    p50_to_start_ms: float = 0.0  # to the start of the transaction that recorded the event
    # The worst delay among the events sent in each second of the phase, in order.
    worst_by_second_ms: list[float] = field(default_factory=list)


def latency_figures(deliveries: Iterable[Delivery]) -> LatencyFigures:
    """Delays to the commit (p50, p99, max, worst by second of sending) and the median to
    the transaction's start. A delay below zero (the two clocks a hair apart) counts as none."""
    events = sorted(deliveries, key=lambda d: d.sent)
    if not events:
        return LatencyFigures()
    delays = [max(0.0, e.committed - e.sent) * 1000 for e in events]
    worst: dict[int, float] = {}
    for event, delay in zip(events, delays, strict=True):
        second = int(event.sent - events[0].sent)
        worst[second] = max(worst.get(second, 0.0), delay)
    ordered = sorted(delays)
    return LatencyFigures(
        events=len(events),
        p50_ms=statistics.median(ordered),
        p99_ms=ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        max_ms=ordered[-1],
        p50_to_start_ms=statistics.median(max(0.0, e.started - e.sent) * 1000 for e in events),
        worst_by_second_ms=[round(worst.get(s, 0.0), 1) for s in range(max(worst) + 1)],
    )


async def latency(
    endpoints: Endpoints, per_second: int, seconds: float, seed: int, *, to_commit: bool
) -> LatencyFigures:
    """Publish at a fixed rate; an event's latency runs until the transaction that recorded
    it committed (`to_commit`; else until it started, `received_at`)."""
    stream = national_stream(int(per_second * seconds), seed=seed, source=SOURCE)
    producer = AIOKafkaProducer(bootstrap_servers=endpoints.bootstrap_servers, linger_ms=1)
    await producer.start()
    sent: dict[str, float] = {}
    try:
        tick = 0.01
        per_tick = max(1, int(per_second * tick))
        started = time.perf_counter()
        for index in range(0, len(stream), per_tick):
            for event in stream[index : index + per_tick]:
                sent[event.value["event_id"]] = time.time()
                await producer.send(event.topic, json.dumps(event.value).encode(), key=event.key.encode())
            next_tick = started + (index // per_tick + 1) * tick
            await asyncio.sleep(max(0.0, next_tick - time.perf_counter()))
        await producer.flush()
    finally:
        await producer.stop()
    committed = "pg_xact_commit_timestamp(xmin)" if to_commit else "received_at"
    conn = await asyncpg.connect(endpoints.database_url)
    try:
        deadline = time.monotonic() + 60
        while await recorded(conn, SOURCE) < len(stream) and time.monotonic() < deadline:  # noqa: ASYNC110 - polling the database
            await asyncio.sleep(0.2)
        rows = await conn.fetch(
            "SELECT event_id::text AS id, extract(epoch FROM received_at) AS started, "
            f"extract(epoch FROM {committed}) AS committed "
            "FROM inbound_events WHERE source LIKE $1",
            SOURCE + ".%",
        )
    finally:
        await conn.close()
    return latency_figures(
        Delivery(sent[r["id"]], float(r["started"]), float(r["committed"])) for r in rows if r["id"] in sent
    )


async def recorded(conn: asyncpg.Connection, source_prefix: str) -> int:
    """How many events with sources under `source_prefix` are in the ledger."""
    return int(
        await conn.fetchval("SELECT count(*) FROM inbound_events WHERE source LIKE $1", source_prefix + ".%")
    )
