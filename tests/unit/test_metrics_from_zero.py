"""What the alert rules need of the services' metrics before anything has happened."""

from __future__ import annotations

import asyncio

import asyncpg
from faststream.kafka import KafkaBroker

from contracts.v1 import topics
from contracts.v1.outbound import ReasonCode
from services.observability.metrics import IntakeMetrics, OutboxMetrics, SettlementMetrics, new_registry
from services.observability.probes import sample_outbox_and_readiness


def test_every_rejection_series_is_exported_at_zero_before_the_first_rejection() -> None:
    # increase() needs two samples of a series: one that first appeared at 1 had none to see,
    # so InboundMessagesRejected missed the first rejection of each topic and reason (and
    # again after every restart of intake).
    registry = new_registry()
    IntakeMetrics(registry)
    SettlementMetrics(registry)

    for topic in topics.INBOUND:
        for reason in (ReasonCode.NOT_JSON, ReasonCode.SCHEMA_VIOLATION, ReasonCode.PROCESSING_FAILED):
            labels = {"topic": topic, "reason": reason.value}
            assert registry.get_sample_value("samhandling_intake_records_rejected_total", labels) == 0.0
    for reason in (ReasonCode.PERIOD_NOT_CLOSABLE, ReasonCode.DISPUTE_REFUSED, ReasonCode.SCHEMA_VIOLATION):
        labels = {"reason": reason.value}
        assert registry.get_sample_value("samhandling_settlement_commands_rejected_total", labels) == 0.0
    # The command reasons are not the intake's: no series an inbound topic never has.
    labels = {"topic": topics.ACTIVITY, "reason": ReasonCode.PERIOD_NOT_CLOSABLE.value}
    assert registry.get_sample_value("samhandling_intake_records_rejected_total", labels) is None


async def test_a_service_whose_stores_are_away_is_sampled_not_ready() -> None:
    # A service waits a database or broker outage out while answering on /metrics, so
    # ServiceDown never fired and the backlog gauge kept its last value: the readiness that
    # /readyz answers is sampled as a gauge too (ServiceNotReady).
    registry = new_registry()
    metrics = OutboxMetrics(registry, topics.SETTLEMENTS)
    metrics.ready.set(1)
    pool = await asyncpg.create_pool("postgresql://nobody@127.0.0.1:1/nothing", min_size=0)
    broker = KafkaBroker("127.0.0.1:1")  # never connected
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_outbox_and_readiness(pool, broker, metrics, stop, 0.05))
    try:
        for _ in range(400):  # 20 s at most
            if registry.get_sample_value("samhandling_service_ready") == 0.0:
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await sampler
        await pool.close()
    assert registry.get_sample_value("samhandling_service_ready") == 0.0
