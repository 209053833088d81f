"""An episode that runs past a municipality split, through intake, rating and the close
(services.domain.renumbered M2; docs/municipalities.md): the days after the split are held
on the retired number, with a reason, until the hospital names a part; then they are billed
to that part, as an adjustment once their month is closed."""

from __future__ import annotations

import pytest

from tests.integration.ledger_harness import Ledger, discharge_ready_of

pytestmark = pytest.mark.integration
TRUST = "997005562"  # Helse Møre og Romsdal
DAY_2023, DAY_2024 = 550_800, 574_500  # 5 508 and 5 745 NOK in øre
HELD = (
    "municipality number 1507 was split on 2024-01-01 into 1508 Ålesund and 1580 Haram: nothing owed "
    "on 1507 until the hospital sends a municipality_notified of the episode dated 2024-01-01 naming "
    "1508 or 1580 as its staying municipality"
)

in_1507 = discharge_ready_of(TRUST, "1507")  # Ålesund until 2023-12-31
in_1508 = discharge_ready_of(TRUST, "1508")  # Ålesund from 2024-01-01


async def test_days_after_a_split_are_held_until_the_hospital_names_a_part(ledger: Ledger) -> None:
    await ledger.send(
        in_1507("admission_notified", "2023-12-10T10:00:00+01:00", episode_id="EP-AAL-1"),
        in_1507("declared_ready", "2023-12-20T10:00:00+01:00", episode_id="EP-AAL-1"),
        in_1507("municipality_notified", "2023-12-20T11:00:00+01:00", episode_id="EP-AAL-1"),
        in_1508("discharged", "2024-01-05T12:00:00+01:00", episode_id="EP-AAL-1", destination="home"),
    )
    await ledger.close("2023-12")
    await ledger.close("2024-01")
    [(_, dec), (_, jan)] = await ledger.published("municipality:1507")
    assert dec["totals"]["municipality_pays_ore"] == 12 * DAY_2023  # 20-31 Dec, 1507 in force
    assert [(i["days"], i["amount_ore"], i["status"], i["note"]) for i in jan["items"]] == [
        (4, None, "not_payable", HELD)
    ]
    assert [
        (line["quantity"], line["amount_ore"], line["status"], line["note"]) for line in jan["lines"]
    ] == [(4, None, "not_payable", HELD)]
    assert (jan["totals"]["municipality_pays_ore"], jan["totals"]["net_payer"]) == (0, "none")
    assert await ledger.published("municipality:1508") == []

    # The hospital does as the reason says: 1-4 January move to 1508, on its next statement.
    await ledger.send(
        in_1508("municipality_notified", "2024-01-01T08:00:00+01:00", episode_id="EP-AAL-1"),
    )
    await ledger.close("2024-02")
    [(_, feb)] = await ledger.published("municipality:1508")
    assert [
        (a["episode_id"], a["corrects_month"], a["quantity_delta"], a["amount_delta_ore"], a["cause"])
        for a in feb["adjustments"]
    ] == [("EP-AAL-1", "2024-01", 4, 4 * DAY_2024, "event")]
    assert feb["totals"]["municipality_pays_ore"] == 4 * DAY_2024  # 22,980 NOK
    [*_, (_, feb_1507)] = await ledger.published("municipality:1507")
    assert feb_1507["period"] == "2024-02"
    assert [(a["quantity_delta"], a["amount_delta_ore"]) for a in feb_1507["adjustments"]] == [(-4, 0)]
    assert feb_1507["totals"]["municipality_pays_ore"] == 0
