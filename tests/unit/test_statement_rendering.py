"""What `settlement statements` prints: the amount to pay is the net after disputes' holds,
and every adjustment and dispute that moves it is on the page."""

from __future__ import annotations

from datetime import UTC, date, datetime
from uuid import UUID

from rich.console import Console

from contracts.v1.outbound import (
    AdjustmentLine,
    Category,
    CategoryTotal,
    DisputeEntry,
    NetPayer,
    Party,
    PartyRole,
    SettlementStatement,
    StatementItem,
    StatementLine,
    Totals,
)
from services.cli.render import statement_panel

BED_DAYS = Category.DISCHARGE_READY_BED_DAYS
DISPUTE = UUID("5b3a0d0e-8f7e-4b8e-9a55-0c6f2a1d9e01")


def _statement(adjustments: tuple[AdjustmentLine, ...], disputes: tuple[DisputeEntry, ...], totals: Totals):
    line = StatementLine(
        category=BED_DAYS,
        payer_role=PartyRole.MUNICIPALITY,
        service_month="2025-12",
        status="priced",
        quantity=62,
        unit_price_ore=598_100,
        amount_ore=37_082_200,
        rule="national.discharge-ready.2025",
    )
    item = StatementItem(
        category=BED_DAYS,
        episode_id="EP-[2025]-7",  # brackets: rich must print them, not read them as markup
        service_month="2025-12",
        first_day=date(2025, 12, 1),
        last_day=date(2025, 12, 31),
        days=62,
        amount_ore=37_082_200,
        status="priced",
        rule="national.discharge-ready.2025",
    )
    return SettlementStatement(
        statement_id=UUID("0b9c4f5e-6a43-4d2e-9d5c-1f7f2f5e8a11"),
        period="2025-12",
        recipient=Party(role=PartyRole.MUNICIPALITY, id="4624"),
        counterparty=Party(role=PartyRole.HEALTH_TRUST, id="983974724"),
        sequence=3,
        previous_statement_hash="a" * 64,
        lines=(line,),
        items=(item,),
        adjustments=adjustments,
        disputes=disputes,
        totals=totals,
        issued_at=datetime(2026, 1, 2, tzinfo=UTC),
        statement_hash="b" * 64,
    )


def _bed_days_owed_by_the_municipality(ore: int) -> Totals:
    """A statement's totals with bed-days alone, the municipality paying `ore`, nothing held."""
    return Totals(
        municipality_pays_ore=ore,
        health_trust_pays_ore=0,
        net_ore=ore,
        net_payer=NetPayer.MUNICIPALITY,
        unrated_quantity=0,
        by_category=(CategoryTotal(category=BED_DAYS, municipality_pays_ore=ore, health_trust_pays_ore=0),),
        net_payable_ore=ore,
        net_payable_by=NetPayer.MUNICIPALITY,
    )


def _printed(statement: SettlementStatement) -> str:
    console = Console(record=True, width=200)
    console.print(statement_panel(statement))
    return console.export_text()


