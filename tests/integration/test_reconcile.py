"""`settlement reconcile PAIR MONTH` as finance reads it: what its ✓ proves, what it says
when there is nothing to prove, and the words for items that carry no amount."""

from __future__ import annotations

import io
from datetime import date
from functools import partial

import pytest
import typer
from rich.console import Console

from contracts.v1 import topics
from services.cli import ledger_commands
from services.cli.ledger_commands import _reconcile, reconcile_command
from services.domain.calendar import Month
from services.domain.money import format_nok
from services.runtime.environment import Endpoints
from services.settlement import service as settlement_service
from services.settlement.reconciliation import reconcile
from tests.integration.ledger_harness import (
    Ledger,
    alter_stored_bodies,
    discharge_ready_of,
    event,
    ready_from,
)

pytestmark = pytest.mark.integration
TRUST, MUNICIPALITY = "983974724", "4624"  # Haukeland and Bjørnafjorden: no emergency-bed rate agreed
DAY = 598_100  # 2025 bed-day rate, 5 981 NOK in øre

dr = discharge_ready_of(TRUST, MUNICIPALITY)
kad = partial(event, topics.EMERGENCY_BEDS, trust=TRUST, municipality=MUNICIPALITY)


ready = partial(ready_from, dr)


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


async def test_the_proof_is_of_the_month_asked_for(
    ledger: Ledger, database: str, output: io.StringIO
) -> None:
    # A: ready 10 Jan, discharged 5 Feb; B: ready 3 Jan, open when January closes.
    await ledger.send(
        *ready("EP-A", "2025-01-10"),
        dr("discharged", "2025-02-05T14:00:00+01:00", episode_id="EP-A", destination="home"),
        *ready("EP-B", "2025-01-03"),
    )
    await ledger.close("2025-01")
    # Late: B's status withdrawn on 20 Jan, an adjustment to January on February's statement.
    await ledger.send(dr("ready_withdrawn", "2025-01-20T08:00:00+01:00", episode_id="EP-B"))
    await ledger.close("2025-02")
    jan, feb = [m for _, m in await ledger.published(f"municipality:{MUNICIPALITY}")]
    assert sum(line["amount_ore"] for line in jan["lines"]) == (22 + 29) * DAY
    assert [a["corrects_month"] for a in feb["adjustments"]] == ["2025-01"]
    february_lines = sum(line["amount_ore"] for line in feb["lines"])
    assert february_lines > 0

    async with ledger.pool.acquire() as conn:
        january = await reconcile(conn, MUNICIPALITY, TRUST, date(2025, 1, 1))
        february = await reconcile(conn, MUNICIPALITY, TRUST, date(2025, 2, 1))
    # January: A 10-31 Jan and B 3-19 Jan (29 days billed, 12 taken back on February's statement).
    assert january.statements_total_ore == january.ledger_total_ore == (22 + 17) * DAY
    assert february.statements_total_ore == february.ledger_total_ore == february_lines
    assert january.proven and february.proven

    assert await _reconcile(endpoints(database), MUNICIPALITY, TRUST, Month(2025, 1))
    text = output.getvalue()
    month, pair = format_nok((22 + 17) * DAY), format_nok((22 + 17) * DAY + february_lines)
    assert (
        f"✓ 2025-01 on 2 statements (2025-01, 2025-02): lines and adjustments for 2025-01 sum to {month}; "
        f"settled items of 2025-01 and adjustments to it sum to {month}"
    ) in text
    assert (
        f"✓ all 2 statements of the pair, of 2025-01 to 2025-02, sum to {pair}; all settled items and "
        f"adjustments of the pair sum to {pair}"
    ) in text

    # A month with no statement proves nothing: it is said, and the command fails.
    assert not await _reconcile(endpoints(database), MUNICIPALITY, TRUST, Month(2025, 3))
    assert "✗ 2025-03 is not closed: no statement settles it yet, nothing to prove" in output.getvalue()
    assert "✓" not in output.getvalue()[len(text) :]

    # December closed after February: the pair's statements are of December to February,
    # though issued January, February, December.
    await ledger.send(*ready("EP-C", "2024-12-20"))
    await ledger.close("2024-12")
    seen = len(output.getvalue())
    assert await _reconcile(endpoints(database), MUNICIPALITY, TRUST, Month(2024, 12))
    assert "✓ all 3 statements of the pair, of 2024-12 to 2025-02, sum to" in output.getvalue()[seen:]

    # A statement altered in the database: February's proof fails, January's holds, and the
    # pair's does not.
    async with ledger.pool.acquire() as conn:
        await alter_stored_bodies(conn, "period = '2025-02-01'", "{lines,0,amount_ore}", "1")
        january = await reconcile(conn, MUNICIPALITY, TRUST, date(2025, 1, 1))
        february = await reconcile(conn, MUNICIPALITY, TRUST, date(2025, 2, 1))
    assert february.statements_total_ore != february.ledger_total_ore and not february.proven
    assert january.statements_total_ore == january.ledger_total_ore and not january.proven


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


