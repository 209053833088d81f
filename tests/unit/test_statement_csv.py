"""`settlement statements --format csv`: the rows of a statement add up to what it says.

Found in a finance audit: the CSV had the items alone, with no column saying who pays, so
the trust's emergency-bed days read as the municipality's, and a month with adjustments or
disputes held could not be tied to the statement's payable net at all.
"""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

from contracts.v1.outbound import Category as WireCategory
from contracts.v1.outbound import DisputeEntry, NetPayer, PartyRole, SettlementStatement
from services.cli.statement_export import ITEM_COLUMNS, NORWEGIAN, items_as_csv
from services.domain.calendar import Month
from services.domain.ledger import Category, LedgerItem, PayerRole
from services.domain.statements import Adjustment, DisputeMovement
from services.settlement.statements import build_statements

TRUST, MUNICIPALITY = "983974724", "4624"
MARCH = Month(2025, 3)


def item(category: Category, subject: str, days: int, unit_ore: int | None) -> LedgerItem:
    return LedgerItem(
        category=category,
        subject_id=subject,
        health_trust=TRUST,
        municipality=MUNICIPALITY,
        payer_role=PayerRole.HEALTH_TRUST
        if category is Category.EMERGENCY_BED_DAYS
        else PayerRole.MUNICIPALITY,
        service_month=MARCH,
        first_day=date(2025, 3, 1),
        last_day=date(2025, 3, days),
        quantity=days,
        unit_price_ore=unit_ore,
        amount_ore=None if unit_ore is None else unit_ore * days,
        rule_id=None if unit_ore is None else "rule",
    )


# EP-0's February as it stands after a late event: 3-5 and 8-9 February.
FEBRUARY_NOW = tuple(
    replace(
        item(Category.DISCHARGE_READY_BED_DAYS, "EP-0", last - first + 1, 598_100),
        service_month=Month(2025, 2),
        first_day=date(2025, 2, first),
        last_day=date(2025, 2, last),
    )
    for first, last in ((3, 5), (8, 9))
)


def dispute(
    effect: str, status: str, amount_ore: int, reason: str = "no discharge summary"
) -> tuple[DisputeMovement, DisputeEntry]:
    dispute_id = uuid.uuid4()
    return DisputeMovement(str(dispute_id), PayerRole.MUNICIPALITY, amount_ore, effect), DisputeEntry(
        dispute_id=dispute_id,
        disputed_statement_id=uuid.uuid4(),
        episode_id="EP-1",
        category=WireCategory.DISCHARGE_READY_BED_DAYS,
        service_month="2025-02",
        payer_role=PartyRole.MUNICIPALITY,
        amount_ore=amount_ore,
        status=status,  # type: ignore[arg-type]
        effect=effect,  # type: ignore[arg-type]
        agreed_ore=None,
        opened_by="municipality:4624",
        reason=reason,
    )


def statements() -> list[SettlementStatement]:
    return build_statements(
        MARCH,
        MUNICIPALITY,
        TRUST,
        [
            item(Category.DISCHARGE_READY_BED_DAYS, "EP-1", 3, 598_100),  # 17 943 NOK
            item(Category.DISCHARGE_READY_BED_DAYS, "EP-2", 2, None),  # unrated: no amount
            item(Category.EMERGENCY_BED_DAYS, "EB-1", 10, 400_000),  # 40 000 NOK, the trust pays
        ],
        datetime(2025, 4, 1, tzinfo=UTC),
        adjustments=[
            Adjustment(
                Category.DISCHARGE_READY_BED_DAYS,
                PayerRole.MUNICIPALITY,
                Month(2025, 2),
                "EP-0",
                -2,
                -1_196_200,
                "event",
                items_now=FEBRUARY_NOW,
            ),
            Adjustment(
                Category.EMERGENCY_BED_DAYS,
                PayerRole.HEALTH_TRUST,
                Month(2025, 2),
                "EB-0",
                1,
                400_000,
                "tariff",
            ),
        ],
        disputes=[
            dispute("held", "open", 500_000, reason="days 3; 4 not owed, 1,5 hours late"),
            dispute("released", "rejected", 300_000),
            dispute("open", "open", 100_000),
        ],
    )


def test_the_rows_of_each_copy_add_up_to_what_each_party_pays_after_holds() -> None:
    copies = statements()

    rows = list(csv.DictReader(io.StringIO(items_as_csv(copies))))

    for copy in copies:
        mine = [r for r in rows if r["recipient"] == copy.recipient.id]
        assert [r["record"] for r in mine].count("item") == 3
        assert [r["record"] for r in mine].count("adjustment") == 2
        assert [r["record"] for r in mine].count("item_now") == 2
        assert [r["record"] for r in mine].count("dispute") == 3
        assert all(None not in r.values() for r in mine), "every row has every column"
        paid = {
            role: sum(int(r["amount_ore"] or 0) for r in mine if r["payer_role"] == role)
            for role in ("municipality", "health_trust")
        }
        totals = copy.totals
        assert paid["municipality"] == totals.municipality_pays_ore - totals.municipality_withheld_ore
        assert paid["health_trust"] == totals.health_trust_pays_ore - totals.health_trust_withheld_ore
        net = paid["municipality"] - paid["health_trust"]
        assert abs(net) == totals.net_payable_ore and totals.net_payable_by is NetPayer.HEALTH_TRUST
        for r in mine:
            if r["amount_ore"]:
                assert Decimal(r["amount_nok"]) * 100 == int(r["amount_ore"])
    # the figures themselves: 17 943 - 11 962 - 5 000 + 3 000 for the municipality, 44 000 for the trust
    assert paid == {"municipality": 398_100, "health_trust": 4_400_000}
    emergency = next(r for r in rows if r["episode_id"] == "EB-1")
    assert (emergency["record"], emergency["payer_role"]) == ("item", "health_trust")


