"""How intake writes a batch (issue 7 made it faster; these pin what must not change):
new events go in by `COPY`, and whatever was stored before is recognised, whether it
belongs to a subject the batch reads (a redelivery) or to another one (the `COPY` is then
refused by the unique key and the conflict-tolerant insert decides)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from typing import Any

import pytest

from contracts.v1 import topics
from services.adapters.postgres import UnitOfWork, create_pool
from services.intake import service as intake_service
from services.intake.pseudonym import Pseudonymiser
from services.intake.service import IngestResult, IntakeDeps, ingest
from services.intake.validation import RawRecord
from tests.integration.ledger_harness import Ledger, event, now

pytestmark = pytest.mark.integration
TRUST, MUNICIPALITY = "983974724", "4624"


def activity(activity_id: str) -> tuple[str, dict[str, Any]]:
    return event(
        topics.ACTIVITY,
        "activity_recorded",
        "2025-10-06T09:30:00+02:00",
        TRUST,
        registered_municipality=MUNICIPALITY,
        activity_id=activity_id,
        contact_kind="inpatient",
        drg="127O",
        drg_points="1.25",
        surgical=False,
        category="ordinary",
        started_at="2025-10-06T09:30:00+02:00",
        ended_at="2025-10-08T12:00:00+02:00",
    )


def _with(activity_id: str, fields: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    topic, value = activity(activity_id)
    return topic, value | fields


def deps_of(ledger: Ledger, pool: Any = None) -> IntakeDeps:
    return IntakeDeps(pool or ledger.pool, ledger.tariffs, Pseudonymiser(b"t" * 32), now, ledger.registry)


def records_of(*parts: tuple[int, bool, tuple[str, dict[str, Any]]], offset: int) -> list[RawRecord]:
    """(partition, keyed by its subject, event) each, in the batch's order; a record not
    keyed by its subject has the key "k"."""

    def key(value: dict[str, Any], keyed: bool) -> bytes:
        subject = value.get("activity_id") or value.get("episode_id") or value.get("stay_id")
        return str(subject if keyed else "k").encode()

    return [
        RawRecord(topic, partition, offset + n, key(value, keyed), json.dumps(value).encode())
        for n, (partition, keyed, (topic, value)) in enumerate(parts)
    ]


async def send(
    ledger: Ledger,
    *events: tuple[str, dict[str, Any]],
    offset: int = 0,
    partition: int = 0,
    keyed_by_subject: bool = False,
) -> IngestResult:
    records = records_of(*((partition, keyed_by_subject, e) for e in events), offset=offset)
    return await ingest(records, deps_of(ledger))


async def stored(ledger: Ledger) -> dict[str, str]:
    async with ledger.pool.acquire() as conn:
        rows = await conn.fetch("SELECT event_id::text, subject_key FROM inbound_events")
    return {r["event_id"]: r["subject_key"] for r in rows}


async def items_of(ledger: Ledger) -> list[tuple[str, int | None]]:
    async with ledger.pool.acquire() as conn:
        rows = await conn.fetch("SELECT subject_id, amount_ore FROM ledger_items ORDER BY subject_id, part")
    return [(r["subject_id"], r["amount_ore"]) for r in rows]


async def test_a_batch_delivered_again_changes_nothing(ledger: Ledger) -> None:
    batch = [activity(f"ACT-W-{n}") for n in range(5)]
    first = await send(ledger, *batch)
    before = (await stored(ledger), await items_of(ledger))

    again = await send(ledger, *batch)

    assert (first.accepted, first.duplicates) == (5, 0)
    assert (again.accepted, again.duplicates, again.rejected) == (0, 5, {})
    assert (await stored(ledger), await items_of(ledger)) == before
    assert len(before[1]) == 5


async def test_with_another_pseudonym_key_a_redelivery_is_a_conflict_and_the_stored_event_stands(
    ledger: Ledger,
) -> None:
    """What docs/operations.md warns of ("The pseudonym key"): the key is part of what an
    event's content is."""
    batch = [activity("ACT-KEY-1")]
    await send(ledger, *batch)
    before = await stored(ledger), await items_of(ledger)
    other_key = IntakeDeps(ledger.pool, ledger.tariffs, Pseudonymiser(b"u" * 32), now, ledger.registry)

    again = await ingest(records_of((0, False, batch[0]), offset=0), other_key)

    assert (again.accepted, again.duplicates, again.rejected) == (0, 0, {"duplicate_conflict": 1})
    assert (await stored(ledger), await items_of(ledger)) == before
    async with ledger.pool.acquire() as conn:
        reason = await conn.fetchval("SELECT message FROM rejections WHERE reason = 'duplicate_conflict'")
    assert "with other content, in: patient_id; the first one stands" in reason, reason  # named, not shown


