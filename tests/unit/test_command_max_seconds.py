"""`COMMAND_MAX_SECONDS`: how long one command may run before the consumer group takes the
settlement service for stuck. Kafka's default (max.poll.interval.ms, five minutes) is less
than a close after a missing rate is added takes nationally: past it the service left the
group, the command's offset could not be committed (a CommitFailedError's traceback), and
the close was handled again, by another replica meanwhile (measured on the embedded broker
with a handler that outlived the interval)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.settings import load_settings
from services.settlement.app import create_service

BASE = {
    "DATABASE_URL": "postgresql://u:p@db.example/settlement",
    "PSEUDONYM_KEY": "k" * 32,
    "KAFKA_BOOTSTRAP_SERVERS": "kafka.example:9092",
}


def _poll_interval_ms() -> int:
    app, _routes = create_service(load_settings())
    assert app.broker is not None
    [commands] = app.broker.subscribers
    # What FastStream hands AIOKafkaConsumer: the interval the group coordinator enforces.
    return int(commands._connection_args["max_poll_interval_ms"])  # type: ignore[attr-defined]


def test_a_command_may_run_an_hour_by_default_and_as_long_as_set(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in BASE.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SECRETS_DIR", raising=False)
    monkeypatch.delenv("COMMAND_MAX_SECONDS", raising=False)
    assert _poll_interval_ms() == 3_600_000
    monkeypatch.setenv("COMMAND_MAX_SECONDS", "900")
    assert _poll_interval_ms() == 900_000
    monkeypatch.setenv("COMMAND_MAX_SECONDS", "1")
    with pytest.raises(ValidationError, match="command_max_seconds"):
        load_settings()
