"""Disputes of published statements (domain.md section 5).

Opening one holds the amount out of what its payer pays on the pair's next statement;
resolving it releases the hold and books the agreed difference as an adjustment. Every
step is logged with who, when and why. A closed statement is never edited.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

import asyncpg

from contracts.v1.identifiers import PATIENT_ID_FORMS, find_patient_ids
from contracts.v1.outbound import OpenDispute, ResolveDispute
from services.adapters.postgres import UnitOfWork

FAMILY_OF_CATEGORY = {
    "discharge_ready_bed_days": "discharge_ready",
    "emergency_bed_days": "emergency_beds",
    "activity_co_financing": "activity",
}


# The subject under which the credit of a dispute of a whole line is booked, and its id.
_LINE_SUBJECT = "dispute-"


class DisputeRefused(ValueError):
    """The dispute command cannot be carried out; the message says why."""


def _refuse_patient_ids(**texts: str) -> None:
    """The free text of a dispute is kept in the dispute log and published on the pair's
    statements (the reason of an opening on its dispute entry, of a resolution in the note
    of its adjustment): a patient identifier must not be in it. The item is named by its
    episode id."""
    for name, text in texts.items():
        if find_patient_ids(text):
            raise DisputeRefused(
                f"{name} holds a patient identifier ({PATIENT_ID_FORMS}); name the episode, stay or "
                "activity by its id instead"
            )


async def _first_time(conn: asyncpg.Connection, command_id: UUID, kind: str) -> bool:
    return bool(
        await conn.fetchval(
            "INSERT INTO processed_commands (command_id, type) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING true",
            command_id,
            kind,
        )
    )


async def open_dispute(pool: asyncpg.Pool, command: OpenDispute, clock: Callable[[], datetime]) -> bool:
    """Returns False when the command was seen before."""
    _refuse_patient_ids(reason=command.reason)
    now = clock()
    async with UnitOfWork(pool) as uow:
        conn = uow.conn
        await uow.lock_periods(exclusive=False)
        if not await _first_time(conn, command.command_id, "open_dispute"):
            return False
        statement = await conn.fetchrow(
            "SELECT municipality, health_trust, body FROM statements WHERE statement_id = $1",
            command.statement_id,
        )
        if statement is None:
            raise DisputeRefused(f"no statement {command.statement_id}")
        await _weighed_one_at_a_time(conn, statement, command.category.value, command.service_month)
        party = (command.opened_by.role.value, command.opened_by.id)
        if party not in {
            ("municipality", statement["municipality"]),
            ("health_trust", statement["health_trust"]),
        }:
            raise DisputeRefused("only the municipality or the health trust of the statement can dispute it")
        month, category, body = command.service_month, command.category.value, statement["body"]
        # What the statement charged for that month: its lines, or adjustments to it (days
        # priced late: a late event, a rate added for days held unrated).
        charged = [*_priced_lines(body, category, month), *_corrections_on(body, category, month)]
        if not charged:
            raise DisputeRefused(
                f"the statement has no priced {category} line for {month}, nor an adjustment to it"
            )
        scopes: list[str | None] = [None]
        if command.episode_id is not None:
            episode = command.episode_id
            if not _items_of(body, category, month, episode) and not _corrections_on(
                body, category, month, episode
            ):
                raise DisputeRefused(
                    f"the statement has no {category} item {episode} for {month}, nor an adjustment to it"
                )
            scopes.insert(0, episode)
        for subject_id in scopes:
            owed = await _still_owed(conn, statement, category, month, subject_id)
            if command.amount_ore > owed.amount_ore:
                raise DisputeRefused(
                    f"the amount disputed ({command.amount_ore} øre) exceeds what is still owed for the "
                    f"{owed.what}"
                )
        inserted = await conn.fetchval(
            """
            INSERT INTO disputes (dispute_id, statement_id, municipality, health_trust, subject_id, category,
                                  service_month, payer_role, amount_ore, opened_by, reason, opened_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
            ON CONFLICT (dispute_id) DO NOTHING RETURNING true
            """,
            command.dispute_id,
            command.statement_id,
            statement["municipality"],
            statement["health_trust"],
            command.episode_id,
            command.category.value,
            date.fromisoformat(month + "-01"),
            charged[0]["payer_role"],
            command.amount_ore,
            command.opened_by.key,
            command.reason,
            now,
        )
        if not inserted:
            raise DisputeRefused(f"dispute {command.dispute_id} exists already")
        await _log(
            conn, command.dispute_id, "opened", command.opened_by.key, command.reason, command.amount_ore, now
        )
        await uow.commit()
    return True


def _priced_lines(body: Mapping[str, Any], category: str, month: str) -> list[Mapping[str, Any]]:
    return [
        line
        for line in body["lines"]
        if line["category"] == category and line["service_month"] == month and line["status"] == "priced"
    ]


def _corrections_on(
    body: Mapping[str, Any], category: str, month: str, subject_id: str | None = None
) -> list[Mapping[str, Any]]:
    """The statement's adjustments to `month` that changed what was charged (not a dispute's)."""
    return [
        a
        for a in body.get("adjustments", ())
        if a["category"] == category
        and a["corrects_month"] == month
        and a["cause"] != "dispute"
        and (subject_id is None or a["episode_id"] == subject_id)
    ]


async def _weighed_one_at_a_time(
    conn: asyncpg.Connection, pair: Mapping[str, Any], category: str, month: str
) -> None:
    """Claims on one pair's category and month are weighed against what is still owed one at a
    time, whichever statement each names (a month's own, or a later one adjusting it)."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        f"disputes:{pair['municipality']}:{pair['health_trust']}:{category}:{month}",
    )


