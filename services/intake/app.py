"""The intake-and-rating process: three batch subscribers, one per inbound topic.

Each subscriber only turns Kafka records into `RawRecord`s and hands them to the service
layer. Validation is ours, not the framework's (`SkipValidation`): a bad message must
become a rejection with a reason, not a framework error and a redelivery loop. The
annotations still give the AsyncAPI document each topic's schema.
"""

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

from faststream import FastStream
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.middlewares import AckPolicy
from pydantic import SkipValidation

from contracts.v1 import topics
from contracts.v1.inbound import ActivityMessage, DischargeReadyMessage, EmergencyBedMessage
from contracts.v1.outbound import Rejection
from services.adapters.kafka_broker import ServiceBroker
from services.adapters.kafka_connection import KafkaConnection
from services.adapters.raw_messages import READ_RAW
from services.bootstrap import Resources, configure_logging, pseudonymiser, utc_now, wire_lifecycle
from services.intake.service import IntakeDeps, ingest
from services.intake.validation import RawRecord
from services.observability import http
from services.observability.metrics import IntakeMetrics, OutboxMetrics, instrument_broker, new_registry
from services.settings import Settings, intake_groups, load_settings

log = logging.getLogger("services.intake")
# Rejected records named one by one in a batch's log line; hostile input at volume is
# counted, not listed (`settlement rejections` has them all).
LOGGED_REJECTIONS = 20


class _Runtime:
    """Filled in at start-up; the handlers read it at call time."""

    deps: IntakeDeps | None = None
    metrics: IntakeMetrics | None = None


def _records(message: Any) -> list[RawRecord]:
    raw = message.raw_message if isinstance(message.raw_message, tuple) else (message.raw_message,)
    return [RawRecord(r.topic, r.partition, r.offset, r.key, r.value) for r in raw]


def create_broker(
    kafka: KafkaConnection,
    *,
    group_prefix: str = "samhandling-intake",
    max_batch: int = 2000,
    group_timing: Mapping[str, Any] | None = None,
    producer_options: Mapping[str, Any] | None = None,
) -> tuple[KafkaBroker, _Runtime]:
    # Three consumer groups, joined together rather than one after another (kafka_broker).
    broker = ServiceBroker(
        kafka.bootstrap_servers,
        security=kafka.security,
        client_id="samhandling-intake",
        logger=log,
        **READ_RAW,  # validation reads the raw records; see raw_messages
        **(producer_options or {}),
    )
    runtime = _Runtime()

    async def handle(message: Any) -> None:
        assert runtime.deps is not None, "intake used before start-up"
        records = _records(message)
        started = time.perf_counter()
        result = await ingest(records, runtime.deps)
        if runtime.metrics is not None and records:
            runtime.metrics.batch(
                records[0].topic,
                len(records),
                time.perf_counter() - started,
                accepted=result.accepted,
                duplicates=result.duplicates,
                rejected=result.rejected,
                ledger_items=result.ledger_items,
                off_key=result.off_key,
            )
        if result.rejected:
            # Where, not only how many: the operator finds each with `settlement rejections`.
            shown = result.rejected_at[:LOGGED_REJECTIONS]
            more = len(result.rejected_at) - len(shown)
            log.info(
                "rejected %s: %s%s", result.rejected, ", ".join(shown), f" and {more} more" if more else ""
            )

    groups = intake_groups(group_prefix)

    def subscriber(topic: str, description: str) -> Any:
        return broker.subscriber(
            topic,
            batch=True,
            max_records=max_batch,
            group_id=groups[topic],
            auto_offset_reset="earliest",
            # Commit only after the handler returned, i.e. after the database commit; on an
            # unexpected error, seek back so the batch is delivered again rather than lost.
            ack_policy=AckPolicy.NACK_ON_ERROR,
            # Events of a producer's transaction it aborted are no events: never settled.
            isolation_level="read_committed",
            title=f"intake:{topic}",
            description=description,
            **(group_timing or {}),
        )

    @subscriber(topics.DISCHARGE_READY, "Milestones of hospital episodes; priced as bed-days.")
    async def discharge_ready(
        body: SkipValidation[list[DischargeReadyMessage]], message: KafkaMessage
    ) -> None:
        await handle(message)

    @subscriber(topics.EMERGENCY_BEDS, "Municipal emergency-bed stays.")
    async def emergency_beds(body: SkipValidation[list[EmergencyBedMessage]], message: KafkaMessage) -> None:
        await handle(message)

    @subscriber(topics.ACTIVITY, "Hospital activity for co-financing.")
    async def activity(body: SkipValidation[list[ActivityMessage]], message: KafkaMessage) -> None:
        await handle(message)

    broker.publisher(
        topics.REJECTED,
        schema=Rejection,
        title="rejections",
        description="Inbound messages that were not accepted, with a reason code. Key: the original key, patient identifiers redacted.",
    )
    return broker, runtime


def create_app(settings: Settings | None = None) -> FastStream:
    return create_service(settings)[0]


def create_service(settings: Settings | None = None) -> tuple[FastStream, list[http.Route]]:
    """The app, and the HTTP endpoints to serve beside it (metrics, health, readiness)."""
    settings = settings or load_settings()
    broker, runtime = create_broker(
        settings.kafka(),
        group_prefix=settings.intake_group_prefix,
        max_batch=settings.intake_max_batch,
        group_timing=settings.consumer_group_timing(),
        producer_options=settings.producer_options(),
    )
    registry = new_registry()
    instrument_broker(broker, registry, "intake")
    runtime.metrics = IntakeMetrics(registry)
    app = FastStream(broker, logger=log)

    def ready(resources: Resources) -> None:
        runtime.deps = IntakeDeps(
            pool=resources.pool,
            tariffs=resources.tariffs,
            pseudonymise=pseudonymiser(settings),
            clock=utc_now,
            registry=resources.municipalities,
            fail_rating_for_source=settings.fault_fail_rating_for_source,
            outage=resources.outage,
        )

    is_ready = wire_lifecycle(
        app, broker, settings, ready, outbox_metrics=OutboxMetrics(registry, topics.SETTLEMENTS)
    )
    return app, http.routes(registry, is_ready)


def main() -> None:
    configure_logging("intake")
    settings = load_settings()
    app, routes = create_service(settings)
    asyncio.run(http.serve(app, settings.metrics_host, settings.metrics_port, routes))


if __name__ == "__main__":
    main()
