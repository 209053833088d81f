"""A close's month is rendered by reader connections in the close's snapshot, a range of
pairs each, while the close writes: what they give must be exactly what the close's own
connection gives, in the same order, and only what the close counted."""

from __future__ import annotations

from contextlib import aclosing
from typing import Any

import asyncpg
import pytest

from services.adapters import postgres
from services.adapters import statement_repository as statements_repo
from services.adapters.statement_repository import Pair, RenderedItems
from services.domain.calendar import Month
from services.domain.statements import settle
from services.settlement import month_rendering
from services.settlement.month_rendering import RenderedOtherwise, rendered_month
from tests.integration.ledger_harness import Ledger
from tests.integration.test_statement_encoding import ACT, AWKWARD, COLUMNS, DR, PERIOD, row

pytestmark = pytest.mark.integration

MORE = [
    row(kind, f"X-{m}-{n}", 1 + n % 20, 1 + n % 5, 1_000 + n, municipality=m, trust=t)
    for n, (m, t) in enumerate(
        (m, t) for m in ("0301", "1103", "4601", "5001") for t in ("983974724", "974749025")
    )
    for kind in (ACT, DR)
]


async def render(
    ledger: Ledger, conn: asyncpg.Connection, items: dict[Pair, int], readers: int
) -> list[tuple[Pair, RenderedItems]]:
    async with aclosing(rendered_month(ledger.pool, conn, PERIOD, items, readers=readers)) as month:
        return [rendered async for rendered in month]


async def readers_gave_their_connections_back(ledger: Ledger) -> None:
    """The whole pool can be taken again (each acquire fails after 5 s otherwise)."""
    taken = [await ledger.pool.acquire(timeout=5) for _ in range(ledger.pool.get_max_size())]
    for conn in taken:
        await ledger.pool.release(conn)


