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
        if agreed:
            # A late event may have taken off some of what was disputed since it was opened:
            # the credit is what is still owed at most, never money that was not charged.
            owed = await _still_owed_for(conn, dispute)
            if agreed > owed.amount_ore:
                agreed = max(owed.amount_ore, 0)
                note += f"; credited {agreed} øre of {amount}, what is still owed for the {owed.what}"
        await conn.execute(
            "UPDATE disputes SET status = $2, agreed_ore = $3, resolved_at = $4 WHERE dispute_id = $1",
            command.dispute_id,
            command.outcome,
            agreed,
            now,
        )
        if agreed:
            family = FAMILY_OF_CATEGORY[dispute["category"]]
            subject = dispute["subject_id"] or f"{_LINE_SUBJECT}{command.dispute_id}"
            await conn.execute(
                """
                INSERT INTO adjustments (subject_key, corrects_month, category, subject_id, municipality,
                                         health_trust, payer_role, quantity_delta, amount_delta_ore, cause,
                                         dispute_id, note)
                VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, 'dispute', $9, $10)
                """,
                f"{family}:{dispute['health_trust']}:{subject}",
                dispute["service_month"],
                dispute["category"],
                subject,
                dispute["municipality"],
                dispute["health_trust"],
                dispute["payer_role"],
                -agreed,
                command.dispute_id,
                note,
            )
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


async def reduce_credits_beyond_charges(conn: asyncpg.Connection) -> int:
    """Book back what disputes credited beyond what is charged now, so that no item, and no
    line, is settled below nothing; the number of credits reduced. Run by the close, under its
    lock, after late events were rated.

    A dispute of a whole line credits the line, not an episode, so a late event that then
    takes days off an episode of that line is not weighed against the credit when it is rated
    (the credit of an episode's own dispute is: `rating.service._differences`): the line went
    below nothing. Likewise should a late event and a resolution of the same episode pass each
    other in flight. Here, per item or line a dispute credited: what the month's items and
    every adjustment to it (credits included) sum to; below nothing, the dispute's credit is
    reduced by as much, an adjustment of its own saying so. A reduction stays: days a later
    event adds back are charged again, and can be disputed again."""
    # Only where something is pending for the credited month: a closed month's items never
    # change, so a total moves only by an adjustment not yet on a statement.
    scopes = await conn.fetch(
        """
        SELECT DISTINCT ON (subject_key, corrects_month, municipality, health_trust, category, payer_role)
               subject_key, subject_id, corrects_month, municipality, health_trust, category, payer_role,
               dispute_id
        FROM adjustments a
        WHERE dispute_id IS NOT NULL AND EXISTS (
            SELECT 1 FROM adjustments p
            WHERE p.statement_id IS NULL AND p.municipality = a.municipality
              AND p.health_trust = a.health_trust AND p.corrects_month = a.corrects_month
              AND p.category = a.category AND p.payer_role = a.payer_role
        )
        ORDER BY subject_key, corrects_month, municipality, health_trust, category, payer_role, id DESC
        """
    )
    reduced = 0
    for scope in scopes:
        line = scope["subject_id"].startswith(_LINE_SUBJECT)
        total = await conn.fetchval(
            """
            SELECT coalesce(sum(amount), 0) FROM (
                -- in the collation of the statement-order index, so a line reads only its items
                SELECT coalesce(amount_ore, 0) AS amount FROM ledger_items
                WHERE service_month = $1 AND municipality COLLATE "C" = $2 AND health_trust COLLATE "C" = $3
                  AND category COLLATE "C" = $4 AND payer_role = $5
                  AND ($6::text IS NULL OR subject_key = $6)
                UNION ALL
                SELECT amount_delta_ore FROM adjustments
                WHERE corrects_month = $1 AND municipality = $2 AND health_trust = $3 AND category = $4
                  AND payer_role = $5 AND ($6::text IS NULL OR subject_key = $6)
            ) settled
            """,
            scope["corrects_month"],
            scope["municipality"],
            scope["health_trust"],
            scope["category"],
            scope["payer_role"],
            None if line else scope["subject_key"],
        )
        if total >= 0:
            continue
        what = "line" if line else f"item {scope['subject_id']}"
        await conn.execute(
            """
            INSERT INTO adjustments (subject_key, corrects_month, category, subject_id, municipality,
                                     health_trust, payer_role, quantity_delta, amount_delta_ore, cause,
                                     dispute_id, note)
            VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, 'dispute', $9, $10)
            """,
            scope["subject_key"],
            scope["corrects_month"],
            scope["category"],
            scope["subject_id"],
            scope["municipality"],
            scope["health_trust"],
            scope["payer_role"],
            -total,
            scope["dispute_id"],
            f"dispute credit reduced by {-total} øre: late events took off days it had credited "
            f"already, and the {what} is never settled below nothing",
        )
        reduced += 1
    return reduced


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
