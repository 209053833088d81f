"""The composition root: builds what a service process needs from its settings, at
start-up, never at import."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from faststream import FastStream
from faststream.kafka import KafkaBroker

from services.adapters.municipality_registry import load_registry
from services.adapters.outbox import OutboxRelay
from services.adapters.postgres import DatabaseOutage
from services.adapters.stores import create_pool_or_say_where, database_location, reach_broker
from services.adapters.tariff_files import load_tariffs, tariff_dirs
from services.domain.municipalities import Registry
from services.domain.tariffs import TariffBook, check_municipalities
from services.intake.pseudonym import Pseudonymiser
from services.observability.metrics import OutboxMetrics
from services.observability.probes import (
    Sampler,
    broker_and_database_ready,
    run_sampler,
    sample_outbox_and_readiness,
)
from services.runtime.heap import settle_startup_heap
from services.settings import Settings


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Resources:
    settings: Settings
    pool: asyncpg.Pool
    tariffs: TariffBook
    municipalities: Registry
    # Told once however many of the process's tasks wait on the database (retry_transient).
    outage: DatabaseOutage


async def open_resources(settings: Settings) -> Resources:
    # Refuse to start on bad tariff or registry data, before touching anything else.
    tariffs = load_tariffs(*tariff_dirs(settings.tariff_dir))
    municipalities = (
        load_registry(settings.municipality_registry) if settings.municipality_registry else load_registry()
    )
    check_municipalities(tariffs, municipalities)
    pool = await create_pool_or_say_where(settings.database_url, max_size=settings.database_pool_size)
    return Resources(
        settings=settings,
        pool=pool,
        tariffs=tariffs,
        municipalities=municipalities,
        outage=DatabaseOutage(database_location(settings.database_url)),
    )


def pseudonymiser(settings: Settings) -> Pseudonymiser:
    return Pseudonymiser(settings.pseudonym_key.get_secret_value().encode())


def configure_logging(service: str) -> None:
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("aiokafka").setLevel(logging.WARNING)


def wire_lifecycle(
    app: FastStream,
    broker: KafkaBroker,
    settings: Settings,
    on_ready: Callable[[Resources], None],
    *,
    outbox_metrics: OutboxMetrics | None = None,
    samplers: Sequence[Sampler] = (),
) -> Callable[[], Awaitable[bool]]:
    """Open resources when the app starts, run the outbox relay (and the service's own
    `samplers`) while it runs, and close everything in reverse order when it stops. Returns
    the service's readiness check."""
    state: dict[str, Any] = {}

    @app.on_startup
    async def open_all() -> None:
        state["resources"] = resources = await open_resources(settings)
        await reach_broker(settings.kafka())
        on_ready(resources)

    @app.after_startup
    async def settle_heap() -> None:
        # Everything start-up made (resources, the broker's clients) is in place by now.
        settle_startup_heap()

    @app.after_startup
    async def start_relay() -> None:
        async def publish(topic: str, key: str | None, payload: bytes) -> None:
            await broker.publish(
                payload,
                topic,
                key=key.encode() if key else None,
                headers={"content-type": "application/json"},
            )
            if outbox_metrics is not None:
                outbox_metrics.sent(topic)

        state["stop"] = stop = asyncio.Event()
        resources = state["resources"]
        relay = OutboxRelay(resources.pool, publish, outage=resources.outage)
        state["relay"] = asyncio.create_task(relay.run(stop, settings.outbox_poll_seconds))
        if outbox_metrics is not None:
            state["sampler"] = asyncio.create_task(
                sample_outbox_and_readiness(
                    state["resources"].pool,
                    broker,
                    outbox_metrics,
                    stop,
                    settings.outbox_backlog_sample_seconds,
                )
            )
        state["samplers"] = [
            asyncio.create_task(run_sampler(resources.pool, sampler, stop)) for sampler in samplers
        ]

    @app.on_shutdown
    async def stop_relay() -> None:
        if "stop" in state:
            state["stop"].set()
            await state["relay"]
            if "sampler" in state:
                await state["sampler"]
            for task in state.get("samplers", []):
                await task

    @app.after_shutdown
    async def close_all() -> None:
        if "resources" in state:
            await state["resources"].pool.close()

    async def ready() -> bool:
        resources = state.get("resources")
        return "relay" in state and await broker_and_database_ready(
            broker, resources.pool if resources else None
        )

    return ready
