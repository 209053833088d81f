"""Background sampling and readiness checks that need the database or the broker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from functools import partial

import asyncpg
from faststream.kafka import KafkaBroker

from services.adapters import ledger_repository, outbox, statement_repository
from services.domain.calendar import days_through
from services.domain.ledger import Category
from services.observability.metrics import OutboxMetrics, SettlementMetrics

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

    async def backlog(conn: asyncpg.Connection) -> None:
        metrics.backlog.set(await outbox.backlog(conn))

    async def step() -> None:
        # A backlog not read leaves the last value; the relay logs the outage itself.
        await _sampled(pool, "outbox backlog", backlog, every_seconds)
        try:
            ready = await broker_and_database_ready(broker, pool)
        except Exception:
            ready = False
        metrics.ready.set(1 if ready else 0)

    await _until_stopped(stop, every_seconds, step)


async def broker_and_database_ready(broker: KafkaBroker, pool: asyncpg.Pool | None) -> bool:
    if pool is None:
        return False
    async with pool.acquire(timeout=2.0) as conn:
        await conn.fetchval("SELECT 1", timeout=2.0)
    return bool(await broker.ping(timeout=2.0))


@dataclass(frozen=True)
class Sampler:
    """Gauges of one service read from its database on an interval, beside the outbox's
    (`wire_lifecycle(samplers=...)`): for the same reason, a scrape must not wait on it."""

    what: str  # for the log: "<what> not sampled"
    sample: Callable[[asyncpg.Connection], Awaitable[None]]
    every_seconds: float


async def run_sampler(pool: asyncpg.Pool, sampler: Sampler, stop: asyncio.Event) -> None:
    async def step() -> None:
        # The last values stay; ServiceNotReady tells of an outage.
        await _sampled(pool, sampler.what, sampler.sample, sampler.every_seconds)

    await _until_stopped(stop, sampler.every_seconds, step)


async def _sampled(
    pool: asyncpg.Pool, what: str, sample: Callable[[asyncpg.Connection], Awaitable[None]], wait: float
) -> None:
    """One sample of gauges from the database, waiting `wait` seconds at most for a
    connection; one that fails leaves their last values."""
    try:
        async with pool.acquire(timeout=wait) as conn:
            await sample(conn)
    except Exception as exc:
        log.debug("%s not sampled: %s", what, type(exc).__name__)


async def _until_stopped(
    stop: asyncio.Event, every_seconds: float, step: Callable[[], Awaitable[None]]
) -> None:
    while not stop.is_set():
        await step()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every_seconds)


async def sample_months_left_open(conn: asyncpg.Connection, metrics: SettlementMetrics) -> None:
    """What `settlement pending` lists as months left open, as gauges: nobody runs it unasked,
    and those months' items wait on no statement, billed to nobody, until someone closes them."""
    months = await statement_repository.months_left_open(conn)
    metrics.left_open(
        months=len(months),
        items=sum(m["items"] for m in months),
        amount_ore=int(sum(m["amount_ore"] for m in months)),
    )


def months_left_open_sampler(metrics: SettlementMetrics, every_seconds: float) -> Sampler:
    return Sampler("months left open", partial(sample_months_left_open, metrics=metrics), every_seconds)


# The categories priced by the day, whose stays run until their end arrives.
STAY_CATEGORIES = (Category.DISCHARGE_READY_BED_DAYS, Category.EMERGENCY_BED_DAYS)


async def sample_running_stays(
    conn: asyncpg.Connection, metrics: SettlementMetrics, today: Callable[[], date]
) -> None:
    """What `settlement pending --running` lists, as gauges: a stay whose end the hospital
    never sent is billed by every close, and nothing else would tell."""
    stays = await ledger_repository.running_stays(conn)
    day = today()
    for category in STAY_CATEGORIES:
        since = [s["since"] for s in stays if s["category"] == category]
        # One that starts after today (a wrong time on its events) is 0 days long.
        longest = days_through(min(since), day) if since else 0
        metrics.running(category, stays=len(since), longest_days=longest)


def running_stays_sampler(
    metrics: SettlementMetrics, every_seconds: float, today: Callable[[], date]
) -> Sampler:
    return Sampler(
        "stays running", partial(sample_running_stays, metrics=metrics, today=today), every_seconds
    )
