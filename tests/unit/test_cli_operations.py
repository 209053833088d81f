"""The commands a container or an operator runs first fail with a line saying what to set,
not a traceback."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from services.cli.main import app
from services.settings import LagMonitorSettings

runner = CliRunner()


@pytest.fixture(autouse=True)
def _no_endpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "KAFKA_MAX_MESSAGE_BYTES", "PSEUDONYM_KEY"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("command", "env", "says"),
    [
        (["migrate"], {}, "DATABASE_URL"),
        (["create-topics"], {}, "KAFKA_BOOTSTRAP_SERVERS"),
        (
            ["create-topics"],
            {"KAFKA_BOOTSTRAP_SERVERS": "kafka:9092", "KAFKA_MAX_MESSAGE_BYTES": "64MiB"},
            "KAFKA_MAX_MESSAGE_BYTES",
        ),
        (
            ["create-topics"],
            {"KAFKA_BOOTSTRAP_SERVERS": "kafka:9092", "KAFKA_MAX_MESSAGE_BYTES": "1000"},
            "1048576",
        ),
    ],
)
def test_a_missing_or_malformed_setting_is_named_without_a_traceback(
    command: list[str], env: dict[str, str], says: str
) -> None:
    result = runner.invoke(app, command, env=env | {"COLUMNS": "200"})  # the error box unwrapped

    assert result.exit_code == 2, result.output
    assert says in result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)


def test_a_service_with_a_bad_setting_says_which_and_why_and_exits_2() -> None:
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
        "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
        "PSEUDONYM_KEY": "short",
    }
    result = runner.invoke(app, ["run", "intake"], env=env)

    assert result.exit_code == 2, result.output
    assert "intake: PSEUDONYM_KEY:" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("poll", "window", "ok"), [(5, 300, True), (15, 45, True), (15, 44.9, False), (5, 4, False)]
)
def test_the_lag_window_must_span_three_polls(poll: float, window: float, ok: bool) -> None:
    def settings() -> LagMonitorSettings:
        return LagMonitorSettings(
            kafka_bootstrap_servers="k:9092", lag_poll_seconds=poll, lag_window_seconds=window
        )

    if ok:
        assert settings().lag_window_seconds == window
    else:
        with pytest.raises(ValidationError, match="must span at least three polls"):
            settings()


def test_a_service_whose_database_is_away_at_start_up_says_where_in_a_line_and_exits_2() -> None:
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
        "DATABASE_URL": "postgresql://settlement:s3cret@127.0.0.1:1/ledger",
        "PSEUDONYM_KEY": "k" * 32,
        "COLUMNS": "200",
    }
    result = runner.invoke(app, ["run", "intake"], env=env)

    assert result.exit_code == 2, result.output
    assert "intake: could not reach the database at 127.0.0.1:1/ledger" in result.output
    assert "s3cret" not in result.output and "Traceback" not in result.output
