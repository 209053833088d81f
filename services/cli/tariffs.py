"""`settlement tariffs`: which rules are in force for a pair on a day, and why an item
costs what it costs."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from services.adapters import ledger_repository as repo
from services.adapters.stores import connect_database
from services.domain.calendar import oslo_day
from services.domain.ledger import Category, ItemStatus, LedgerItem
from services.domain.money import format_nok, nok_to_ore, round_to_ore
from services.domain.municipalities import MunicipalityNumberError, Registry
from services.domain.tariffs import Parameter, TariffBook, TariffRule
from services.intake.validation import FAMILY_OF_TOPIC


def rules_table(book: TariffBook, municipality: str, health_trust: str, day: date) -> Table:
    table = Table(
        title=escape(
            f"Rules in force on {day} for municipality {municipality} and health trust {health_trust}"
        )
    )
    for header in ("parameter", "value", "scope", "rule", "valid", "source"):
        table.add_column(header)
    for rule in book.for_pair(day, municipality, health_trust):
        table.add_row(
            rule.parameter.value,
            str(rule.value),
            rule.scope.value,
            escape(rule.id),
            f"{rule.valid_from} – {rule.valid_until or 'open'}",
            escape(rule.source),
        )
    return table


def not_a_municipality_note(registry: Registry, number: str, day: date) -> str | None:
    """What `number` is on `day` when it is no municipality then: a mistyped number would
    otherwise show the national rules as if they were its."""
    if registry.period_on(number, day) is not None:
        return None
    periods = registry.periods_of(number)
    known = (
        f"in force {periods[0].valid_from} – {periods[-1].valid_until or 'open'}"
        if periods
        else "not in the registry at all"
    )
    try:
        then = f"events naming it are settled on {registry.resolve(number, day).number}"
    except MunicipalityNumberError:
        then = "intake refuses events that name it for that day"
    return (
        f"{number} is no municipality number on {day} ({known}): {then}; "
        "the rules below are the tariff files' for the number as given"
    )


def unpriced_note(book: TariffBook, municipality: str, health_trust: str, day: date) -> str | None:
    """What the rules in force leave unpriced, when it is the discharge-ready rate (a rate
    every day of a discharge-ready patient needs; the others are priced by agreement, or were
    in force for a few years only): without it the table does not say that days are held."""
    parameters = {rule.parameter for rule in book.for_pair(day, municipality, health_trust)}
    if Parameter.DISCHARGE_READY_DAY_RATE_NOK in parameters:
        return None
    return (
        f"No {Parameter.DISCHARGE_READY_DAY_RATE_NOK.value} in force on {day}: a discharge-ready day then "
        "is held as unrated until a rule for it is added (docs/tariffs.md), and priced by the next close."
    )


def _rule(book: TariffBook, rule_id: str) -> TariffRule | None:
    return next((r for r in book.rules if r.id == rule_id), None)


def explain(item: LedgerItem, book: TariffBook) -> str:
    """One item's price in words: which rule, which rate, which days."""
    days = f"{item.first_day} to {item.last_day} ({item.quantity} {'day' if item.quantity == 1 else 'days'})"
    head = (
        f"{item.category.value.replace('_', ' ')} {item.subject_id}, {item.service_month}, "
        f"municipality {item.municipality}, health trust {item.health_trust}, {item.payer_role.value} pays: {days}"
    )
    if item.status is ItemStatus.NOT_PAYABLE:
        return f"{head}\n  not payable: {item.not_payable_reason}"
    if item.status is ItemStatus.UNRATED:
        return f"{head}\n  unrated: no tariff in force for these days; held until the operator adds one"
    # The item's rules as this book has them today (None: no longer loaded), looked up once.
    rules = {rule_id: _rule(book, rule_id) for rule_id in (item.rule_id or "").split("+")}
    loaded = [rule for rule in rules.values() if rule is not None]
    parts = []
    for rule_id, rule in rules.items():
        where = (
            f"{rule.scope.value}, {rule.valid_from} – {rule.valid_until or 'open'}, {rule.source}"
            if rule
            else "no longer loaded"
        )
        value = f" = {rule.value}" if rule else ""
        parts.append(f"  rule {rule_id}: {rule.parameter.value if rule else '?'}{value} ({where})")
    note = f" ({item.note})" if item.note else ""
    if item.category is Category.ACTIVITY_CO_FINANCING:
        arithmetic = _co_financing(item, loaded) or f"  amount {format_nok(item.amount_ore or 0)}{note}"
    else:  # days: how many, at which rate
        arithmetic = (
            f"  {item.quantity} x {format_nok(item.unit_price_ore or 0)} = "
            f"{format_nok(item.amount_ore or 0)}{note}"
        )
    return "\n".join([head, *parts, arithmetic, *_earlier_rate(item, loaded)])


