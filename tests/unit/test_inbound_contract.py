"""The inbound contract judges a message alike whether it is given as JSON (how intake and
most producers validate) or as Python objects (models built in code, and intake's diagnosis
of a message pydantic's JSON parser refuses): pydantic-core checks some fields itself in
JSON and a Python validator checks them otherwise."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from contracts.v1.inbound import ActivityMessage, DischargeReadyMessage

DECLARED_READY = {
    "type": "declared_ready",
    "event_id": "0b9c4f5e-6a43-4d2e-9d5c-1f7f2f5e8a11",
    "source": "dips.helse-bergen",
    "occurred_at": "2025-10-06T09:30:00+02:00",
    "health_trust": "983974724",
    "patient_id": "31129956715",
    "care_area": "somatic",
    "episode_id": "EP-2025-000123",
    "registered_municipality": "4601",
    "staying_municipality": "4601",
}
ACTIVITY_RECORDED = {
    "type": "activity_recorded",
    "event_id": "7c0d8a51-1f0e-4c55-9a9e-3e2c1b0d4f66",
    "source": "dips.helse-bergen",
    "occurred_at": "2025-10-06T09:30:00+02:00",
    "health_trust": "983974724",
    "patient_id": "31129956715",
    "care_area": "somatic",
    "activity_id": "AK-2025-1",
    "registered_municipality": "4601",
    "contact_kind": "outpatient",
    "drg": "901A",
    "drg_points": "0.054",
    "surgical": False,
    "category": "ordinary",
    "started_at": "2025-10-06T09:30:00+02:00",
    "ended_at": "2025-10-06T10:30:00+02:00",
}


def _errors(adapter: TypeAdapter[Any], document: dict[str, Any], *, as_json: bool) -> list[tuple[Any, ...]]:
    try:
        if as_json:
            adapter.validate_json(json.dumps(document))
        else:
            adapter.validate_python(document)
    except ValidationError as exc:
        return [(e["type"], e["loc"], e["msg"]) for e in exc.errors()]
    return []


@pytest.mark.parametrize(
    "written",
    [
        0,
        1730000000,
        1730000000.5,
        "1730000000",
        "yesterday",
        True,
        None,
        [],
        "2025-10-06",
        "2025-10-06T09:30:00",
    ],
)
@pytest.mark.parametrize(
    ("adapter", "template", "field"),
    [
        (TypeAdapter(DischargeReadyMessage), DECLARED_READY, "occurred_at"),
        (TypeAdapter(ActivityMessage), ACTIVITY_RECORDED, "started_at"),
        (TypeAdapter(ActivityMessage), ACTIVITY_RECORDED, "ended_at"),
    ],
)
def test_a_timestamp_is_judged_alike_in_json_and_in_python(
    adapter: TypeAdapter[Any], template: dict[str, Any], field: str, written: object
) -> None:
    document = template | {field: written}

    from_json = _errors(adapter, document, as_json=True)
    from_python = _errors(adapter, document, as_json=False)

    assert from_json, f"{written!r} was accepted as a timestamp"
    assert from_json == from_python
    assert [loc[-1] for _type, loc, _msg in from_json] == [field]


def test_rfc_3339_text_with_an_offset_is_read_alike_in_json_and_in_python() -> None:
    adapter = TypeAdapter(DischargeReadyMessage)
    written = {"occurred_at": "2025-10-06T09:30:00.123+02:00"}

    from_json = adapter.validate_json(json.dumps(DECLARED_READY | written))
    from_python = adapter.validate_python(DECLARED_READY | written)

    assert from_json == from_python
    assert from_json.occurred_at.isoformat() == "2025-10-06T09:30:00.123000+02:00"


@pytest.mark.parametrize(
    ("written", "error"),
    [
        ("0000", "invalid_municipality_number"),
        ("0099", "invalid_municipality_number"),
        ("460", "invalid_municipality_number"),
        ("46011", "invalid_municipality_number"),
        ("46O1", "invalid_municipality_number"),
        ("4601\n", "invalid_municipality_number"),
        ("٤٦٠١", "invalid_municipality_number"),  # digits, but not ASCII ones
        (4601, "string_type"),
        (None, "string_type"),
    ],
)
@pytest.mark.parametrize("field", ["registered_municipality", "staying_municipality"])
def test_a_malformed_municipality_number_is_judged_alike_in_json_and_in_python(
    field: str, written: object, error: str
) -> None:
    adapter = TypeAdapter(DischargeReadyMessage)
    document = DECLARED_READY | {field: written}

    from_json = _errors(adapter, document, as_json=True)

    assert from_json == _errors(adapter, document, as_json=False)
    assert [(type_, loc[-1]) for type_, loc, _msg in from_json] == [(error, field)]
    if error == "invalid_municipality_number":
        assert from_json[0][2] == "a municipality number is four digits, county 01-99"


@pytest.mark.parametrize("written", ["0101", "0301", "4601", "9999", "5001"])
def test_a_well_formed_municipality_number_is_taken_as_written(written: str) -> None:
    event = TypeAdapter(DischargeReadyMessage).validate_json(
        json.dumps(DECLARED_READY | {"registered_municipality": written})
    )

    assert event.registered_municipality == written