def _items_of(body: Mapping[str, Any], category: str, month: str, subject_id: str) -> list[Mapping[str, Any]]:
    return [
        item
        for item in body["items"]
        if item["episode_id"] == subject_id
        and item["category"] == category
        and item["service_month"] == month
    ]


@dataclass(frozen=True)
class StillOwed:
    amount_ore: int
    what: str  # the item or line, and how its amount was reached, for a refusal or a note


async def _still_owed(
    conn: asyncpg.Connection,
    pair: Mapping[str, Any],
    category: str,
    month: str,
    subject_id: str | None,
    *,
    besides: UUID | None = None,
) -> StillOwed:
    """What is still owed for the item (or the line, when `subject_id` is None) of `pair` (a
    row with its municipality and health trust) that a dispute claims: what the month's own
    statement charged, changed by the adjustments to that month since (a late event or a new
    rate, booked or pending), less what the pair's other disputes of it claim (open: the
    amount; upheld in whole or part: the agreed amount; rejected: nothing) than `besides`. A claim may not exceed it when opened,
    nor a credit when resolved: otherwise two disputes of one item, or a dispute and the late
    event that took the same days off, credited more than was ever charged."""
    municipality, health_trust = pair["municipality"], pair["health_trust"]
    service_month = date.fromisoformat(month + "-01")
    own = await conn.fetchval(
        "SELECT body FROM statements WHERE period = $1 AND municipality = $2 AND health_trust = $3",
        service_month,
        municipality,
        health_trust,
    )
    charged_in = (
        []
        if own is None
        else _priced_lines(own, category, month)
        if subject_id is None
        else _items_of(own, category, month, subject_id)
    )
    charged = sum(entry["amount_ore"] or 0 for entry in charged_in)
    adjusted = await conn.fetchval(
        """
        SELECT coalesce(sum(amount_delta_ore), 0) FROM adjustments
        WHERE municipality = $1 AND health_trust = $2 AND category = $3 AND corrects_month = $4
          AND cause <> 'dispute' AND ($5::text IS NULL OR subject_id = $5)
        """,
        municipality,
        health_trust,
        category,
        service_month,
        subject_id,
    )
    claimed = await conn.fetchval(
        """
        SELECT coalesce(sum(CASE status WHEN 'open' THEN amount_ore WHEN 'rejected' THEN 0
                                        ELSE coalesce(agreed_ore, 0) END), 0)
        FROM disputes
        WHERE municipality = $1 AND health_trust = $2 AND category = $3 AND service_month = $4
          AND ($5::text IS NULL OR subject_id = $5) AND dispute_id IS DISTINCT FROM $6
        """,
        municipality,
        health_trust,
        category,
        service_month,
        subject_id,
        besides,
    )
    owed = charged + adjusted - claimed
    what = f"item {subject_id}" if subject_id is not None else "line"
    return StillOwed(
        owed,
        f"{what} ({owed} øre: {charged} charged, {adjusted} adjusted since, {claimed} claimed by other disputes)",
    )


