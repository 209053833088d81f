"""Small Kafka helpers for the CLI and the demo: publish events and commands, read statements."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from contracts.v1 import topics
from contracts.v1.outbound import ClosePeriod, SettlementStatement
from services.adapters.kafka_connection import KafkaConnection
from services.adapters.kafka_log_ends import log_end_offsets
from services.adapters.stores import start_kafka_client


async def publish_events(
    kafka: KafkaConnection,
    events: Iterable[tuple[str, bytes, bytes]],
    progress: Callable[[int], None] | None = None,
) -> int:
    producer = AIOKafkaProducer(**kafka.client_options(), linger_ms=5, client_id="simulated-hospital")
    await start_kafka_client(producer, kafka)
    count = 0
    try:
        futures = []
        for topic, key, value in events:
            futures.append(await producer.send(topic, value, key=key))
            count += 1
            if progress and count % 50 == 0:
                progress(50)
        for future in futures:
            await future
        if progress:
            progress(count % 50)
    finally:
        await producer.stop()
    return count


async def send_command(kafka: KafkaConnection, payload: bytes, key: bytes) -> None:
    """One command on the command topic, acknowledged by every in-sync replica."""
    producer = AIOKafkaProducer(**kafka.client_options(), client_id="settlement-cli", acks="all")
    await start_kafka_client(producer, kafka)
    try:
        await producer.send_and_wait(topics.COMMANDS, payload, key=key)
    finally:
        await producer.stop()


async def send_close(kafka: KafkaConnection, period: str) -> ClosePeriod:
    command = ClosePeriod(type="close_period", period=period, command_id=uuid.uuid4())
    await send_command(kafka, command.model_dump_json().encode(), period.encode())
    return command


async def read_statements(kafka: KafkaConnection, *, period: str | None = None) -> list[SettlementStatement]:
    """Every statement on the topic so far (no consumer group: reads, commits nothing)."""
    return [statement for statement, _ in await read_published(kafka, period=period)]


async def read_published(
    kafka: KafkaConnection, *, period: str | None = None
) -> list[tuple[SettlementStatement, bytes]]:
    """Every statement on the topic so far, with the bytes it was published as: each copy
    once, the first, however often it was sent (a producer's retry, `settlement republish`)."""
    consumer = AIOKafkaConsumer(
        **kafka.client_options(), enable_auto_commit=False, client_id="settlement-cli"
    )
    await start_kafka_client(consumer, kafka)
    try:
        partitions = [
            TopicPartition(topics.SETTLEMENTS, p)
            for p in consumer.partitions_for_topic(topics.SETTLEMENTS) or {0}
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await log_end_offsets(kafka, partitions)  # Tansu's end_offsets() can fall short
        found: dict[tuple[uuid.UUID, str], tuple[SettlementStatement, bytes]] = {}
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    statement = SettlementStatement.model_validate(json.loads(record.value))
                    if period is None or statement.period == period:
                        found.setdefault(
                            (statement.statement_id, statement.recipient.id), (statement, record.value)
                        )
        return list(found.values())
    finally:
        await consumer.stop()
