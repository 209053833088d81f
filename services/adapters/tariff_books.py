"""The tariff books closes ran with, kept by fingerprint: each rule's signature with the
days and parties it prices (`PricedWindow`), enough to tell where two books price
differently without keeping every rule's source."""

from __future__ import annotations

import json
from datetime import date

import asyncpg

from services.domain.tariffs import Parameter, PricedWindow, TariffBook


async def remember(conn: asyncpg.Connection, book: TariffBook, *, complete: bool = True) -> None:
    """Record `book` as the one rated with now: `complete` once every subject its changes
    price was re-rated with it (committed), not before."""
    windows = {
        signature: {
            "parameter": w.parameter.value,
            "valid_from": w.valid_from.isoformat(),
            "valid_until": w.valid_until.isoformat() if w.valid_until else None,
            "municipalities": sorted(w.municipalities),
            "health_trust": w.health_trust,
        }
        for signature, w in book.windows().items()
    }
    await conn.execute(
        "INSERT INTO tariff_books (fingerprint, windows, last_used, complete) "
        "VALUES ($1, $2::jsonb, clock_timestamp(), $3) "
        "ON CONFLICT (fingerprint) DO UPDATE SET last_used = clock_timestamp(), complete = $3",
        book.fingerprint(),
        json.dumps(windows, sort_keys=True),
        complete,
    )


async def used_since_complete(conn: asyncpg.Connection) -> list[str]:
    """The fingerprints of the book the last complete re-rating used and of every book rated
    with since (re-ratings stopped half-way), newest first: the books whose prices may stand
    in the ledger. Empty if no close since migration 0012 kept one."""
    rows = await conn.fetch(
        """
        SELECT fingerprint FROM tariff_books
        WHERE last_used >= coalesce(
            (SELECT max(last_used) FROM tariff_books WHERE complete), '-infinity'::timestamptz
        )
        ORDER BY last_used DESC
        """
    )
    return [r["fingerprint"] for r in rows]


async def windows_of(conn: asyncpg.Connection, fingerprint: str) -> dict[str, PricedWindow] | None:
    """The windows of the book with `fingerprint`, or None if no close kept it (closes before
    migration 0012 kept only the fingerprint)."""
    raw = await conn.fetchval("SELECT windows::text FROM tariff_books WHERE fingerprint = $1", fingerprint)
    if raw is None:
        return None
    return {
        signature: PricedWindow(
            Parameter(w["parameter"]),
            date.fromisoformat(w["valid_from"]),
            date.fromisoformat(w["valid_until"]) if w["valid_until"] else None,
            frozenset(w["municipalities"]),
            w["health_trust"],
        )
        for signature, w in json.loads(raw).items()
    }