async def resolve_dispute(pool: asyncpg.Pool, command: ResolveDispute, clock: Callable[[], datetime]) -> bool:
    _refuse_patient_ids(resolved_by=command.resolved_by, reason=command.reason)
    now = clock()
    async with UnitOfWork(pool) as uow:
        conn = uow.conn
        await uow.lock_periods(exclusive=False)
        if not await _first_time(conn, command.command_id, "resolve_dispute"):
            return False
        dispute = await conn.fetchrow(
            "SELECT * FROM disputes WHERE dispute_id = $1 FOR UPDATE", command.dispute_id
        )
        if dispute is None:
            raise DisputeRefused(f"no dispute {command.dispute_id}")
        if dispute["status"] != "open":
            raise DisputeRefused(f"dispute {command.dispute_id} was resolved already ({dispute['status']})")
        amount = dispute["amount_ore"]
        if command.outcome == "upheld":
            agreed = amount
        elif command.outcome == "rejected":
            agreed = 0
        else:
            if command.agreed_ore is None or not 0 < command.agreed_ore < amount:
                raise DisputeRefused(f"partially upheld needs an agreed amount between 0 and {amount} øre")
            agreed = command.agreed_ore
        note = f"dispute {command.outcome.replace('_', ' ')}: {command.reason}"
        # The ruling is kept whole (`agreed_ore`); what it credits now is what is still owed
        # at most, never money that was not charged (a late event may have taken off some of
        # it since it was opened). Should later events bring days back, the close credits
        # them up to the ruling (`credits_to_what_is_owed`).
        credit = agreed
        if agreed:
            owed = await _still_owed_for(conn, dispute)
            if agreed > owed.amount_ore:
                credit = max(owed.amount_ore, 0)
                note += f"; credited {credit} øre of {agreed}, what is still owed for the {owed.what}"
        await conn.execute(
            "UPDATE disputes SET status = $2, agreed_ore = $3, resolved_at = $4 WHERE dispute_id = $1",
            command.dispute_id,
            command.outcome,
            agreed,
            now,
        )
        if credit:
            subject = dispute["subject_id"] or line_credit_subject(command.dispute_id)
            await _insert_credit(conn, dispute, subject, command.dispute_id, -credit, note)
        await _log(
            conn, command.dispute_id, command.outcome, command.resolved_by, command.reason, agreed, now
        )
        await uow.commit()
    return True


async def _still_owed_for(conn: asyncpg.Connection, dispute: asyncpg.Record) -> StillOwed:
    """`_still_owed` of the item or line `dispute` claims, the least of the two for an item."""
    month = dispute["service_month"].strftime("%Y-%m")
    await _weighed_one_at_a_time(conn, dispute, dispute["category"], month)
    scopes = [None] if dispute["subject_id"] is None else [dispute["subject_id"], None]
    owed = [
        await _still_owed(
            conn, dispute, dispute["category"], month, subject_id, besides=dispute["dispute_id"]
        )
        for subject_id in scopes
    ]
    return min(owed, key=lambda o: o.amount_ore)


async def credits_to_what_is_owed(conn: asyncpg.Connection) -> int:
    """Bring what upheld disputes credit to what they ruled, as far as it is still charged;
    the number of credits changed. Run by the close, under its lock, after late events were
    rated.

    A dispute rules an amount not owed (`agreed_ore`: all of the claim when upheld). What it
    credits is that amount at most, and never more than the facts charge now: per episode
    for a dispute of an item, and per line (category, payer and month of a pair) for one of a
    whole line, after the items' own credits. Late events move what is charged: days taken
    off that a dispute had credited already are not credited twice (the credit is reduced,
    nothing settles below nothing), and days brought back are credited again, up to what was
    ruled. Each change is an adjustment of the dispute's own, saying so. Looked at only where
    something is pending for the month: a closed month's items never change, so a total
    moves only by an adjustment not yet on a statement."""
    lines = await conn.fetch(
        """
        SELECT DISTINCT d.municipality, d.health_trust, d.category, d.service_month, d.payer_role
        FROM disputes d
        WHERE d.status IN ('upheld', 'partially_upheld') AND EXISTS (
            SELECT 1 FROM adjustments p
            WHERE p.statement_id IS NULL AND p.municipality = d.municipality
              AND p.health_trust = d.health_trust AND p.corrects_month = d.service_month
              AND p.category = d.category AND p.payer_role = d.payer_role
        )
        """
    )
    changed = 0
    for line in lines:
        changed += await _credit_line(conn, line)
    return changed


