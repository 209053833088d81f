"""Background sampling and readiness checks that need the database or the broker."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg
from faststream.kafka import KafkaBroker

from services.adapters import outbox
from services.observability.metrics import OutboxMetrics

log = logging.getLogger(__name__)


async def sample_outbox_and_readiness(
    pool: asyncpg.Pool,
    broker: KafkaBroker,
    metrics: OutboxMetrics,
    stop: asyncio.Event,
    every_seconds: float,
) -> None:
    """Gauges read on an interval rather than at scrape time: a scrape must not wait on, or
    fail with, the database. Readiness is sampled too: a service whose database or broker is
    away still answers on /metrics, so without it an outage paged nobody."""
    while not stop.is_set():
        try:
            async with pool.acquire(timeout=every_seconds) as conn:
                metrics.backlog.set(await outbox.backlog(conn))
        except Exception as exc:  # the last value stays; the relay logs the outage itself
            log.debug("outbox backlog not sampled: %s", type(exc).__name__)
        try:
            ready = await broker_and_database_ready(broker, pool)
        except Exception:
            ready = False
        metrics.ready.set(1 if ready else 0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every_seconds)


async def broker_and_database_ready(broker: KafkaBroker, pool: asyncpg.Pool | None) -> bool:
    if pool is None:
        return False
    async with pool.acquire(timeout=2.0) as conn:
        await conn.fetchval("SELECT 1", timeout=2.0)
    return bool(await broker.ping(timeout=2.0))