def test_for_a_spreadsheet_set_to_norwegian_the_same_rows_with_semicolons_and_decimal_commas() -> None:
    copies = statements()
    plain = list(csv.reader(io.StringIO(items_as_csv(copies))))

    written = items_as_csv(copies, NORWEGIAN)

    # Excel takes UTF-8 only after a byte-order mark ("Ø" in a note would read "Ã˜")
    assert written.startswith("\ufeff") and not written.startswith("\ufeff\ufeff")
    header = written[1:].splitlines()[0]
    assert header == ";".join(ITEM_COLUMNS)
    norwegian = list(csv.reader(io.StringIO(written[1:]), delimiter=";"))
    nok = ITEM_COLUMNS.index("amount_nok")
    kroner = {nok, ITEM_COLUMNS.index("now_amount_nok")}
    assert len(norwegian) == len(plain) > 8
    for ours, theirs in zip(norwegian, plain, strict=True):
        assert ours == [v.replace(".", ",") if i in kroner else v for i, v in enumerate(theirs)]
    assert {"17943,00", "-11962,00", "-5000,00", "3000,00"} <= {row[nok] for row in norwegian}
    assert {"17943,00", "11962,00"} <= {row[ITEM_COLUMNS.index("now_amount_nok")] for row in norwegian}
    # a text holding the delimiter or a comma is quoted, not split
    assert any(
        row[ITEM_COLUMNS.index("note")].endswith(": days 3; 4 not owed, 1,5 hours late") for row in norwegian
    )


def test_an_adjustment_is_followed_by_the_items_it_leads_to_which_add_nothing_to_the_sums() -> None:
    # February settled EP-0 as 3-9 Feb, 7 days; a late event took 2 days off it and a gap opened.
    copies = build_statements(
        MARCH,
        MUNICIPALITY,
        TRUST,
        [],
        datetime(2025, 4, 1, tzinfo=UTC),
        adjustments=[
            Adjustment(
                Category.DISCHARGE_READY_BED_DAYS,
                PayerRole.MUNICIPALITY,
                Month(2025, 2),
                "EP-0",
                -2,
                -1_196_200,
                "event",
                items_now=FEBRUARY_NOW,
            )
        ],
    )
    rows = [r for r in csv.DictReader(io.StringIO(items_as_csv(copies))) if r["recipient"] == MUNICIPALITY]

    assert [(r["record"], r["first_day"], r["last_day"], r["days"], r["amount_ore"]) for r in rows] == [
        ("adjustment", "", "", "-2", "-1196200"),
        ("item_now", "2025-02-03", "2025-02-05", "", ""),
        ("item_now", "2025-02-08", "2025-02-09", "", ""),
    ]
    now = rows[1:]
    assert [(r["now_days"], r["now_amount_ore"], r["now_amount_nok"]) for r in now] == [
        ("3", "1794300", "17943.00"),
        ("2", "1196200", "11962.00"),
    ]
    assert {(r["status"], r["rule"], r["service_month"], r["payer_role"]) for r in now} == {
        ("priced", "rule", "2025-02", "municipality")
    }
    # what February settled (7 days, 41 867 NOK) plus the adjustment is its items now
    adjustment = rows[0]
    assert 7 + int(adjustment["days"]) == sum(int(r["now_days"]) for r in now)
    assert 7 * 598_100 + int(adjustment["amount_ore"]) == sum(int(r["now_amount_ore"]) for r in now)
    assert sum(int(r["amount_ore"] or 0) for r in rows) == copies[0].totals.municipality_pays_ore


def test_an_adjustment_after_which_nothing_stands_says_so_and_one_from_before_items_now_has_no_row() -> None:
    def adjustment(episode: str, items_now: tuple[LedgerItem, ...] | None) -> Adjustment:
        return Adjustment(
            Category.ACTIVITY_CO_FINANCING,
            PayerRole.MUNICIPALITY,
            Month(2025, 2),
            episode,
            -1,
            -1_500_000,
            "event",
            items_now=items_now,
        )

    copies = build_statements(
        MARCH,
        MUNICIPALITY,
        TRUST,
        [],
        datetime(2025, 4, 1, tzinfo=UTC),
        adjustments=[adjustment("ACT-CANCELLED", ()), adjustment("ACT-BEFORE", None)],
    )
    rows = [r for r in csv.DictReader(io.StringIO(items_as_csv(copies))) if r["recipient"] == MUNICIPALITY]

    assert [(r["record"], r["episode_id"], r["note"], r["now_days"], r["now_amount_ore"]) for r in rows] == [
        ("adjustment", "ACT-BEFORE", "", "", ""),
        ("adjustment", "ACT-CANCELLED", "", "", ""),
        ("item_now", "ACT-CANCELLED", "nothing stands", "0", "0"),
    ]
    assert sum(int(r["amount_ore"] or 0) for r in rows) == -3_000_000  # the row adds nothing
