"""How the contract's topics are replicated, and how the services publish to them."""

from __future__ import annotations

import pytest

from services.runtime.topics import replication
from services.settings import Settings


@pytest.mark.parametrize(
    ("brokers", "factor", "configs"),
    [
        (1, 1, {}),  # a development broker (Tansu, docker-compose's Kafka)
        (2, 2, {}),  # both must stay writable when one is down: no in-sync minimum of two
        (3, 3, {"min.insync.replicas": "2"}),
        (6, 3, {"min.insync.replicas": "2"}),
        (0, 1, {}),  # a metadata answer naming no broker: still a valid topic request
    ],
)
def test_topics_are_copied_three_times_where_the_cluster_has_three_brokers(
    brokers: int, factor: int, configs: dict[str, str]
) -> None:
    assert replication(brokers) == (factor, configs)


def test_the_services_count_a_send_as_done_once_every_in_sync_replica_has_it() -> None:
    settings = Settings(
        kafka_bootstrap_servers="kafka:9092",
        database_url="postgresql://u@db/ledger",
        pseudonym_key="k" * 32,
    )

    assert settings.producer_options()["acks"] == "all"
