"""The monitor's loop counts a poll the broker never answers as failed: a frozen broker
refuses nothing and answers nothing, and the poll would otherwise wait for ever while the
error counter stayed at 0."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from services.lagmonitor.domain import Reading, Thresholds
from services.lagmonitor.service import LagMonitor


class Frozen:
    """An offset source whose reads never return, as over a SIGSTOPped broker."""

    def __init__(self) -> None:
        self.reads = 0

    async def read(self) -> Sequence[Reading]:
        self.reads += 1
        await asyncio.Event().wait()
        return []


class Answering:
    async def read(self) -> Sequence[Reading]:
        return []


async def _run(source: Frozen | Answering, seconds: float) -> int:
    failures = 0

    def failed() -> None:
        nonlocal failures
        failures += 1

    stop = asyncio.Event()
    monitor = LagMonitor(source, Thresholds(window_seconds=300))
    task = asyncio.create_task(monitor.run(stop, 0.01, failed, poll_timeout=0.05))
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.wait_for(task, 1)
    return failures


async def test_a_poll_the_broker_never_answers_counts_as_failed_and_the_next_is_tried() -> None:
    source = Frozen()

    failures = await _run(source, 0.5)

    assert failures >= 3  # each timed-out poll, not one wait for ever
    assert source.reads == failures or source.reads == failures + 1  # the last may be cut by stop


async def test_polls_that_answer_count_no_failure() -> None:
    assert await _run(Answering(), 0.2) == 0
