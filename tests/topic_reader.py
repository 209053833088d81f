"""Read a whole topic as it stands, without a consumer group: what the fault scenarios and
the integration tests check the published messages with. (aiokafka: with Tansu, librdkafka's
watermark query reported fewer messages than the partition held.)"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass


@dataclass(frozen=True)
class Raw:
    key: bytes | None
    value: bytes
    partition: int
    offset: int


def read_raw(bootstrap: str, topic: str) -> list[Raw]:
    """Everything on `topic` so far, in partition order."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from services.adapters.kafka_connection import KafkaConnection
    from services.adapters.kafka_log_ends import log_end_offsets

    async def run() -> list[Raw]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, max_partition_fetch_bytes=4_000_000
        )
        await consumer.start()
        try:
            partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or {0}]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            ends = await log_end_offsets(
                KafkaConnection(bootstrap), partitions
            )  # Tansu's end_offsets() can fall short
            out: list[Raw] = []
            while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    out.extend(Raw(r.key, r.value, r.partition, r.offset) for r in records)
            return out
        finally:
            await consumer.stop()

    return asyncio.run(run())
