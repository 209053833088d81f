"""The checked-in JSON Schemas and AsyncAPI document are what the code generates."""

import json

import pytest

from contracts.generate import documents


@pytest.mark.parametrize("path_and_text", list(documents().items()), ids=lambda pt: pt[0].name)
def test_checked_in_contract_document_is_up_to_date(path_and_text: tuple) -> None:
    path, text = path_and_text
    assert path.exists(), f"{path.name} is missing: run `python -m contracts.generate`"
    assert path.read_text(encoding="utf-8") == text, (
        f"{path.name} is stale: run `python -m contracts.generate`"
    )


def test_asyncapi_document_describes_every_topic_of_the_contract() -> None:
    from contracts.generate import ASYNCAPI_FILE
    from contracts.v1 import topics

    spec = json.loads(ASYNCAPI_FILE.read_text(encoding="utf-8"))
    assert spec["asyncapi"] == "3.0.0"
    addresses = {channel["address"] for channel in spec["channels"].values()}
    assert addresses == set(topics.ALL)
    assert "SettlementStatement" in spec["components"]["schemas"]


def test_each_message_on_an_inbound_topic_is_one_event_with_its_key_described() -> None:
    # Intake subscribes in batches, and FastStream described its payloads as arrays of
    # events: a producer generated from the document would have had every message rejected.
    from contracts.generate import ASYNCAPI_FILE
    from contracts.v1 import topics

    spec = json.loads(ASYNCAPI_FILE.read_text(encoding="utf-8"))
    schemas = spec["components"]["schemas"]
    seen = set()
    for name, channel in spec["channels"].items():
        for ref in channel["messages"].values():
            message = spec["components"]["messages"][ref["$ref"].rsplit("/", 1)[1]]
            assert message["bindings"]["kafka"]["key"]["description"], name
            # FastStream's correlation_id is new on every send: no message promises one
            assert "correlationId" not in message, name
            if channel["address"] in topics.INBOUND:
                payload = schemas[message["payload"]["$ref"].rsplit("/", 1)[1]]
                assert payload.get("type") != "array" and "oneOf" in payload, (name, payload)
                seen.add(channel["address"])
    assert seen == set(topics.INBOUND)


def test_the_published_patterns_refuse_what_intake_refuses() -> None:
    import re

    from pydantic import TypeAdapter

    from contracts.v1 import inbound

    definitions = TypeAdapter(inbound.ActivityMessage).json_schema()["$defs"]["ActivityRecorded"][
        "properties"
    ]
    municipality = re.compile(definitions["registered_municipality"]["pattern"])
    assert municipality.search("4601") and not municipality.search("0001")
    drg_points = definitions["drg_points"]
    assert drg_points["type"] == "string" and "anyOf" not in drg_points
    assert re.search(drg_points["pattern"], "0.873") and not re.search(drg_points["pattern"], "1e2")
