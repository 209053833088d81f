"""Text from data (ids, notes, rule ids, reasons, paths) is printed as written: rich must not
take its square brackets for markup and swallow them."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from services.cli import demo, ledger_commands, main, options, tariffs
from services.cli.render import print_statements
from services.domain.calendar import Month
from services.domain.ledger import Category, LedgerItem, PayerRole
from services.domain.tariffs import Parameter, TariffRule, build_book
from services.runtime.environment import Endpoints
from services.settlement.reconciliation import Reconciliation
from services.settlement.statements import build_statements

BERGEN, HELSE_BERGEN = "4601", "983974724"
STATEMENT = uuid.UUID("3f2b8c1e-4d5a-4f6b-9c7d-8e9f0a1b2c3d")
RULE = TariffRule(
    "national.discharge-ready.[draft]",
    Parameter.DISCHARGE_READY_DAY_RATE_NOK,
    Decimal("5460"),
    date(2025, 1, 1),
    None,
    source="[forskrift om kommunal betaling] § 3",
)
ENDPOINTS = Endpoints("broker.example:9092", "postgresql://db.example/settlement", "00" * 32, embedded=False)


def recording() -> Console:
    return Console(record=True, width=400, color_system=None)


@pytest.fixture
def printed(monkeypatch: pytest.MonkeyPatch) -> Callable[[Any], Console]:
    """Replace a command module's console (or another of its consoles: `options.errors`)
    with one that records what it prints."""

    def record(module: Any, name: str = "console") -> Console:
        console = recording()
        monkeypatch.setattr(module, name, console)
        return console

    return record


class FakeConnection:
    """Answers every query with `rows`, except those reading from a table in `none_from`
    (the facts of a subject, unless told otherwise), of which it has none."""

    def __init__(
        self, rows: list[dict[str, Any]] | None = None, *, none_from: tuple[str, ...] = ("inbound_events",)
    ) -> None:
        self.rows = rows or []
        self.none_from = none_from

    async def fetch(self, query: str, *args: object) -> list[dict[str, Any]]:
        return [] if any(f"FROM {table}" in query for table in self.none_from) else self.rows

    async def set_type_codec(self, *args: object, **kwargs: object) -> None:
        pass

    async def close(self) -> None:
        pass


def connecting_to(monkeypatch: pytest.MonkeyPatch, conn: FakeConnection) -> None:
    async def connect(url: str) -> FakeConnection:
        return conn

    monkeypatch.setattr(asyncpg, "connect", connect)


def _row(subject: str, statement_id: uuid.UUID | None, **changes: object) -> dict[str, Any]:
    return {
        "category": "discharge_ready_bed_days",
        "subject_id": subject,
        "health_trust": HELSE_BERGEN,
        "municipality": BERGEN,
        "payer_role": "municipality",
        "service_month": date(2025, 10, 1),
        "first_day": date(2025, 10, 3),
        "last_day": date(2025, 10, 3),
        "quantity": 1,
        "unit_price_ore": 546000,
        "amount_ore": 546000,
        "rule_id": RULE.id,
        "open_ended": False,
        "not_payable_reason": None,
        "note": None,
        "statement_id": statement_id,
    } | changes


async def test_tariffs_explain_prints_the_settlement_and_the_notes_in_brackets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    connecting_to(
        monkeypatch,
        FakeConnection(
            [
                _row("EP-1", STATEMENT, note="[mapped 1201 to 4601]"),
                _row("EP-1", None, unit_price_ore=None, amount_ore=None, rule_id=None),
                _row("EP-1", STATEMENT, unit_price_ore=None, amount_ore=None, rule_id=None),
            ],
            none_from=("inbound_events", "adjustments"),
        ),
    )
    console = recording()
    assert (
        await tariffs.explain_subject("postgresql://fake", "EP-1", HELSE_BERGEN, build_book([RULE]), console)
        == 3
    )
    text = " ".join(console.export_text().split())
    assert text.count(f"[settled on statement {STATEMENT}]") == 1
    assert f"[on statement {STATEMENT} as unrated: priced by an adjustment" in text
    assert "[not yet settled]" in text
    assert "([mapped 1201 to 4601])" in text
    assert f"rule {RULE.id}: discharge_ready_day_rate_nok = 5460 (national" in text
    assert RULE.source in text


def test_the_rules_table_prints_rule_ids_and_sources_as_written() -> None:
    console = recording()
    console.print(tariffs.rules_table(build_book([RULE]), BERGEN, HELSE_BERGEN, date(2025, 10, 1)))
    text = console.export_text()
    assert RULE.id in text
    assert RULE.source in text


def test_a_statement_prints_its_ids_and_notes_as_written() -> None:
    item = LedgerItem(
        category=Category.EMERGENCY_BED_DAYS,
        subject_id="EP-[emergency]-7",
        health_trust=HELSE_BERGEN,
        municipality=BERGEN,
        payer_role=PayerRole.HEALTH_TRUST,
        service_month=Month(2025, 10),
        first_day=date(2025, 10, 3),
        last_day=date(2025, 10, 4),
        quantity=2,
        unit_price_ore=None,
        amount_ore=None,
        rule_id=None,
        not_payable_reason="[no agreed rate] for the pair",
    )
    issued = datetime(2025, 11, 1, 5, 0, tzinfo=UTC)
    statements = build_statements(Month(2025, 10), BERGEN, HELSE_BERGEN, [item], issued)
    console = recording()
    print_statements(console, list(statements))
    text = console.export_text()
    assert "EP-[emergency]-7" in text
    assert "[no agreed rate] for the pair" in text


def test_verify_prints_the_problems_as_written(
    monkeypatch: pytest.MonkeyPatch, printed: Callable[[Any], Console]
) -> None:
    console = printed(ledger_commands)

    async def problems(*args: object) -> list[str]:
        return ["topic: [statement 3 of the pair] missing"]

    monkeypatch.setattr(ledger_commands, "_verify", problems)
    with pytest.raises(typer.Exit):
        ledger_commands.verify(ENDPOINTS, BERGEN, HELSE_BERGEN)
    assert "✗ topic: [statement 3 of the pair] missing" in console.export_text()


async def test_reconcile_prints_ids_causes_and_reasons_as_written(
    monkeypatch: pytest.MonkeyPatch, printed: Callable[[Any], Console]
) -> None:
    console = printed(ledger_commands)
    connecting_to(monkeypatch, FakeConnection())
    found = Reconciliation(
        BERGEN,
        HELSE_BERGEN,
        date(2025, 10, 1),
        items=[
            {
                "category": "activity_co_financing",
                "subject_id": "ACT-[day surgery]",
                "first_day": date(2025, 10, 3),
                "last_day": date(2025, 10, 3),
                "quantity": 1,
                "payer_role": "municipality",
                "amount_ore": None,
                "rule_id": None,
                "not_payable_reason": "[outside the trial] no co-financing",
                "statement_id": None,
            }
        ],
        adjustments=[
            {
                "subject_id": "EP-[late]",
                "quantity_delta": -1,
                "amount_delta_ore": -546000,
                "payer_role": "municipality",
                "cause": "event",
                "caused_by_source": "dips",
                "caused_by_event_id": "[correction 2]",
                "statement_id": None,
            }
        ],
        disputes=[
            {
                "dispute_id": uuid.uuid4(),
                "status": "open",
                "amount_ore": 100,
                "opened_by": "municipality:4601",
                "reason": "see [letter of 3 November]",
            }
        ],
        known=True,
    )

    async def reconcile(*args: object) -> Reconciliation:
        return found

    monkeypatch.setattr(ledger_commands, "reconcile", reconcile)
    await ledger_commands._reconcile(ENDPOINTS, BERGEN, HELSE_BERGEN, Month(2025, 10))
    text = console.export_text()
    for written in (
        "ACT-[day surgery]",
        "[outside the trial] no co-financing",
        "EP-[late]",
        "event dips/[correction 2]",
        "see [letter of 3 November]",
    ):
        assert written in text


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "PSEUDONYM_KEY", "SETTLEMENT_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def ledger_endpoints(environment: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands find a ledger through the environment (the connection is `connecting_to`'s)."""
    for name, value in ENDPOINTS.as_env().items():
        monkeypatch.setenv(name, value)


