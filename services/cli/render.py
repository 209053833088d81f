"""Statements as tables for people."""

from __future__ import annotations

from rich.console import Console, Group, RenderableType
from rich.markup import escape
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
    parts: list[RenderableType] = [_lines(statement), _items(statement)]
    if statement.adjustments:
        parts.append(_adjustments(statement))
    if statement.disputes:
        parts.append(_disputes(statement))
    parts.extend(_netting(statement))
    title = (
        f"Statement {statement.period} to {_label(statement.recipient.role.value)} {statement.recipient.id} "
        f"(counterparty {_label(statement.counterparty.role.value)} {statement.counterparty.id})"
    )
    return Panel(
        Group(*parts),
        title=escape(title),
        subtitle=f"statement {statement.statement_id} · no. {statement.sequence} of the pair · {statement.statement_hash[:19]}…",
    )


def _table(title: str | None, *headers: tuple[str, str]) -> Table:
    table = Table(show_edge=False, expand=True, title=title, title_justify="left")
    for header, justify in headers:
        # fold, not "…": the ids a party disputes by must be shown whole however narrow
        table.add_column(header, justify=justify, overflow="fold")  # type: ignore[arg-type]
    return table


def _lines(statement: SettlementStatement) -> Table:
    lines = _table(
        None,
        ("category", "left"),
        ("month", "left"),
        ("payer", "left"),
        ("qty", "right"),
        ("unit price", "right"),
        ("amount", "right"),
        ("rule / why", "left"),
    )
    for line in statement.lines:
        status = line.status.value
        lines.add_row(
            _label(line.category.value),
            line.service_month,
            _label(line.payer_role.value),
            str(line.quantity),
            _nok(line.unit_price_ore, status) if status == "priced" else "",
            _nok(line.amount_ore, status),
            escape(line.rule or "") if status == "priced" else f"[yellow]{escape(line.note or '')}[/yellow]",
        )
    return lines


def _items(statement: SettlementStatement) -> Table:
    items = _table(
        "items",
        ("category", "left"),
        ("id", "left"),
        ("first day", "left"),
        ("last day", "left"),
        ("qty", "right"),
        ("amount", "right"),
    )
    for item in statement.items:
        items.add_row(
            _label(item.category.value),
            escape(item.episode_id),
            str(item.first_day),
            str(item.last_day),
            str(item.days),
            _nok(item.amount_ore, item.status.value),
        )
    return items


def _adjustments(statement: SettlementStatement) -> Table:
    """Differences booked for closed months: they are in the netting below, so a reader
    must see them to make the lines add up. Under each, the items it leads to (`items_now`):
    the corrected month's items as they now stand, which its own statement's items and the
    differences since add up to."""
    table = _table(
        "adjustments to closed months",
        ("category", "left"),
        ("corrects", "left"),
        ("id", "left"),
        ("payer", "left"),
        ("qty", "right"),
        ("amount", "right"),
        ("cause", "left"),
    )
    for a in statement.adjustments:
        cause = {
            "event": f"event {a.caused_by.event_id}" if a.caused_by else "event",
            "dispute": f"dispute {a.dispute_id}",
        }.get(a.cause, a.cause)
        table.add_row(
            _label(a.category.value),
            a.corrects_month,
            escape(a.episode_id),
            _label(a.payer_role.value),
            f"{a.quantity_delta:+d}",
            format_nok(a.amount_delta_ore),
            escape(cause + (f": {a.note}" if a.note else "")),
        )
        if a.items_now is not None and not a.items_now:
            table.add_row("", "", "now: nothing stands", "", "0", "", "", style="dim")
        for now in a.items_now or ():
            status = now.status.value
            why = now.rule if status == "priced" else now.note
            table.add_row(
                "",
                "",
                f"now: {now.first_day} to {now.last_day}",
                "",
                str(now.days),
                _nok(now.amount_ore, status),
                escape(why or ""),
                style="dim",
            )
    return table


def _disputes(statement: SettlementStatement) -> Table:
    table = _table(
        "disputes",
        ("dispute", "left"),
        ("of", "left"),
        ("payer", "left"),
        ("amount", "right"),
        ("status", "left"),
        ("on this statement", "left"),
        ("agreed not owed", "right"),
    )
    for d in statement.disputes:
        of = f"{_label(d.category.value)} {d.service_month}" + (f" {d.episode_id}" if d.episode_id else "")
        table.add_row(
            str(d.dispute_id),
            escape(of),
            _label(d.payer_role.value),
            format_nok(d.amount_ore),
            _label(d.status),
            d.effect,
            format_nok(d.agreed_ore) if d.agreed_ore is not None else "",
        )
    return table


def _net(ore: int, payer: str) -> str:
    return f"{format_nok(ore)} by the {_label(payer)}" if payer != "none" else "0.00 NOK: nothing payable"


def _netting(statement: SettlementStatement) -> list[RenderableType]:
    """The category sums, then what is paid: the net after the disputes' holds. The net
    before the holds is shown as well only when there are holds, so the bold line is
    always the amount to pay (printing the net before holds as the amount was wrong by
    every disputed krone)."""
    t = statement.totals
    netting = _table(
        "netting (lines and adjustments)",
        ("category", "left"),
        ("municipality owes trust", "right"),
        ("trust owes municipality", "right"),
    )
    for c in t.by_category:
        netting.add_row(
            _label(c.category.value), format_nok(c.municipality_pays_ore), format_nok(c.health_trust_pays_ore)
        )
    netting.add_row(
        "[bold]total[/bold]", format_nok(t.municipality_pays_ore), format_nok(t.health_trust_pays_ore)
    )
    parts: list[RenderableType] = [netting]
    holds = [
        (role, ore)
        for role, ore in (
            ("municipality", t.municipality_withheld_ore),
            ("health_trust", t.health_trust_withheld_ore),
        )
        if ore
    ]
    if holds:
        parts.append(f"net of lines and adjustments: {_net(t.net_ore, t.net_payer.value)}")
        for role, ore in holds:
            if ore > 0:
                parts.append(
                    f"{format_nok(ore)} held out of what the {_label(role)} pays, for disputes opened"
                )
            else:
                parts.append(
                    f"{format_nok(-ore)} added back to what the {_label(role)} pays, for disputes resolved"
                )
    held = f"; {t.unrated_quantity} unit(s) held: unrated, no tariff" if t.unrated_quantity else ""
    parts.append(f"[bold]payable: {_net(t.net_payable_ore, t.net_payable_by.value)}[/bold]{held}")
    return parts


def print_statements(console: Console, statements: list[SettlementStatement]) -> None:
    for statement in sorted(
        statements, key=lambda s: (s.statement_id.hex, s.recipient.role.value != "municipality")
    ):
        console.print(statement_panel(statement))
