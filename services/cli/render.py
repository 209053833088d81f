"""Statements as tables for people."""

from __future__ import annotations

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table

from contracts.v1.outbound import SettlementStatement
from services.domain.money import format_nok


def _nok(ore: int | None) -> str:
    return "held" if ore is None else format_nok(ore)


def statement_panel(statement: SettlementStatement) -> Panel:
    lines = Table(show_edge=False, expand=True)
    for header, justify in (
        ("category", "left"),
        ("month", "left"),
        ("payer", "left"),
        ("qty", "right"),
        ("unit price", "right"),
        ("amount", "right"),
        ("rule / status", "left"),
    ):
        lines.add_column(header, justify=justify)  # type: ignore[arg-type]
    for line in statement.lines:
        lines.add_row(
            line.category.value.replace("_", " "),
            line.service_month,
            line.payer_role.value,
            str(line.quantity),
            _nok(line.unit_price_ore),
            _nok(line.amount_ore),
            line.rule or f"[yellow]{line.note}[/yellow]",
        )
    items = Table(show_edge=False, expand=True, title="items", title_justify="left")
    for header in ("episode", "first day", "last day", "days", "amount"):
        items.add_column(header, justify="right" if header in {"days", "amount"} else "left")
    for item in statement.items:
        items.add_row(
            item.episode_id, str(item.first_day), str(item.last_day), str(item.days), _nok(item.amount_ore)
        )
    t = statement.totals
    net = (
        f"net {format_nok(t.net_ore)} payable by the {t.net_payer.value.replace('_', ' ')}"
        if t.net_payer.value != "none"
        else "net 0.00 NOK: nothing payable"
    )
    held = f"; {t.unrated_quantity} unit(s) held: unrated, no tariff" if t.unrated_quantity else ""
    totals = (
        f"municipality pays {format_nok(t.municipality_pays_ore)} · health trust pays "
        f"{format_nok(t.health_trust_pays_ore)} · [bold]{net}[/bold]{held}"
    )
    title = (
        f"Statement {statement.period} to {statement.recipient.role.value.replace('_', ' ')} "
        f"{statement.recipient.id} (counterparty {statement.counterparty.role.value.replace('_', ' ')} "
        f"{statement.counterparty.id})"
    )
    return Panel(Group(lines, items, totals), title=title, subtitle=f"statement {statement.statement_id}")


def print_statements(console: Console, statements: list[SettlementStatement]) -> None:
    for statement in sorted(
        statements, key=lambda s: (s.statement_id.hex, s.recipient.role.value != "municipality")
    ):
        console.print(statement_panel(statement))