def test_pending_prints_subjects_and_causes_as_written(
    ledger_endpoints: None, monkeypatch: pytest.MonkeyPatch, printed: Callable[[Any], Console]
) -> None:
    console = printed(main)
    connecting_to(
        monkeypatch,
        FakeConnection(
            [
                {
                    "corrects_month": date(2025, 9, 1),
                    "subject_key": "discharge_ready:983974724:EP-[late]",
                    "municipality": BERGEN,
                    "health_trust": HELSE_BERGEN,
                    "quantity_delta": -1,
                    "amount_delta_ore": -546000,
                    "cause": "event",
                    "caused_by_source": "dips",
                    "caused_by_event_id": "[correction 2]",
                }
            ],
            none_from=("inbound_events", "ledger_items", "running_subjects"),
        ),
    )
    result = CliRunner().invoke(main.app, ["pending"])
    assert result.exit_code == 0, result.output
    text = console.export_text()
    assert "discharge_ready:983974724:EP-[late]" in text
    assert "event dips [correction 2]" in text
    assert "-5 460.00 NOK" in text  # in kroner, as everywhere else (it was "-546000 øre")


def test_pending_names_the_months_left_open_whose_items_are_on_no_statement(
    ledger_endpoints: None, monkeypatch: pytest.MonkeyPatch, printed: Callable[[Any], Console]
) -> None:
    console = printed(main)
    month = {"service_month": date(2025, 2, 1), "items": 3, "pairs": 2, "amount_ore": 1_200_000}
    connecting_to(monkeypatch, FakeConnection([month], none_from=("adjustments", "running_subjects")))

    result = CliRunner().invoke(main.app, ["pending"], env={"COLUMNS": "200"})

    assert result.exit_code == 0, result.output
    text = console.export_text()
    assert "months left open before the latest closed" in text
    assert "2025-02" in text and "12 000.00 NOK" in text and "settlement close 2025-02" in text


