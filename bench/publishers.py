"""The benchmark's load: hospital systems publishing as fast as one producer can.

In operation the producers run on the hospitals' machines; here they share the two cores
with the pipeline being timed, so the CPU they spend is taken from it. librdkafka (the
`confluent-kafka` package, what many integration teams use) spends about 3 µs of CPU per
message on this machine, aiokafka about 20-40 µs; the benchmark uses librdkafka when it is
installed (`pip install -e '.[test]'`) and says which one it used.
"""

from __future__ import annotations

import asyncio
import importlib.util
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

import typer
from aiokafka import AIOKafkaProducer, TopicPartition

Message = tuple[str, bytes, bytes]  # topic, key, value


class Producer(StrEnum):
    LIBRDKAFKA = "librdkafka"
    AIOKAFKA = "aiokafka"


@dataclass(frozen=True)
class Sent:
    seconds: float
    ends: dict[TopicPartition, int]  # each partition written to: the offset after its last record


# The command-line option both benchmarks take for it.
ProducerOption = Annotated[
    Producer | None,
    typer.Option(help="The load's producer (default: librdkafka when installed, else aiokafka)"),
]


def default_producer() -> Producer:
    return (
        Producer.LIBRDKAFKA if importlib.util.find_spec("confluent_kafka") is not None else Producer.AIOKAFKA
    )


def _ends(written: list[tuple[str, int, int]]) -> dict[TopicPartition, int]:
    ends: dict[TopicPartition, int] = {}
    for topic, partition, offset in written:
        tp = TopicPartition(topic, partition)
        ends[tp] = max(ends.get(tp, 0), offset + 1)
    return ends


async def publish(bootstrap: str, messages: list[Message], producer: Producer = Producer.AIOKAFKA) -> Sent:
    """Every message, acknowledged by the broker; how long it took and where each partition ends."""
    if producer == Producer.LIBRDKAFKA:
        # librdkafka's calls block; a thread keeps the event loop free to sample meanwhile.
        return await asyncio.to_thread(_publish_librdkafka, bootstrap, messages)
    return await _publish_aiokafka(bootstrap, messages)


async def _publish_aiokafka(bootstrap: str, messages: list[Message]) -> Sent:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_batch_size=262_144, acks=1)
    await producer.start()
    started = time.perf_counter()
    try:
        futures = [await producer.send(topic, value, key=key) for topic, key, value in messages]
        written = await asyncio.gather(*futures)
    finally:
        await producer.stop()
    seconds = time.perf_counter() - started
    return Sent(seconds, _ends([(r.topic, r.partition, r.offset) for r in written]))


def _publish_librdkafka(bootstrap: str, messages: list[Message]) -> Sent:
    from confluent_kafka import KafkaError, Producer

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": False,  # Tansu refuses the idempotent producer (infra.md)
            "linger.ms": 5,
            "batch.size": 262_144,
            "acks": 1,
            "queue.buffering.max.messages": max(100_000, len(messages)),
            # The Java clients' (and aiokafka's) partitioner: a key lands where theirs would.
            "partitioner": "murmur2_random",
        }
    )
    written: list[tuple[str, int, int]] = []
    errors: list[KafkaError] = []

    def delivered(error: KafkaError | None, message: Any) -> None:
        if error is not None:
            errors.append(error)
        else:
            written.append((message.topic(), message.partition(), message.offset()))

    started = time.perf_counter()
    for topic, key, value in messages:
        producer.produce(topic, value, key, on_delivery=delivered)
        producer.poll(0)
    left = producer.flush(120)
    seconds = time.perf_counter() - started
    if left or errors:
        raise RuntimeError(f"librdkafka did not deliver {left + len(errors)} messages: {errors[:3]}")
    return Sent(seconds, _ends(written))
