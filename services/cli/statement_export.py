"""Statements for finance's own tools: as published (JSON Lines), or their items as CSV for
a spreadsheet or an accounting system's import."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from contracts.v1.outbound import Category, PartyRole, SettlementStatement, StatementItem

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
    # Each row names its own fields; the rest are empty (an adjustment has no days' dates,
    # only an `item_now` has the `now_*` columns).
    writer = csv.DictWriter(out, ITEM_COLUMNS, restval="", delimiter=style.delimiter, lineterminator="\n")
    writer.writeheader()

    def money(prefix: str, ore: int | None) -> dict[str, object]:
        return _amount(prefix, ore, decimal=style.decimal)

    for s in statements:
        head = {
            "statement_id": s.statement_id,
            "period": s.period,
            "sequence": s.sequence,
            "recipient_role": s.recipient.role.value,
            "recipient": s.recipient.id,
            "counterparty": s.counterparty.id,
        }
        for item in s.items:
            writer.writerow(
                head
                | _item(item)
                | {"days": item.days, **money("amount", item.amount_ore)}
                | {"record": "item", "payer_role": PAYER_OF_CATEGORY[item.category].value}
            )
        for a in s.adjustments:
            side = {
                "category": a.category.value,
                "episode_id": a.episode_id,
                "service_month": a.corrects_month,
            }
            writer.writerow(
                head
                | side
                | {"days": a.quantity_delta, **money("amount", a.amount_delta_ore), "status": a.cause}
                | {"note": a.note or "", "record": "adjustment", "payer_role": a.payer_role.value}
            )
            item_now = {"record": "item_now", "payer_role": a.payer_role.value}
            if a.items_now is not None and not a.items_now:
                # Nothing stands any more (an activity cancelled, days moved to another payer):
                # said in a row, or it would read like an adjustment issued before items_now.
                writer.writerow(
                    head
                    | side
                    | {"note": "nothing stands"}
                    | item_now
                    | {"now_days": 0, **money("now_amount", 0)}
                )
            for now in a.items_now or ():
                writer.writerow(
                    head
                    | _item(now)
                    | item_now
                    | {"now_days": now.days, **money("now_amount", now.amount_ore)}
                )
        for d in s.disputes:
            writer.writerow(
                head
                | {
                    "category": d.category.value,
                    "episode_id": d.episode_id or "",
                    "service_month": d.service_month,
                }
                | money("amount", _PAYABLE_SIGN.get(d.effect, 0) * d.amount_ore)
                | {
                    "status": f"{d.status} ({d.effect})",
                    "note": f"dispute {d.dispute_id} of {d.amount_ore} øre by {d.opened_by}: {d.reason}",
                    "record": "dispute",
                    "payer_role": d.payer_role.value,
                }
            )
    return out.getvalue()


def _item(item: StatementItem) -> dict[str, object]:
    """An item's own fields, as an item row and an `item_now` row both write them."""
    return {
        "category": item.category.value,
        "episode_id": item.episode_id,
        "service_month": item.service_month,
        "first_day": item.first_day.isoformat(),
        "last_day": item.last_day.isoformat(),
        "status": item.status.value,
        "rule": item.rule or "",
        "note": item.note or "",
    }


def _amount(prefix: str, ore: int | None, *, decimal: str) -> dict[str, object]:
    """`{prefix}_ore` exact, and `{prefix}_nok` in kroner as a decimal of two places (never
    a float); neither for an unrated item."""
    if ore is None:
        return {}
    kroner = str(Decimal(ore).scaleb(-2))
    return {f"{prefix}_ore": ore, f"{prefix}_nok": kroner if decimal == "." else kroner.replace(".", decimal)}
