"""`settlement rejections` against a real ledger: what intake refused, counted by topic and
reason, the latest with why, filtered, and never a patient identifier."""

from __future__ import annotations

import asyncio
import json

import pytest
from typer.testing import CliRunner

from contracts.v1 import topics
from services.cli import main
from services.intake.pseudonym import Pseudonymiser
from services.intake.service import IntakeDeps, ingest
from services.intake.validation import RawRecord
from tests.integration.ledger_harness import Ledger, event, now

pytestmark = pytest.mark.integration
PATIENT = "31129956715"


async def _send_raw(ledger: Ledger, *values: bytes) -> None:
    records = [RawRecord(topics.ACTIVITY, 2, 100 + i, b"ACT-R", v) for i, v in enumerate(values)]
    deps = IntakeDeps(ledger.pool, ledger.tariffs, Pseudonymiser(b"t" * 32), now, ledger.registry)
    await ingest(records, deps)


def _cli(database: str, *options: str) -> str:
    env = {"DATABASE_URL": database, "KAFKA_BOOTSTRAP_SERVERS": "unused:9092", "COLUMNS": "250"}
    result = CliRunner().invoke(main.app, ["rejections", *options], env=env)
    assert result.exit_code == 0, result.output
    return result.output


async def test_rejections_are_counted_listed_and_filtered(database: str, ledger: Ledger) -> None:
    _, wrong_municipality = event(
        topics.ACTIVITY,
        "activity_recorded",
        "2025-10-06T12:00:00+02:00",
        "983974724",
        registered_municipality="0001",
    )
    await _send_raw(
        ledger,
        b"not json",
        f'{{"note": "patient {PATIENT}"'.encode(),  # not JSON either, and holding a patient id
        json.dumps(wrong_municipality).encode(),
    )

    everything = await asyncio.to_thread(_cli, database)
    assert "not_json" in everything and "invalid_municipality_number" in everything
    assert f"{topics.ACTIVITY}[2]@100" in everything
    assert PATIENT not in everything

    only = await asyncio.to_thread(_cli, database, "--reason", "invalid_municipality_number", "--payload")
    assert "invalid_municipality_number" in only and "not_json" not in only
    assert '"registered_municipality": "0001"' in only  # the payload, shown on request
    assert PATIENT not in only

    none = await asyncio.to_thread(_cli, database, "--since", "2999-01-01")
    assert none.strip() == "no rejections of that kind"


async def test_a_sender_finds_its_own_rejections_by_source_and_event_id(
    database: str, ledger: Ledger
) -> None:
    from services.adapters import outbox

    # Ids of their own, not random: about one random UUID in 10,000 ends in eleven digits
    # that pass a national id's check digits, and is redacted in the rejection's key.
    mine, theirs = (
        event(
            topics.ACTIVITY,
            "activity_recorded",
            "2025-10-06T12:00:00",
            "983974724",
            source=source,
            event_id=eid,
        )[1]
        for source, eid in (
            ("dips.sender-a", "0b7f3c1e-5a2d-4c8e-9f41-a6b2c3d4e5f6"),
            ("dips.sender-b", "1c8e4d2f-6b3e-4d9f-8a52-b7c3d4e5f6a7"),
        )
    )
    await _send_raw(ledger, json.dumps(mine).encode(), json.dumps(theirs).encode())

    async with ledger.pool.acquire() as conn:
        stored = await conn.fetch("SELECT source, event_id, health_trust FROM rejections ORDER BY source")
        published = [
            json.loads(m.payload)
            for m in await outbox.stored_messages(conn, topic=topics.REJECTED)
            if json.loads(m.payload)["source"] in {"dips.sender-a", "dips.sender-b"}
        ]
    assert [tuple(r) for r in stored if r["source"]] == [
        ("dips.sender-a", mine["event_id"], "983974724"),
        ("dips.sender-b", theirs["event_id"], "983974724"),
    ]
    assert sorted((p["source"], p["event_id"], p["health_trust"]) for p in published) == [
        ("dips.sender-a", mine["event_id"], "983974724"),
        ("dips.sender-b", theirs["event_id"], "983974724"),
    ]

    only_mine = await asyncio.to_thread(_cli, database, "--source", "dips.sender-a")
    assert "dips.sender-a" in only_mine and mine["event_id"] in only_mine
    assert "dips.sender-b" not in only_mine and theirs["event_id"] not in only_mine
    assert "timestamp_without_offset" in only_mine


async def test_rejections_recorded_before_sources_were_kept_are_not_told_as_none(
    database: str, ledger: Ledger
) -> None:
    # After an upgrade, a sender looking for its own with --source was told "no rejections
    # of that kind" about every rejection recorded before migration 0014 (no source column).
    before, after = (
        event(
            topics.ACTIVITY, "activity_recorded", "2025-10-06T12:00:00", "983974724", source="dips.upgraded"
        )[1]
        for _ in range(2)
    )
    await _send_raw(ledger, json.dumps(before).encode())
    async with ledger.pool.acquire() as conn:
        await conn.execute(  # as recorded before migration 0014
            "UPDATE rejections SET source = NULL, event_id = NULL, health_trust = NULL WHERE source = 'dips.upgraded'"
        )

    none = await asyncio.to_thread(_cli, database, "--source", "dips.upgraded")
    assert "no rejections of that kind" in none
    assert "1 rejection recorded before rejections kept the event's source" in " ".join(none.split())
    assert "'dips.upgraded'" in none

    await _send_raw(ledger, json.dumps(after).encode())
    found = " ".join((await asyncio.to_thread(_cli, database, "--source", "dips.upgraded")).split())
    assert after["event_id"] in found and "and 1 rejection recorded before" in found  # not counted twice
    assert "recorded before" not in await asyncio.to_thread(_cli, database, "--source", "dips.sender-b")


def test_a_reason_that_is_not_a_code_is_refused_with_the_codes(monkeypatch: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(
        main.app,
        ["rejections", "--reason", "bad_json"],
        env={"DATABASE_URL": "postgresql://unused", "KAFKA_BOOTSTRAP_SERVERS": "unused:9092"},
    )
    assert result.exit_code == 2
    assert "not a reason code" in result.output and "schema_violation" in result.output
