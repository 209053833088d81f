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
