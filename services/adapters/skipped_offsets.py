"""A consumer that also commits the offsets it moves past without giving a record.

A producer writing in Kafka transactions (an exactly-once pipeline, an outbox relay) ends
each transaction with a marker: a control record with an offset of its own that no consumer
is given, and with `read_committed` the records of an aborted transaction are passed over
the same way. aiokafka moves the consumer's position past them, but the services commit
only when a handler has handled records, so a partition whose last records were such stayed
behind its end for good: every month close refused ("intake has 1 received events not
processed yet") and the lag monitor saw a partition that never commits (STOP, a page).

So when a poll gives nothing (`getmany`, batch subscribers), or a wait for the next record
has lasted a second (`getone`, the others), the positions are committed if they moved since
the last such commit. That is safe under FastStream's consume loop with commits after
handling: it polls again only once the records it was given have been handled and
committed, or rewound by a nack, so every offset before a position is handled or is one no
consumer is given. (A `getone` that times out has taken no record: its one wait is for a
fetch, and a record found is returned without another; `asyncio.wait_for` returns a result
that came with the timeout.)
(Not for consumers that commit on their own, which commit their positions anyway, nor for
those of no group.)
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

log = logging.getLogger(__name__)

# A position not known at once is one aiokafka is still resetting: asked at the next poll.
_POSITION_WAIT_SECONDS = 1.0
# How long `getone` waits for a record before it looks for positions to commit.
IDLE_COMMIT_SECONDS = 1.0


class ConsumerCommittingSkippedOffsets(AIOKafkaConsumer):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Auto-commit commits the positions anyway; with no group there is nothing to commit.
        self._commits_here = not kwargs.get("enable_auto_commit", True) and kwargs.get("group_id") is not None
        self._positions_seen: dict[TopicPartition, int] = {}

    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list[Any]]:
        records: dict[TopicPartition, list[Any]] = await super().getmany(
            *partitions, timeout_ms=timeout_ms, max_records=max_records
        )
        if not records and self._commits_here:
            await self._commit_moved_positions()
        return records

    async def getone(self, *partitions: TopicPartition) -> Any:
        if not self._commits_here:
            return await super().getone(*partitions)
        while True:
            try:
                return await asyncio.wait_for(super().getone(*partitions), IDLE_COMMIT_SECONDS)
            except TimeoutError:
                await self._commit_moved_positions()

    async def _commit_moved_positions(self) -> None:
        positions: dict[TopicPartition, int] = {}
        for tp in self.assignment():
            try:
                positions[tp] = await asyncio.wait_for(self.position(tp), _POSITION_WAIT_SECONDS)
            except (TimeoutError, KafkaError, AssertionError):  # unassigned meanwhile, or resetting
                continue
        moved = {tp: p for tp, p in positions.items() if self._positions_seen.get(tp) != p}
        if not moved:
            return
        try:
            await self.commit(moved)
        except KafkaError as exc:  # a rebalance under way, the coordinator away: next poll
            log.debug("commit of positions past skipped records deferred: %s", exc)
            return
        self._positions_seen = positions


def commit_skipped_offsets(builder: Any) -> Any:
    """FastStream's consumer builder (a `partial` of `AIOKafkaConsumer`), making this
    consumer instead; fails if FastStream no longer builds its consumers so."""
    if not (
        isinstance(builder, partial) and builder.func in (AIOKafkaConsumer, ConsumerCommittingSkippedOffsets)
    ):
        raise RuntimeError(
            "FastStream no longer builds consumers as partial(AIOKafkaConsumer): see skipped_offsets.py"
        )
    return partial(ConsumerCommittingSkippedOffsets, *builder.args, **builder.keywords)
