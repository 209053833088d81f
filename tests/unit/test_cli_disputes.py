"""`settlement dispute open|resolve`: bad input is refused by option, before any broker is asked."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.adapters.kafka_connection import KafkaConnection
from services.cli import ledger_commands
from services.cli.main import app

STATEMENT = "3f2b8c1e-4d5a-4f6b-9c7d-8e9f0a1b2c3d"
DISPUTE = "0b7e4c2a-9d1f-4e3b-8a6c-5f2d1e0c9b8a"
OPEN = {
    "--statement": STATEMENT,
    "--category": "emergency_bed_days",
    "--month": "2025-10",
    "--amount-nok": "41867.50",
    "--by": "municipality:4601",
    "--reason": "the patient was not ready for discharge",
}
RESOLVE = {"--outcome": "upheld", "--by": "the dispute board", "--reason": "agreed in the meeting"}


Sent = list[tuple[str, dict[str, object], bytes]]


@pytest.fixture
def outbox(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Sent:
    """What would have gone to the broker, with no broker, database, key or data dir known:
    run in an empty directory, so the default data dir .settlement does not exist."""
    calls: Sent = []

    async def send(kafka: KafkaConnection, payload: bytes, key: bytes) -> None:
        calls.append((kafka.bootstrap_servers, json.loads(payload), key))

    monkeypatch.setattr(ledger_commands, "send_command", send)
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "PSEUDONYM_KEY", "SETTLEMENT_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return calls


@pytest.fixture
def sent(outbox: Sent, monkeypatch: pytest.MonkeyPatch) -> Sent:
    """The environment names the broker, and only the broker."""
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "broker.example:9092")
    return outbox


def _open(**changes: str) -> list[str]:
    options = OPEN | {f"--{k.replace('_', '-')}": v for k, v in changes.items()}
    return ["dispute", "open", *[part for pair in options.items() for part in pair]]


def _resolve(dispute: str = DISPUTE, **changes: str) -> list[str]:
    options = RESOLVE | {f"--{k.replace('_', '-')}": v for k, v in changes.items()}
    return ["dispute", "resolve", dispute, *[part for pair in options.items() for part in pair]]


def _message(output: str) -> str:
    """The error as one line: without the box typer draws around it."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", output).split())


def test_a_good_dispute_is_sent_with_its_amount_in_ore(
    sent: Sent,
) -> None:
    result = CliRunner().invoke(app, _open(item="stay-17"))
    assert result.exit_code == 0, result.output
    [(bootstrap, command, _key)] = sent
    assert bootstrap == "broker.example:9092"
    assert command["statement_id"] == STATEMENT
    assert command["amount_ore"] == 4186750
    assert command["service_month"] == "2025-10"
    assert command["opened_by"] == {"role": "municipality", "id": "4601"}
    assert command["episode_id"] == "stay-17"


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("statement", "not-a-uuid", "expected a statement id, a UUID"),
        ("amount_nok", "1oo", "expected an amount in NOK above 0"),
        ("amount_nok", "41 867,00", "expected an amount in NOK above 0"),
        ("amount_nok", "41867,00", "expected an amount in NOK above 0"),
        ("amount_nok", "0", "expected an amount in NOK above 0"),
        ("amount_nok", "0.004", "expected an amount in NOK above 0"),
        ("amount_nok", "-100", "expected an amount in NOK above 0"),
        ("amount_nok", "NaN", "expected an amount in NOK above 0"),
        ("amount_nok", "1e3", "expected an amount in NOK above 0"),
        ("by", "kommune:4624", "expected municipality:NNNN or health_trust:NNNNNNNNN"),
        ("by", "4624", "expected municipality:NNNN or health_trust:NNNNNNNNN"),
        ("by", "municipality:46O1", "'46O1' is not a kommunenummer"),
        ("by", "municipality:0001", "'0001' is not a kommunenummer"),
        ("by", "health_trust:983974725", "'983974725' is not an organisation number"),
        ("month", "2025-13", "not a month (YYYY-MM): '2025-13'"),
        ("month", "10-2025", "not a month (YYYY-MM)"),
        ("reason", "no", "expected the basis of the claim in 3 to 2000 characters"),
        ("reason", "x" * 2001, "expected the basis of the claim in 3 to 2000 characters"),
    ],
)
def test_open_refuses_bad_input_by_option(sent: Sent, option: str, value: str, expected: str) -> None:
    result = CliRunner().invoke(app, _open(**{option: value}))
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)  # a usage error, not a traceback
    message = _message(result.output)
    assert f"Invalid value for '--{option.replace('_', '-')}': {expected}" in message
    assert not sent


def test_open_refuses_an_unknown_category(sent: Sent) -> None:
    result = CliRunner().invoke(app, _open(category="bed_days"))
    assert result.exit_code == 2
    assert "Invalid value for '--category'" in _message(result.output)
    assert not sent