def test_an_upheld_dispute_is_shown_and_the_amount_to_pay_is_the_net_after_its_hold_is_released() -> None:
    # December: the line 370 822.00; November's upheld dispute credits 388 765.00 as an
    # adjustment and releases the hold of the same amount. Net of lines and adjustments the
    # trust would pay 17 943.00, but the municipality pays 370 822.00: what was held in
    # November is not held twice. The printout used to say "net 17 943.00 payable by the
    # health trust".
    adjustment = AdjustmentLine(
        category=BED_DAYS,
        payer_role=PartyRole.MUNICIPALITY,
        corrects_month="2025-10",
        episode_id="EP-202510-000015",
        quantity_delta=0,
        amount_delta_ore=-38_876_500,
        cause="dispute",
        dispute_id=DISPUTE,
    )
    dispute = DisputeEntry(
        dispute_id=DISPUTE,
        disputed_statement_id=UUID("1c2d3e4f-0000-4000-8000-000000000001"),
        episode_id=None,
        category=BED_DAYS,
        service_month="2025-10",
        payer_role=PartyRole.MUNICIPALITY,
        amount_ore=38_876_500,
        status="upheld",
        effect="released",
        agreed_ore=38_876_500,
        opened_by="municipality:4624",
        reason="not notified",
    )
    totals = Totals(
        municipality_pays_ore=-1_794_300,
        health_trust_pays_ore=0,
        net_ore=1_794_300,
        net_payer=NetPayer.HEALTH_TRUST,
        unrated_quantity=0,
        by_category=(
            CategoryTotal(category=BED_DAYS, municipality_pays_ore=-1_794_300, health_trust_pays_ore=0),
        ),
        municipality_withheld_ore=-38_876_500,
        net_payable_ore=37_082_200,
        net_payable_by=NetPayer.MUNICIPALITY,
    )

    text = _printed(_statement((adjustment,), (dispute,), totals))

    assert "payable: 370 822.00 NOK by the municipality" in text
    assert "net of lines and adjustments: 17 943.00 NOK by the health trust" in text
    assert "388 765.00 NOK added back to what the municipality pays, for disputes resolved" in text
    assert "adjustments to closed months" in text and f"dispute {DISPUTE}" in text
    assert "-388 765.00 NOK" in text  # the adjustment's amount
    assert text.count(str(DISPUTE)) == 2  # the adjustment's cause, and the dispute's own row
    assert "EP-[2025]-7" in text


def test_without_disputes_the_amount_to_pay_is_the_net_and_nothing_else_is_added() -> None:
    totals = _bed_days_owed_by_the_municipality(37_082_200)

    text = _printed(_statement((), (), totals))

    assert "payable: 370 822.00 NOK by the municipality" in text
    assert "net of lines and adjustments" not in text
    assert "adjustments to closed months" not in text and "disputes" not in text


def test_an_adjustment_shows_the_items_it_leads_to_under_it() -> None:
    # February's EP-0 was settled as 3-9 February (7 days); a late event took off two days
    # and opened a gap. A reader checks 7 - 2 = 3 + 2 and 41 867.00 - 11 962.00 = 29 905.00.
    def now(first: int, last: int) -> StatementItem:
        return StatementItem(
            category=BED_DAYS,
            episode_id="EP-0",
            service_month="2025-02",
            first_day=date(2025, 2, first),
            last_day=date(2025, 2, last),
            days=last - first + 1,
            amount_ore=598_100 * (last - first + 1),
            status="priced",
            rule="national.discharge-ready.2025",
        )

    def adjustment(items_now: tuple[StatementItem, ...] | None, episode: str) -> AdjustmentLine:
        return AdjustmentLine(
            category=BED_DAYS,
            payer_role=PartyRole.MUNICIPALITY,
            corrects_month="2025-02",
            episode_id=episode,
            quantity_delta=-2,
            amount_delta_ore=-1_196_200,
            cause="event",
            items_now=items_now,
        )

    totals = _bed_days_owed_by_the_municipality(34_689_800)
    statement = _statement(
        (adjustment((now(3, 5), now(8, 9)), "EP-0"), adjustment((), "EP-GONE"), adjustment(None, "EP-OLD")),
        (),
        totals,
    )

    lines = _printed(statement).splitlines()

    def row(text: str) -> str:
        return next(line for line in lines if text in line)

    first, second = row("now: 2025-02-03 to 2025-02-05"), row("now: 2025-02-08 to 2025-02-09")
    assert "17 943.00" in first and " 3 " in first and "national.discharge-ready.2025" in first
    assert "11 962.00" in second and " 2 " in second
    assert lines.index(first) == lines.index(row("EP-0 ")) + 1  # under its adjustment
    assert lines.index(row("now: nothing stands")) == lines.index(row("EP-GONE")) + 1
    assert sum("now:" in line for line in lines) == 3  # an adjustment of before (null) shows none
