"""A month read for its statements by other connections beside the close's own.

Summing a month's lines, rendering a million items as JSON and storing their statements
are each one PostgreSQL process's work, and on one connection they take turns. Here
reader connections, in a snapshot exported by the close's transaction (so they read
exactly the ledger it reads), sum half the month while the close's connection sums the
other half, and then render ranges of pairs while the close's connection stores the
statements already built. The pairs still come out in the order statements are issued,
and only a few ranges are held at a time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from services.adapters import postgres
from services.adapters import statement_repository as repo
from services.adapters.statement_repository import MonthSums, Municipalities, Pair, RenderedItems
from services.domain.calendar import Month

# Items per range of pairs: about 10 MB of JSON. A pair with more is a range of its own.
RANGE_ITEMS = 30_000
# Ranges rendered ahead of the one being issued, per reader.
AHEAD = 1
# Connections rendering a month beside the close's own, if its pool has room.
READERS = 2
# A month of fewer items is summed by the close's connection alone.
SPLIT_FROM_ITEMS = 20_000
# Blocks (8 kB each) of the table sampled to find where to cut a month in two.
SAMPLE_PAGES = 1_000


class RenderedOtherwise(RuntimeError):
    """The items rendered are not those counted in the same snapshot: a bug, never a
    statement."""


def pair_ranges(items: Mapping[Pair, int], size: int | None = None) -> list[tuple[Pair, Pair]]:
    """The pairs in order, cut into consecutive ranges of at least `size` items (the last
    may have fewer; `RANGE_ITEMS` unless given)."""
    size = size or RANGE_ITEMS
    ranges: list[tuple[Pair, Pair]] = []
    first: Pair | None = None
    count = 0
    for pair in sorted(items):
        first = first or pair
        count += items[pair]
        if count >= size:
            ranges.append((first, pair))
            first, count = None, 0
    if first is not None:
        ranges.append((first, max(items)))
    return ranges


def _readers(pool: asyncpg.Pool, readers: int | None) -> int:
    return max(0, min(READERS, int(pool.get_max_size()) - 1)) if readers is None else readers


@asynccontextmanager
async def _reading(pool: asyncpg.Pool, snapshot: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection from `pool` in a read-only transaction that sees `snapshot`."""
    async with pool.acquire() as reader, reader.transaction(isolation="repeatable_read", readonly=True):
        await postgres.use_snapshot(reader, snapshot)
        yield reader


async def summed_month(
    pool: asyncpg.Pool, conn: asyncpg.Connection, period: Month, *, readers: int | None = None
) -> MonthSums:
    """The line sums of `period` (`statement_repository.line_sums`) as `conn`'s transaction
    (repeatable read) sees them: the pairs of about half its items summed on `conn`, the
    others at the same time on a reader in the same snapshot, when the pool has room for one
    (`readers` as in `rendered_month`) and the month is large enough to be worth it."""
    # Cut by municipality, not by where the rows are stored: halves of the table held the
    # month's items in one half only once the ledger held other months (nearly always), and
    # each half read its half of every month.
    sample = await repo.sampled_month(conn, period, SAMPLE_PAGES) if _readers(pool, readers) >= 1 else None
    if sample is None or sample.middle is None or sample.items < SPLIT_FROM_ITEMS:
        return await repo.line_sums(conn, period)
    snapshot = await postgres.export_snapshot(conn)
    middle = sample.middle

    async def rest() -> MonthSums:
        async with _reading(pool, snapshot) as reader:
            return await repo.line_sums(reader, period, Municipalities(first=middle))

    parts = [
        asyncio.ensure_future(repo.line_sums(conn, period, Municipalities(end=middle))),
        asyncio.ensure_future(rest()),
    ]
    try:
        return repo.combined(await asyncio.gather(*parts))
    finally:
        # Should one part fail, the other is stopped and waited for: `conn` is free for the
        # transaction's rollback, the reader is back in the pool, and the caller sees the
        # failure itself (a transient one is retried as such).
        for part in parts:
            part.cancel()
        await asyncio.gather(*parts, return_exceptions=True)


async def rendered_month(
    pool: asyncpg.Pool,
    conn: asyncpg.Connection,
    period: Month,
    items: Mapping[Pair, int],
    *,
    readers: int | None = None,
) -> AsyncGenerator[tuple[Pair, RenderedItems], None]:
    """Each pair of `items` (its count of items in `period`) and its items rendered, in
    pair order; refused (`RenderedOtherwise`) unless they are exactly the items counted.

    `conn` is the close's connection, in its repeatable-read transaction, in which `items`
    were counted: with no readers it renders the ranges itself. Readers (`READERS`, as many
    as `pool` has room for beside `conn`, unless given) are taken from `pool` and see the
    ledger as `conn`'s transaction does, except what it wrote itself: it must not have
    written the month's items.
    """
    async for pair, rendered in _rendered(pool, conn, period, pair_ranges(items), _readers(pool, readers)):
        if rendered.count != items.get(pair):
            raise RenderedOtherwise(f"{pair}: {rendered.count} items rendered, {items.get(pair)} counted")
        yield pair, rendered


async def _rendered(
    pool: asyncpg.Pool,
    conn: asyncpg.Connection,
    period: Month,
    ranges: list[tuple[Pair, Pair]],
    readers: int,
) -> AsyncGenerator[tuple[Pair, RenderedItems], None]:
    if readers < 1 or len(ranges) < 2:
        await repo.render_settings(conn)
        for first, last in ranges:
            for rendered in await repo.rendered_pairs(conn, period, first, last):
                yield rendered
        return

    snapshot = await postgres.export_snapshot(conn)
    loop = asyncio.get_running_loop()
    results: list[asyncio.Future[list[tuple[Pair, RenderedItems]]]] = [loop.create_future() for _ in ranges]
    todo = iter(range(len(ranges)))
    window = asyncio.Semaphore(readers * (1 + AHEAD))  # ranges rendered and not yet issued

    async def read() -> None:
        async with _reading(pool, snapshot) as reader:
            await repo.render_settings(reader)
            while True:
                await window.acquire()
                index = next(todo, None)
                if index is None:
                    return
                results[index].set_result(await repo.rendered_pairs(reader, period, *ranges[index]))

    tasks = [asyncio.create_task(read()) for _ in range(min(readers, len(ranges)))]
    try:
        for result in results:
            while not result.done():
                running = [t for t in tasks if not t.done()]
                if not running:
                    break
                waiting: list[asyncio.Future[Any]] = [result, *running]
                await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                for task in tasks:
                    failure = task.exception() if task.done() else None
                    if failure is not None:
                        raise failure
            for rendered in result.result():
                yield rendered
            window.release()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
