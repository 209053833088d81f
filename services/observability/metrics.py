"""The project's own Prometheus metrics, next to FastStream's (`faststream_*`, from its
Prometheus middleware). Every metric lives in a registry made at start-up by the process that
serves it, never in the client's global default registry: tests and the CLI can build as
many as they like, and a process exports only its own.

Names follow kafka_exporter where a Kafka operator will look for them
(`kafka_consumergroup_lag`); the rest are `samhandling_*`. docs/operations.md lists them all.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping
from datetime import date
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from contracts.v1 import topics
from contracts.v1.outbound import ReasonCode
from services.domain.tariffs import NATIONAL_RATES_REQUIRED, Parameter, TariffBook, national_cover
from services.lagmonitor.domain import GroupReport, GroupStatus, PartitionStatus

if TYPE_CHECKING:
    from faststream.kafka import KafkaBroker

_BATCH_BUCKETS = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2000, 5000)
# The reasons a command can be refused for; every other reason code is the intake's.
COMMAND_REASONS = (
    ReasonCode.SCHEMA_VIOLATION,
    ReasonCode.PERIOD_NOT_CLOSABLE,
    ReasonCode.DISPUTE_REFUSED,
    ReasonCode.PROCESSING_FAILED,
)
INTAKE_REASONS = tuple(
    r for r in ReasonCode if r not in {ReasonCode.PERIOD_NOT_CLOSABLE, ReasonCode.DISPUTE_REFUSED}
)


def _from_zero(counter: Counter, *label_sets: Iterable[str]) -> None:
    """Export every series of `counter` at 0 from the start. A series that first appears at 1
    has no increase Prometheus can see (`increase()` needs two samples), so an alert on it
    missed the first rejection of each topic and reason, and again after every restart."""
    for labels in itertools.product(*label_sets):
        counter.labels(*labels)


def new_registry() -> CollectorRegistry:
    return CollectorRegistry(auto_describe=True)


def instrument_broker(broker: KafkaBroker, registry: CollectorRegistry, service: str) -> None:
    """FastStream's own metrics for every subscriber and publisher of the broker: messages
    received, processed (by status), exceptions, processing time, publishes."""
    from faststream.kafka.prometheus import KafkaPrometheusMiddleware

    broker.add_middleware(KafkaPrometheusMiddleware(registry=registry, app_name=service))


class IntakeMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.received = Counter(
            "samhandling_intake_records_received",
            "Records taken from an inbound topic, valid or not.",
            ["topic"],
            registry=registry,
        )
        self.processed = Counter(
            "samhandling_intake_records_processed",
            "Records finished, by outcome: accepted (new), duplicate (already had it), rejected.",
            ["topic", "outcome"],
            registry=registry,
        )
        self.rejected = Counter(
            "samhandling_intake_records_rejected",
            "Records rejected, by reason code (as published on samhandling.rejected.v1).",
            ["topic", "reason"],
            registry=registry,
        )
        _from_zero(self.rejected, topics.INBOUND, INTAKE_REASONS)
        self.batch_size = Histogram(
            "samhandling_intake_batch_size",
            "Records per batch handed to the service layer.",
            ["topic"],
            buckets=_BATCH_BUCKETS,
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "samhandling_intake_batch_duration_seconds",
            "Time to validate, store and rate one batch, retries included.",
            ["topic"],
            registry=registry,
        )
        self.off_key = Counter(
            "samhandling_intake_records_off_key",
            "Valid records whose Kafka key is not their subject's id, as the contract asks: "
            "that producer's subjects may be spread over partitions, whose writes then wait for each other.",
            ["topic"],
            registry=registry,
        )
        self.ledger_writes = Counter(
            "samhandling_ledger_items_written",
            "Ledger items written (inserted or re-rated) by the intake.",
            registry=registry,
        )

    def batch(
        self,
        topic: str,
        size: int,
        seconds: float,
        *,
        accepted: int,
        duplicates: int,
        rejected: Mapping[str, int],
        ledger_items: int,
        off_key: int = 0,
    ) -> None:
        self.received.labels(topic).inc(size)
        self.batch_size.labels(topic).observe(size)
        self.batch_seconds.labels(topic).observe(seconds)
        self.processed.labels(topic, "accepted").inc(accepted)
        self.processed.labels(topic, "duplicate").inc(duplicates)
        self.processed.labels(topic, "rejected").inc(sum(rejected.values()))
        for reason, count in rejected.items():
            self.rejected.labels(topic, reason).inc(count)
        self.ledger_writes.inc(ledger_items)
        if off_key:
            self.off_key.labels(topic).inc(off_key)


class SettlementMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.commands = Counter(
            "samhandling_settlement_commands",
            "Commands handled, by outcome: closed, already_closed, rejected.",
            ["outcome"],
            registry=registry,
        )
        self.rejected = Counter(
            "samhandling_settlement_commands_rejected",
            "Commands rejected, by reason code.",
            ["reason"],
            registry=registry,
        )
        _from_zero(self.rejected, COMMAND_REASONS)
        self.close_seconds = Histogram(
            "samhandling_settlement_close_duration_seconds",
            "Time to close a period, from the command: waiting for intake to catch up, re-rating for a "
            "changed tariff book (beside intake), then the month completed and its statements and outbox "
            "(under one lock).",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
            registry=registry,
        )
        self.statements = Counter(
            "samhandling_settlement_statements_issued",
            "Statements issued by closes (one per municipality-trust pair; each is published twice).",
            registry=registry,
        )
        self.items_settled = Counter(
            "samhandling_settlement_items_settled",
            "Ledger items settled into statements.",
            registry=registry,
        )
        self.last_close = Gauge(
            "samhandling_settlement_last_close_timestamp_seconds",
            "When the last period was closed (Unix time), read from the ledger at start-up; 0 until one is.",
            registry=registry,
        )
        # Sampled (probes.sample_months_left_open); the last values stay while the database is away.
        self.months_left_open = Gauge(
            "samhandling_settlement_months_left_open",
            "Months before the latest closed one that hold items and were never closed: their items "
            "are on no statement until each is closed (`settlement pending` lists them).",
            registry=registry,
        )
        self.items_left_open = Gauge(
            "samhandling_settlement_items_left_open",
            "Ledger items of the months left open (samhandling_settlement_months_left_open).",
            registry=registry,
        )
        self.amount_left_open = Gauge(
            "samhandling_settlement_amount_left_open_ore",
            "What the priced items of the months left open come to, in øre: billed to nobody yet.",
            registry=registry,
        )
        # Sampled (probes.sample_running_stays), as the months left open.
        self.stays_running = Gauge(
            "samhandling_settlement_stays_running",
            "Stays whose end has not arrived, by category: each close bills them through its month "
            "(`settlement pending --running` lists them).",
            ["category"],
            registry=registry,
        )
        self.stay_running_longest_days = Gauge(
            "samhandling_settlement_stay_running_longest_days",
            "Days from the first day on the ledger of the longest-running stay of the category through "
            "today (Europe/Oslo); 0 when none is running. A stay far longer than any other is often "
            "one whose end the hospital never sent.",
            ["category"],
            registry=registry,
        )
        # Worked out from the tariff book at each scrape (watch_national_rates).
        self.national_rate_missing_days = Gauge(
            "samhandling_tariff_national_rate_missing_days",
            "Days through today (Europe/Oslo) on which the tariff book has no national rule of the "
            "parameter in force: their discharge-ready days wait as unrated until one is added "
            "(docs/tariffs.md). 0 while one is in force.",
            ["parameter"],
            registry=registry,
        )
        self.national_rate_days_left = Gauge(
            "samhandling_tariff_national_rate_days_left",
            "Days from today (Europe/Oslo) through the last one the book's national rules of the "
            "parameter cover without a gap (+Inf when the last has no end; 0 while none is in force).",
            ["parameter"],
            registry=registry,
        )

    def closed(self, seconds: float, *, already_closed: bool, statements: int, items: int, at: float) -> None:
        self.close_seconds.observe(seconds)
        if already_closed:
            self.commands.labels("already_closed").inc()
            return
        self.commands.labels("closed").inc()
        self.statements.inc(statements)
        self.items_settled.inc(items)
        self.last_close.set(at)

    def command_rejected(self, reason: str) -> None:
        self.commands.labels("rejected").inc()
        self.rejected.labels(reason).inc()

    def left_open(self, *, months: int, items: int, amount_ore: int) -> None:
        self.months_left_open.set(months)
        self.items_left_open.set(items)
        self.amount_left_open.set(amount_ore)

    def running(self, category: str, *, stays: int, longest_days: int) -> None:
        self.stays_running.labels(category).set(stays)
        self.stay_running_longest_days.labels(category).set(longest_days)

    def watch_national_rates(self, book: TariffBook, today: Callable[[], date]) -> None:
        """Export how the book covers `today()` with each national rate the law requires,
        worked out at each scrape: the day moves on while the book stays as loaded."""
        for parameter in NATIONAL_RATES_REQUIRED:

            def missing_days(parameter: Parameter = parameter) -> float:
                return national_cover(book, parameter, today()).missing_days

            def days_left(parameter: Parameter = parameter) -> float:
                return national_cover(book, parameter, today()).days_left

            self.national_rate_missing_days.labels(parameter.value).set_function(missing_days)
            self.national_rate_days_left.labels(parameter.value).set_function(days_left)


class OutboxMetrics:
    """The relay runs in every service process that has a database; so does the sampling of
    what it needs (`probes.sample_outbox_and_readiness`)."""

    def __init__(self, registry: CollectorRegistry, statements_topic: str) -> None:
        self._statements_topic = statements_topic
        self.published = Counter(
            "samhandling_outbox_published",
            "Messages the outbox relay published, by topic.",
            ["topic"],
            registry=registry,
        )
        self.statements = Counter(
            "samhandling_statements_published",
            "Statement copies published on the settlements topic (two per statement).",
            registry=registry,
        )
        self.backlog = Gauge(
            "samhandling_outbox_backlog",
            "Outbox messages written but not yet published (sampled; the last value stays while "
            "the database is away: see samhandling_service_ready).",
            registry=registry,
        )
        self.ready = Gauge(
            "samhandling_service_ready",
            "1 while the service reaches its database and the broker (what /readyz answers), "
            "0 while it does not: the process answers on /metrics through an outage.",
            registry=registry,
        )

    def sent(self, topic: str) -> None:
        self.published.labels(topic).inc()
        if topic == self._statements_topic:
            self.statements.inc()


class LagMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        partition = ["group", "topic", "partition"]
        self.lag = Gauge(
            "kafka_consumergroup_lag",
            "Messages on the partition the group has not committed yet; 0 when caught up.",
            partition,
            registry=registry,
        )
        self.lag_seconds = Gauge(
            "kafka_consumergroup_lag_seconds",
            "Age of the oldest message the group has not committed, from its timestamp; 0 when caught up.",
            partition,
            registry=registry,
        )
        self.committed = Gauge(
            "kafka_consumergroup_current_offset",
            "The group's committed offset; -1 while it has never committed.",
            partition,
            registry=registry,
        )
        self.log_end = Gauge(
            "kafka_topic_partition_current_offset",
            "The partition's log-end offset.",
            ["topic", "partition"],
            registry=registry,
        )
        self.partition_status = Gauge(
            "samhandling_consumergroup_partition_status",
            "1 for the partition's current status (OK, WARN, STALL, STOP, REWIND), 0 for the others.",
            [*partition, "status"],
            registry=registry,
        )
        self.group_status = Gauge(
            "samhandling_consumergroup_status",
            "1 for the group's current status (OK, WARN, ERR), 0 for the others.",
            ["group", "status"],
            registry=registry,
        )
        self.group_severity = Gauge(
            "samhandling_consumergroup_status_code",
            "The group's status as a number: 0 OK, 1 WARN, 2 ERR.",
            ["group"],
            registry=registry,
        )
        self.polls = Counter(
            "samhandling_lagmonitor_polls",
            "Polls of the broker, by outcome (ok, error).",
            ["outcome"],
            registry=registry,
        )
        self.poll_seconds = Histogram(
            "samhandling_lagmonitor_poll_duration_seconds",
            "Time to read every group's offsets and timestamps once.",
            registry=registry,
        )
        self.last_poll = Gauge(
            "samhandling_lagmonitor_last_poll_timestamp_seconds",
            "When the last successful poll finished (Unix time).",
            registry=registry,
        )
        self._exported: set[tuple[str, str, str]] = set()

    def update(self, reports: Iterable[GroupReport], at: float, seconds: float) -> None:
        current: set[tuple[str, str, str]] = set()
        for report in reports:
            for group_status in GroupStatus:
                self.group_status.labels(report.group, group_status.value).set(
                    int(report.status is group_status)
                )
            self.group_severity.labels(report.group).set(report.severity)
            for p in report.partitions:
                labels = (report.group, p.topic, str(p.partition))
                current.add(labels)
                self.lag.labels(*labels).set(p.lag)
                self.lag_seconds.labels(*labels).set(p.lag_seconds)
                self.committed.labels(*labels).set(-1 if p.committed is None else p.committed)
                self.log_end.labels(p.topic, str(p.partition)).set(p.log_end)
                for partition_status in PartitionStatus:
                    self.partition_status.labels(*labels, partition_status.value).set(
                        int(p.status is partition_status)
                    )
        # A partition that disappeared must not keep reporting its last lag, nor its log
        # end, forever (a deleted topic would stay on the dashboard).
        for labels in self._exported - current:
            for gauge in (self.lag, self.lag_seconds, self.committed):
                gauge.remove(*labels)
            for partition_status in PartitionStatus:
                self.partition_status.remove(*labels, partition_status.value)
        for topic_partition in {labels[1:] for labels in self._exported} - {labels[1:] for labels in current}:
            self.log_end.remove(*topic_partition)
        self._exported = current
        self.polls.labels("ok").inc()
        self.poll_seconds.observe(seconds)
        self.last_poll.set(at)

    def poll_failed(self) -> None:
        self.polls.labels("error").inc()
