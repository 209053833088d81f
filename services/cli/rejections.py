"""`settlement rejections`: what intake and the settlement service refused, and why: for the
hospital integration teams whose messages they were, and for operations watching the rate.

Everything shown was redacted when the rejection was recorded (patient identifiers in the
key, the payload and the message), as it is on `samhandling.rejected.v1`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time

import asyncpg
from rich.markup import escape
from rich.table import Table

from contracts.v1.outbound import ReasonCode
from services.adapters.stores import connect_database
from services.domain.calendar import OSLO


@dataclass(frozen=True, slots=True)
class RejectionFilter:
    reason: ReasonCode | None = None
    topic: str | None = None
    since: date | None = None  # an Oslo day: rejections from its midnight on
    source: str | None = None  # the rejected events' `source`, as they sent it

    def since_instant(self) -> datetime | None:
        return None if self.since is None else datetime.combine(self.since, time(), OSLO)


@dataclass(frozen=True, slots=True)
class Rejections:
    counts: Sequence[asyncpg.Record]  # topic, reason, count, last
    latest: Sequence[asyncpg.Record]  # newest first
    # With a source asked for: rejections recorded before they kept the event's source
    # (migration 0014), whose payload holds it as text; `--source` cannot find them.
    before_sources: int = 0


_WHERE = """
WHERE ($1::text IS NULL OR reason = $1) AND ($2::text IS NULL OR topic = $2)
  AND ($3::timestamptz IS NULL OR rejected_at >= $3) AND ($4::text IS NULL OR source = $4)
"""


async def fetch_rejections(database_url: str, which: RejectionFilter, limit: int) -> Rejections:
    args = (which.reason.value if which.reason else None, which.topic, which.since_instant(), which.source)
    conn = await connect_database(database_url)
    try:
        counts = await conn.fetch(
            f"""
            SELECT topic, reason, count(*) AS count, max(rejected_at) AS last FROM rejections {_WHERE}
            GROUP BY topic, reason ORDER BY count(*) DESC, topic, reason
            """,
            *args,
        )
        latest = await conn.fetch(
            f"""
            SELECT rejection_id, topic, partition, "offset", reason, message, key, payload, rejected_at,
                   source, event_id
            FROM rejections {_WHERE} ORDER BY rejected_at DESC, topic, partition, "offset" DESC LIMIT $5
            """,
            *args,
            limit,
        )
        before_sources = 0
        if which.source is not None:
            before_sources = await conn.fetchval(
                f"""
                SELECT count(*) FROM rejections
                {_WHERE.replace("source = $4", "source IS NULL AND strpos(payload, to_json($4::text)::text) > 0")}
                """,
                *args,
            )
    finally:
        await conn.close()
    return Rejections(counts, latest, before_sources)


def counts_table(found: Rejections, which: RejectionFilter) -> Table:
    since = f" since {which.since} (Oslo)" if which.since else ""
    table = Table(title=f"rejections by topic and reason{since}")
    for header in ("topic", "reason", "count", "last (Oslo)"):
        table.add_column(header, justify="right" if header == "count" else "left")
    for r in found.counts:
        table.add_row(escape(r["topic"]), r["reason"], f"{r['count']:,}", _oslo(r["last"]))
    return table


def latest_table(found: Rejections, *, payloads: bool) -> Table:
    table = Table(title=f"the latest {len(found.latest)}, newest first", show_lines=payloads)
    for header in ("when (Oslo)", "message at", "source, event id", "key", "reason", "why"):
        table.add_column(header, overflow="fold")
    for r in found.latest:
        why = r["message"] + (f"\npayload: {r['payload']}" if payloads else "")
        table.add_row(
            _oslo(r["rejected_at"]),
            escape(f"{r['topic']}[{r['partition']}]@{r['offset']}"),
            escape(f"{r['source'] or '-'}\n{r['event_id'] or '-'}"),
            escape(r["key"] if r["key"] is not None else "(none)"),
            r["reason"],
            escape(why),  # the producer's text, redacted: data, not markup
        )
    return table


def _oslo(at: datetime) -> str:
    return at.astimezone(OSLO).strftime("%Y-%m-%d %H:%M:%S")
