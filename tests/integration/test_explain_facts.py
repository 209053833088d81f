"""`settlement tariffs --explain`: an item's price, and the facts it was rated from, read
from a real ledger. Finance disputing a day needs the milestones behind it, and an episode
whose days are not payable has no item to explain at all."""

from __future__ import annotations

import pytest
from rich.console import Console

from services.cli.tariffs import explain_subject
from tests.integration.ledger_harness import Ledger, discharge_ready_of

pytestmark = pytest.mark.integration
# Bergen's number before the merger of 2020 (docs/municipalities.md).
MENTAL_HEALTH_IN_BERGEN_2018 = {
    "care_area": "mental_health",
    "registered_municipality": "1201",
    "staying_municipality": "1201",
}
TRUST, MUNICIPALITY = "983974724", "4601"
dr = discharge_ready_of(TRUST, MUNICIPALITY)


async def _explained(database: str, ledger: Ledger, subject_id: str) -> tuple[int, list[str]]:
    console = Console(record=True, width=400, color_system=None)
    items = await explain_subject(database, subject_id, TRUST, ledger.tariffs, console)
    return items, console.export_text().splitlines()


async def test_an_item_is_explained_with_the_milestones_it_was_rated_from(
    database: str, ledger: Ledger
) -> None:
    await ledger.send(
        dr("discharged", "2025-10-09T11:00:00+02:00", episode_id="EP-F1", destination="home"),
        dr("admission_notified", "2025-09-29T10:00:00+02:00", episode_id="EP-F1"),
        dr("declared_ready", "2025-10-02T23:30:00+00:00", episode_id="EP-F1"),  # Oslo: the 3rd
        dr("municipality_notified", "2025-10-03T08:00:00+02:00", episode_id="EP-F1"),
    )

    items, lines = await _explained(database, ledger, "EP-F1")

    assert items == 1
    facts = lines[
        lines.index(f"facts of EP-F1 (health trust {TRUST}), as they happened; days are Oslo's:") + 1 :
    ]
    assert [f.split()[2].rstrip(":") for f in facts] == [
        "admission_notified",
        "declared_ready",
        "municipality_notified",
        "discharged",
    ]
    assert facts[1].startswith(
        "  2025-10-03 2025-10-02T23:30:00Z declared_ready: registered_municipality 4601"
    )
    assert "destination home" in facts[3]
    assert not any("pseudonym" in line or "31129956715" in line for line in lines)


async def test_an_episode_with_no_payable_day_still_shows_its_facts(database: str, ledger: Ledger) -> None:
    # Mental health care before 2019 was outside the payment (docs/domain.md): no item.
    await ledger.send(
        dr("declared_ready", "2018-03-01T10:00:00+01:00", episode_id="EP-F2", **MENTAL_HEALTH_IN_BERGEN_2018),
        dr(
            "municipality_notified",
            "2018-03-01T11:00:00+01:00",
            episode_id="EP-F2",
            **MENTAL_HEALTH_IN_BERGEN_2018,
        ),
        dr(
            "discharged",
            "2018-03-08T11:00:00+01:00",
            episode_id="EP-F2",
            destination="home",
            **MENTAL_HEALTH_IN_BERGEN_2018,
        ),
    )

    items, lines = await _explained(database, ledger, "EP-F2")

    assert items == 0
    assert len([line for line in lines if "care_area mental_health" in line]) == 3


async def test_a_subject_is_explained_with_what_was_booked_since_and_never_with_another_trusts(
    database: str, ledger: Ledger
) -> None:
    # Found in a finance audit: the same episode id of another health trust was explained
    # too (a subject is its id and its trust), and a closed month's item was shown as first
    # settled, with nothing of the late event that took days off it since.
    other = discharge_ready_of("983974694", MUNICIPALITY)
    ten_days = [
        ("admission_notified", "2025-01-05T10:00:00+01:00"),
        ("declared_ready", "2025-01-11T09:00:00+01:00"),
        ("municipality_notified", "2025-01-11T11:00:00+01:00"),
        ("municipality_can_receive", "2025-01-21T09:00:00+01:00"),
    ]
    await ledger.send(
        *(dr(kind, at, episode_id="EP-F3") for kind, at in ten_days),
        *(other(kind, at, episode_id="EP-F3") for kind, at in ten_days),
    )
    await ledger.close("2025-01")
    await ledger.send(dr("ready_withdrawn", "2025-01-15T09:00:00+01:00", episode_id="EP-F3"))

    found, lines = await _explained(database, ledger, "EP-F3")

    assert found == 2  # the item and its adjustment
    assert not any("983974694" in line for line in lines)
    adjustment = (
        "adjustment to 2025-01 discharge ready bed days EP-F3, municipality 4601, municipality pays: "
        "-6 days, -35 886.00 NOK (a late event)"
    )
    assert f"{adjustment} [pending: on the pair's next statement]" in lines

    await ledger.close("2025-02")
    _, lines = await _explained(database, ledger, "EP-F3")
    [settled] = [line for line in lines if line.startswith(adjustment)]
    assert settled.endswith(" of 2025-02]") and "[settled on statement " in settled
