"""Generate the published contract documents from the code: a JSON Schema per message and
the AsyncAPI 3 document of both services. `python -m contracts.generate` rewrites them;
a test fails when the checked-in copies are out of date."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from contracts.v1 import inbound, outbound

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


def _dump(document: Any) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def documents() -> dict[Path, str]:
    from faststream.specification import AsyncAPI

    from services.intake.app import create_broker as intake_broker
    from services.settlement.app import create_broker as settlement_broker

    out = {
        SCHEMA_DIR / f"{name}.schema.json": _dump(
            {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": f"{name}.v1"}
            | TypeAdapter(model).json_schema()
        )
        for name, model in MESSAGES.items()
    }
    servers = "kafka:9092"
    spec: dict[str, Any] = {}
    for broker_factory in (intake_broker, settlement_broker):
        broker, _ = broker_factory(servers)
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
    out[ASYNCAPI_FILE] = _dump(spec)
    return out


def main() -> int:
    SCHEMA_DIR.mkdir(parents=True, exist_ok=True)
    for path, text in documents().items():
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
