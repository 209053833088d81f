"""Settings from the environment, read once at start-up; a missing secret stops the process
with a message instead of failing on the first event."""

from __future__ import annotations

import os
import ssl
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, FilePath, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.adapters.kafka_connection import KafkaConnection
from services.adapters.postgres import DEFAULT_POOL_SIZE, SMALLEST_POOL_SIZE
from services.adapters.stores import checked_database_url
from services.runtime.topics import MAX_MESSAGE_BYTES, SMALLEST_MAX_MESSAGE_BYTES
from services.tariffs import DEFAULT_TARIFF_DIR

if TYPE_CHECKING:
    from faststream.security import BaseSecurity

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]

# The pseudonym key's least length: an HMAC-SHA-256 key of fewer bytes than its output is weaker.
PSEUDONYM_KEY_CHARACTERS = 32


class KafkaSecurityUnusable(ValueError):
    """The TLS or SASL settings cannot be used (a certificate, key or CA file that does not
    load, or a broker that cannot take them); says which and why."""


class KafkaSecuritySettings(BaseSettings):
    """TLS and SASL from the environment, checked at start-up: an incomplete or
    contradictory setting stops the process with the variable's name rather than failing
    at the first connection (or connecting without the security it asked for)."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    kafka_security_protocol: SecurityProtocol = "PLAINTEXT"
    # With SASL_PLAINTEXT or SASL_SSL. PLAIN sends the password itself: use it over SASL_SSL only.
    kafka_sasl_mechanism: SaslMechanism = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    # With SSL or SASL_SSL. Without a CA file the system's trusted CAs verify the brokers.
    kafka_ssl_cafile: FilePath | None = None
    # A client certificate and its key (PEM), for a cluster that authenticates clients by TLS.
    kafka_ssl_certfile: FilePath | None = None
    kafka_ssl_keyfile: FilePath | None = None
    kafka_ssl_key_password: SecretStr | None = None

    @property
    def _sasl(self) -> bool:
        return self.kafka_security_protocol.startswith("SASL_")

    @property
    def _tls(self) -> bool:
        return self.kafka_security_protocol.endswith("SSL")

    @model_validator(mode="after")
    def _consistent(self) -> KafkaSecuritySettings:
        protocol = f"KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol}"
        credentials = self.kafka_sasl_username is not None or self.kafka_sasl_password is not None
        if self._sasl and not (self.kafka_sasl_username and self.kafka_sasl_password):
            raise ValueError(f"{protocol} needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD")
        if credentials and not self._sasl:
            raise ValueError(
                f"KAFKA_SASL_USERNAME or KAFKA_SASL_PASSWORD is set, but {protocol} sends no credentials: "
                "set KAFKA_SECURITY_PROTOCOL=SASL_SSL (or SASL_PLAINTEXT)"
            )
        files = (self.kafka_ssl_cafile, self.kafka_ssl_certfile, self.kafka_ssl_keyfile)
        if not self._tls and any(f is not None for f in files):
            raise ValueError(
                f"a KAFKA_SSL_ file is set, but {protocol} uses no TLS: set KAFKA_SECURITY_PROTOCOL=SSL "
                "(or SASL_SSL)"
            )
        if (self.kafka_ssl_certfile is None) != (self.kafka_ssl_keyfile is None):
            raise ValueError("KAFKA_SSL_CERTFILE and KAFKA_SSL_KEYFILE go together: set both or neither")
        return self

    @property
    def secured(self) -> bool:
        """Whether anything but plaintext was asked for."""
        return self.kafka_security_protocol != "PLAINTEXT"

    def security(self) -> BaseSecurity | None:
        """FastStream's description of it; the TLS context is made here, so call it at start-up."""
        context = self._tls_context() if self._tls else None
        if context is None and not self._sasl:
            return None
        # Imported only for a secured broker: FastStream as a whole comes with it.
        from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

        if not self._sasl:
            return BaseSecurity(ssl_context=context)
        assert self.kafka_sasl_username is not None and self.kafka_sasl_password is not None  # _consistent
        mechanisms = {"PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512}
        return mechanisms[self.kafka_sasl_mechanism](
            self.kafka_sasl_username,
            self.kafka_sasl_password.get_secret_value(),
            ssl_context=context,
            use_ssl=context is not None,
        )

    def _tls_context(self) -> ssl.SSLContext:
        # Verifies the brokers' certificates and host names, as Kafka's own clients do.
        try:
            context = ssl.create_default_context(cafile=self.kafka_ssl_cafile)
        except (ssl.SSLError, ValueError) as exc:
            raise KafkaSecurityUnusable(f"KAFKA_SSL_CAFILE {self.kafka_ssl_cafile}: {exc}") from exc
        if self.kafka_ssl_certfile is not None:
            password = self.kafka_ssl_key_password.get_secret_value() if self.kafka_ssl_key_password else None
            try:
                context.load_cert_chain(self.kafka_ssl_certfile, self.kafka_ssl_keyfile, password)
            except (ssl.SSLError, ValueError) as exc:
                raise KafkaSecurityUnusable(
                    f"KAFKA_SSL_CERTFILE {self.kafka_ssl_certfile} with KAFKA_SSL_KEYFILE "
                    f"{self.kafka_ssl_keyfile}: {exc}"
                ) from exc
        return context

    def connection(self, bootstrap_servers: str) -> KafkaConnection:
        return KafkaConnection(bootstrap_servers, self.security())


class KafkaSettings(KafkaSecuritySettings):
    """The brokers, and how to reach them."""

    kafka_bootstrap_servers: str = Field(description="host:port[,host:port]")

    def kafka(self) -> KafkaConnection:
        """Made at start-up: a TLS context reads its certificate files here."""
        return self.connection(self.kafka_bootstrap_servers)


class Settings(KafkaSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    database_url: str = Field(description="postgresql://user:password@host:port/db")
    pseudonym_key: SecretStr = Field(description="HMAC key for patient pseudonyms; at least 32 characters.")
    # One or more directories of tariff files, separated like PATH.
    tariff_dir: str = str(DEFAULT_TARIFF_DIR)
    # The municipality-number registry (CSV, docs/municipalities.md); default: the shipped one.
    municipality_registry: str | None = None
    intake_group_prefix: str = "samhandling-intake"
    settlement_group: str = "samhandling-settlement"

    @field_validator("database_url")
    @classmethod
    def _postgresql_url(cls, url: str) -> str:
        return checked_database_url(url)

    @field_validator("pseudonym_key")
    @classmethod
    def _long_enough(cls, key: SecretStr) -> SecretStr:
        # In characters: pydantic's own length check speaks of "items".
        if (length := len(key.get_secret_value())) < PSEUDONYM_KEY_CHARACTERS:
            raise ValueError(f"must be at least {PSEUDONYM_KEY_CHARACTERS} characters, not {length}")
        return key

    intake_max_batch: int = Field(default=2000, ge=1)
    # Connections each service process may hold: one is the outbox relay's, the rest write
    # intake's chunks side by side, or render a month beside the close's own connection.
    # Two is the least that works (one writer and the relay); four per process fits
    # PostgreSQL's default of 100 connections with room for many replicas.
    database_pool_size: int = Field(default=DEFAULT_POOL_SIZE, ge=SMALLEST_POOL_SIZE, le=100)
    # /metrics, /healthz and /readyz; no HTTP listener at all unless a port is given.
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"  # containers set 0.0.0.0 so Prometheus can reach it
    outbox_backlog_sample_seconds: float = Field(default=5.0, gt=0)
    # A sample counts every item of the months left open; they change only with a close or a
    # late event, and an alert on them may wait hours: once a minute is plenty.
    months_left_open_sample_seconds: float = Field(default=60.0, gt=0)
    # Stays still running (a few hundred nationally) change with intake and each close; an
    # alert on them waits a day: once a minute costs nothing.
    running_stays_sample_seconds: float = Field(default=60.0, gt=0)
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
    # How long one command may run before the consumer group takes the settlement service
    # for stuck (Kafka's max.poll.interval.ms, 5 minutes by default): past it the service
    # leaves the group, the command's offset cannot be committed, and the command is
    # handled again, by another replica meanwhile. A close after a missing rate is added
    # re-rates a year of held days, minutes nationally (docs/runbook.md).
    command_max_seconds: float = Field(default=3600.0, ge=10)
    # Off unless a fault test turns it on: exits the process after a close commits and
    # before its statements are published, to prove the outbox loses nothing.
    fault_crash_after_close_commit: bool = False
    # Off unless a fault test turns it on: rating an event from this source raises a
    # non-transient error, to prove such a record is rejected after a bounded number of
    # attempts (`processing_failed`) and does not hold up the records around it.
    fault_fail_rating_for_source: str | None = None

    def producer_options(self) -> dict[str, Any]:
        """The broker arguments for what the services publish (statements, rejections). A
        send counts as done (and its outbox row as published) once every in-sync replica has
        it, not the leader alone, which could fail before the others copied it."""
        return {"compression_type": "gzip", "max_request_size": self.kafka_max_message_bytes, "acks": "all"}

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


def secrets_dir() -> str | None:
    """`SECRETS_DIR`: a directory of files named after the settings (`pseudonym_key`,
    `database_url`, `kafka_sasl_password`, ...), each holding one value, as Docker and
    Kubernetes mount secrets. A variable in the environment wins over its file."""
    return os.environ.get("SECRETS_DIR") or None


def load_settings() -> Settings:
    return Settings(_secrets_dir=secrets_dir())  # fields come from the environment and SECRETS_DIR


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


def load_lag_monitor_settings(**values: Any) -> LagMonitorSettings:
    """From the environment and SECRETS_DIR; `values` win over both."""
    return LagMonitorSettings(_secrets_dir=secrets_dir(), **values)


def load_kafka_security() -> KafkaSecuritySettings:
    """TLS and SASL for a command that talks to the broker, as the services read them."""
    return KafkaSecuritySettings(_secrets_dir=secrets_dir())
