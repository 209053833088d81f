"""`settlement dispute open|resolve`: bad input is refused by option, before any broker is asked."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

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


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, object], bytes]]:
    """What would have gone to the broker; the environment names one so no broker is needed."""
    calls: list[tuple[str, dict[str, object], bytes]] = []

    async def send(bootstrap: str, payload: bytes, key: bytes) -> None:
        calls.append((bootstrap, json.loads(payload), key))

    monkeypatch.setattr(ledger_commands, "_send", send)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "broker.example:9092")
    monkeypatch.setenv("DATABASE_URL", "postgresql://db.example/settlement")
    monkeypatch.setenv("PSEUDONYM_KEY", "00" * 32)
    return calls


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
    sent: list[tuple[str, dict[str, object], bytes]],
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
def test_open_refuses_bad_input_by_option(
    sent: list[tuple[str, dict[str, object], bytes]], option: str, value: str, expected: str
) -> None:
    result = CliRunner().invoke(app, _open(**{option: value}))
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)  # a usage error, not a traceback
    message = _message(result.output)
    assert f"Invalid value for '--{option.replace('_', '-')}': {expected}" in message
    assert not sent


def test_open_refuses_an_unknown_category(sent: list[tuple[str, dict[str, object], bytes]]) -> None:
    result = CliRunner().invoke(app, _open(category="bed_days"))
    assert result.exit_code == 2
    assert "Invalid value for '--category'" in _message(result.output)
    assert not sent


def test_a_good_resolution_is_sent(sent: list[tuple[str, dict[str, object], bytes]]) -> None:
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
def test_resolve_refuses_bad_input_by_option(
    sent: list[tuple[str, dict[str, object], bytes]], args: list[str], expected: str
) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert expected in _message(result.output)
    assert not sent
