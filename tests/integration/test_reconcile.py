"""`settlement reconcile PAIR MONTH` as finance reads it: what its ✓ proves, what it says
when there is nothing to prove, and the words for items that carry no amount."""

from __future__ import annotations

import io
from functools import partial

import pytest
import typer
from rich.console import Console

from contracts.v1 import topics
from services.cli import ledger_commands
from services.cli.ledger_commands import _reconcile, reconcile_command
from services.domain.calendar import Month
from services.runtime.environment import Endpoints
from tests.integration.ledger_harness import Ledger, event

pytestmark = pytest.mark.integration
TRUST, MUNICIPALITY = "983974724", "4624"  # Haukeland and Bjørnafjorden: no emergency-bed rate agreed

dr = partial(
    event,
    topics.DISCHARGE_READY,
    trust=TRUST,
    registered_municipality=MUNICIPALITY,
    staying_municipality=MUNICIPALITY,
)
kad = partial(event, topics.EMERGENCY_BEDS, trust=TRUST, municipality=MUNICIPALITY)


def ready(episode_id: str, day: str) -> list[tuple[str, dict]]:
    return [
        dr("admission_notified", f"{day}T08:00:00+01:00", episode_id=episode_id),
        dr("declared_ready", f"{day}T09:00:00+01:00", episode_id=episode_id),
        dr("municipality_notified", f"{day}T11:00:00+01:00", episode_id=episode_id),
    ]


def endpoints(database: str) -> Endpoints:
    return Endpoints("unused:9092", database, "p" * 32, embedded=False)


@pytest.fixture
def output(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """What the command prints, one table row a line."""
    text = io.StringIO()
    monkeypatch.setattr(ledger_commands, "console", Console(file=text, width=300, color_system=None))
    return text


def row_of(text: str, subject_id: str) -> str:
    [row] = [line for line in text.splitlines() if f" {subject_id} " in line]
    return row


@pytest.mark.parametrize(
    ("municipality", "health_trust", "malformed"),
    [
        pytest.param("4642", TRUST, None, id="a real municipality with no dealings with the trust"),
        pytest.param(
            MUNICIPALITY,
            "98397472",
            "98397472 is not an organisation number (9 digits, mod-11 check digit)",
            id="an 8-digit organisation number",
        ),
        pytest.param(
            "46240",
            TRUST,
            "46240 is not a municipality number (4 digits, county 01-99)",
            id="a 5-digit municipality number",
        ),
    ],
)
def test_a_pair_nothing_is_known_of_is_said_so_and_fails(
    database: str, output: io.StringIO, municipality: str, health_trust: str, malformed: str | None
) -> None:
    with pytest.raises(typer.Exit) as exited:
        reconcile_command(endpoints(database), municipality, health_trust, Month(2025, 10))
    assert exited.value.exit_code == 1
    text = output.getvalue()
    assert "✓" not in text
    assert (
        f"✗ nothing is known of {municipality} / {health_trust}: no events, ledger items, adjustments "
        "or statements" in text
    )
    if malformed:
        assert malformed in text


async def test_a_pair_known_only_by_its_events_is_known(
    ledger: Ledger, database: str, output: io.StringIO
) -> None:
    await ledger.send(
        dr(
            "admission_notified",
            "2025-01-05T08:00:00+01:00",
            episode_id="EP-Z",
            registered_municipality="4626",
        )
    )
    async with ledger.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM ledger_items") == 0
    await _reconcile(endpoints(database), "4626", TRUST, Month(2025, 1))
    assert "nothing is known" not in output.getvalue()


async def test_items_without_an_amount_are_labelled_as_on_statements(
    ledger: Ledger, database: str, output: io.StringIO
) -> None:
    await ledger.send(
        kad("emergency_bed_admitted", "2025-01-12T10:00:00+01:00", stay_id="KAD-1"),
        kad("emergency_bed_discharged", "2025-01-14T10:00:00+01:00", stay_id="KAD-1"),
        *ready("EP-U", "2026-01-05"),  # no national rate for 2026: unrated
    )
    await _reconcile(endpoints(database), MUNICIPALITY, TRUST, Month(2025, 1))
    await _reconcile(endpoints(database), MUNICIPALITY, TRUST, Month(2026, 1))
    text = output.getvalue()
    not_payable, unrated = row_of(text, "KAD-1"), row_of(text, "EP-U")
    assert "none owed" in not_payable and "held" not in not_payable
    assert "held: unrated, no tariff" in unrated
