"""Generate the published contract documents from the code: a JSON Schema per message and
the AsyncAPI 3 document of both services. `python -m contracts.generate` rewrites them;
a test fails when the checked-in copies are out of date."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from contracts.v1 import inbound, outbound, topics
from contracts.v1.examples import EXAMPLES

SCHEMA_DIR = Path(__file__).parent / "v1" / "schemas"
ASYNCAPI_FILE = Path(__file__).parent / "v1" / "asyncapi.json"

MESSAGES: dict[str, Any] = {
    "discharge-ready-event": inbound.DischargeReadyMessage,
    "emergency-bed-event": inbound.EmergencyBedMessage,
    "activity-event": inbound.ActivityMessage,
    "settlement-statement": outbound.SettlementStatement,
    "rejection": outbound.Rejection,
    "close-period-command": outbound.ClosePeriod,
    "open-dispute-command": outbound.OpenDispute,
    "resolve-dispute-command": outbound.ResolveDispute,
}


# What each topic's messages are keyed by: Kafka's key is not part of a payload's schema,
# and FastStream's document does not say it (an AsyncAPI Kafka message binding does).
_SUBJECT_KEY = (
    "The {}. A subject's events share a key, so they stay in order on one partition, when every "
    "producer of them places a key alike: the Java client and aiokafka by murmur2; a librdkafka "
    "client (confluent-kafka) by CRC32 unless set to partitioner=murmur2_random (contracts/v1/README.md)."
)
MESSAGE_KEYS: dict[str, str] = {
    topics.DISCHARGE_READY: _SUBJECT_KEY.format("episode_id"),
    topics.EMERGENCY_BEDS: _SUBJECT_KEY.format("stay_id"),
    topics.ACTIVITY: _SUBJECT_KEY.format("activity_id"),
    topics.SETTLEMENTS: "The recipient: `municipality:NNNN` or `health_trust:NNNNNNNNN`.",
    topics.REJECTED: "The rejected message's key, patient identifiers redacted.",
    topics.COMMANDS: "Not read by the service: the tools use the month (close_period) or the dispute's id.",
}


def _as_on_the_wire(spec: dict[str, Any]) -> dict[str, Any]:
    """FastStream's document as a producer needs it. Intake subscribes in batches, so its
    payloads came out as arrays of events, while each message on an inbound topic is one
    event (an array is rejected, `not_an_object`): the array is taken off. Each message
    gets its key. No message promises a correlation header: intake does not read one, and
    the `correlation_id` FastStream stamps on what the services publish is new on every
    send (the two copies of a statement carry two), so it correlates nothing; a statement
    is told by its `statement_id`, a rejection by its `rejection_id`."""
    schemas = spec["components"]["schemas"]
    for message in spec["components"]["messages"].values():
        channel = spec["channels"][message["title"].rsplit(":", 1)[0]]
        topic = channel["address"]
        if topic in topics.INBOUND:
            payload = schemas[message["payload"]["$ref"].rsplit("/", 1)[1]]
            if payload.get("type") == "array":
                items = payload.pop("items")
                del payload["type"]
                payload.update(items)
            message["examples"] = [
                {"name": event_type, "payload": example} for event_type, example in EXAMPLES[topic].items()
            ]
        message.pop("correlationId", None)
        message["bindings"] = {
            "kafka": {
                "bindingVersion": "0.4.0",
                "key": {"type": "string", "description": MESSAGE_KEYS[topic]},
            }
        }
    return spec


# Each inbound topic's schema (in MESSAGES), which carries its examples (contracts/v1/examples.py).
SCHEMA_OF_TOPIC = {
    topics.DISCHARGE_READY: "discharge-ready-event",
    topics.EMERGENCY_BEDS: "emergency-bed-event",
    topics.ACTIVITY: "activity-event",
}


def _examples_of(name: str) -> dict[str, Any]:
    topic = next((t for t, schema in SCHEMA_OF_TOPIC.items() if schema == name), None)
    return {"examples": list(EXAMPLES[topic].values())} if topic else {}


def _dump(document: Any) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def documents() -> dict[Path, str]:
    from faststream.specification import AsyncAPI

    from services.adapters.kafka_connection import KafkaConnection
    from services.intake.app import create_broker as intake_broker
    from services.settlement.app import create_broker as settlement_broker

    out = {
        SCHEMA_DIR / f"{name}.schema.json": _dump(
            {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": f"{name}.v1"}
            | TypeAdapter(model).json_schema()
            | _examples_of(name)
        )
        for name, model in MESSAGES.items()
    }
    servers = "kafka:9092"
    spec: dict[str, Any] = {}
    for broker_factory in (intake_broker, settlement_broker):
        broker, _ = broker_factory(KafkaConnection(servers))
        doc = (
            AsyncAPI(
                broker,
                title="Samhandling settlement",
                version="1.0.0",
                description="Hospital events in, monthly settlement statements out (contract v1).",
                schema_version="3.0.0",
            )
            .to_specification()
            .to_jsonable()
        )
        if not spec:
            spec = doc
        else:
            for section in ("channels", "operations"):
                spec[section].update(doc[section])
            for section, values in doc.get("components", {}).items():
                spec.setdefault("components", {}).setdefault(section, {}).update(values)
    out[ASYNCAPI_FILE] = _dump(_as_on_the_wire(spec))
    return out


def main() -> int:
    SCHEMA_DIR.mkdir(parents=True, exist_ok=True)
    for path, text in documents().items():
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