@pytest.fixture
async def seeded(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> Ledger:
    """The ledger with items of ten pairs, rendered a few items per range."""
    monkeypatch.setattr(month_rendering, "RANGE_ITEMS", 3)
    async with ledger.pool.acquire() as conn:
        await conn.copy_records_to_table("ledger_items", records=AWKWARD + MORE, columns=COLUMNS)
    return ledger


async def test_readers_render_what_the_close_connection_would(seeded: Ledger) -> None:
    async with seeded.pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
        counts = (await statements_repo.line_sums(conn, PERIOD)).items
        assert len(month_rendering.pair_ranges(counts)) > 2, "several ranges, or no readers are used"
        everything = sorted(counts)
        alone = await statements_repo.rendered_pairs(conn, PERIOD, everything[0], everything[-1])
        by_readers = await render(seeded, conn, counts, readers=2)
        by_itself = await render(seeded, conn, counts, readers=0)
    assert by_readers == by_itself == alone
    assert [pair for pair, _ in by_readers] == everything
    assert sum(items.count for _, items in by_readers) == len(AWKWARD) + len(MORE)


async def test_readers_see_the_close_snapshot_not_what_was_committed_since(seeded: Ledger) -> None:
    async with seeded.pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
        counts = (await statements_repo.line_sums(conn, PERIOD)).items
        async with seeded.pool.acquire() as other:  # a writer the close would have locked out
            late = row(ACT, "LATE-1", 3, 1, 77, municipality="0301", trust="983974724")
            await other.copy_records_to_table("ledger_items", records=[late], columns=COLUMNS)
        rendered = dict(await render(seeded, conn, counts, readers=2))
    assert b"LATE-1" not in rendered[("0301", "983974724")].canonical
    assert {pair: items.count for pair, items in rendered.items()} == counts


@pytest.mark.parametrize("readers", [0, 2])
async def test_items_other_than_counted_are_refused(seeded: Ledger, readers: int) -> None:
    async with seeded.pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
        counts = (await statements_repo.line_sums(conn, PERIOD)).items
        counts[("1103", "974749025")] += 1
        with pytest.raises(RenderedOtherwise, match="1103"):
            await render(seeded, conn, counts, readers=readers)


async def test_a_reader_that_fails_fails_the_rendering(
    seeded: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(conn: asyncpg.Connection, snapshot: str) -> None:
        raise asyncpg.InvalidParameterValueError("no such snapshot")

    monkeypatch.setattr(postgres, "use_snapshot", broken)
    async with seeded.pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
        counts = (await statements_repo.line_sums(conn, PERIOD)).items
        with pytest.raises(asyncpg.InvalidParameterValueError):
            await render(seeded, conn, counts, readers=2)
    await readers_gave_their_connections_back(seeded)


# A month's items over pairs of eight municipalities, stored after as many items of the
# month before: as in a ledger of many months, the month's rows are in one part of the table.
MUNICIPALITIES = ("0301", "1103", "1508", "3201", "3301", "4204", "4601", "5001")
MANY = [
    row(kind, f"M-{n}", 1 + n % 20, 1 + n % 5, 1_000 + n % 7, municipality=m, trust=t, rule=f"rule.{n % 3}")
    for n in range(1_200)
    for kind, m, t in [((ACT, DR)[n % 2], MUNICIPALITIES[n % 8], ("983974724", "974749025")[n % 3 % 2])]
]


def _month_before(r: tuple[Any, ...]) -> tuple[Any, ...]:
    key, month, part, *middle, first, last = r[:10]
    before = [d.replace(month=d.month - 1) for d in (month, first, last)]
    return (key, before[0], part, *middle, before[1], before[2], *r[10:])


MONTH_BEFORE = [_month_before(r) for r in MANY]


async def test_a_month_summed_in_halves_is_the_month_summed_whole_each_half_about_half_of_it(
    seeded: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    summed: list[int] = []
    line_sums = statements_repo.line_sums

    async def counted(*args: Any, **kwargs: Any) -> statements_repo.MonthSums:
        sums = await line_sums(*args, **kwargs)
        summed.append(sum(sums.items.values()))
        return sums

    async with seeded.pool.acquire() as conn:
        await conn.copy_records_to_table("ledger_items", records=MONTH_BEFORE, columns=COLUMNS)
        await conn.copy_records_to_table("ledger_items", records=MANY, columns=COLUMNS)
    async with seeded.pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
        whole = await statements_repo.line_sums(conn, PERIOD)
        monkeypatch.setattr(month_rendering, "SPLIT_FROM_ITEMS", 1_000)
        monkeypatch.setattr(statements_repo, "line_sums", counted)
        in_halves = await month_rendering.summed_month(seeded.pool, conn, PERIOD, readers=1)
        # The planner's settings are changed for the sums alone: the close's transaction goes on.
        assert [await conn.fetchval(f"SHOW {name}") for name in ("enable_sort", "enable_seqscan")] == [
            "on",
            "on",
        ]

    month = len(AWKWARD) + len(MORE) + len(MANY)
    assert sum(whole.items.values()) == month
    assert len(summed) == 2 and sum(summed) == month
    # Halves of the table held the month in one of them: one connection summed it all.
    assert all(0.3 * month < half < 0.7 * month for half in summed), summed
    assert in_halves.items == whole.items
    for pair, lines in whole.lines.items():
        # The statement's lines and totals, whichever way its month was summed.
        assert settle(in_halves.lines[pair]) == settle(lines), pair


async def test_a_month_too_small_or_not_in_the_table_is_summed_whole(
    seeded: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    parts: list[object] = []
    line_sums = statements_repo.line_sums

    async def counted(conn: asyncpg.Connection, period: Month, *more: Any) -> statements_repo.MonthSums:
        parts.append(more)
        return await line_sums(conn, period, *more)

    monkeypatch.setattr(statements_repo, "line_sums", counted)
    monkeypatch.setattr(month_rendering, "SPLIT_FROM_ITEMS", len(AWKWARD) + len(MORE) + 1)
    async with seeded.pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
        small = await month_rendering.summed_month(seeded.pool, conn, PERIOD, readers=1)
        monkeypatch.setattr(month_rendering, "SPLIT_FROM_ITEMS", 0)
        empty = await month_rendering.summed_month(seeded.pool, conn, Month(2019, 1), readers=1)

    assert parts == [(), ()]
    assert sum(small.items.values()) == len(AWKWARD) + len(MORE) and empty.items == {}


async def test_a_reader_that_fails_fails_the_sums(seeded: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(conn: asyncpg.Connection, snapshot: str) -> None:
        raise asyncpg.InvalidParameterValueError("no such snapshot")

    monkeypatch.setattr(postgres, "use_snapshot", broken)
    monkeypatch.setattr(month_rendering, "SPLIT_FROM_ITEMS", 0)
    async with seeded.pool.acquire() as conn:
        with pytest.raises(asyncpg.InvalidParameterValueError):
            async with conn.transaction(isolation="repeatable_read"):
                await month_rendering.summed_month(seeded.pool, conn, PERIOD, readers=1)
        assert await conn.fetchval("SELECT count(*) FROM ledger_items") == len(AWKWARD) + len(MORE)
    await readers_gave_their_connections_back(seeded)