_DAY_RATES = frozenset({Parameter.DISCHARGE_READY_DAY_RATE_NOK, Parameter.EMERGENCY_BED_DAY_RATE_NOK})


def _earlier_rate(item: LedgerItem, rules: list[TariffRule]) -> list[str]:
    """A day priced at another rate than its rule's value today: a closed month keeps its
    price (a change is an adjustment), and this command reads the tariff directory of the
    shell it runs in, which need not be the services'."""
    for rule in rules:
        if rule.parameter not in _DAY_RATES or item.unit_price_ore is None:
            continue
        if nok_to_ore(rule.value) != item.unit_price_ore:
            return [
                f"  priced at {format_nok(item.unit_price_ore)} a day under an earlier value of this "
                f"rule (it is {format_nok(nok_to_ore(rule.value))} a day in the tariff directory read "
                "here, which may also be another than the services')"
            ]
    return []


def _co_financing(item: LedgerItem, rules: list[TariffRule]) -> str | None:
    """An activity's price as domain.md A1 reckons it: share x DRG points (capped) x unit
    price, rounded to the øre. The points are those the item's note gives (rating writes
    them there, capped or not)."""
    if not item.note or item.amount_ore is None:
        return None
    points, found, rest = item.note.partition(" DRG points")
    by_parameter = {r.parameter: r for r in rules}
    share = by_parameter.get(Parameter.CO_FINANCING_SHARE)
    unit = by_parameter.get(Parameter.CO_FINANCING_UNIT_PRICE_NOK)
    if not found or share is None or unit is None:
        return None
    cap = by_parameter.get(Parameter.CO_FINANCING_CAP_POINTS)
    counted = min(Decimal(points), cap.value) if cap else Decimal(points)
    if round_to_ore(share.value * counted * unit.value * 100) != item.amount_ore:
        # The rules' values today are not those the item was priced with (a closed month
        # keeps its price; the difference, if any, is an adjustment): no sum that does not add up.
        return (
            f"  amount {format_nok(item.amount_ore)} ({item.note}), priced under earlier values "
            "of these rules"
        )
    return (
        f"  {share.value} x {counted} DRG points{rest} x {format_nok(nok_to_ore(unit.value))} "
        f"= {format_nok(item.amount_ore)}"
    )


