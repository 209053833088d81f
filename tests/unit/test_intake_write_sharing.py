"""How intake's writes share the pool (services/intake/service.py, `_Writes`): several
partitions' writes at once up to a limit, and a chunk holding records keyed otherwise
than by their subject written alone, so no two transactions rate one subject at once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from services.intake.service import IngestResult, _Writes


class Recorder:
    def __init__(self) -> None:
        self.running: set[str] = set()
        self.seen_together: list[frozenset[str]] = []
        self.release: dict[str, asyncio.Event] = {}

    def write(self, name: str) -> Callable[[], Awaitable[IngestResult]]:
        self.release[name] = asyncio.Event()

        async def run() -> IngestResult:
            self.running.add(name)
            self.seen_together.append(frozenset(self.running))
            try:
                await self.release[name].wait()
            finally:
                self.running.discard(name)
            return IngestResult(accepted=1)

        return run


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def start(writes: _Writes, rec: Recorder, name: str, *, alone: bool) -> asyncio.Task[IngestResult]:
    """A write asking for its turn, and the loop let run until it has it or waits."""
    task = asyncio.create_task(writes.run(rec.write(name), alone=alone))
    await settle()
    return task


async def running_alone_behind(
    writes: _Writes, rec: Recorder
) -> tuple[asyncio.Task[IngestResult], asyncio.Task[IngestResult], asyncio.Task[IngestResult]]:
    """A write running, one asking to run alone, and one asking after it."""
    running = await start(writes, rec, "running", alone=False)
    alone = await start(writes, rec, "alone", alone=True)
    behind = await start(writes, rec, "behind", alone=False)
    assert rec.running == {"running"}, "the alone write waits, and the one after it waits behind it"
    return running, alone, behind


async def test_no_more_than_the_limit_write_at_once() -> None:
    writes, rec = _Writes(2), Recorder()
    tasks = [asyncio.create_task(writes.run(rec.write(n), alone=False)) for n in "abcd"]
    await settle()
    assert rec.running == {"a", "b"}
    rec.release["a"].set()
    await settle()
    assert rec.running == {"b", "c"}, "the next in line takes the turn given back"
    rec.release["b"].set()
    rec.release["c"].set()
    await settle()
    rec.release["d"].set()
    results = await asyncio.gather(*tasks)
    assert [r.accepted for r in results] == [1, 1, 1, 1]
    assert max(len(together) for together in rec.seen_together) == 2


async def test_a_write_alone_waits_for_those_running_and_holds_back_those_after_it() -> None:
    writes, rec = _Writes(3), Recorder()
    first, alone, later = await running_alone_behind(writes, rec)

    rec.release["running"].set()
    await settle()
    assert rec.running == {"alone"}

    rec.release["alone"].set()
    await settle()
    assert rec.running == {"behind"}
    rec.release["behind"].set()
    await asyncio.gather(first, alone, later)
    assert frozenset({"alone"}) in rec.seen_together
    assert all(len(together) == 1 for together in rec.seen_together if "alone" in together)


async def test_a_failed_write_gives_its_turn_back() -> None:
    writes = _Writes(1)

    async def failing() -> IngestResult:
        raise RuntimeError("the database went away")

    with pytest.raises(RuntimeError):
        await writes.run(failing, alone=True)
    rec = Recorder()
    task = await start(writes, rec, "next", alone=False)
    assert rec.running == {"next"}
    rec.release["next"].set()
    assert (await task).accepted == 1


async def test_a_cancelled_wait_does_not_hold_back_the_writes_after_it() -> None:
    writes, rec = _Writes(2), Recorder()
    running, alone, behind = await running_alone_behind(writes, rec)
    alone.cancel()
    await asyncio.gather(alone, return_exceptions=True)
    await settle()
    assert rec.running == {"running", "behind"}
    for name in ("running", "behind"):
        rec.release[name].set()
    await asyncio.gather(running, behind)
