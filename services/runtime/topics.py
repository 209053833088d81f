"""Create the contract's topics (idempotent)."""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from contracts.v1 import topics

INBOUND_PARTITIONS = 6


async def ensure_topics(bootstrap_servers: str, *, inbound_partitions: int = INBOUND_PARTITIONS) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="samhandling-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(name, inbound_partitions if name in topics.INBOUND else 1, 1)
            for name in topics.ALL
            if name not in existing
        ]
        if wanted:
            try:
                await admin.create_topics(wanted)
            except TopicAlreadyExistsError:
                pass  # another process created them first
    finally:
        await admin.close()
