"""Statements as tables for people."""

from __future__ import annotations

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table

from contracts.v1.outbound import SettlementStatement
from services.domain.money import format_nok


def _nok(ore: int | None, status: str = "priced") -> str:
    if ore is not None:
        return format_nok(ore)
    return {"unrated": "held", "not_payable": "none owed"}.get(status, "per item")


def _label(text: str) -> str:
    return text.replace("_", " ")


def statement_panel(statement: SettlementStatement) -> Panel:
    lines = Table(show_edge=False, expand=True)
    for header, justify in (
        ("category", "left"),
        ("month", "left"),
        ("payer", "left"),
        ("qty", "right"),
        ("unit price", "right"),
        ("amount", "right"),
        ("rule / why", "left"),
    ):
        lines.add_column(header, justify=justify)  # type: ignore[arg-type]
    for line in statement.lines:
        status = line.status.value
        lines.add_row(
            _label(line.category.value),
            line.service_month,
            _label(line.payer_role.value),
            str(line.quantity),
            _nok(line.unit_price_ore, status) if status == "priced" else "",
            _nok(line.amount_ore, status),
            line.rule if status == "priced" else f"[yellow]{line.note}[/yellow]",
        )
    items = Table(show_edge=False, expand=True, title="items", title_justify="left")
    for header in ("category", "id", "first day", "last day", "qty", "amount"):
        items.add_column(header, justify="right" if header in {"qty", "amount"} else "left")
    for item in statement.items:
        items.add_row(
            _label(item.category.value),
            item.episode_id,
            str(item.first_day),
            str(item.last_day),
            str(item.days),
            _nok(item.amount_ore, item.status.value),
        )
    netting = Table(show_edge=False, title="netting", title_justify="left")
    for header in ("category", "municipality owes trust", "trust owes municipality"):
        netting.add_column(header, justify="left" if header == "category" else "right")
    t = statement.totals
    for c in t.by_category:
        netting.add_row(
            _label(c.category.value), format_nok(c.municipality_pays_ore), format_nok(c.health_trust_pays_ore)
        )
    netting.add_row(
        "[bold]total[/bold]", format_nok(t.municipality_pays_ore), format_nok(t.health_trust_pays_ore)
    )
    net = (
        f"net {format_nok(t.net_ore)} payable by the {_label(t.net_payer.value)}"
        if t.net_payer.value != "none"
        else "net 0.00 NOK: nothing payable"
    )
    held = f"; {t.unrated_quantity} unit(s) held: unrated, no tariff" if t.unrated_quantity else ""
    title = (
        f"Statement {statement.period} to {_label(statement.recipient.role.value)} {statement.recipient.id} "
        f"(counterparty {_label(statement.counterparty.role.value)} {statement.counterparty.id})"
    )
    return Panel(
        Group(lines, items, netting, f"[bold]{net}[/bold]{held}"),
        title=title,
        subtitle=f"statement {statement.statement_id} · no. {statement.sequence} of the pair · {statement.statement_hash[:19]}…",
    )


def print_statements(console: Console, statements: list[SettlementStatement]) -> None:
    for statement in sorted(
        statements, key=lambda s: (s.statement_id.hex, s.recipient.role.value != "municipality")
    ):
        console.print(statement_panel(statement))
