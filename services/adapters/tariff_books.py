"""The tariff books closes ran with, kept by fingerprint: each rule's signature with the
days and parties it prices (`PricedWindow`), enough to tell where two books price
differently without keeping every rule's source."""

from __future__ import annotations

import json
from datetime import date

import asyncpg

from services.domain.tariffs import Parameter, PricedWindow, TariffBook


async def remember(conn: asyncpg.Connection, book: TariffBook) -> None:
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
        "INSERT INTO tariff_books (fingerprint, windows) VALUES ($1, $2::jsonb) "
        "ON CONFLICT (fingerprint) DO UPDATE SET last_used = now()",
        book.fingerprint(),
        json.dumps(windows, sort_keys=True),
    )


async def last_used(conn: asyncpg.Connection) -> str | None:
    """The fingerprint of the book the last committed re-rating of a close used, if any
    close since migration 0012 kept one."""
    fingerprint: str | None = await conn.fetchval(
        "SELECT fingerprint FROM tariff_books ORDER BY last_used DESC LIMIT 1"
    )
    return fingerprint


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
