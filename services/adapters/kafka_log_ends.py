"""The log-end offset of each partition: the offset after its last record.

A consumer's `end_offsets()` (ListOffsets, latest) is the usual way to ask. Tansu 0.6.0, the
embedded broker, answers it with the *first* offset of the partition's last record batch
plus one, not its last offset plus one (measured: a batch of records 0-6 gives 1, a second
batch of 7-11 gives 8); a producer sending faster than one record per request writes
batches of many records, so the answer can fall short by nearly a batch per partition.
The high watermark in a fetch response is right on Tansu and is the same number on Apache
Kafka, so one fetch from just below the reported end settles it on both: the larger of
the two is the end.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition

from services.adapters.kafka_connection import KafkaConnection


class LogEndUnknown(RuntimeError):
    """The broker did not answer a fetch for every partition in time."""


async def log_end_offsets(
    kafka: KafkaConnection, partitions: Sequence[TopicPartition], *, timeout_seconds: float = 10.0
) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(
        **kafka.client_options(),
        enable_auto_commit=False,
        fetch_max_wait_ms=10,  # an empty fetch (Apache Kafka, at the end) need not wait
        auto_offset_reset="latest",  # an offset already deleted: any position answers as well
    )
    await consumer.start()
    try:
        ends = dict(await consumer.end_offsets(list(partitions))) if partitions else {}
        pending = {tp for tp, end in ends.items() if end > 0}  # 0: nothing was ever written
        if not pending:
            return ends
        consumer.assign(sorted(pending))
        for tp in pending:
            consumer.seek(tp, ends[tp] - 1)
        deadline = time.monotonic() + timeout_seconds
        while pending:
            if time.monotonic() > deadline:
                raise LogEndUnknown(f"no fetch answered in {timeout_seconds} s for {sorted(pending)}")
            await consumer.getmany(*pending, timeout_ms=100, max_records=1)
            for tp in list(pending):
                highwater = consumer.highwater(tp)
                if highwater is not None:
                    ends[tp] = max(ends[tp], highwater)
                    pending.discard(tp)
        return ends
    finally:
        await consumer.stop()
