"""Create the contract's topics (idempotent)."""

from __future__ import annotations

from dataclasses import dataclass

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


# Copies of each partition on a cluster of three brokers or more; two of them must have a
# write before the broker acknowledges it to the services (`acks=all`), so an acknowledged
# statement or event survives the loss of a broker.
REPLICAS = 3
IN_SYNC_REPLICAS = 2


@dataclass(frozen=True)
class TopicsCreated:
    names: list[str]  # the contract's topics that did not exist
    replication_factor: int


def replication(brokers: int) -> tuple[int, dict[str, str]]:
    """The replication factor and topic settings for a cluster of `brokers`: three copies
    where there are three brokers or more, else one on each (a development broker: one)."""
    factor = min(REPLICAS, max(1, brokers))
    return factor, ({"min.insync.replicas": str(IN_SYNC_REPLICAS)} if factor >= REPLICAS else {})


def _statement_topic(max_message_bytes: int) -> dict[str, str]:
    """Statements as large as the services send them, kept for good: they are both parties'
    record of what was settled, read again by `settlement statements` and `verify` and by a
    party's consumer back from an outage longer than Kafka's default week."""
    return {"max.message.bytes": str(max_message_bytes), "retention.ms": "-1"}


async def ensure_topics(
    kafka: KafkaConnection,
    *,
    inbound_partitions: int = INBOUND_PARTITIONS,
    max_message_bytes: int = MAX_MESSAGE_BYTES,
    replication_factor: int | None = None,
) -> TopicsCreated:
    """The contract's topics that did not exist, created (an existing topic is left as it
    is, its settings too), replicated as `replication` says for the cluster unless a factor
    is given; a broker that is away is `Unreachable`."""
    admin = AIOKafkaAdminClient(client_id="samhandling-admin", **kafka.client_options())
    try:
        with broker_named(kafka):
            await admin.start()
    except Unreachable:
        await admin.close()  # or it warns of itself as unclosed when collected
        raise
    try:
        if replication_factor is None:
            factor, replicated = replication(len((await admin.describe_cluster())["brokers"]))
        else:
            factor, replicated = replication_factor, {}
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(
                name,
                inbound_partitions if name in topics.INBOUND else 1,
                factor,
                topic_configs=replicated
                | (_statement_topic(max_message_bytes) if name == topics.SETTLEMENTS else {}),
            )
            for name in topics.ALL
            if name not in existing
        ]
        if wanted:
            try:
                await admin.create_topics(wanted)
            except TopicAlreadyExistsError:
                pass  # another process created them first
        return TopicsCreated([topic.name for topic in wanted], factor)
    finally:
        await admin.close()