async def test_each_event_is_stored_as_the_very_bytes_its_content_hash_was_taken_of(ledger: Ledger) -> None:
    """So an auditor can check a stored event against its hash as it stands, whichever way
    it was written: by `COPY`, or by the conflict-tolerant insert once a `COPY` is refused."""
    first = activity("ACT-W-AUDIT-1")
    await send(ledger, first)
    clash = _with("ACT-W-AUDIT-ELSEWHERE", {"event_id": first[1]["event_id"]})  # forces the insert
    await send(ledger, clash, activity("ACT-W-AUDIT-2"), offset=10)

    async with ledger.pool.acquire() as conn:
        rows = await conn.fetch("SELECT payload::text AS text, content_hash FROM inbound_events")

    assert len(rows) == 2
    for row in rows:
        assert hashlib.sha256(row["text"].encode()).digest() == bytes(row["content_hash"])
        assert '"patient_pseudonym":"p1:' in row["text"] and "patient_id" not in row["text"]


async def test_a_key_stored_under_another_subject_is_a_conflict_and_the_rest_of_the_batch_goes_in(
    ledger: Ledger,
) -> None:
    original = activity("ACT-W-ORIGINAL")
    await send(ledger, original)
    # Same source and event id, another activity: not among the facts the batch reads, so
    # the COPY meets the stored key and must give way to the conflict-tolerant insert.
    clash = _with("ACT-W-ELSEWHERE", {"event_id": original[1]["event_id"]})
    newcomers = [activity(f"ACT-W-NEW-{n}") for n in range(3)]

    result = await send(ledger, newcomers[0], clash, *newcomers[1:], offset=10)

    assert result.accepted == 3
    assert result.rejected == {"duplicate_conflict": 1}
    async with ledger.pool.acquire() as conn:
        reason = await conn.fetchval("SELECT message FROM rejections WHERE reason = 'duplicate_conflict'")
    assert "with other content, in: activity_id; the first one stands" in reason, reason
    events = await stored(ledger)
    assert events[original[1]["event_id"]].endswith(":ACT-W-ORIGINAL")  # the first one stands
    assert {e[1]["event_id"] for e in newcomers} <= set(events)
    assert {subject for subject, _amount in await items_of(ledger)} == {
        "ACT-W-ORIGINAL",
        *(f"ACT-W-NEW-{n}" for n in range(3)),
    }


async def test_an_event_rejected_and_sent_again_fixed_under_its_event_id_is_accepted(
    ledger: Ledger,
) -> None:
    """A rejection stores no event (contracts/v1/README.md, "Redelivery"): the same source
    and event id, fixed, are new to intake."""
    fixed = activity("ACT-W-FIXED")
    broken = _with("ACT-W-FIXED", {"event_id": fixed[1]["event_id"], "drg_points": "1500"})

    first = await send(ledger, broken)
    again = await send(ledger, fixed, offset=1)

    assert (first.accepted, first.rejected) == (0, {"schema_violation": 1})
    assert (again.accepted, again.duplicates, again.rejected) == (1, 0, {})
    assert fixed[1]["event_id"] in await stored(ledger)
    assert [subject for subject, _amount in await items_of(ledger)] == ["ACT-W-FIXED"]


async def test_the_same_event_twice_in_one_batch_is_stored_once(ledger: Ledger) -> None:
    one = activity(f"ACT-W-TWICE-{uuid.uuid4().hex[:8]}")

    result = await send(ledger, one, one)

    assert (result.accepted, result.duplicates, result.rejected) == (1, 1, {})
    assert list((await stored(ledger)).values()).count(f"activity:{TRUST}:{one[1]['activity_id']}") == 1


def episode(episode_id: str) -> list[tuple[str, dict[str, Any]]]:
    milestones = [
        ("admission_notified", "2025-10-01T08:00:00+02:00"),
        ("declared_ready", "2025-10-03T09:00:00+02:00"),
        ("municipality_notified", "2025-10-03T10:00:00+02:00"),
        ("discharged", "2025-10-09T12:00:00+02:00"),
    ]
    return [
        event(
            topics.DISCHARGE_READY,
            kind,
            at,
            TRUST,
            episode_id=episode_id,
            registered_municipality=MUNICIPALITY,
            staying_municipality=MUNICIPALITY,
            **({"destination": "home"} if kind == "discharged" else {}),
        )
        for kind, at in milestones
    ]