async def test_a_month_whose_statement_holds_only_adjustments_to_earlier_months_is_proven(
    ledger: Ledger, database: str, output: io.StringIO
) -> None:
    # January closed with A still waiting; A withdrawn on 20 Jan, after the close: February's
    # statement has no line, only an adjustment to January. Its month proved nothing before
    # ("no statement of the pair carries 2025-02") and the command failed.
    await ledger.send(*ready("EP-A", "2025-01-10"))
    await ledger.send(dr("municipality_can_receive", "2025-01-12T08:00:00+01:00", episode_id="EP-A"))
    await ledger.close("2025-01")
    await ledger.send(dr("ready_withdrawn", "2025-01-11T08:00:00+01:00", episode_id="EP-A"))
    await ledger.close("2025-02")
    feb = (await ledger.published(f"municipality:{MUNICIPALITY}"))[1][1]
    assert feb["lines"] == [] and [a["corrects_month"] for a in feb["adjustments"]] == ["2025-01"]

    assert await _reconcile(endpoints(database), MUNICIPALITY, TRUST, Month(2025, 2))
    assert "✓ 2025-02 on 1 statement (2025-02)" in output.getvalue()


async def test_a_month_settled_below_nothing_is_not_proven_though_its_sums_agree(
    ledger: Ledger, database: str, output: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Found in a finance audit: a dispute's credit and a late event that took off the same
    # days left an episode's month at less than nothing, and reconcile still showed ✓: the
    # statements and the ledger agreed with each other. The close no longer books that
    # (test_dispute_properties.py); a ledger that has it (made before, say) is refused here.
    async def as_before(conn: object) -> int:
        return 0

    monkeypatch.setattr(settlement_service, "credits_to_what_is_owed", as_before)
    await ledger.send(*ready("EP-A", "2025-01-10"), *ready("EP-B", "2025-01-10"))
    await ledger.send(
        dr("municipality_can_receive", "2025-01-12T08:00:00+01:00", episode_id="EP-A"),
        dr("municipality_can_receive", "2025-01-20T08:00:00+01:00", episode_id="EP-B"),
    )
    await ledger.close("2025-01")
    async with ledger.pool.acquire() as conn:  # a credit of 3 days booked against EP-A's 2
        await conn.execute(
            """
            INSERT INTO adjustments (subject_key, corrects_month, category, subject_id, municipality,
                                     health_trust, payer_role, quantity_delta, amount_delta_ore, cause,
                                     dispute_id, note)
            VALUES ($1, '2025-01-01', 'discharge_ready_bed_days', 'EP-A', $2, $3, 'municipality', 0, $4,
                    'dispute', gen_random_uuid(), 'dispute upheld: a credit beyond the charge')
            """,
            f"discharge_ready:{TRUST}:EP-A",
            MUNICIPALITY,
            TRUST,
            -3 * DAY,
        )
    await ledger.close("2025-02")

    assert not await _reconcile(endpoints(database), MUNICIPALITY, TRUST, Month(2025, 1))
    text = output.getvalue()
    assert "✓ 2025-01 on 2 statements (2025-01, 2025-02)" in text  # the sums agree
    assert (
        f"✗ settled below nothing for 2025-01 (credited more than was ever charged), in øre: EP-A (municipality pays): {-DAY}"
        in text
    )
    assert (
        "discharge_ready_bed_days" not in text.split("settled below nothing")[1]
    )  # the line is owed 7 days still
