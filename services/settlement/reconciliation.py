"""`settlement reconcile PAIR PERIOD`: from events to balance for one pair and month, and
the proof that the statements add up to what was priced: for the month asked for (its
lines, and the adjustments to it on whichever later statement they came), and, said apart,
for all the pair's statements together."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import asyncpg

from services.domain.calendar import Month
from services.settlement.disputes import is_line_credit


@dataclass
class Reconciliation:
    municipality: str
    health_trust: str
    period: date
    events: int = 0
    subjects: int = 0
    items: list[dict[str, Any]] = field(default_factory=list)  # the month's ledger items
    settled_on: list[str] = field(default_factory=list)  # statement ids that settled them
    adjustments: list[dict[str, Any]] = field(default_factory=list)  # to this month, settled or pending
    disputes: list[dict[str, Any]] = field(default_factory=list)  # of this month
    priced_now_ore: int = 0  # municipality-pays minus trust-pays over the month's items and adjustments
    closed: bool = False  # the month is closed: its items are settled
    statements: list[str] = field(default_factory=list)  # months of the statements that carry the month
    statements_total_ore: int = 0  # the same, over the month's lines and adjustments to it on statements
    ledger_total_ore: int = 0  # the same, over the month's settled items and settled adjustments to it
    pair_statements: list[str] = field(default_factory=list)  # months of all the pair's statements
    pair_statements_total_ore: int = 0  # the same, over every statement of the pair, from their bodies
    pair_ledger_total_ore: int = 0  # the same, over every settled item and adjustment of the pair
    known: bool = False  # any event, ledger item, adjustment or statement of the pair, in any month
    # What of the month was settled below nothing, each "<subject or category> (<payer>): <øre>":
    # credited (by disputes, corrections) more than it was ever charged.
    credited_beyond: list[str] = field(default_factory=list)

    @property
    def month_proven(self) -> bool:
        """A statement carries the month, what statements say of it is what was settled, and
        nothing of it was settled below nothing. No statement proves nothing: the month is
        open, or nothing of it was settled."""
        return (
            bool(self.statements)
            and self.statements_total_ore == self.ledger_total_ore
            and not self.credited_beyond
        )

    @property
    def pair_proven(self) -> bool:
        return self.pair_statements_total_ore == self.pair_ledger_total_ore

    @property
    def proven(self) -> bool:
        return self.month_proven and self.pair_proven


# Whether anything at all is known of a pair, asked only when neither the month nor the
# pair's statements show anything. Events carry no municipality column: their payloads
# name it, under one of three fields depending on the family.
_ANYTHING_OF_THE_PAIR = """
SELECT EXISTS (SELECT 1 FROM ledger_items WHERE municipality = $1 AND health_trust = $2)
    OR EXISTS (SELECT 1 FROM adjustments WHERE municipality = $1 AND health_trust = $2)
    OR EXISTS (
        SELECT 1 FROM inbound_events WHERE health_trust = $2 AND $1 IN (
            payload->>'registered_municipality', payload->>'staying_municipality', payload->>'municipality'
        )
    )