async def explain_subject(
    database_url: str, subject_id: str, health_trust: str, book: TariffBook, console: Console
) -> int:
    """Each item of the subject, priced in words, then what was booked for it since its month
    closed (adjustments: late events, new rates, disputes), then the facts it was rated from:
    finance disputing a day wants the milestones behind it, which the statement does not
    carry, and days found not payable leave no item at all. A subject is its id and its
    health trust. Returns the number of items and adjustments."""
    keys = [f"{family}:{health_trust}:{subject_id}" for family in FAMILY_OF_TOPIC.values()]
    conn = await connect_database(database_url)
    try:
        rows = await conn.fetch(
            """
            SELECT i.*, s.statement_id FROM ledger_items i
            LEFT JOIN statements s
                   ON s.period = i.service_month AND s.municipality = i.municipality
                  AND s.health_trust = i.health_trust
            WHERE i.subject_key = ANY($1::text[]) ORDER BY i.service_month, i.part
            """,
            keys,
        )
        adjustments = await conn.fetch(
            """
            SELECT a.*, s.period AS on_period FROM adjustments a
            LEFT JOIN statements s ON s.statement_id = a.statement_id
            WHERE a.subject_key = ANY($1::text[]) ORDER BY a.corrects_month, a.id
            """,
            keys,
        )
        facts = await conn.fetch(
            """
            SELECT family, type, occurred_at, event_id, source, payload FROM inbound_events
            WHERE subject_key = ANY($1::text[]) ORDER BY occurred_at, event_id::text
            """,
            keys,
        )
    finally:
        await conn.close()
    for row in rows:
        item = repo.item_from_row(row)
        if not row["statement_id"]:
            settled = " [not yet settled]"
        elif item.status is ItemStatus.UNRATED:
            # "settled" read oddly beside "held": its month's statement shows it, unpriced.
            settled = (
                f" [on statement {row['statement_id']} as unrated: priced by an adjustment on the pair's "
                "next statement after a rule is added]"
            )
        else:
            settled = f" [settled on statement {row['statement_id']}]"
        # Ids, notes and rule ids are data, and the brackets are text: none of it is markup.
        console.print(escape(explain(item, book) + settled))
    for row in adjustments:
        console.print(escape(adjustment_in_words(row)))
    if facts:
        console.print(escape(facts_in_words(subject_id, health_trust, facts)))
    return len(rows) + len(adjustments)


def adjustment_in_words(row: Mapping[str, Any]) -> str:
    """A difference booked for the subject's closed month, and where it is settled."""
    days = row["quantity_delta"]
    why = {"event": "a late event", "tariff": "a new rate", "dispute": "a dispute's outcome"}.get(
        row["cause"], row["cause"]
    )
    note = f": {row['note']}" if row["note"] else ""
    where = (
        f"settled on statement {row['statement_id']} of {row['on_period']:%Y-%m}"
        if row["statement_id"]
        else "pending: on the pair's next statement"
    )
    return (
        f"adjustment to {row['corrects_month']:%Y-%m} {row['category'].replace('_', ' ')} "
        f"{row['subject_id']}, municipality {row['municipality']}, {row['payer_role']} pays: "
        f"{days:+d} {'day' if abs(days) == 1 else 'days'}, {format_nok(row['amount_delta_ore'])} "
        f"({why}{note}) [{where}]"
    )


# What a fact says beside its type, by field, in this order: enough to see why days are
# payable (the municipalities, the care area, where the patient went) or what an activity is.
_FACT_FIELDS = (
    "registered_municipality",
    "staying_municipality",
    "municipality",
    "care_area",
    "destination",
    "drg",
    "drg_points",
    "surgical",
    "category",
    "started_at",
    "ended_at",
)


def facts_in_words(subject_id: str, health_trust: str, facts: Sequence[Mapping[str, Any]]) -> str:
    """The subject's facts as rated, in the order they happened, each with its Oslo day (the
    day the rules use). The patient's pseudonym is left out: it explains nothing here."""
    lines = [f"facts of {subject_id} (health trust {health_trust}), as they happened; days are Oslo's:"]
    for fact in facts:
        payload = fact["payload"]
        payload = json.loads(payload) if isinstance(payload, str) else payload
        details = ", ".join(f"{name} {payload[name]}" for name in _FACT_FIELDS if name in payload)
        lines.append(
            f"  {oslo_day(fact['occurred_at'])} {payload.get('occurred_at', fact['occurred_at'])} "
            f"{fact['type']}: {details} (event {fact['event_id']} from {fact['source']})"
        )
    return "\n".join(lines)
