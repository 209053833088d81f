"""The settlement process: takes commands, closes periods, publishes statements."""

import asyncio
import contextlib
import logging
import os
import time
import uuid
from collections.abc import Mapping
from datetime import date
from typing import Any

from faststream import FastStream
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.middlewares import AckPolicy
from pydantic import SkipValidation, TypeAdapter, ValidationError

from contracts.v1 import topics
from contracts.v1.outbound import (
    ClosePeriod,
    Command,
    OpenDispute,
    ReasonCode,
    ResolveDispute,
    SettlementStatement,
)
from services.adapters import rejection_repository
from services.adapters.intake_progress import wait_for_intake
from services.adapters.kafka_broker import ServiceBroker
from services.adapters.kafka_connection import KafkaConnection
from services.adapters.postgres import UnitOfWork, retry_transient
from services.adapters.raw_messages import READ_RAW
from services.bootstrap import Resources, configure_logging, utc_now, wire_lifecycle
from services.domain.calendar import Month, oslo_day
from services.domain.close_policy import period_to_close
from services.intake.validation import RawRecord, Rejected
from services.observability import http
from services.observability.metrics import OutboxMetrics, SettlementMetrics, instrument_broker, new_registry
from services.observability.probes import months_left_open_sampler, running_stays_sampler
from services.settings import Settings, load_settings
from services.settlement.disputes import DisputeRefused, open_dispute, resolve_dispute
from services.settlement.service import PeriodNotClosable, close_period
from services.settlement.tariff_cover import cover_warnings

log = logging.getLogger("services.settlement")


def oslo_today() -> date:
    return oslo_day(utc_now())


_AUTO_CLOSE = uuid.UUID("0c1d3e4f-5a6b-4c7d-8e9f-a0b1c2d3e4f5")
_COMMAND: TypeAdapter[ClosePeriod | OpenDispute | ResolveDispute] = TypeAdapter(Command)


class _Runtime:
    resources: Resources | None = None
    settings: Settings | None = None
    kafka: KafkaConnection | None = None
    crash_after_close_commit = False
    metrics: SettlementMetrics | None = None


def create_broker(
    kafka: KafkaConnection,
    *,
    group_id: str = "samhandling-settlement",
    group_timing: Mapping[str, Any] | None = None,
    producer_options: Mapping[str, Any] | None = None,
    command_max_seconds: float = 3600.0,
) -> tuple[KafkaBroker, _Runtime]:
    broker = ServiceBroker(  # its consumers' reading and commits as intake's (kafka_broker)
        kafka.bootstrap_servers,
        security=kafka.security,
        client_id="samhandling-settlement",
        logger=log,
        **READ_RAW,  # the handler reads the raw record; see raw_messages
        **(producer_options or {}),
    )
    runtime = _Runtime()

    @broker.subscriber(
        topics.COMMANDS,
        group_id=group_id,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        # A command sent in a transaction its sender aborted (a finance system's) is none.
        isolation_level="read_committed",
        max_poll_interval_ms=int(command_max_seconds * 1000),  # a close may take minutes
        title="settlement:commands",
        description="Commands to the settlement service: `close_period` closes a month; "
        "`open_dispute` and `resolve_dispute` dispute a published statement's line or item.",
        **(group_timing or {}),
    )
    async def on_command(body: SkipValidation[Command], message: KafkaMessage) -> None:
        assert runtime.resources is not None, "settlement used before start-up"
        raw = message.raw_message
        record = RawRecord(raw.topic, raw.partition, raw.offset, raw.key, raw.value)  # type: ignore[union-attr]
        await handle_command(record, runtime)

    broker.publisher(
        topics.SETTLEMENTS,
        schema=SettlementStatement,
        title="statements",
        description="Monthly statements, one copy per party. Key: `municipality:NNNN` or `health_trust:NNNNNNNNN`.",
    )
    return broker, runtime


async def handle_command(record: RawRecord, runtime: _Runtime) -> None:
    resources = runtime.resources
    assert resources is not None
    started = time.perf_counter()
    try:
        command = _COMMAND.validate_json(record.value or b"")
        period = Month.parse(command.period) if isinstance(command, ClosePeriod) else None
    except (ValidationError, ValueError) as exc:
        await _refuse(runtime, Rejected(record, ReasonCode.SCHEMA_VIOLATION, _describe(exc)))
        return
    try:
        if isinstance(command, OpenDispute):
            await retry_transient(
                lambda: open_dispute(resources.pool, command, utc_now),
                what="open dispute",
                outage=resources.outage,
            )
            return
        if isinstance(command, ResolveDispute):
            await retry_transient(
                lambda: resolve_dispute(resources.pool, command, utc_now),
                what="resolve dispute",
                outage=resources.outage,
            )
            return
        assert period is not None
        if period.last_day >= oslo_today():  # refused at once, not after waiting for intake
            raise PeriodNotClosable(f"{period} has not ended yet (today is {oslo_today()} in Oslo)")
        await _wait_for_intake(runtime, period)
        result = await retry_transient(
            lambda: close_period(
                resources.pool,
                resources.tariffs,
                period,
                command_id=command.command_id,
                clock=utc_now,
                municipalities=resources.municipalities,
            ),
            what=f"close {period}",
            outage=resources.outage,
        )
    except PeriodNotClosable as exc:
        await _refuse(runtime, Rejected(record, ReasonCode.PERIOD_NOT_CLOSABLE, str(exc)))
        return
    except DisputeRefused as exc:
        await _refuse(runtime, Rejected(record, ReasonCode.DISPUTE_REFUSED, str(exc)))
        return
    except Exception as exc:
        # Not the command's fault, and not transient: record it rather than loop on it.
        log.exception("command %s failed", type(command).__name__)
        await _refuse(
            runtime, Rejected(record, ReasonCode.PROCESSING_FAILED, f"failed: {type(exc).__name__}")
        )
        return
    if runtime.metrics is not None:
        runtime.metrics.closed(
            time.perf_counter() - started,
            already_closed=result.already_closed,
            statements=result.statements,
            items=result.items,
            at=time.time(),
        )
    if result.already_closed:
        log.info("%s is already closed; nothing new published", result.period)
    elif runtime.crash_after_close_commit:
        log.error("fault injection: exiting after the close of %s committed, before publishing", period)
        os._exit(86)


