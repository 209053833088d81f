"""SQL for closing a period: what a pair's next statement carries, and the chain."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg

from services.adapters import postgres
from services.adapters.ledger_repository import items_now_from_row
from services.domain.calendar import Month
from services.domain.ledger import Category, LedgerItem, PayerRole
from services.domain.statements import INDIVIDUALLY_PRICED, MAPPING_PREFIX, Adjustment

Pair = tuple[str, str]  # municipality, health trust


async def unsettled_adjustments(conn: asyncpg.Connection) -> dict[Pair, list[tuple[int, Adjustment]]]:
    rows = await conn.fetch("SELECT * FROM adjustments WHERE statement_id IS NULL ORDER BY id")
    found: dict[Pair, list[tuple[int, Adjustment]]] = {}
    for r in rows:
        if r["quantity_delta"] == 0 and r["amount_delta_ore"] == 0:
            continue
        found.setdefault((r["municipality"], r["health_trust"]), []).append((r["id"], adjustment_from_row(r)))
    return found


def adjustment_from_row(r: asyncpg.Record) -> Adjustment:
    return Adjustment(
        category=Category(r["category"]),
        payer_role=PayerRole(r["payer_role"]),
        corrects_month=Month.of(r["corrects_month"]),
        subject_id=r["subject_id"],
        quantity_delta=r["quantity_delta"],
        amount_delta_ore=r["amount_delta_ore"],
        cause=r["cause"],
        caused_by=(r["caused_by_source"], str(r["caused_by_event_id"])) if r["caused_by_source"] else None,
        dispute_id=str(r["dispute_id"]) if r["dispute_id"] else None,
        note=r["note"],
        items_now=items_now_from_row(r),
    )


async def held_unrated(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """The days held as unrated now (no tariff in force for them: domain.md section 1), by
    category and year: `category`, `year`, `items`, `quantity`, `pairs`, `first_day`,
    `last_day`, `closed` (those of months already closed, which reach their pairs as
    adjustments once priced). Reads the whole ledger: for `settlement pending --unrated`,
    asked for, not sampled.

    A closed month's items are never rewritten, so an unrated one stays unpriced in
    `ledger_items` after an adjustment has priced its days: what a closed month has now is
    its newest re-rating's `items_now` where there is one, else the items as settled."""
    rows: list[asyncpg.Record] = await conn.fetch(
        """
        WITH latest AS (
            SELECT DISTINCT ON (subject_key, corrects_month, municipality, health_trust, category, payer_role)
                   subject_key, corrects_month, municipality, health_trust, category, payer_role, items_now
            FROM adjustments WHERE dispute_id IS NULL
            ORDER BY subject_key, corrects_month, municipality, health_trust, category, payer_role, id DESC
        ), held AS (
            SELECT i.category, i.municipality, i.health_trust, i.first_day, i.last_day, i.quantity,
                   c.period IS NOT NULL AS closed
            FROM ledger_items i LEFT JOIN closed_periods c ON c.period = i.service_month
            WHERE i.amount_ore IS NULL AND i.not_payable_reason IS NULL
              AND NOT EXISTS (
                  SELECT 1 FROM latest l
                  WHERE l.items_now IS NOT NULL AND (l.subject_key, l.corrects_month, l.municipality,
                        l.health_trust, l.category, l.payer_role) = (i.subject_key, i.service_month,
                        i.municipality, i.health_trust, i.category, i.payer_role))
            UNION ALL
            SELECT l.category, l.municipality, l.health_trust, (e ->> 'first_day')::date,
                   (e ->> 'last_day')::date, (e ->> 'quantity')::integer, true
            FROM latest l CROSS JOIN LATERAL json_array_elements(l.items_now) AS e
            WHERE l.items_now IS NOT NULL AND e ->> 'amount_ore' IS NULL AND e ->> 'not_payable_reason' IS NULL
        )
        SELECT category, extract(year FROM first_day)::int AS year, count(*) AS items,
               sum(quantity)::bigint AS quantity,  -- a sum of integers is bigint, of bigints numeric
               count(DISTINCT (municipality, health_trust)) AS pairs,
               min(first_day) AS first_day, max(last_day) AS last_day, count(*) FILTER (WHERE closed) AS closed
        FROM held GROUP BY 1, 2 ORDER BY 1, 2
        """
    )
    return rows