def test_a_good_resolution_is_sent(sent: Sent) -> None:
    result = CliRunner().invoke(app, _resolve(outcome="partially_upheld", agreed_nok="1000"))
    assert result.exit_code == 0, result.output
    [(bootstrap, command, key)] = sent
    assert bootstrap == "broker.example:9092"
    assert (command["dispute_id"], command["outcome"], command["agreed_ore"]) == (
        DISPUTE,
        "partially_upheld",
        100000,
    )
    assert key == DISPUTE.encode()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (_resolve("D-17"), "Invalid value for 'DISPUTE': expected a dispute id, a UUID"),
        (_resolve(outcome="won"), "Invalid value for '--outcome'"),
        (
            _resolve(outcome="partially_upheld", agreed_nok="1oo"),
            "Invalid value for '--agreed-nok': expected an amount in NOK above 0",
        ),
        (
            _resolve(outcome="partially_upheld", agreed_nok="0"),
            "Invalid value for '--agreed-nok': expected an amount in NOK above 0",
        ),
        (
            _resolve(outcome="partially_upheld"),
            "Invalid value for '--agreed-nok': partially_upheld needs the amount found not owed",
        ),
        (
            _resolve(outcome="rejected", agreed_nok="100"),
            "Invalid value for '--agreed-nok': only for partially_upheld",
        ),
        (_resolve(by=" "), "Invalid value for '--by': expected who records the outcome"),
        (_resolve(reason="ok"), "Invalid value for '--reason': expected the reason in 3 to 2000"),
    ],
)
def test_resolve_refuses_bad_input_by_option(sent: Sent, args: list[str], expected: str) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert expected in _message(result.output)
    assert not sent


PATIENT_ID = "31129956715"  # a valid fødselsnummer (domain.md)


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (_open(reason=f"pasient {PATIENT_ID[:6]} {PATIENT_ID[6:]} var ikke utskrivningsklar"), "--reason"),
        (_resolve(reason=f"epikrise for {PATIENT_ID} mangler"), "--reason"),
        (_resolve(by=f"saksbehandler {PATIENT_ID}"), "--by"),
    ],
)
def test_free_text_holding_a_patient_id_is_refused_before_it_is_sent(
    sent: Sent, args: list[str], option: str
) -> None:
    # Sent, it is on the commands topic for good, and the service refuses it there.
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    message = _message(result.output)
    assert f"Invalid value for '{option}':" in message and "holds a patient identifier" in message
    assert PATIENT_ID[6:] not in result.output  # not shown back either
    assert not sent


# ---------------------------------------------------------------- where the broker is


def test_the_broker_named_by_the_environment_is_enough(sent: Sent, tmp_path: Path) -> None:
    """No DATABASE_URL, no PSEUDONYM_KEY, no data dir: a dispute only needs the broker."""
    for args in (_open(), _resolve()):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
    assert [bootstrap for bootstrap, _, _ in sent] == ["broker.example:9092"] * 2
    assert list(tmp_path.iterdir()) == []  # no pseudonym key made, no .settlement


def test_with_the_database_named_too_no_pseudonym_key_is_needed(
    sent: Sent, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://db.example/settlement")
    result = CliRunner().invoke(app, _open())
    assert result.exit_code == 0, result.output
    assert sent[0][0] == "broker.example:9092"
    assert list(tmp_path.iterdir()) == []


def _running_up(data_dir: Path, bootstrap: str) -> None:
    """What a running `settlement up` leaves in its data dir."""
    data_dir.mkdir()
    (data_dir / "runtime.env").write_text(
        f"KAFKA_BOOTSTRAP_SERVERS={bootstrap}\nDATABASE_URL=postgresql://127.0.0.1:5433/settlement\n"
    )


def test_the_broker_of_the_settlement_up_in_SETTLEMENT_DATA_DIR(
    outbox: Sent, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _running_up(tmp_path / "state", "127.0.0.1:19092")
    monkeypatch.setenv("SETTLEMENT_DATA_DIR", str(tmp_path / "state"))
    for args in (_open(), _resolve()):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
    assert [bootstrap for bootstrap, _, _ in outbox] == ["127.0.0.1:19092"] * 2
    assert not (tmp_path / "state" / "pseudonym.key").exists()


def test_the_broker_of_the_settlement_up_in_data_dir(outbox: Sent, tmp_path: Path) -> None:
    _running_up(tmp_path / "elsewhere", "127.0.0.1:29092")
    result = CliRunner().invoke(app, [*_resolve(), "--data-dir", str(tmp_path / "elsewhere")])
    assert result.exit_code == 0, result.output
    assert outbox[0][0] == "127.0.0.1:29092"


def test_no_broker_known_is_an_error_not_a_traceback(outbox: Sent) -> None:
    result = CliRunner().invoke(app, _open())
    assert result.exit_code == 2
    assert isinstance(result.exception, SystemExit)
    assert "KAFKA_BOOTSTRAP_SERVERS not set" in _message(result.output)
    assert not outbox