async def _wait_for_intake(runtime: _Runtime, period: Month) -> None:
    """No event already received may be left out of the month being closed."""
    settings = runtime.settings
    if settings is None or runtime.kafka is None:
        return
    left = await wait_for_intake(runtime.kafka, settings.intake_groups(), settings.close_wait_seconds)
    if left:
        raise PeriodNotClosable(
            f"intake has {left} received events not processed yet; {period} was not closed: "
            "close it again when intake has caught up"
        )


async def auto_close(broker: KafkaBroker, runtime: _Runtime, stop: asyncio.Event) -> None:
    """The close policy: on the configured day, ask for the month before to be closed. The
    command id is derived from the month, so replicas asking at once close it once."""
    settings = runtime.settings
    assert settings is not None and settings.auto_close_day is not None
    while not stop.is_set():
        try:
            resources = runtime.resources
            if resources is not None:
                async with resources.pool.acquire() as conn:
                    closed = {
                        Month.of(r["period"]) for r in await conn.fetch("SELECT period FROM closed_periods")
                    }
                period = period_to_close(oslo_today(), settings.auto_close_day, closed)
                if period is not None:
                    command = ClosePeriod(
                        type="close_period",
                        period=str(period),
                        command_id=uuid.uuid5(_AUTO_CLOSE, str(period)),
                    )
                    log.info("close policy: asking for %s to be closed", period)
                    await broker.publish(
                        command.model_dump_json().encode(), topics.COMMANDS, key=str(period).encode()
                    )
        except Exception:
            log.exception("close policy: check failed; trying again later")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=settings.auto_close_poll_seconds)


async def _refuse(runtime: _Runtime, rejected: Rejected) -> None:
    assert runtime.resources is not None
    await _reject(runtime.resources, rejected)
    if runtime.metrics is not None:
        runtime.metrics.command_rejected(rejected.reason.value)


def _describe(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
            for e in exc.errors(include_input=False, include_url=False)
        )
    return str(exc)


async def _reject(resources: Resources, rejected: Rejected) -> None:
    async def write() -> None:
        async with UnitOfWork(resources.pool) as uow:
            await rejection_repository.record(uow.conn, [rejected], utc_now())
            await uow.commit()

    await retry_transient(write, what="command rejection", outage=resources.outage)
    log.warning(
        "command rejected (%s %s): %s",
        rejected.record.place,
        rejected.reason.value,
        rejected.redacted_message(),
    )


def create_app(settings: Settings | None = None) -> FastStream:
    return create_service(settings)[0]


def create_service(settings: Settings | None = None) -> tuple[FastStream, list[http.Route]]:
    """The app, and the HTTP endpoints to serve beside it (metrics, health, readiness)."""
    settings = settings or load_settings()
    kafka = settings.kafka()
    broker, runtime = create_broker(
        kafka,
        group_id=settings.settlement_group,
        group_timing=settings.consumer_group_timing(),
        producer_options=settings.producer_options(),
        command_max_seconds=settings.command_max_seconds,
    )
    runtime.crash_after_close_commit = settings.fault_crash_after_close_commit
    runtime.settings = settings
    runtime.kafka = kafka
    registry = new_registry()
    instrument_broker(broker, registry, "settlement")
    runtime.metrics = metrics = SettlementMetrics(registry)
    app = FastStream(broker, logger=log)

    def ready(resources: Resources) -> None:
        runtime.resources = resources
        metrics.watch_national_rates(resources.tariffs, oslo_today)
        for line in cover_warnings(resources.tariffs, oslo_today()):
            log.warning("%s", line)

    is_ready = wire_lifecycle(
        app,
        broker,
        settings,
        ready,
        outbox_metrics=OutboxMetrics(registry, topics.SETTLEMENTS),
        samplers=[
            months_left_open_sampler(metrics, settings.months_left_open_sample_seconds),
            running_stays_sampler(metrics, settings.running_stays_sample_seconds, oslo_today),
        ],
    )

    @app.after_startup
    async def last_close_from_the_ledger() -> None:
        # The gauge is the ledger's, not this process's: after a restart it read 0 (1970 on
        # the dashboard's "Last period closed") though the database knew the last close.
        assert runtime.resources is not None and runtime.metrics is not None
        async with runtime.resources.pool.acquire() as conn:
            last = await conn.fetchval("SELECT max(closed_at) FROM closed_periods")
        if last is not None:
            runtime.metrics.last_close.set(last.timestamp())

    if settings.auto_close_day is not None:
        stop = asyncio.Event()
        tasks: list[asyncio.Task[None]] = []

        @app.after_startup
        async def start_close_policy() -> None:
            tasks.append(asyncio.create_task(auto_close(broker, runtime, stop)))

        @app.on_shutdown
        async def stop_close_policy() -> None:
            stop.set()
            for task in tasks:
                await task

    return app, http.routes(registry, is_ready)


def main() -> None:
    configure_logging("settlement")
    settings = load_settings()
    app, routes = create_service(settings)
    asyncio.run(http.serve(app, settings.metrics_host, settings.metrics_port, routes))


if __name__ == "__main__":
    main()
