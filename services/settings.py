"""Settings from the environment, read once at start-up; a missing secret stops the process
with a message instead of failing on the first event."""

from __future__ import annotations

from typing import Any

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from services.adapters.kafka_connection import KafkaConnection, KafkaSecuritySettings
from services.runtime.topics import MAX_MESSAGE_BYTES, SMALLEST_MAX_MESSAGE_BYTES
from services.tariffs import DEFAULT_TARIFF_DIR


class KafkaSettings(KafkaSecuritySettings):
    """The brokers, and how to reach them (TLS, SASL: services/adapters/kafka_connection.py)."""

    kafka_bootstrap_servers: str = Field(description="host:port[,host:port]")

    def kafka(self) -> KafkaConnection:
        """Made at start-up: a TLS context reads its certificate files here."""
        return self.connection(self.kafka_bootstrap_servers)


class Settings(KafkaSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    database_url: str = Field(description="postgresql://user:password@host:port/db")
    pseudonym_key: SecretStr = Field(
        min_length=32, description="HMAC key for patient pseudonyms; at least 32 characters."
    )
    # One or more directories of tariff files, separated like PATH.
    tariff_dir: str = str(DEFAULT_TARIFF_DIR)
    # The municipality-number registry (CSV, docs/municipalities.md); default: the shipped one.
    municipality_registry: str | None = None
    intake_group_prefix: str = "samhandling-intake"
    settlement_group: str = "samhandling-settlement"
    intake_max_batch: int = Field(default=2000, ge=1)
    # /metrics, /healthz and /readyz; no HTTP listener at all unless a port is given.
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"  # containers set 0.0.0.0 so Prometheus can reach it
    outbox_backlog_sample_seconds: float = Field(default=5.0, gt=0)
    outbox_poll_seconds: float = Field(default=0.1, gt=0)
    # Consumer-group timing (aiokafka's defaults unless set). A member that dies is noticed
    # after the session timeout, and only then do its partitions move to the members left;
    # a restarted process waits about that long for its assignment. Apache Kafka accepts
    # 6000 ms and up by default (group.min.session.timeout.ms).
    kafka_session_timeout_ms: int = Field(default=10_000, ge=1_000)
    kafka_heartbeat_interval_ms: int = Field(default=3_000, ge=100)
    kafka_rebalance_timeout_ms: int | None = Field(default=None, ge=1_000)
    # How long the broker may hold a fetch that finds no new records. aiokafka's default
    # (500 ms) is added to the publish-to-ledger latency of a steady trickle of events
    # (measured on Tansu at 2,000 events/s: p50 163 ms, p99 464 ms; at 25 ms: about 30 and
    # 120 ms), for the price of a few dozen empty fetches a second per idle consumer.
    kafka_fetch_max_wait_ms: int = Field(default=25, ge=1)
    # The largest message a producer sends (before compression); the statement topic is
    # created to allow as much (services/runtime/topics.py says why it is large).
    kafka_max_message_bytes: int = Field(default=MAX_MESSAGE_BYTES, ge=SMALLEST_MAX_MESSAGE_BYTES)
    # Close policy (docs/architecture.md): close the month before on this day of the month
    # (1-28) or later, if not closed yet; off unless set. A close first waits up to
    # `close_wait_seconds` for intake to process every event already received.
    auto_close_day: int | None = Field(default=None, ge=1, le=28)
    auto_close_poll_seconds: float = Field(default=60.0, gt=0)
    close_wait_seconds: float = Field(default=30.0, ge=0)
    # Off unless a fault test turns it on: exits the process after a close commits and
    # before its statements are published, to prove the outbox loses nothing.
    fault_crash_after_close_commit: bool = False
    # Off unless a fault test turns it on: rating an event from this source raises a
    # non-transient error, to prove such a record is rejected after a bounded number of
    # attempts (`processing_failed`) and does not hold up the records around it.
    fault_fail_rating_for_source: str | None = None

    def producer_options(self) -> dict[str, Any]:
        """The broker arguments for what the services publish (statements, rejections)."""
        return {"compression_type": "gzip", "max_request_size": self.kafka_max_message_bytes}

    def intake_groups(self) -> dict[str, str]:
        """The intake consumer group of each inbound topic."""
        return intake_groups(self.intake_group_prefix)

    def consumer_group_timing(self) -> dict[str, int | None]:
        """The subscriber arguments for the consumer-group timing above."""
        return {
            "session_timeout_ms": self.kafka_session_timeout_ms,
            "heartbeat_interval_ms": self.kafka_heartbeat_interval_ms,
            "rebalance_timeout_ms": self.kafka_rebalance_timeout_ms,
            "fetch_max_wait_ms": self.kafka_fetch_max_wait_ms,
        }


def intake_groups(prefix: str) -> dict[str, str]:
    """The intake consumer group of each inbound topic, under `prefix` (INTAKE_GROUP_PREFIX)."""
    from contracts.v1 import topics

    families = {
        topics.DISCHARGE_READY: "discharge-ready",
        topics.EMERGENCY_BEDS: "emergency-beds",
        topics.ACTIVITY: "activity",
    }
    return {topic: f"{prefix}.{family}" for topic, family in families.items()}


def load_settings() -> Settings:
    return Settings()  # fields come from the environment


class LagMonitorSettings(KafkaSettings):
    """The lag monitor reads only Kafka: it gets no database and no pseudonym key.

    The group names are the services' own settings (same environment variables), so the
    monitor watches exactly the groups the services use."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    intake_group_prefix: str = "samhandling-intake"
    settlement_group: str = "samhandling-settlement"
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"
    # How often offsets are read, and the sliding window the status rules look at
    # (docs/operations.md). The window is also how long lag may wait without the committed
    # offset moving before a partition is STALL or STOP: long enough that a rebalance or a
    # restart of a consumer is not an alarm, short enough to page before a night is lost.
    lag_poll_seconds: float = Field(default=5.0, gt=0)
    lag_window_seconds: float = Field(default=300.0, gt=0)

    @model_validator(mode="after")
    def _window_spans_polls(self) -> LagMonitorSettings:
        # A window of fewer polls than this sees a healthy consumer that has not committed
        # between two polls as stopped, and pages for it.
        if self.lag_window_seconds < 3 * self.lag_poll_seconds:
            raise ValueError(
                f"LAG_WINDOW_SECONDS ({self.lag_window_seconds:g}) must span at least three polls "
                f"(3 x LAG_POLL_SECONDS = {3 * self.lag_poll_seconds:g})"
            )
        return self


def load_lag_monitor_settings() -> LagMonitorSettings:
    return LagMonitorSettings()  # fields come from the environment