async def bed_days(ledger: Ledger, episode_id: str) -> list[tuple[int, int | None]]:
    async with ledger.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT quantity, amount_ore FROM ledger_items WHERE subject_id = $1 ORDER BY first_day",
            episode_id,
        )
    return [(r["quantity"], r["amount_ore"]) for r in rows]


async def test_a_subject_split_across_chunks_of_one_batch_is_rated_from_all_its_facts(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One batch, chunks of two: the episode's milestones are written by three transactions,
    # each validated while the one before was being written. The last one must be rated
    # with the first two committed, exactly as if the batch had been one transaction.
    whole = await send(ledger, *episode("EP-W-WHOLE"))
    monkeypatch.setattr(intake_service, "CHUNK", 2)
    monkeypatch.setattr(intake_service, "YIELD_EVERY", 1)
    first, second, third, fourth = episode("EP-W-SPLIT")
    fillers = [activity(f"ACT-W-FILL-{n}") for n in range(2)]

    split = await send(ledger, first, fillers[0], second, third, fillers[1], fourth, offset=100)

    assert (whole.accepted, split.accepted, split.rejected) == (4, 6, {})
    expected = await bed_days(ledger, "EP-W-WHOLE")
    assert expected and all(amount for _days, amount in expected)
    assert await bed_days(ledger, "EP-W-SPLIT") == expected


async def test_a_subject_has_one_writer_at_a_time(ledger: Ledger) -> None:
    # Whoever else is adding facts of the subject (a second partition's write, another
    # replica, an old owner during a rebalance), the write waits for it to commit, and then
    # rates with its facts; other subjects, on the same partition too, are not held up.
    async with UnitOfWork(ledger.pool) as other_writer:
        await other_writer.lock_subjects([f"activity:{TRUST}:ACT-W-LOCKED"])
        writing = asyncio.create_task(send(ledger, activity("ACT-W-LOCKED"), offset=200))
        await asyncio.sleep(1.0)
        assert not writing.done(), "intake wrote a subject while another writer held it"
        beside = await send(ledger, activity("ACT-W-NOT-LOCKED"), offset=300)
        assert beside.accepted == 1, "the other subjects are not held up"
    result = await asyncio.wait_for(writing, timeout=30)
    assert result.accepted == 1


async def test_a_subject_whose_events_came_on_two_partitions_is_rated_from_all_of_them(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Found by a hospital integration audit: one episode's events sent by two clients whose
    # default partitioners differ (librdkafka's CRC32, Java's murmur2) land on two
    # partitions, which one intake process writes at the same time. Each transaction rated
    # the episode from its own facts and the ones committed before, so the later commit left
    # it priced from part of them: a third of such episodes had no item at all. Here both
    # writes are made to read their facts before either commits, as they did then. (The
    # batch is made larger than a transaction's worth, so it is cut by partition.)
    monkeypatch.setattr(intake_service, "CHUNK", 3)
    read_facts = intake_service.repo.payloads_by_subject

    async def slow_to_rate(conn: Any, subject_keys: Any) -> Any:
        facts = await read_facts(conn, subject_keys)
        await asyncio.sleep(0.5)
        return facts

    monkeypatch.setattr(intake_service.repo, "payloads_by_subject", slow_to_rate)
    whole = await send(ledger, *episode("EP-W-WHOLE-2"), offset=1200)
    admitted, declared, notified, discharged = episode("EP-W-TWO-PARTITIONS")
    records = records_of(
        (0, True, admitted), (0, True, declared), (0, True, discharged), (1, True, notified), offset=1300
    )

    result = await ingest(records, deps_of(ledger))

    assert (whole.accepted, result.accepted, result.rejected) == (4, 4, {})
    expected = await bed_days(ledger, "EP-W-WHOLE-2")
    assert expected and all(amount for _days, amount in expected)
    assert await bed_days(ledger, "EP-W-TWO-PARTITIONS") == expected


async def test_records_not_keyed_by_their_subject_are_counted_not_refused(ledger: Ledger) -> None:
    # The contract keys every message by its subject's id, which keeps a subject on one
    # partition; a producer that does not is accepted, and operations see it in a metric.
    keyed = await send(
        ledger, activity("ACT-W-KEYED-1"), activity("ACT-W-KEYED-2"), offset=400, keyed_by_subject=True
    )
    unkeyed = await send(ledger, activity("ACT-W-UNKEYED-1"), activity("ACT-W-UNKEYED-2"), offset=500)

    assert (keyed.accepted, keyed.off_key) == (2, 0)
    assert (unkeyed.accepted, unkeyed.off_key) == (2, 2)


async def _subjects_stored(ledger: Ledger, *subject_ids: str) -> set[str]:
    async with ledger.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT payload->>'activity_id' AS id FROM inbound_events WHERE payload->>'activity_id' = ANY($1)",
            list(subject_ids),
        )
    return {r["id"] for r in rows}


async def _transactions_of(ledger: Ledger, *subject_ids: str) -> int:
    async with ledger.pool.acquire() as conn:
        return int(
            await conn.fetchval(
                "SELECT count(DISTINCT xmin::text) FROM inbound_events WHERE payload->>'activity_id' = ANY($1)",
                list(subject_ids),
            )
        )


async def test_a_batch_of_up_to_a_chunk_is_one_transaction_whatever_its_partitions(ledger: Ledger) -> None:
    # At a moderate load a poll brings a few records of each partition; a transaction apiece
    # cost more than the records in it (docs/performance.md, latency).
    ids = [f"ACT-W-ONE-TX-{partition}" for partition in range(3)]
    records = records_of(*((partition, True, activity(i)) for partition, i in enumerate(ids)), offset=650)

    result = await ingest(records, deps_of(ledger))

    assert result.accepted == 3
    assert await _transactions_of(ledger, *ids) == 1


async def test_the_partitions_of_a_larger_batch_are_written_at_the_same_time(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(intake_service, "CHUNK", 1)  # two records: more than a transaction's worth
    records = records_of((0, True, activity("ACT-W-PAR-0")), (1, True, activity("ACT-W-PAR-1")), offset=600)
    deps = deps_of(ledger)
    async with UnitOfWork(ledger.pool) as other_writer:
        await other_writer.lock_subjects([f"activity:{TRUST}:ACT-W-PAR-0"])
        writing = asyncio.create_task(ingest(records, deps))
        for _ in range(100):
            if await _subjects_stored(ledger, "ACT-W-PAR-1"):
                break
            await asyncio.sleep(0.05)
        assert await _subjects_stored(ledger, "ACT-W-PAR-0", "ACT-W-PAR-1") == {"ACT-W-PAR-1"}, (
            "partition 1 was written while partition 0 waited"
        )
        assert not writing.done()
    result = await asyncio.wait_for(writing, timeout=30)
    assert (result.accepted, result.off_key) == (2, 0)


async def _table_scans(conn: Any) -> dict[str, int]:
    await conn.execute("SELECT pg_stat_clear_snapshot()")
    rows = await conn.fetch(
        "SELECT relname, seq_scan FROM pg_stat_user_tables WHERE relname IN ('inbound_events', 'ledger_items')"
    )
    return {r["relname"]: r["seq_scan"] for r in rows}


async def test_intake_finds_rows_by_key_on_tables_not_analysed_yet(ledger: Ledger, database: str) -> None:
    # Without statistics the planner guessed that a few hundred keys match most of the
    # table, and read all of it for every chunk (measured: 150-390 µs of database CPU per
    # event instead of 20, in a new database's first minute and in every benchmark).
    await send(ledger, *(activity(f"ACT-W-FILL-STATS-{n}") for n in range(300)), offset=800)
    async with ledger.pool.acquire() as conn:
        if not await conn.fetchval("SELECT to_regproc('pg_clear_relation_stats') IS NOT NULL"):
            pytest.skip("forgetting a table's statistics needs PostgreSQL 18 (pg_clear_relation_stats)")
        for table in ("inbound_events", "ledger_items"):
            await conn.execute("SELECT pg_clear_relation_stats('public', $1)", table)
        before = await _table_scans(conn)
    pool = await create_pool(database)  # closed below: a backend's counters reach the view when it ends
    try:
        records = records_of(*((0, False, activity(f"ACT-W-NO-STATS-{n}")) for n in range(500)), offset=900)
        assert (await ingest(records, deps_of(ledger, pool))).accepted == 500
    finally:
        await pool.close()
    async with ledger.pool.acquire() as conn:
        assert await _table_scans(conn) == before, "intake read a whole table"


async def test_a_batch_says_where_each_record_it_rejected_was_and_why(ledger: Ledger) -> None:
    # Found in an operations audit: intake's log said "rejected {'schema_violation': 1}" and
    # nothing of which record, so an operator could not go from the log to the message.
    records = [
        *records_of((1, True, activity("ACT-W1")), offset=40),
        RawRecord(topics.ACTIVITY, 1, 41, b"k", b"{not json"),
        *records_of((1, True, _with("ACT-W2", {"drg_points": "-1"})), offset=42),
    ]

    result = await ingest(records, deps_of(ledger))

    assert result.accepted == 1
    assert result.rejected_at == [
        f"{topics.ACTIVITY}[1]@41 not_json",
        f"{topics.ACTIVITY}[1]@42 schema_violation",
    ]