def test_a_data_dir_with_brackets_is_named_as_written(
    environment: None, tmp_path: Path, printed: Callable[[Any], Console]
) -> None:
    console = printed(options, "errors")
    data_dir = tmp_path / "[state]"
    result = CliRunner().invoke(main.app, ["verify", BERGEN, HELSE_BERGEN, "--data-dir", str(data_dir)])
    assert result.exit_code == 2
    assert f"no `settlement up` is running with data dir {data_dir}" in console.export_text()


def test_a_failed_demo_names_its_log_as_written(
    monkeypatch: pytest.MonkeyPatch, printed: Callable[[Any], Console]
) -> None:
    console = printed(options, "errors")

    def fail(*args: object) -> None:
        raise demo.DemoFailed("the intake service stopped; see /tmp/[demo]/logs/intake.log")

    monkeypatch.setattr(demo, "run_demo", fail)
    result = CliRunner().invoke(main.app, ["demo"])
    assert result.exit_code == 1
    assert "demo failed: the intake service stopped; see /tmp/[demo]/logs/intake.log" in console.export_text()


def test_pending_prints_a_running_stays_subject_as_written(
    ledger_endpoints: None, monkeypatch: pytest.MonkeyPatch, printed: Callable[[Any], Console]
) -> None:
    console = printed(main)
    stay = {
        "subject_key": "discharge_ready:983974724:EP-[long]",
        "category": "discharge_ready_bed_days",
        "municipality": BERGEN,
        "health_trust": HELSE_BERGEN,
        "since": date(2025, 3, 10),
        "rated_through": date(2025, 4, 30),
        "days_paid": 52,
        "amount_ore": 52 * 598_100,
    }
    connecting_to(monkeypatch, FakeConnection([stay], none_from=("adjustments", "closed_periods")))

    for flags in ([], ["--running"]):
        result = CliRunner().invoke(main.app, ["pending", *flags], env={"COLUMNS": "250"})
        assert result.exit_code == 0, result.output
    text = console.export_text()
    assert text.count("discharge_ready:983974724:EP-[long]") == 2, text  # the line, then the table
