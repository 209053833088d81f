"""Statements for finance's own tools: as published (JSON Lines), or their items as CSV for
a spreadsheet or an accounting system's import."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import partial

from contracts.v1.outbound import Category, PartyRole, SettlementStatement

ITEM_COLUMNS = (
    "statement_id", "period", "sequence", "recipient_role", "recipient", "counterparty",
    "category", "episode_id", "service_month", "first_day", "last_day", "days",
    "amount_ore", "amount_nok", "status", "rule", "note", "record", "payer_role",
    "now_days", "now_amount_ore", "now_amount_nok",
)  # fmt: skip
# Who pays for each category's items (domain.md): the trust for emergency beds, the
# municipality for the rest. An item does not say; its line does.
PAYER_OF_CATEGORY = {
    Category.DISCHARGE_READY_BED_DAYS: PartyRole.MUNICIPALITY,
    Category.EMERGENCY_BED_DAYS: PartyRole.HEALTH_TRUST,
    Category.ACTIVITY_CO_FINANCING: PartyRole.MUNICIPALITY,
}
# The `now_*` columns of every row but an `item_now`.
_NOT_AN_ITEM_NOW = ("", "", "")
# What a dispute's movement does to its payer's payable on this statement.
_PAYABLE_SIGN = {"held": -1, "released": 1}


def as_json_lines(published: Sequence[tuple[SettlementStatement, bytes]]) -> str:
    """Each statement as the bytes it was published as, one a line: the statement hash is
    over these, so nothing is re-encoded."""
    return "".join(raw.decode("utf-8").rstrip("\n") + "\n" for _, raw in published)


@dataclass(frozen=True)
class CsvStyle:
    """How the CSV is written. RFC 4180 with `.` decimals by default, for imports. A
    spreadsheet set to Norwegian (Excel's list separator is `;` there, its decimal sign `,`)
    put every row of that in one column and read 1234.50 as a date or text: `NORWEGIAN`
    writes semicolons and decimal commas, after a byte-order mark, without which Excel reads
    UTF-8 as Windows-1252 and shows "Ã˜" for "Ø" in a note."""

    delimiter: str = ","
    decimal: str = "."
    byte_order_mark: bool = False


RFC_4180 = CsvStyle()
NORWEGIAN = CsvStyle(delimiter=";", decimal=",", byte_order_mark=True)


def items_as_csv(statements: Sequence[SettlementStatement], style: CsvStyle = RFC_4180) -> str:
    """One row per item, adjustment and dispute of each statement copy (`record`), each with
    who pays (`payer_role`). Amounts in øre, exact, and in kroner as a decimal with two
    places (never a float); an unrated item has neither. An adjustment's amount is its
    difference, a dispute's what it moves on this statement (held: less, released: more,
    otherwise nothing), so per payer the amounts add up to what the statement has that
    party pay after holds, and the two sums' difference to its net payable.

    After each adjustment, an `item_now` row per item it leads to (`items_now`): its days,
    status, rule and note in an item's columns, but its number of days and its amount in
    `now_days` and `now_amount_*` only, `days` and `amount_*` left empty. The item was
    settled on an earlier statement, and this one pays only the adjustment's difference:
    so the sums above hold, and the earlier statement's item plus the adjustment's
    difference is the `now_*` of its items. An adjustment after which nothing stands has one
    `item_now` row of 0 days, noted "nothing stands"; one issued before items_now existed has
    none."""
    out = io.StringIO()
    if style.byte_order_mark:
        out.write("\ufeff")
    writer = csv.writer(out, delimiter=style.delimiter, lineterminator="\n")
    amount = partial(_amount, decimal=style.decimal)
    writer.writerow(ITEM_COLUMNS)
    for s in statements:
        head = (
            s.statement_id,
            s.period,
            s.sequence,
            s.recipient.role.value,
            s.recipient.id,
            s.counterparty.id,
        )
        for item in s.items:
            writer.writerow(
                (
                    *head,
                    item.category.value,
                    item.episode_id,
                    item.service_month,
                    item.first_day.isoformat(),
                    item.last_day.isoformat(),
                    item.days,
                    *amount(item.amount_ore),
                    item.status.value,
                    item.rule or "",
                    item.note or "",
                    "item",
                    PAYER_OF_CATEGORY[item.category].value,
                    *_NOT_AN_ITEM_NOW,
                )
            )
        for a in s.adjustments:
            writer.writerow(
                (
                    *head,
                    a.category.value,
                    a.episode_id,
                    a.corrects_month,
                    "",
                    "",
                    a.quantity_delta,
                    *amount(a.amount_delta_ore),
                    a.cause,
                    "",
                    a.note or "",
                    "adjustment",
                    a.payer_role.value,
                    *_NOT_AN_ITEM_NOW,
                )
            )
            if a.items_now is not None and not a.items_now:
                # Nothing stands any more (an activity cancelled, days moved to another payer):
                # said in a row, or it would read like an adjustment issued before items_now.
                writer.writerow(
                    (
                        *head,
                        a.category.value,
                        a.episode_id,
                        a.corrects_month,
                        *("", "", "", "", "", "", "", "nothing stands"),
                        "item_now",
                        a.payer_role.value,
                        0,
                        *amount(0),
                    )
                )
            for now in a.items_now or ():
                writer.writerow(
                    (
                        *head,
                        now.category.value,
                        now.episode_id,
                        now.service_month,
                        now.first_day.isoformat(),
                        now.last_day.isoformat(),
                        "",
                        "",
                        "",
                        now.status.value,
                        now.rule or "",
                        now.note or "",
                        "item_now",
                        a.payer_role.value,
                        now.days,
                        *amount(now.amount_ore),
                    )
                )
        for d in s.disputes:
            writer.writerow(
                (
                    *head,
                    d.category.value,
                    d.episode_id or "",
                    d.service_month,
                    "",
                    "",
                    "",
                    *amount(_PAYABLE_SIGN.get(d.effect, 0) * d.amount_ore),
                    f"{d.status} ({d.effect})",
                    "",
                    f"dispute {d.dispute_id} of {d.amount_ore} øre by {d.opened_by}: {d.reason}",
                    "dispute",
                    d.payer_role.value,
                    *_NOT_AN_ITEM_NOW,
                )
            )
    return out.getvalue()


def _amount(ore: int | None, *, decimal: str) -> tuple[int | str, str]:
    """Øre exact, and kroner as a decimal of two places (never a float)."""
    if ore is None:
        return ("", "")
    kroner = str(Decimal(ore).scaleb(-2))
    return (ore, kroner if decimal == "." else kroner.replace(".", decimal))
