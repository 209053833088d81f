"""`settlement verify`: does a pair hold the complete, unaltered series of its statements?
Checked against the database and against what was published."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg

from services.domain.chain import chain_breaks


@dataclass(frozen=True)
class StoredSeries:
    """A pair's statements as the database holds them, in sequence order."""

    count: int
    bodies: list[dict[str, Any]]  # those that can be read, each with its stored hash
    hashes: list[str | None]
    unreadable: list[str]  # what is wrong with the others, in words

    @property
    def problems(self) -> list[str]:
        return self.unreadable + chain_breaks(self.bodies, self.hashes)


async def read_stored(conn: asyncpg.Connection, municipality: str, health_trust: str) -> StoredSeries:
    # The bytes as stored, not the json column: a body altered into something that is not
    # JSON any more is reported, not an error that stops the check.
    rows = await conn.fetch(
        "SELECT statement_id, sequence, body_bytes, hash FROM statements "
        "WHERE municipality = $1 AND health_trust = $2 ORDER BY sequence",
        municipality,
        health_trust,
    )
    series = StoredSeries(len(rows), [], [], [])
    for row in rows:
        name = f"statement {row['statement_id']} (sequence {row['sequence']})"
        body = _parsed(row["body_bytes"])
        if body is not None:
            series.bodies.append(body)
            series.hashes.append(row["hash"])
        elif row["body_bytes"] is None:
            series.unreadable.append(f"{name}: its body is missing from the database")
        else:
            series.unreadable.append(f"{name}: its stored body is not a JSON object: it was altered")
    return series


async def verify_database(
    conn: asyncpg.Connection, municipality: str, health_trust: str
) -> tuple[int, list[str]]:
    series = await read_stored(conn, municipality, health_trust)
    return series.count, series.problems


def _parsed(stored: bytes | None) -> dict[str, Any] | None:
    """A body as stored, parsed; None when it is missing or is not a JSON object any more."""
    if stored is None:
        return None
    try:
        body = json.loads(stored)
    except ValueError:  # json's own error, and bytes that are not UTF-8
        return None
    return body if isinstance(body, dict) else None


def verify_published(
    messages: Iterable[Mapping[str, Any]], municipality: str, health_trust: str
) -> tuple[int, list[str]]:
    """The copies one party received (deduplicated by statement id), checked as a chain."""
    wanted = {("municipality", municipality), ("health_trust", health_trust)}
    copies: dict[tuple[str, str], dict[str, Mapping[str, Any]]] = {}
    for message in messages:
        parties = {
            (message["recipient"]["role"], message["recipient"]["id"]),
            (message["counterparty"]["role"], message["counterparty"]["id"]),
        }
        if parties == wanted:
            recipient = (message["recipient"]["role"], message["recipient"]["id"])
            copies.setdefault(recipient, {})[message["statement_id"]] = message
    problems: list[str] = []
    count = 0
    for recipient in sorted(wanted):
        series = sorted(copies.get(recipient, {}).values(), key=lambda m: m["sequence"])
        count = max(count, len(series))
        problems += [f"as received by {recipient[0]} {recipient[1]}: {p}" for p in chain_breaks(series)]
    mine, theirs = (copies.get(r, {}) for r in sorted(wanted))
    for statement_id in set(mine) ^ set(theirs):
        problems.append(f"statement {statement_id} was published to one party only")
    for statement_id in set(mine) & set(theirs):
        if mine[statement_id]["statement_hash"] != theirs[statement_id]["statement_hash"]:
            problems.append(f"statement {statement_id}: the parties' copies differ")
    return count, problems


def compare(db_bodies: Iterable[Mapping[str, Any]], published: Iterable[Mapping[str, Any]]) -> list[str]:
    """Database and topic must hold the same statements with the same hashes."""
    stored = {b["statement_id"]: b["statement_hash"] for b in db_bodies}
    sent = {m["statement_id"]: m["statement_hash"] for m in published}
    problems = [
        f"statement {sid} is in the database but was never published" for sid in stored.keys() - sent.keys()
    ]
    problems += [
        f"statement {sid} was published but is not in the database" for sid in sent.keys() - stored.keys()
    ]
    problems += [
        f"statement {sid}: the database copy differs from the published one"
        for sid in stored.keys() & sent.keys()
        if stored[sid] != sent[sid]
    ]
    return problems
