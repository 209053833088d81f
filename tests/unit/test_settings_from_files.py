"""Secrets as files (`SECRETS_DIR`), as Docker and Kubernetes mount them: the services and
the commands read a setting from a file named after it when the environment has no value."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.cli.main import app
from services.settings import (
    KafkaSecuritySettings,
    LagMonitorSettings,
    Settings,
    load_kafka_security,
    load_lag_monitor_settings,
    load_settings,
)

KEY = "a-pseudonym-key-of-at-least-32-characters"


@pytest.fixture(autouse=True)
def _nothing_set(monkeypatch: pytest.MonkeyPatch) -> None:
    for cls in (Settings, LagMonitorSettings, KafkaSecuritySettings):
        for name in cls.model_fields:
            monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.delenv("SECRETS_DIR", raising=False)


def _secrets(folder: Path, monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    for name, value in values.items():
        (folder / name).write_text(value + "\n")  # as `kubectl create secret --from-file` keeps a newline
    monkeypatch.setenv("SECRETS_DIR", str(folder))


def test_the_services_read_their_secrets_from_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _secrets(
        tmp_path,
        monkeypatch,
        pseudonym_key=KEY,
        database_url="postgresql://settlement:pw@db.example/settlement?sslmode=verify-full",
        kafka_sasl_password="sasl-secret",
    )
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka.example:9093")
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "samhandling")

    settings = load_settings()

    assert settings.pseudonym_key.get_secret_value() == KEY
    assert settings.database_url.endswith("/settlement?sslmode=verify-full")
    assert settings.kafka().client_options()["sasl_plain_password"] == "sasl-secret"
    assert load_lag_monitor_settings().kafka().client_options()["sasl_plain_password"] == "sasl-secret"
    assert load_kafka_security().connection("k:9093").client_options()["sasl_plain_password"] == "sasl-secret"


def test_a_variable_in_the_environment_wins_over_its_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _secrets(tmp_path, monkeypatch, pseudonym_key=KEY, database_url="postgresql://from-file/db")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "k:9092")
    monkeypatch.setenv("DATABASE_URL", "postgresql://from-environment/db")

    assert load_settings().database_url == "postgresql://from-environment/db"


def test_a_bad_secret_in_a_file_is_named_like_one_in_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _secrets(tmp_path, monkeypatch, pseudonym_key="short")
    env = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}

    result = CliRunner().invoke(app, ["run", "intake"], env=env | {"COLUMNS": "200"})

    assert result.exit_code == 2, result.output
    assert "intake: PSEUDONYM_KEY:" in result.output and "short" not in result.output


def test_the_commands_find_the_database_and_the_key_in_files_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.runtime.environment import find_endpoints

    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "..data").mkdir()  # what Kubernetes puts beside the files
    _secrets(
        secrets,
        monkeypatch,
        database_url="postgresql://settlement:pw@db.example/settlement",
        pseudonym_key=KEY,
    )
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka.example:9092")

    endpoints = find_endpoints(tmp_path / "no-settlement-up-here")

    assert endpoints.database_url == "postgresql://settlement:pw@db.example/settlement"
    assert endpoints.pseudonym_key == KEY


def test_settlement_up_uses_the_broker_database_and_key_of_the_files_and_starts_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.runtime.environment import Environment

    secrets = tmp_path / "secrets"
    secrets.mkdir()
    _secrets(
        secrets,
        monkeypatch,
        kafka_bootstrap_servers="kafka.example:9092",
        database_url="postgresql://settlement:pw@db.example/settlement",
        pseudonym_key=KEY,
    )

    with Environment(tmp_path / "state") as endpoints:
        assert (endpoints.bootstrap_servers, endpoints.database_url, endpoints.pseudonym_key) == (
            "kafka.example:9092",
            "postgresql://settlement:pw@db.example/settlement",
            KEY,
        )
        assert not endpoints.embedded
    assert not (tmp_path / "state" / "pseudonym.key").exists()  # the services' key, not one made here
