"""The services' FastStream Kafka broker: FastStream's, with its consumers started and
reading in three ways of their own.

- **Consumer groups joined at the same time.** FastStream starts subscribers one after
  another, and a subscriber's start waits until its consumer group has given it partitions.
  The intake has one group per inbound topic, so a start took three joins in a row, and a
  restart after a crash longer still: the first join also waits until the dead member's
  session has expired. Measured on Tansu with the default 10 s session: about 28 s from
  restart to all three topics consumed again; joined together, a restart takes as long as
  the slowest join.
- **Records read whatever their header names** (`kafka_records`): a name that is not UTF-8
  stopped its partition for good.
- **Offsets no consumer is given committed once passed** (`skipped_offsets`): a transaction's
  marker at a partition's end left the group behind for good.
"""

from __future__ import annotations

import asyncio

from faststream.kafka import KafkaBroker

from services.adapters.kafka_records import read_any_header_names
from services.adapters.skipped_offsets import commit_skipped_offsets


class ServiceBroker(KafkaBroker):
    async def start(self) -> None:
        # As FastStream's own start (BrokerUsecase.start), with the subscribers together.
        read_any_header_names()
        await self.connect()
        config = self.config.broker_config
        config.builder = commit_skipped_offsets(config.builder)
        await asyncio.gather(*(subscriber.start() for subscriber in self.subscribers))
        for publisher in self.publishers:
            await publisher.start()
        self.running = True
