"""The commands a container or an operator runs first fail with a line saying what to set,
not a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from services.cli.main import app
from services.settings import LagMonitorSettings
from services.tariffs import DEFAULT_TARIFF_DIR

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


# A service's settings with both stores away (the database's password must never be shown).
AWAY = {
    "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
    "DATABASE_URL": "postgresql://settlement:s3cret@127.0.0.1:1/ledger",
    "PSEUDONYM_KEY": "k" * 32,
    "COLUMNS": "200",
}


def test_a_service_whose_database_is_away_at_start_up_says_where_in_a_line_and_exits_2() -> None:
    result = runner.invoke(app, ["run", "intake"], env=AWAY)

    assert result.exit_code == 2, result.output
    assert "intake: could not reach the database at 127.0.0.1:1/ledger" in result.output
    assert "s3cret" not in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("env", "says"),
    [
        (
            {"MUNICIPALITY_REGISTRY": "/nonexistent.csv"},
            "intake: MUNICIPALITY_REGISTRY: /nonexistent.csv: cannot read the municipality registry",
        ),
        ({"TARIFF_DIR": "{bogus}"}, "intake: TARIFF_DIR: tariff rule 'x': 'bogus' is not a valid Parameter"),
        ({"TARIFF_DIR": "/nonexistent"}, "intake: TARIFF_DIR: no tariff files (*.toml) in /nonexistent"),
        (
            {"TARIFF_DIR": "{retired}"},
            "intake: TARIFF_DIR: tariff rule 'alesund' (from 2025-01-01, until further notice): municipality "
            "1507 is in force on none of its days",
        ),
        ({"PSEUDONYM_KEY": "short"}, "intake: PSEUDONYM_KEY: must be at least 32 characters, not 5"),
    ],
)
def test_a_service_refuses_bad_reference_data_or_key_in_a_line(
    env: dict[str, str], says: str, tmp_path: Path
) -> None:
    bogus = tmp_path / "tariffs"
    bogus.mkdir()
    (bogus / "a.toml").write_text(
        '[[rule]]\nid = "x"\nparameter = "bogus"\nvalue = "1"\nvalid_from = 2025-01-01\nscope = "national"\n'
    )
    retired = _retired_number_tariffs(tmp_path)
    env = {
        name: value.replace("{bogus}", str(bogus)).replace("{retired}", str(retired))
        for name, value in env.items()
    }
    result = runner.invoke(app, ["run", "intake"], env=AWAY | env)

    assert result.exit_code == 2, result.output
    assert says in result.output
    assert "Traceback" not in result.output


def _retired_number_tariffs(tmp_path: Path) -> Path:
    """A local agreement for Ålesund under the number it had until 2024, made for 2025."""
    tariffs = tmp_path / "retired"
    tariffs.mkdir()
    (tariffs / "national.toml").write_bytes((DEFAULT_TARIFF_DIR / "national.toml").read_bytes())
    (tariffs / "alesund.toml").write_text(
        '[[rule]]\nid = "alesund"\nparameter = "discharge_ready_day_rate_nok"\nvalue = "6000"\n'
        'valid_from = 2025-01-01\nscope = "agreement"\nmunicipality = "1507"\nhealth_trust = "983974724"\n'
    )
    return tariffs


def test_the_tariffs_command_refuses_what_a_service_would_refuse(tmp_path: Path) -> None:
    tariffs = _retired_number_tariffs(tmp_path)
    result = runner.invoke(app, ["tariffs", "1508", "983974724", "--tariff-dir", str(tariffs)])

    assert result.exit_code == 2, result.output
    assert "municipality 1507 is in force on none of its days" in result.output


def test_the_tariffs_command_names_a_tariff_dir_without_files_in_a_line() -> None:
    result = runner.invoke(app, ["tariffs", "4601", "983974724", "--tariff-dir", "/nonexistent"])

    assert result.exit_code == 2, result.output
    assert "no tariff files (*.toml) in /nonexistent" in result.output


def test_a_close_of_a_month_not_ended_is_refused_before_anything_is_sent() -> None:
    result = runner.invoke(app, ["close", "2999-01"], env={"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"})

    assert result.exit_code == 2, result.output
    assert "2999-01 has not ended yet (today is " in result.output and "nothing sent" in result.output


def test_the_command_list_gives_each_summary_as_one_paragraph() -> None:
    # A docstring's own line breaks are the source's, not the reader's: the list folds them.
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "250"})

    assert result.exit_code == 0, result.output
    assert (
        "Validate messages as intake would, before sending them: accepted, or the reason code and why. "
        "Offline:" in result.output
    )
    assert "`" not in result.output  # code spans shown as code, not as backticks
