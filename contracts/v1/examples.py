"""One whole message of every inbound type, as a hospital system sends it: published in the
JSON Schemas and the AsyncAPI document (`examples`), and accepted by intake's validation
(tests/unit/test_contract_examples.py), so a producer can start from them.

One discharge-ready episode (EP-2025-000123 at Haukeland, a Bergen patient), one emergency-bed
stay (KAD-2025-000045 in Bergen) and one co-financed activity (ACT-2025-000678), in October
2025. The patient id is the worked example of docs/domain.md, not a person's.
"""

from __future__ import annotations

from typing import Any

from contracts.v1 import topics

_PATIENT = "31129956715"
_TRUST = "983974724"  # Helse Bergen HF (Haukeland)
_BERGEN = "4601"


def _event(event_id: str, event_type: str, occurred_at: str, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": event_type,
        "source": "dips.helse-bergen",
        "occurred_at": occurred_at,
        "health_trust": _TRUST,
        "patient_id": _PATIENT,
        "care_area": "somatic",
        **fields,
    }


def _episode(event_id: str, event_type: str, occurred_at: str, **fields: Any) -> dict[str, Any]:
    return _event(
        event_id,
        event_type,
        occurred_at,
        episode_id="EP-2025-000123",
        registered_municipality=_BERGEN,
        staying_municipality=_BERGEN,
        **fields,
    )


def _stay(event_id: str, event_type: str, occurred_at: str) -> dict[str, Any]:
    return _event(event_id, event_type, occurred_at, stay_id="KAD-2025-000045", municipality=_BERGEN)


_ACTIVITY_FACTS = {
    "activity_id": "ACT-2025-000678",
    "registered_municipality": _BERGEN,
    "contact_kind": "inpatient",
    "drg": "127O",
    "drg_points": "0.873",
    "surgical": False,
    "category": "ordinary",
    "started_at": "2025-10-02T08:00:00+02:00",
    "ended_at": "2025-10-05T12:00:00+02:00",
}

EXAMPLES: dict[str, dict[str, dict[str, Any]]] = {
    topics.DISCHARGE_READY: {
        "admission_notified": _episode(
            "6f1c2b8e-3a4d-4e5f-8a9b-0c1d2e3f4a01", "admission_notified", "2025-10-01T14:05:00+02:00"
        ),
        "declared_ready": _episode(
            "6f1c2b8e-3a4d-4e5f-8a9b-0c1d2e3f4a02", "declared_ready", "2025-10-06T09:30:00+02:00"
        ),
        "municipality_notified": _episode(
            "6f1c2b8e-3a4d-4e5f-8a9b-0c1d2e3f4a03", "municipality_notified", "2025-10-06T10:15:00+02:00"
        ),
        "ready_withdrawn": _episode(
            "6f1c2b8e-3a4d-4e5f-8a9b-0c1d2e3f4a04", "ready_withdrawn", "2025-10-08T22:40:00+02:00"
        ),
        "municipality_can_receive": _episode(
            "6f1c2b8e-3a4d-4e5f-8a9b-0c1d2e3f4a05", "municipality_can_receive", "2025-10-13T11:00:00+02:00"
        ),
        "discharged": _episode(
            "6f1c2b8e-3a4d-4e5f-8a9b-0c1d2e3f4a06",
            "discharged",
            "2025-10-14T10:20:00+02:00",
            destination="municipal_service",
        ),
    },
    topics.EMERGENCY_BEDS: {
        "emergency_bed_admitted": _stay(
            "1d7e5c3a-9b2f-4c6d-8e1a-2b3c4d5e6f01", "emergency_bed_admitted", "2025-10-10T18:45:00+02:00"
        ),
        "emergency_bed_discharged": _stay(
            "1d7e5c3a-9b2f-4c6d-8e1a-2b3c4d5e6f02", "emergency_bed_discharged", "2025-10-13T09:00:00+02:00"
        ),
    },
    topics.ACTIVITY: {
        "activity_recorded": _event(
            "a3b4c5d6-e7f8-4a9b-8c0d-1e2f3a4b5c01",
            "activity_recorded",
            "2025-10-05T12:30:00+02:00",
            **_ACTIVITY_FACTS,
        ),
        "activity_corrected": _event(
            "a3b4c5d6-e7f8-4a9b-8c0d-1e2f3a4b5c02",
            "activity_corrected",
            "2025-10-09T08:10:00+02:00",
            **(_ACTIVITY_FACTS | {"drg": "127P", "drg_points": "0.642"}),
        ),
        "activity_cancelled": _event(
            "a3b4c5d6-e7f8-4a9b-8c0d-1e2f3a4b5c03",
            "activity_cancelled",
            "2025-10-20T15:00:00+02:00",
            activity_id="ACT-2025-000678",
            registered_municipality=_BERGEN,
        ),
    },
}