"""


def _signed(payer_role: str, amount: int | None) -> int:
    """Positive when the municipality pays: one number per pair, netted."""
    return (amount or 0) if payer_role == "municipality" else -(amount or 0)


def _below_nothing(items: list[dict[str, Any]], adjustments: list[dict[str, Any]]) -> list[str]:
    """What was settled below nothing for one month: per episode, stay or activity and payer
    (its items and the adjustments to it, a dispute's credit among them), and per category
    and payer (a dispute of a whole line has no subject of its own)."""
    by_subject: dict[tuple[str, str], int] = {}
    by_category: dict[tuple[str, str], int] = {}
    for entry, amount in [
        *((i, i["amount_ore"] or 0) for i in items),
        *((a, a["amount_delta_ore"]) for a in adjustments),
    ]:
        subject = (entry["subject_id"], entry["payer_role"])
        category = (entry["category"], entry["payer_role"])
        by_subject[subject] = by_subject.get(subject, 0) + amount
        by_category[category] = by_category.get(category, 0) + amount
    lines_credited = {
        (a["subject_id"], a["payer_role"])
        for a in adjustments
        if a["dispute_id"] and is_line_credit(a["subject_id"])
    }
    return [
        f"{name} ({payer} pays): {total}"
        for totals, skip in ((by_subject, lines_credited), (by_category, set()))
        for (name, payer), total in sorted(totals.items())
        if total < 0 and (name, payer) not in skip
    ]


async def reconcile(
    conn: asyncpg.Connection, municipality: str, health_trust: str, period: date
) -> Reconciliation:
    r = Reconciliation(municipality, health_trust, period)
    items = await conn.fetch(
        """
        SELECT i.subject_key, i.subject_id, i.category, i.payer_role, i.first_day, i.last_day, i.quantity,
               i.amount_ore, i.rule_id, s.statement_id, i.not_payable_reason
        FROM ledger_items i
        -- settled: on the statement of the item's month and pair, once the month is closed
        LEFT JOIN statements s
               ON s.period = i.service_month AND s.municipality = i.municipality AND s.health_trust = i.health_trust
        WHERE i.municipality = $1 AND i.health_trust = $2 AND i.service_month = $3
        ORDER BY i.category, i.subject_id, i.first_day
        """,
        municipality,
        health_trust,
        period,
    )
    r.items = [dict(row) for row in items]
    r.settled_on = sorted({str(row["statement_id"]) for row in items if row["statement_id"]})
    adjustments = await conn.fetch(
        """
        SELECT subject_key, subject_id, category, payer_role, quantity_delta, amount_delta_ore, cause,
               caused_by_source, caused_by_event_id, dispute_id, statement_id
        FROM adjustments WHERE municipality = $1 AND health_trust = $2 AND corrects_month = $3 ORDER BY id
        """,
        municipality,
        health_trust,
        period,
    )
    r.adjustments = [dict(row) for row in adjustments]
    subjects = {row["subject_key"] for row in items} | {row["subject_key"] for row in adjustments}
    r.subjects = len(subjects)
    r.events = int(
        await conn.fetchval(
            "SELECT count(*) FROM inbound_events WHERE subject_key = ANY($1::text[])", list(subjects)
        )
    )
    r.disputes = [
        dict(row)
        for row in await conn.fetch(
            "SELECT * FROM disputes WHERE municipality = $1 AND health_trust = $2 AND service_month = $3",
            municipality,
            health_trust,
            period,
        )
    ]
    r.priced_now_ore = sum(_signed(i["payer_role"], i["amount_ore"]) for i in r.items) + sum(
        _signed(a["payer_role"], a["amount_delta_ore"]) for a in r.adjustments
    )
    statements = await conn.fetch(
        "SELECT period, body FROM statements WHERE municipality = $1 AND health_trust = $2 ORDER BY sequence",
        municipality,
        health_trust,
    )
    r.known = bool(r.items or r.adjustments or statements) or bool(
        await conn.fetchval(_ANYTHING_OF_THE_PAIR, municipality, health_trust)
    )
    # The month: what the statements say of it, against what of it is settled.
    month = str(Month.of(period))
    r.closed = bool(
        await conn.fetchval("SELECT EXISTS (SELECT 1 FROM closed_periods WHERE period = $1)", period)
    )
    r.pair_statements = [str(Month.of(s["period"])) for s in statements]
    for statement, statement_month in zip(statements, r.pair_statements, strict=True):
        body = statement["body"]
        lines = [line for line in body["lines"] if line["service_month"] == month]
        adjustments_to = [a for a in body.get("adjustments", []) if a["corrects_month"] == month]
        # The month's own statement carries it even with nothing of it on it (a month of
        # adjustments to earlier ones only): 0 against 0 is then the proof.
        if lines or adjustments_to or statement_month == month:
            r.statements.append(statement_month)
        r.statements_total_ore += sum(_signed(line["payer_role"], line["amount_ore"]) for line in lines)
        r.statements_total_ore += sum(_signed(a["payer_role"], a["amount_delta_ore"]) for a in adjustments_to)
    r.ledger_total_ore = (
        sum(_signed(i["payer_role"], i["amount_ore"]) for i in r.items) if r.closed else 0
    ) + sum(_signed(a["payer_role"], a["amount_delta_ore"]) for a in r.adjustments if a["statement_id"])
    r.credited_beyond = _below_nothing(
        r.items if r.closed else [], [a for a in r.adjustments if a["statement_id"]]
    )
    # The pair: every statement, against everything settled.
    r.pair_statements_total_ore = sum(
        _signed(line["payer_role"], line["amount_ore"]) for s in statements for line in s["body"]["lines"]
    ) + sum(
        _signed(a["payer_role"], a["amount_delta_ore"])
        for s in statements
        for a in s["body"].get("adjustments", [])
    )
    r.pair_ledger_total_ore = int(
        await conn.fetchval(
            """
            SELECT coalesce(sum(CASE WHEN payer_role = 'municipality' THEN amount ELSE -amount END), 0) FROM (
                SELECT payer_role, coalesce(amount_ore, 0) AS amount FROM ledger_items
                WHERE municipality = $1 AND health_trust = $2
                  AND service_month IN (SELECT period FROM closed_periods)
                UNION ALL
                SELECT payer_role, amount_delta_ore FROM adjustments
                WHERE municipality = $1 AND health_trust = $2 AND statement_id IS NOT NULL
            ) settled
            """,
            municipality,
            health_trust,
        )
    )
    return r