async def months_left_open(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Months before the latest closed one that were never closed, with items: on no statement
    until someone closes them (docs/domain.md, section 6). `service_month`, `items`, `pairs`,
    `amount_ore` (priced items only; all ints): what `settlement pending` lists, and the settlement
    service samples as gauges (probes.sample_months_left_open)."""
    # Nearly every item is of a month before the latest closed, so filtering the table by
    # month read all of it, on every sample. Instead: the months from the earliest item's to
    # the latest closed, less the closed ones, each counted on its own through
    # ledger_items_statement_order (led by service_month): a month with nothing costs one
    # probe of the index. Counting a month's pairs in a hash rather than count(DISTINCT),
    # which sorts a month of items (measured on 1.4 M items, a 60,000-item month left open:
    # 30 ms instead of 330; none left open: 2 ms).
    rows: list[asyncpg.Record] = await conn.fetch(
        """
        WITH candidates AS (
            SELECT month::date AS service_month
            FROM generate_series(
                date_trunc('month', (SELECT min(service_month) FROM ledger_items)::timestamp),
                (SELECT max(period) FROM closed_periods)::timestamp - interval '1 month',
                interval '1 month'
            ) AS month
            WHERE month::date NOT IN (SELECT period FROM closed_periods)
        )
        SELECT c.service_month, sum(pair.items)::bigint AS items, count(*) AS pairs,
               coalesce(sum(pair.amount_ore), 0)::bigint AS amount_ore  -- a sum of bigints is numeric
        FROM candidates c
        CROSS JOIN LATERAL (
            SELECT count(*) AS items, sum(amount_ore) AS amount_ore
            FROM ledger_items WHERE service_month = c.service_month
            GROUP BY municipality, health_trust
        ) pair
        GROUP BY c.service_month ORDER BY c.service_month
        """
    )
    return rows


async def disputes_to_show(conn: asyncpg.Connection) -> dict[Pair, list[asyncpg.Record]]:
    """Open disputes (held now or still held), resolved ones whose hold is not yet released,
    and resolved ones never held (opened and resolved between two closes) not yet shown:
    `released_on` is the statement that showed the resolution."""
    rows = await conn.fetch(
        """
        SELECT * FROM disputes WHERE released_on IS NULL ORDER BY opened_at, dispute_id
        """
    )
    found: dict[Pair, list[asyncpg.Record]] = {}
    for r in rows:
        found.setdefault((r["municipality"], r["health_trust"]), []).append(r)
    return found


@dataclass(frozen=True)
class ChainHead:
    sequence: int
    hash: str | None


async def chain_heads(conn: asyncpg.Connection) -> dict[Pair, ChainHead]:
    rows = await conn.fetch(
        """
        SELECT DISTINCT ON (municipality, health_trust) municipality, health_trust, sequence, hash
        FROM statements ORDER BY municipality, health_trust, sequence DESC
        """
    )
    return {(r["municipality"], r["health_trust"]): ChainHead(r["sequence"], r["hash"]) for r in rows}


@dataclass(frozen=True)
class RenderedItems:
    """A pair's items as statement items in canonical JSON (sorted keys, compact, UTF-8):
    the array's contents without brackets. The same bytes are hashed and published: the
    order of keys in an object is not part of the contract."""

    count: int
    canonical: bytes


# A statement item as JSON, exactly as the contract's StatementItem serialises its values
# (compact, dates as YYYY-MM-DD, strings escaped as JSON does), its keys sorted as the
# statement hash wants them. Category and status are enum values (pydantic refuses
# anything else), and dates are in ISO style (`render_settings`), so only the free text
# is escaped as a JSON string. Every item rendered is of the month closed (`rendered_pairs`
# selects by it), so its service month is that month, given once as $2.
_STATUS = (
    "CASE WHEN not_payable_reason IS NOT NULL THEN 'not_payable' "
    "WHEN amount_ore IS NOT NULL THEN 'priced' ELSE 'unrated' END"
)
# Each field's JSON as a format() pattern and the expression it formats: one call per item
# builds the object (measured: a tenth cheaper than concatenating its pieces). Every
# expression is text: format() looks up an argument's output function again whenever its
# type differs from the argument's before, five times per item with dates and numbers
# among the text. `{json}` is the function that writes a text as a JSON string
# (`_json_function`).
_FIELDS = {
    "category": ('"%s"', "category"),
    "episode_id": ("%s", "{json}(subject_id)::text"),
    "service_month": ("%s", "$2::text"),
    "first_day": ('"%s"', "first_day::text"),
    "last_day": ('"%s"', "last_day::text"),
    "days": ("%s", "quantity::text"),
    "amount_ore": ("%s", "coalesce(amount_ore::text, 'null')"),
    "status": ('"%s"', _STATUS),
    "rule": ("%s", "coalesce({json}(rule_id)::text, 'null')"),
    # Python's `not_payable_reason or note`: an empty reason gives way to the note.
    "note": ("%s", "coalesce({json}(coalesce(nullif(not_payable_reason, ''), note))::text, 'null')"),
}
# JSON_SCALAR (PostgreSQL 17 and later) writes a text as to_json does, byte for byte, but
# looks up how to once per query, where to_json does for every call (three catalog lookups):
# about 0.4 s less of the readers' CPU per million items rendered, measured. Older servers
# render with to_json.
_JSON_SCALAR_SINCE = 17


def _object(names: Sequence[str], json_function: str) -> str:
    pattern = "{" + ",".join(f'"{name}":{_FIELDS[name][0]}' for name in names) + "}"
    assert "'" not in pattern and pattern.count("%") == len(names)
    values = ", ".join(_FIELDS[name][1].replace("{json}", json_function) for name in names)
    return f"format('{pattern}', {values})"


_CANONICAL = {function: _object(sorted(_FIELDS), function) for function in ("JSON_SCALAR", "to_json")}


def _json_function(conn: asyncpg.Connection) -> str:
    return "JSON_SCALAR" if conn.get_server_version().major >= _JSON_SCALAR_SINCE else "to_json"


async def render_settings(conn: asyncpg.Connection) -> None:
    """For the rest of the transaction, before `rendered_pairs`: dates as text in ISO
    style, and the month read in statement order through ledger_items_statement_order.
    Unsure how many items a range of pairs holds, the planner would rather scan the table
    or collect the range's pages and sort it: measured, either is about twice as slow."""
    await conn.execute("SET LOCAL DateStyle = 'ISO'")
    await conn.execute("SET LOCAL enable_seqscan = off")
    await conn.execute("SET LOCAL enable_bitmapscan = off")
    await conn.execute("SET LOCAL max_parallel_workers_per_gather = 0")


async def rendered_pairs(
    conn: asyncpg.Connection, period: Month, first: Pair, last: Pair
) -> list[tuple[Pair, RenderedItems]]:
    """The month's items of the pairs from `first` to `last`, rendered as statement items in
    the statement's order (category, episode, first day; bytewise, as Python compares
    strings), the pairs in Python's order. A month's items are hundreds of megabytes of
    JSON: ask for a few megabytes of it at a time. Call `render_settings` first in the
    transaction."""
    order = 'category COLLATE "C", subject_id COLLATE "C", first_day, subject_key COLLATE "C", part'
    rows = await conn.fetch(
        f"""
        SELECT municipality COLLATE "C" AS municipality, health_trust COLLATE "C" AS health_trust,
               count(*) AS items,
               convert_to(string_agg({_CANONICAL[_json_function(conn)]}, ',' ORDER BY {order}), 'UTF8') AS canonical
        FROM ledger_items
        WHERE service_month = $1
          AND (municipality COLLATE "C", health_trust COLLATE "C") >= ($3, $4)
          AND (municipality COLLATE "C", health_trust COLLATE "C") <= ($5, $6)
        -- grouped in the order wanted, bytewise: read through ledger_items_statement_order,
        -- which holds the month's items in exactly this order, nothing is sorted
        GROUP BY 1, 2 ORDER BY 1, 2
        """,
        period.first_day,
        json.dumps(str(period)),
        *first,
        *last,
    )
    return [((r["municipality"], r["health_trust"]), RenderedItems(r["items"], r["canonical"])) for r in rows]


@dataclass(frozen=True)
class MonthSums:
    """Per pair: its lines' sums (`line_sums`), and how many items it has."""

    lines: dict[Pair, list[LedgerItem]]
    items: dict[Pair, int]


@dataclass(frozen=True)
class Municipalities:
    """A part of a month's items by municipality number, in byte order (as statements are
    issued): from `first` up to `end` (exclusive; None: unbounded). Parts that meet cover a
    month exactly once, each pair in one of them, so a month can be summed in parts on
    several connections."""

    first: str | None = None
    end: str | None = None


@dataclass(frozen=True)
class MonthSample:
    """A sample of a month's items: about how many the month has, and a municipality number
    about half of them come before (None when the sample holds none)."""

    items: int
    middle: str | None


async def sampled_month(conn: asyncpg.Connection, period: Month, pages: int) -> MonthSample:
    """`period`'s items in about `pages` of the table's blocks (8 kB each), drawn the same way
    each time: the whole table when it is no larger. Where to cut the month in two
    (`Municipalities`) for a few milliseconds, whatever the ledger's size."""
    size = await conn.fetchval("SELECT pg_relation_size('ledger_items') / current_setting('block_size')::int")
    percent = 100.0 if size <= pages else 100.0 * pages / size
    row = await conn.fetchrow(
        """
        SELECT count(*) AS items, percentile_disc(0.5) WITHIN GROUP (ORDER BY municipality COLLATE "C") AS middle
        FROM ledger_items TABLESAMPLE SYSTEM ($2) REPEATABLE (0)
        WHERE service_month = $1
        """,
        period.first_day,
        percent,
    )
    return MonthSample(round(row["items"] * 100.0 / percent), row["middle"])


async def line_sums(
    conn: asyncpg.Connection, period: Month, municipalities: Municipalities | None = None
) -> MonthSums:
    """The month's unsettled items per pair (of `municipalities`, if given), summed over
    everything that does not decide which line an item is on
    (services.domain.statements._key): one item per group, whose lines and totals are those
    of the items it sums. Exact, because it only adds integers; sums of parts of the month
    are the month's once `combined`."""
    where, args = "", []
    if municipalities is not None and municipalities.first is not None:
        args.append(municipalities.first)
        where += f' AND municipality COLLATE "C" >= ${len(args) + 3}'
    if municipalities is not None and municipalities.end is not None:
        args.append(municipalities.end)
        where += f' AND municipality COLLATE "C" < ${len(args) + 3}'
    # The planner multiplies the grouped columns' distinct values and expects hundreds of
    # thousands of groups where a month has a few per pair, so it sorted the month to group
    # them (an external merge of a million rows: 1.6 s in a ledger of three such months,
    # against 0.8 s hashed); and it read a part of a month by scanning the whole table
    # rather than the month through its index (0.74-0.83 s a half against 0.47, measured
    # with one to four months in the ledger). A month's groups are hashed in memory.
    async with postgres.planner_settings(conn, enable_sort="off", enable_seqscan="off", work_mem="64MB"):
        rows = await conn.fetch(
            f"""
        SELECT municipality, health_trust, category, payer_role, service_month, not_payable_reason,
               CASE WHEN category = ANY($2::text[]) THEN NULL ELSE unit_price_ore END AS unit_price_ore,
               rule_id,
               -- only a note that may name a mapped municipality number decides a line
               CASE WHEN strpos(note, $3) > 0 THEN note END AS note,
               sum(quantity)::bigint AS quantity, sum(amount_ore)::bigint AS amount_ore, count(*) AS items
        FROM ledger_items WHERE service_month = $1{where}
        GROUP BY municipality, health_trust, category, payer_role, service_month, not_payable_reason,
                 amount_ore IS NULL, 7, rule_id, 9
        """,
            period.first_day,
            sorted(c.value for c in INDIVIDUALLY_PRICED),
            MAPPING_PREFIX,
            *args,
        )
    found: dict[Pair, list[LedgerItem]] = {}
    counts: dict[Pair, int] = {}
    for r in rows:
        month = Month.of(r["service_month"])
        pair = (r["municipality"], r["health_trust"])
        counts[pair] = counts.get(pair, 0) + r["items"]
        found.setdefault(pair, []).append(
            LedgerItem(
                category=Category(r["category"]),
                subject_id="",
                health_trust=r["health_trust"],
                municipality=r["municipality"],
                payer_role=PayerRole(r["payer_role"]),
                service_month=month,
                first_day=month.first_day,
                last_day=month.first_day,
                quantity=r["quantity"],
                unit_price_ore=r["unit_price_ore"],
                amount_ore=r["amount_ore"],
                rule_id=r["rule_id"],
                not_payable_reason=r["not_payable_reason"],
                note=r["note"],
            )
        )
    return MonthSums(found, counts)


def combined(parts: Sequence[MonthSums]) -> MonthSums:
    """The sums of a month summed in parts. A line's group may be in several parts: it is
    then several items of the same line, which the statement adds up like any other."""
    lines: dict[Pair, list[LedgerItem]] = {}
    items: dict[Pair, int] = {}
    for part in parts:
        for pair, group in part.lines.items():
            lines.setdefault(pair, []).extend(group)
        for pair, count in part.items.items():
            items[pair] = items.get(pair, 0) + count
    return MonthSums(lines, items)


_HEADER_COLUMNS = (
    "statement_id", "period", "municipality", "health_trust", "issued_at", "sequence", "previous_hash", "hash",
)  # fmt: skip
_PART_COLUMNS = ("statement_id", "part", "bytes")
# A body is stored in parts small enough to stay in line in their rows (migration 0017).
PART_BYTES = 8000


def body_parts(statement_id: UUID, body: bytes) -> list[tuple[UUID, int, memoryview]]:
    """The rows that store `body`, in order; views into it, not copies (a month's bodies
    are hundreds of megabytes)."""
    view = memoryview(body)
    return [
        (statement_id, n, view[at : at + PART_BYTES]) for n, at in enumerate(range(0, len(body), PART_BYTES))
    ]


async def insert_statements(conn: asyncpg.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """(statement_id, period, municipality, health_trust, body, issued_at, sequence, previous_hash, hash),
    as `statements` reads them back: the statements' headers, then their bodies' parts."""
    await conn.copy_records_to_table(
        "statement_headers", columns=_HEADER_COLUMNS, records=[(*row[:4], *row[5:]) for row in rows]
    )
    await conn.copy_records_to_table(
        "statement_body_parts",
        columns=_PART_COLUMNS,
        records=[p for row in rows for p in body_parts(row[0], row[4])],
    )


async def settle_rows(
    conn: asyncpg.Connection,
    adjustment_ids: dict[UUID, list[int]],
    held: dict[UUID, list[UUID]],
    released: dict[UUID, list[UUID]],
) -> None:
    """Mark the adjustments and the dispute movements as on their statement.

    The month's items need no mark: an item is settled when its month is closed, on the
    statement of its month and pair (`statements` holds one per period and pair).
    """
    await conn.execute(
        "UPDATE adjustments a SET statement_id = s.id FROM unnest($1::bigint[], $2::uuid[]) AS s(row, id) "
        "WHERE a.id = s.row",
        *_pairs(adjustment_ids),
    )
    await conn.execute(
        "UPDATE disputes d SET held_on = s.id FROM unnest($1::uuid[], $2::uuid[]) AS s(dispute, id) "
        "WHERE d.dispute_id = s.dispute",
        *_pairs(held),
    )
    await conn.execute(
        "UPDATE disputes d SET released_on = s.id FROM unnest($1::uuid[], $2::uuid[]) AS s(dispute, id) "
        "WHERE d.dispute_id = s.dispute",
        *_pairs(released),
    )


def _pairs(by_statement: dict[UUID, list[Any]]) -> tuple[list[Any], list[UUID]]:
    rows = [(row, statement) for statement, rows in by_statement.items() for row in rows]
    return [row for row, _ in rows], [statement for _, statement in rows]
