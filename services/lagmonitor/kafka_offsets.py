"""Reads what the status rules need from Kafka: per partition of each group, the committed
offset, the log-end offset and the timestamp of the oldest unconsumed message.

Only calls that both Apache Kafka and the embedded Tansu broker answer: committed offsets
through a consumer's `committed()` (Tansu cannot decode the admin client's
`list_consumer_group_offsets`), `beginning_offsets`, and plain fetches (the log-end
offsets come from `kafka_log_ends`: Tansu's `end_offsets` alone can fall short).
Nothing here joins a group or commits: the per-group clients never subscribe, and the
timestamp reader has no group at all, so the monitor cannot disturb what it watches.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition

from services.adapters.kafka_connection import KafkaConnection
from services.adapters.kafka_log_ends import log_end_offsets
from services.adapters.stores import start_kafka_client
from services.lagmonitor.domain import PartitionKey, Reading, Sample

log = logging.getLogger(__name__)
_FETCH_TIMEOUT_MS = 2000


class KafkaOffsets:
    """Created and started at start-up; one committed-offset client per watched group."""

    def __init__(self, kafka: KafkaConnection, groups: Mapping[str, Sequence[str]]) -> None:
        self._kafka = kafka
        self._groups = {group: tuple(topics) for group, topics in groups.items()}
        self._offsets: dict[str, AIOKafkaConsumer] = {}
        self._reader: AIOKafkaConsumer | None = None
        # (topic, partition, offset) -> the record's timestamp: a stopped consumer's oldest
        # unconsumed message does not change, so it is fetched once, not on every poll.
        self._timestamps: dict[tuple[str, int, int], float] = {}

    async def start(self) -> None:
        """The clients, started; a broker that is away is `Unreachable`, and whatever had
        started is stopped again."""
        common = {**self._kafka.client_options(), "enable_auto_commit": False}
        try:
            reader = AIOKafkaConsumer(
                client_id="samhandling-lagmonitor",
                # An offset already deleted by retention lands on the oldest message still there.
                auto_offset_reset="earliest",
                max_partition_fetch_bytes=64 * 1024,
                **common,
            )
            await start_kafka_client(reader, self._kafka)
            self._reader = reader
            for group in self._groups:
                client = AIOKafkaConsumer(group_id=group, client_id="samhandling-lagmonitor", **common)
                await start_kafka_client(client, self._kafka)
                self._offsets[group] = client
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        for client in [*self._offsets.values(), self._reader]:
            if client is not None:
                await client.stop()
        self._offsets.clear()
        self._reader = None

    async def read(self) -> list[Reading]:
        reader = self._reader
        assert reader is not None, "KafkaOffsets used before start()"
        # Asked afresh each poll, for all topics: the client's own cache will not do. It
        # holds only the topics the client tracks (assigning the reader a partition for a
        # timestamp narrowed it to that topic, and every other group then read 0 partitions
        # and OK, in the very backlog it was watching for), and a client that tracks none
        # is bootstrapped with an empty topic list, which Apache Kafka answers with no
        # topics at all. aiokafka's `topics()` makes this request and keeps only the names.
        cluster = await reader._client.fetch_all_metadata()
        partitions_of = {
            group: [
                TopicPartition(topic, p)
                for topic in topics
                for p in sorted(cluster.partitions_for_topic(topic) or ())
            ]
            for group, topics in self._groups.items()
        }
        # Every watched partition's end in one go (one fetch each: see kafka_log_ends).
        ends = await log_end_offsets(
            self._kafka, sorted({tp for tps in partitions_of.values() for tp in tps})
        )
        return [
            Reading(group, await self._read_group(group, tps, ends)) for group, tps in partitions_of.items()
        ]

    async def _read_group(
        self, group: str, partitions: list[TopicPartition], ends: dict[TopicPartition, int]
    ) -> dict[PartitionKey, Sample]:
        reader = self._reader
        assert reader is not None
        if not partitions:
            return {}
        client = self._offsets[group]
        committed = dict(
            zip(partitions, await asyncio.gather(*(client.committed(tp) for tp in partitions)), strict=True)
        )
        starts = await reader.beginning_offsets(partitions)
        now = time.time()
        samples = {}
        for tp in partitions:
            # Never committed: the group will start at the log start (auto_offset_reset=earliest
            # in every service), so everything still in the log is waiting for it.
            position = max(committed[tp] if committed[tp] is not None else 0, starts[tp])
            lag = max(0, ends[tp] - position)
            oldest = await self._timestamp(tp, position) if lag else None
            samples[PartitionKey(tp.topic, tp.partition)] = Sample(
                at=now, committed=committed[tp], log_end=ends[tp], lag=lag, oldest_unconsumed_at=oldest
            )
        return samples

    async def _timestamp(self, tp: TopicPartition, offset: int) -> float | None:
        key = (tp.topic, tp.partition, offset)
        if key in self._timestamps:
            return self._timestamps[key]
        found = await self._fetch_timestamp(tp, offset)
        if found is not None:  # a fetch that timed out is tried again on the next poll
            if len(self._timestamps) > 10_000:
                self._timestamps.clear()
            self._timestamps[key] = found
        return found

    async def _fetch_timestamp(self, tp: TopicPartition, offset: int) -> float | None:
        reader = self._reader
        assert reader is not None
        reader.assign([tp])
        reader.seek(tp, offset)
        try:
            batch = await reader.getmany(tp, timeout_ms=_FETCH_TIMEOUT_MS, max_records=1)
        finally:
            reader.pause(tp)  # no background prefetching between polls
        records = batch.get(tp, [])
        if not records or records[0].timestamp is None or records[0].timestamp < 0:
            log.debug("no timestamp for %s at %d", tp, offset)
            return None
        return float(records[0].timestamp) / 1000.0