async def _credit_line(conn: asyncpg.Connection, line: asyncpg.Record) -> int:
    where = (
        line["service_month"],
        line["municipality"],
        line["health_trust"],
        line["category"],
        line["payer_role"],
    )
    ruled = await conn.fetch(
        """
        SELECT dispute_id, subject_id, agreed_ore FROM disputes
        WHERE service_month = $1 AND municipality = $2 AND health_trust = $3 AND category = $4
          AND payer_role = $5 AND status IN ('upheld', 'partially_upheld')
        ORDER BY resolved_at, dispute_id
        """,
        *where,
    )
    # What the facts charge now (items, and corrections booked or pending) and what disputes
    # credit now, per subject of the line; a whole line's credits under their own subjects.
    sums = await conn.fetch(
        """
        SELECT subject_key, subject_id, sum(charged)::bigint AS charged, sum(credited)::bigint AS credited
        FROM (
            -- in the collation of the statement-order index, so a line reads only its items
            SELECT subject_key, subject_id, coalesce(amount_ore, 0) AS charged, 0 AS credited
            FROM ledger_items
            WHERE service_month = $1 AND municipality COLLATE "C" = $2 AND health_trust COLLATE "C" = $3
              AND category COLLATE "C" = $4 AND payer_role = $5
            UNION ALL
            SELECT subject_key, subject_id,
                   CASE WHEN dispute_id IS NULL THEN amount_delta_ore ELSE 0 END,
                   CASE WHEN dispute_id IS NULL THEN 0 ELSE -amount_delta_ore END
            FROM adjustments
            WHERE corrects_month = $1 AND municipality = $2 AND health_trust = $3 AND category = $4
              AND payer_role = $5
        ) line
        GROUP BY subject_key, subject_id
        """,
        *where,
    )
    # (a whole line's credits have subjects of their own, which charge nothing)
    charged = {r["subject_id"]: int(r["charged"]) for r in sums}
    credited = {r["subject_id"]: int(r["credited"]) for r in sums}
    changed = 0
    items_credit = 0
    for subject_id in sorted({d["subject_id"] for d in ruled if d["subject_id"] is not None}):
        of_subject = [d for d in ruled if d["subject_id"] == subject_id]
        due = min(sum(d["agreed_ore"] or 0 for d in of_subject), max(charged.get(subject_id, 0), 0))
        items_credit += due
        changed += await _book_credit(
            conn,
            line,
            subject_id,
            of_subject[-1]["dispute_id"],
            credited.get(subject_id, 0),
            due,
            f"item {subject_id}",
        )
    of_line = [d for d in ruled if d["subject_id"] is None]
    if of_line:
        due = min(sum(d["agreed_ore"] or 0 for d in of_line), max(sum(charged.values()) - items_credit, 0))
        now = sum(credited.get(line_credit_subject(d["dispute_id"]), 0) for d in of_line)
        last = of_line[-1]["dispute_id"]
        changed += await _book_credit(conn, line, line_credit_subject(last), last, now, due, "line")
    return changed


async def _book_credit(
    conn: asyncpg.Connection,
    line: asyncpg.Record,
    subject_id: str,
    dispute_id: UUID,
    credited: int,
    due: int,
    what: str,
) -> int:
    if credited == due:
        return 0
    change = "reduced" if due < credited else "restored"
    await _insert_credit(
        conn,
        line,
        subject_id,
        dispute_id,
        credited - due,
        f"dispute credit {change} to {due} øre: late events changed what is charged for the {what}, "
        "and a credit is what was ruled, as far as it is charged",
    )
    return 1


async def _insert_credit(
    conn: asyncpg.Connection,
    line: Mapping[str, Any],
    subject_id: str,
    dispute_id: UUID,
    amount_ore: int,
    note: str,
) -> None:
    """An adjustment of a dispute's credit to `line` (a row naming the pair, category, month
    and payer: a dispute's own, or a line of them), under the episode's subject or the line's."""
    await conn.execute(
        """
        INSERT INTO adjustments (subject_key, corrects_month, category, subject_id, municipality,
                                 health_trust, payer_role, quantity_delta, amount_delta_ore, cause,
                                 dispute_id, note)
        VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, 'dispute', $9, $10)
        """,
        f"{FAMILY_OF_CATEGORY[line['category']]}:{line['health_trust']}:{subject_id}",
        line["service_month"],
        line["category"],
        subject_id,
        line["municipality"],
        line["health_trust"],
        line["payer_role"],
        amount_ore,
        dispute_id,
        note,
    )


def line_credit_subject(dispute_id: UUID) -> str:
    """The subject a dispute of a whole line books its credit under (it has no episode)."""
    return f"{_LINE_SUBJECT}{dispute_id}"


def is_line_credit(subject_id: str) -> bool:
    return subject_id.startswith(_LINE_SUBJECT)


async def _log(
    conn: asyncpg.Connection,
    dispute_id: UUID,
    action: str,
    actor: str,
    reason: str,
    amount: int | None,
    at: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO dispute_log (dispute_id, action, actor, reason, amount_ore, at) VALUES ($1, $2, $3, $4, $5, $6)",
        dispute_id,
        action,
        actor,
        reason,
        amount,
        at,
    )
