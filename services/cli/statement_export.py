"""Statements for finance's own tools: as published (JSON Lines), or their items as CSV for
a spreadsheet or an accounting system's import."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from decimal import Decimal

from contracts.v1.outbound import SettlementStatement

ITEM_COLUMNS = (
    "statement_id", "period", "sequence", "recipient_role", "recipient", "counterparty",
    "category", "episode_id", "service_month", "first_day", "last_day", "days",
    "amount_ore", "amount_nok", "status", "rule", "note",
)  # fmt: skip


def as_json_lines(published: Sequence[tuple[SettlementStatement, bytes]]) -> str:
    """Each statement as the bytes it was published as, one a line: the statement hash is
    over these, so nothing is re-encoded."""
    return "".join(raw.decode("utf-8").rstrip("\n") + "\n" for _, raw in published)


def items_as_csv(statements: Sequence[SettlementStatement]) -> str:
    """One row per item of each statement copy. Amounts in øre, exact, and in kroner as a
    decimal with two places (never a float); an unrated item has neither."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(ITEM_COLUMNS)
    for s in statements:
        for item in s.items:
            writer.writerow(
                (
                    s.statement_id,
                    s.period,
                    s.sequence,
                    s.recipient.role.value,
                    s.recipient.id,
                    s.counterparty.id,
                    item.category.value,
                    item.episode_id,
                    item.service_month,
                    item.first_day.isoformat(),
                    item.last_day.isoformat(),
                    item.days,
                    "" if item.amount_ore is None else item.amount_ore,
                    "" if item.amount_ore is None else Decimal(item.amount_ore).scaleb(-2),
                    item.status.value,
                    item.rule or "",
                    item.note or "",
                )
            )
    return out.getvalue()
