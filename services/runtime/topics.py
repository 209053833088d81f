"""Create the contract's topics (idempotent)."""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from contracts.v1 import topics
from services.adapters.kafka_connection import KafkaConnection
from services.adapters.stores import Unreachable, broker_named

INBOUND_PARTITIONS = 6
# A statement carries every item of a pair's month, about 330 bytes each: a large
# municipality's month (Oslo: on the order of 100,000 items) is tens of megabytes of JSON,
# far over Kafka's default of 1 MB a message. Published compressed (gzip), and the
# statement topic and the producers allow this much (KAFKA_MAX_MESSAGE_BYTES).
MAX_MESSAGE_BYTES = 64 * 2**20
# The least the services take: Kafka's own default, under which no statement of size would fit.
SMALLEST_MAX_MESSAGE_BYTES = 2**20


async def ensure_topics(
    kafka: KafkaConnection,
    *,
    inbound_partitions: int = INBOUND_PARTITIONS,
    max_message_bytes: int = MAX_MESSAGE_BYTES,
) -> list[str]:
    """The contract's topics that did not exist, created (an existing topic is left as it
    is, its `max.message.bytes` too); a broker that is away is `Unreachable`."""
    admin = AIOKafkaAdminClient(client_id="samhandling-admin", **kafka.client_options())
    try:
        with broker_named(kafka):
            await admin.start()
    except Unreachable:
        await admin.close()  # or it warns of itself as unclosed when collected
        raise
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(
                name,
                inbound_partitions if name in topics.INBOUND else 1,
                1,
                topic_configs={"max.message.bytes": str(max_message_bytes)}
                if name == topics.SETTLEMENTS
                else {},
            )
            for name in topics.ALL
            if name not in existing
        ]
        if wanted:
            try:
                await admin.create_topics(wanted)
            except TopicAlreadyExistsError:
                pass  # another process created them first
        return [topic.name for topic in wanted]
    finally:
        await admin.close()
