"""Has intake processed every event the broker had received when a close began?

The settlement service asks before it closes a month, so that no event already in flight
is left out of it. Read with group-less consumers: `committed()` for each intake group (the
one offset call that works on both Apache Kafka and Tansu) and `end_offsets()`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition


async def unprocessed(
    bootstrap_servers: str, groups_by_topic: Mapping[str, str], ends: Mapping[TopicPartition, int]
) -> int:
    """How many of the records up to `ends` the intake groups have not committed yet."""
    behind = 0
    for topic, group in groups_by_topic.items():
        reader = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers, group_id=group, enable_auto_commit=False
        )
        await reader.start()
        try:
            for tp, end in ends.items():
                if tp.topic == topic:
                    committed = await reader.committed(tp)
                    behind += max(0, end - (committed or 0))
        finally:
            await reader.stop()
    return behind


async def wait_for_intake(
    bootstrap_servers: str,
    groups_by_topic: Mapping[str, str],
    timeout_seconds: float,
    poll_seconds: float = 0.5,
) -> int:
    """Wait until intake has processed everything received so far; returns what is left
    unprocessed when `timeout_seconds` ran out (0: caught up)."""
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False)
    await probe.start()
    try:
        partitions = [
            TopicPartition(topic, p)
            for topic in groups_by_topic
            for p in sorted(probe.partitions_for_topic(topic) or (await _partitions(probe, topic)))
        ]
        ends = await probe.end_offsets(partitions) if partitions else {}
    finally:
        await probe.stop()
    deadline = time.monotonic() + timeout_seconds
    while True:
        left = await unprocessed(bootstrap_servers, groups_by_topic, ends)
        if left == 0 or time.monotonic() >= deadline:
            return left
        await asyncio.sleep(poll_seconds)


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()  # the probe has no subscription to learn them from
    return consumer.partitions_for_topic(topic) or set()
