"""Has intake processed every event the broker had received at some moment?

The settlement service asks before it closes a month, so that no event already in flight
is left out of it; the benchmark asks to learn when a run's last event is in the ledger
without counting the ledger over and over. Intake commits a record's offset only after
the transaction that recorded it, so a committed offset at the end means processed.
Read with group-less consumers: `committed()` for each intake group (the one offset call
that works on both Apache Kafka and Tansu), and each partition's end from
`kafka_log_ends` (Tansu's `end_offsets()` alone can fall short by most of a batch).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from types import TracebackType

from aiokafka import AIOKafkaConsumer, TopicPartition

from services.adapters.kafka_connection import KafkaConnection
from services.adapters.kafka_log_ends import log_end_offsets


class IntakeProgress:
    """One reader per intake group, opened once and asked as often as needed."""

    def __init__(self, kafka: KafkaConnection, groups_by_topic: Mapping[str, str]) -> None:
        self._kafka = kafka
        self._groups = dict(groups_by_topic)
        self._probe: AIOKafkaConsumer | None = None
        self._readers: dict[str, AIOKafkaConsumer] = {}

    async def __aenter__(self) -> IntakeProgress:
        try:
            self._probe = AIOKafkaConsumer(**self._kafka.client_options(), enable_auto_commit=False)
            await self._probe.start()
            for topic, group in self._groups.items():
                reader = AIOKafkaConsumer(
                    **self._kafka.client_options(), group_id=group, enable_auto_commit=False
                )
                await reader.start()
                self._readers[topic] = reader
        except BaseException:
            await self._close()
            raise
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self._close()

    async def _close(self) -> None:
        for consumer in [*self._readers.values(), self._probe]:
            if consumer is not None:
                with contextlib.suppress(Exception):
                    await consumer.stop()
        self._readers.clear()
        self._probe = None

    async def ends(self) -> dict[TopicPartition, int]:
        """The end of every partition of the intake topics now: what the broker has received."""
        assert self._probe is not None, "used outside `async with`"
        partitions = [
            TopicPartition(topic, p)
            for topic in self._groups
            for p in sorted(
                self._probe.partitions_for_topic(topic) or (await _partitions(self._probe, topic))
            )
        ]
        return await log_end_offsets(self._kafka, partitions)

    async def unprocessed(self, ends: Mapping[TopicPartition, int]) -> int:
        """How many of the records up to `ends` the intake groups have not committed yet."""
        return sum((await self.behind(ends)).values())

    async def behind(self, ends: Mapping[TopicPartition, int]) -> dict[TopicPartition, int]:
        """Per partition, how many of the records up to `ends` are not committed yet."""
        partitions = list(ends)
        committed = await asyncio.gather(*(self._readers[tp.topic].committed(tp) for tp in partitions))
        return {
            tp: max(0, ends[tp] - (offset or 0)) for tp, offset in zip(partitions, committed, strict=True)
        }


async def wait_for_intake(
    kafka: KafkaConnection,
    groups_by_topic: Mapping[str, str],
    timeout_seconds: float,
    poll_seconds: float = 0.5,
) -> int:
    """Wait until intake has processed everything received so far; returns what is left
    unprocessed when `timeout_seconds` ran out (0: caught up)."""
    async with IntakeProgress(kafka, groups_by_topic) as progress:
        ends = await progress.ends()
        deadline = time.monotonic() + timeout_seconds
        while True:
            left = await progress.unprocessed(ends)
            if left == 0 or time.monotonic() >= deadline:
                return left
            await asyncio.sleep(poll_seconds)


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()  # the probe has no subscription to learn them from
    return consumer.partitions_for_topic(topic) or set()
