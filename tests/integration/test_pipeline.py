"""The pipeline against the real broker and database, the services as processes."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from contracts.v1 import topics
from contracts.v1.identifiers import redact_patient_ids
from services.adapters.tariff_files import load_tariffs
from services.domain.calendar import Month
from services.runtime.environment import Endpoints
from services.simulator.hospital import Hospital, Published
from tests.integration.conftest import TEST_TARIFF_DIRS, db_value, produce, read_topic, wait_until
from tests.oracle import expected_statements
from tests.topic_reader import read_raw

pytestmark = pytest.mark.integration
SENT_PATIENT_IDS: set[str] = set()


def _encode(events: list[Published]) -> list[tuple[str, bytes | None, bytes]]:
    SENT_PATIENT_IDS.update(e.value["patient_id"] for e in events)
    return [(e.topic, e.key.encode(), json.dumps(e.value).encode()) for e in events]


def _oracle(events: list[Published], period: Month) -> dict:
    return expected_statements(events, load_tariffs(*TEST_TARIFF_DIRS), period)


def _close(endpoints: Endpoints, period: Month) -> None:
    command = {"type": "close_period", "period": str(period), "command_id": str(uuid.uuid4())}
    produce(endpoints, [(topics.COMMANDS, str(period).encode(), json.dumps(command).encode())])


def _statements(
    endpoints: Endpoints, period: Month, trusts: set[str] | None = None
) -> list[tuple[bytes | None, dict]]:
    def trust_of(v: dict) -> str:
        return next(p["id"] for p in (v["recipient"], v["counterparty"]) if p["role"] == "health_trust")

    return [
        (k, v)
        for k, v in read_topic(endpoints, topics.SETTLEMENTS)
        if v["period"] == str(period) and (trusts is None or trust_of(v) in trusts)
    ]


def _accepted(endpoints: Endpoints, prefix: str) -> int:
    return int(db_value(endpoints, "SELECT count(*) FROM inbound_events WHERE source LIKE $1", prefix + ".%"))  # type: ignore[arg-type]


def _assert_statements_match(statements: list[tuple[bytes | None, dict]], expected: dict) -> None:
    by_pair: dict[tuple[str, str], list[tuple[bytes | None, dict]]] = defaultdict(list)
    for key, s in statements:
        parties = {
            s["recipient"]["role"]: s["recipient"]["id"],
            s["counterparty"]["role"]: s["counterparty"]["id"],
        }
        by_pair[(parties["municipality"], parties["health_trust"])].append((key, s))
    assert set(by_pair) == set(expected)
    for pair, copies in by_pair.items():
        assert sorted(k for k, _ in copies) == sorted(
            [f"municipality:{pair[0]}".encode(), f"health_trust:{pair[1]}".encode()]
        ), "one copy to each party, keyed by recipient"
        (_, a), (_, b) = copies
        for field in ("statement_id", "lines", "items", "totals"):
            assert a[field] == b[field], f"both parties' copies agree on {field}"
        lines, totals = expected[pair]
        assert a["totals"]["municipality_pays_ore"] == totals.municipality_pays_ore
        assert a["totals"]["health_trust_pays_ore"] == totals.health_trust_pays_ore
        assert (a["totals"]["net_ore"], a["totals"]["net_payer"]) == (totals.net_ore, totals.net_payer.value)
        assert [
            (x["category"], x["status"], x["quantity"], x["amount_ore"], x["rule"]) for x in a["lines"]
        ] == [(x.category.value, x.status.value, x.quantity, x.amount_ore, x.rule_id) for x in lines]


def test_a_month_of_events_becomes_one_statement_per_pair_for_both_parties_to_the_ore(stack) -> None:
    endpoints, _group, _state = stack
    period = Month(2025, 3)
    events = Hospital(period, seed=3, source_prefix="itest-month").month()
    produce(endpoints, _encode(events))
    wait_until(lambda: _accepted(endpoints, "itest-month") == len(events), what="all events recorded")
    _close(endpoints, period)
    expected = _oracle(events, period)
    wait_until(lambda: len(_statements(endpoints, period)) == 2 * len(expected), what="statements published")
    _assert_statements_match(_statements(endpoints, period), expected)


def test_the_same_events_published_twice_give_the_same_statements_and_a_second_close_adds_nothing(
    stack,
) -> None:
    endpoints, _group, _state = stack
    period = Month(2025, 4)
    # Other pairs than the test before: its stays still open at its close run on into this month.
    pairs = (("983974678", ("1103", "1108")), ("983974732", ("4640",)), ("983974910", ("1804",)))
    events = Hospital(period, seed=4, source_prefix="itest-twice").month(pairs)
    produce(endpoints, _encode(events))
    produce(endpoints, _encode(events))
    wait_until(lambda: _accepted(endpoints, "itest-twice") == len(events), what="first delivery recorded")
    wait_until(
        lambda: (
            db_value(endpoints, "SELECT count(*) FROM rejections WHERE payload LIKE '%itest-twice%'") == 0
            and _accepted(endpoints, "itest-twice") == len(events)
        ),
        what="redelivery absorbed",
    )
    _close(endpoints, period)
    expected = _oracle(events, period)
    trusts = {trust for trust, _ in pairs}
    wait_until(
        lambda: len(_statements(endpoints, period, trusts)) == 2 * len(expected), what="statements published"
    )
    _close(endpoints, period)
    wait_until(
        lambda: db_value(endpoints, "SELECT count(*) FROM processed_commands") >= 3,
        what="second close handled",  # type: ignore[operator]
    )
    wait_until(
        lambda: db_value(endpoints, "SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0,
        what="outbox drained",
    )
    statements = _statements(endpoints, period, trusts)
    assert len(statements) == 2 * len(expected), "closing the same month again publishes nothing new"
    _assert_statements_match(statements, expected)


def test_an_event_for_a_closed_month_is_a_pending_adjustment_and_the_closed_statement_is_not_republished(
    stack,
) -> None:
    endpoints, _group, _state = stack
    period = Month(2025, 3)  # closed by the first test
    wait_until(
        lambda: (
            db_value(endpoints, "SELECT count(*) FROM closed_periods WHERE period = $1", period.first_day)
            == 1
        ),
        what="March closed",
    )
    before = _statements(endpoints, period)
    late = [
        Published(e.topic, "EP-LATE-1", e.value | {"episode_id": "EP-LATE-1"})
        for e in Hospital(period, seed=30, source_prefix="itest-late").episode("983974724", "4601")
    ]
    produce(endpoints, _encode(late))
    wait_until(lambda: _accepted(endpoints, "itest-late") == len(late), what="late events recorded")
    episode = late[0].value["episode_id"]
    # (April, closed by another test, is changed too: the stay is still open.)
    pending = db_value(
        endpoints,
        "SELECT count(*) FROM adjustments WHERE subject_key LIKE $1 AND corrects_month = $2 AND statement_id IS NULL",
        f"%:{episode}",
        period.first_day,
    )
    expected_days = sum(
        line.quantity for lines, _ in _oracle(late, period).values() for line in lines if line.rated
    )
    # One pending adjustment per month and side, restated by every batch that changes it.
    assert pending == (1 if expected_days > 0 else 0), (
        "a late change that alters March is a pending adjustment"
    )
    if expected_days:
        assert (
            db_value(
                endpoints,
                "SELECT quantity_delta FROM adjustments WHERE subject_key LIKE $1 AND corrects_month = $2 "
                "AND statement_id IS NULL",
                f"%:{episode}",
                period.first_day,
            )
            == expected_days
        )
    assert (
        db_value(
            endpoints,
            "SELECT count(*) FROM ledger_items WHERE subject_id = $1 AND service_month = $2",
            episode,
            period.first_day,
        )
        == 0
    ), "nothing is added to the closed month"
    assert _statements(endpoints, period) == before, "the closed month's statements are unchanged"


def test_a_month_with_payments_both_ways_between_one_pair_is_one_netted_statement_per_party(stack) -> None:
    endpoints, _group, _state = stack
    period = Month(2025, 6)
    pair = ("983974880", ("5603",))  # Finnmarkssykehuset and Hammerfest: only this test uses them
    events = Hospital(period, seed=6, source_prefix="itest-net").month((pair,), episodes_per_pair=6)
    produce(endpoints, _encode(events))
    wait_until(lambda: _accepted(endpoints, "itest-net") == len(events), what="all events recorded")
    _close(endpoints, period)
    expected = _oracle(events, period)
    _lines, totals = expected[("5603", "983974880")]
    assert totals.municipality_pays_ore > 0 and totals.health_trust_pays_ore > 0, "both directions occur"
    wait_until(lambda: len(_statements(endpoints, period, {"983974880"})) == 2, what="the pair's statements")
    statements = _statements(endpoints, period, {"983974880"})
    _assert_statements_match(statements, expected)
    by_category = {c["category"]: c for c in statements[0][1]["totals"]["by_category"]}
    assert by_category["discharge_ready_bed_days"]["municipality_pays_ore"] == totals.municipality_pays_ore
    assert by_category["emergency_bed_days"]["health_trust_pays_ore"] == totals.health_trust_pays_ore
    net = totals.municipality_pays_ore - totals.health_trust_pays_ore
    assert statements[0][1]["totals"]["net_ore"] == abs(net)
    assert statements[0][1]["totals"]["net_payer"] == ("municipality" if net > 0 else "health_trust")
    _assert_the_cli_exports_them_as_published(endpoints, period, statements)


def _assert_the_cli_exports_them_as_published(
    endpoints: Endpoints, period: Month, statements: list[tuple[bytes | None, dict]]
) -> None:
    """`settlement statements --party --format json|csv`: a party's copies byte for byte as
    published, and their items, each amount exact in øre and in kroner."""
    from typer.testing import CliRunner

    from services.cli import main

    env = {"KAFKA_BOOTSTRAP_SERVERS": endpoints.bootstrap_servers, "DATABASE_URL": endpoints.database_url}
    published = {
        v["recipient"]["id"]: raw.value
        for raw in read_raw(endpoints.bootstrap_servers, topics.SETTLEMENTS)
        for v in [json.loads(raw.value)]
        if v["period"] == str(period) and v["recipient"]["id"] in {"5603", "983974880"}
    }

    as_json = CliRunner().invoke(
        main.app, ["statements", str(period), "--party", "5603", "--format", "json"], env=env
    )
    assert as_json.exit_code == 0, as_json.output
    assert as_json.stdout_bytes == published["5603"] + b"\n"

    as_csv = CliRunner().invoke(
        main.app, ["statements", str(period), "--party", "983974880", "--format", "csv"], env=env
    )
    assert as_csv.exit_code == 0, as_csv.output
    rows = [r for r in csv.DictReader(io.StringIO(as_csv.stdout)) if r["record"] == "item"]
    trusts_copy = next(v for _, v in statements if v["recipient"]["id"] == "983974880")
    assert len(rows) == len(trusts_copy["items"]) > 0
    assert {r["recipient"] for r in rows} == {"983974880"} and {r["counterparty"] for r in rows} == {"5603"}
    for row, item in zip(rows, trusts_copy["items"], strict=True):
        assert (row["episode_id"], row["days"]) == (item["episode_id"], str(item["days"]))
        if item["amount_ore"] is None:
            assert row["amount_ore"] == row["amount_nok"] == ""
        else:
            assert int(row["amount_ore"]) == item["amount_ore"]
            assert Decimal(row["amount_nok"]) * 100 == item["amount_ore"]

    # for a spreadsheet set to Norwegian: the same rows, after a byte-order mark, by semicolons
    as_csv_nb = CliRunner().invoke(
        main.app, ["statements", str(period), "--party", "983974880", "--format", "csv-nb"], env=env
    )
    assert as_csv_nb.exit_code == 0, as_csv_nb.output
    assert as_csv_nb.stdout.startswith("\ufeff")
    norwegian = list(csv.DictReader(io.StringIO(as_csv_nb.stdout[1:]), delimiter=";"))
    kroner = ("amount_nok", "now_amount_nok")
    assert [r | {k: r[k].replace(",", ".") for k in kroner} for r in norwegian] == list(
        csv.DictReader(io.StringIO(as_csv.stdout))
    )


def test_a_retired_municipality_number_is_settled_on_its_successor_and_the_line_says_so(stack) -> None:
    endpoints, _group, _state = stack
    period = Month(2025, 7)
    episode = [
        Published(e.topic, "EP-RENUMBERED-1", e.value | {"episode_id": "EP-RENUMBERED-1"})
        for e in Hospital(period, seed=7, source_prefix="itest-renumbered").episode(
            "983974899",
            "5401",
            staying="5401",  # Tromsø until 2024, then 5501
        )
    ]
    produce(endpoints, _encode(episode))
    wait_until(lambda: _accepted(endpoints, "itest-renumbered") == len(episode), what="events recorded")
    assert db_value(
        endpoints,
        "SELECT count(*) FROM inbound_events WHERE payload->>'episode_id' = 'EP-RENUMBERED-1' "
        "AND payload->>'staying_municipality' = '5501' AND payload->'municipality_mappings'->>'staying_municipality' = '5401'",
    ) == len(episode), "stored under the successor, with the mapping kept"
    notes = db_value(
        endpoints,
        "SELECT string_agg(DISTINCT municipality || ' ' || coalesce(note, ''), '|') FROM ledger_items WHERE subject_id = 'EP-RENUMBERED-1'",
    )
    # Seed 7 gives a stay still open at the end of July, so there are payable days.
    assert notes == "5501 municipality number 5401 retired: settled on its successor 5501"


def test_a_close_sent_right_after_the_events_waits_for_intake_and_leaves_none_out(stack) -> None:
    endpoints, _group, _state = stack
    period = Month(2025, 8)
    pair = ("983974929", ("1833",))  # Helgelandssykehuset and Rana: only this test uses them
    events = Hospital(period, seed=8, source_prefix="itest-inflight").month((pair,), episodes_per_pair=8)
    produce(endpoints, _encode(events))
    _close(endpoints, period)  # no waiting for intake here: the close must do it
    expected = _oracle(events, period)
    wait_until(lambda: len(_statements(endpoints, period, {"983974929"})) == 2, what="the pair's statements")
    _assert_statements_match(_statements(endpoints, period, {"983974929"}), expected)


def _valid(event_type: str = "declared_ready", **changes: object) -> dict:
    base = {
        "event_id": str(uuid.uuid4()),
        "type": event_type,
        "source": "itest-bad.dips",
        "occurred_at": "2025-05-06T10:00:00+02:00",
        "health_trust": "983974724",
        "patient_id": "31129956715",
        "care_area": "somatic",
        "episode_id": "EP-BAD-1",
        "registered_municipality": "4601",
        "staying_municipality": "4601",
    }
    return base | changes


def _without(field: str) -> dict:
    value = _valid()
    del value[field]
    return value


BAD_INPUT: dict[str, tuple[str, bytes]] = {
    "not_json": ("not_json", b'{"type": "declared_ready",'),
    "not_utf8": ("not_utf8", b'{"type": "\xff\xfe"}'),
    "not_an_object": ("not_an_object", b"[1, 2, 3]"),
    "unknown_type": ("unknown_type", json.dumps(_valid("teleported")).encode()),
    "missing_field": ("schema_violation", json.dumps(_without("episode_id")).encode()),
    "mistyped_field": ("schema_violation", json.dumps(_valid(care_area=5)).encode()),
    "patient_id_check_digits": ("invalid_patient_id", json.dumps(_valid(patient_id="31129956716")).encode()),
    "organisation_number_mod11": (
        "invalid_organisation_number",
        json.dumps(_valid(health_trust="983974725")).encode(),
    ),
    "malformed_municipality": (
        "invalid_municipality_number",
        json.dumps(_valid(staying_municipality="46O1")).encode(),
    ),
    "timestamp_without_offset": (
        "timestamp_without_offset",
        json.dumps(_valid(occurred_at="2025-05-06T10:00:00")).encode(),
    ),
    "too_far_in_future": (
        "occurred_in_future",
        json.dumps(_valid(occurred_at=(datetime.now(UTC) + timedelta(days=3)).isoformat())).encode(),
    ),
    "before_2012": (
        "occurred_before_2012",
        json.dumps(_valid(occurred_at="2011-12-30T10:00:00+01:00")).encode(),
    ),
    "over_1_mb": ("message_too_large", json.dumps(_valid(padding="x" * 1_100_000)).encode()),
    "unknown_municipality": (
        "unknown_municipality_number",
        json.dumps(_valid(staying_municipality="9999")).encode(),
    ),
    "split_municipality": (
        "municipality_number_split",
        json.dumps(_valid(registered_municipality="1507")).encode(),  # Ålesund, split 2024 into 1508 and 1580
    ),
}


def test_every_bad_input_lands_on_the_rejection_topic_with_its_own_reason_and_intake_goes_on(stack) -> None:
    endpoints, group, _state = stack
    messages = [
        (topics.DISCHARGE_READY, f"bad-{case}".encode(), raw) for case, (_r, raw) in BAD_INPUT.items()
    ]
    first = _valid(episode_id="EP-CONFLICT", event_id=str(uuid.uuid4()))
    conflicting = first | {"care_area": "mental_health"}
    after = _valid(episode_id="EP-AFTER-BAD")
    messages += [
        # Same key as the conflicting one: one partition, so "first" is first for sure.
        (topics.DISCHARGE_READY, b"bad-duplicate_conflict", json.dumps(first).encode()),
        (topics.DISCHARGE_READY, b"bad-duplicate_conflict", json.dumps(conflicting).encode()),
        (topics.DISCHARGE_READY, b"bad-after", json.dumps(after).encode()),
    ]
    SENT_PATIENT_IDS.add("31129956715")
    produce(endpoints, messages)
    expected = {f"bad-{case}": reason for case, (reason, _raw) in BAD_INPUT.items()} | {
        "bad-duplicate_conflict": "duplicate_conflict"
    }

    def rejections() -> dict[str, dict]:
        return {
            v["key"]: v
            for _k, v in read_topic(endpoints, topics.REJECTED)
            if (v["key"] or "").startswith("bad-")
        }

    wait_until(lambda: len(rejections()) == len(expected), what="every bad message rejected")
    found = rejections()
    assert {key: r["reason"] for key, r in found.items()} == expected
    for r in found.values():
        assert r["topic"] == topics.DISCHARGE_READY and r["message"]
        assert "31129956715" not in json.dumps(r)
    wait_until(
        lambda: (
            db_value(
                endpoints, "SELECT count(*) FROM inbound_events WHERE payload->>'episode_id' = 'EP-AFTER-BAD'"
            )
            == 1
        ),
        what="the event after the bad ones",
    )
    assert (
        db_value(
            endpoints,
            "SELECT payload->>'care_area' FROM inbound_events WHERE event_id = $1",
            uuid.UUID(first["event_id"]),
        )
        == "somatic"
    ), "the first of two conflicting events wins"
    assert not group.dead(), "no service died on bad input"


def test_a_header_that_is_not_text_or_has_no_value_neither_stops_a_partition_nor_loses_the_message(
    stack,
) -> None:
    """Kafka headers are bytes, and may have no value at all. FastStream decodes every header
    as UTF-8 before a handler runs; a header it could not decode raised there, the batch was
    delivered again, forever, and its partition stopped. Headers are no part of the contract:
    the messages are handled on their body."""
    from confluent_kafka import Producer

    endpoints, group, _state = stack
    accepted = [_valid(episode_id=f"EP-HEADER-{n}", event_id=str(uuid.uuid4())) for n in range(2)]
    command = {"type": "close_period", "period": "2099-13", "command_id": str(uuid.uuid4())}
    producer = Producer({"bootstrap.servers": endpoints.bootstrap_servers})
    for headers, topic, key, value in [
        ([("traceparent", b"\xff\xfe not text")], topics.DISCHARGE_READY, b"EP-HEADER-0", accepted[0]),
        ([("empty", None)], topics.DISCHARGE_READY, b"EP-HEADER-1", accepted[1]),
        ([("traceparent", b"\xc3\x28"), ("empty", None)], topics.COMMANDS, b"header-command", command),
    ]:
        producer.produce(topic, key=key, value=json.dumps(value).encode(), headers=headers)
    assert producer.flush(30) == 0
    SENT_PATIENT_IDS.add("31129956715")

    wait_until(
        lambda: (
            db_value(
                endpoints,
                "SELECT count(*) FROM inbound_events WHERE payload->>'episode_id' LIKE 'EP-HEADER-%'",
            )
            == 2
        ),
        what="both events recorded, whatever their headers",
    )
    wait_until(
        lambda: any(v["key"] == "header-command" for _k, v in read_topic(endpoints, topics.REJECTED)),
        what="the command handled (refused for its period), whatever its headers",
    )
    assert not group.dead()


def test_a_header_name_that_is_not_text_neither_stops_a_partition_nor_loses_other_partitions_messages(
    stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A header's *name* is bytes on the wire too, and aiokafka decoded names as UTF-8 while
    reading a fetch, before FastStream or intake saw the record: its partition, the records
    before it on the fetch included, was fetched again for ever (and, by aiokafka's code,
    records of other partitions taken from the same fetch could be dropped with the error;
    services/adapters/kafka_records.py). The events are spread over every partition in one
    burst, two of one partition's with such a name between others."""
    import aiokafka.producer.message_accumulator
    import aiokafka.producer.producer
    from aiokafka import AIOKafkaProducer
    from aiokafka.record.default_records import _DefaultRecordBatchBuilderPy

    class Undecodable(str):  # a name whose bytes are not UTF-8, as a careless producer sends
        def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
            return b"\xff\xfe-name"

    # aiokafka's Python builder writes whatever bytes a name encodes to (its C one checks)
    for module in (aiokafka.producer.message_accumulator, aiokafka.producer.producer):
        monkeypatch.setattr(module, "DefaultRecordBatchBuilder", _DefaultRecordBatchBuilderPy)
    endpoints, group, _state = stack
    episodes = [f"EP-HEADERNAME-{n}" for n in range(36)]

    async def publish() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=endpoints.bootstrap_servers, linger_ms=500)
        await producer.start()
        try:
            sent = []
            for n, episode in enumerate(episodes):
                value = json.dumps(_valid(episode_id=episode, event_id=str(uuid.uuid4()))).encode()
                headers = [(Undecodable("x"), b"value")] if n in (11, 29) else [("h", b"text")]
                sent.append(
                    await producer.send(
                        topics.DISCHARGE_READY, value, key=episode.encode(), partition=n % 6, headers=headers
                    )
                )
            await asyncio.gather(*sent)
        finally:
            await producer.stop()

    asyncio.run(publish())
    SENT_PATIENT_IDS.add("31129956715")

    def recorded() -> int:
        sql = "SELECT count(*) FROM inbound_events WHERE payload->>'episode_id' LIKE 'EP-HEADERNAME-%'"
        return int(db_value(endpoints, sql))  # type: ignore[arg-type]

    wait_until(lambda: recorded() == len(episodes), what="every event recorded, whatever its header names")
    assert not group.dead()


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_events_compressed_by_any_codec_a_kafka_producer_offers_are_recorded(stack, codec: str) -> None:
    """Kafka producers compress batches with gzip, snappy, lz4 or zstd (`compression.type`,
    lz4 and zstd common on the Java client). aiokafka reads all but gzip only with cramjam
    installed; without it a compressed batch stopped its partition for good ("There is no
    suitable compression library available", tried again every 15 s)."""
    from confluent_kafka import Producer

    endpoints, group, _state = stack
    episodes = [f"EP-{codec.upper()}-{n}" for n in range(6)]
    producer = Producer(
        {"bootstrap.servers": endpoints.bootstrap_servers, "compression.type": codec, "linger.ms": 100}
    )
    for episode in episodes:
        value = json.dumps(_valid(episode_id=episode, event_id=str(uuid.uuid4()))).encode()
        producer.produce(topics.DISCHARGE_READY, key=episode.encode(), value=value)
    assert producer.flush(30) == 0
    SENT_PATIENT_IDS.add("31129956715")

    def recorded() -> int:
        sql = "SELECT count(*) FROM inbound_events WHERE payload->>'episode_id' = ANY($1::text[])"
        return int(db_value(endpoints, sql, episodes))  # type: ignore[arg-type]

    wait_until(lambda: recorded() == len(episodes), what=f"every {codec}-compressed event recorded")
    assert not group.dead()


def test_events_of_a_transaction_are_recorded_once_it_commits_and_intake_catches_up_to_its_marker(
    stack,
) -> None:
    """A producer that writes in Kafka transactions (exactly-once pipelines, outbox relays):
    intake reads committed records only, so the events of a transaction still open (or, on
    Apache Kafka, aborted) are not settled; and the marker that ends a transaction, an offset
    no consumer is given, does not leave intake behind (services/adapters/skipped_offsets.py,
    whose own test makes the marker come after the events)."""
    import time

    from confluent_kafka import Producer

    from services.adapters.intake_progress import wait_for_intake
    from services.settings import intake_groups

    endpoints, group, _state = stack
    episodes = [f"EP-TRANSACTION-{n}" for n in range(6)]

    def recorded(some: list[str]) -> int:
        sql = "SELECT count(*) FROM inbound_events WHERE payload->>'episode_id' = ANY($1::text[])"
        return int(db_value(endpoints, sql, some))  # type: ignore[arg-type]

    def send(producer: Producer, some: list[str]) -> None:
        for episode in some:
            value = json.dumps(_valid(episode_id=episode, event_id=str(uuid.uuid4()))).encode()
            producer.produce(topics.DISCHARGE_READY, key=episode.encode(), value=value)
        assert producer.flush(30) == 0

    warm_up = ["EP-TRANSACTION-WARM-UP"]
    send(Producer({"bootstrap.servers": endpoints.bootstrap_servers}), warm_up)
    wait_until(lambda: recorded(warm_up) == 1, what="intake consuming")
    producer = Producer(
        {"bootstrap.servers": endpoints.bootstrap_servers, "transactional.id": "itest-hospital"}
    )
    producer.init_transactions(30)
    producer.begin_transaction()
    send(producer, episodes)
    time.sleep(3)  # intake polls every few tens of milliseconds: it would have read them by now
    assert recorded(episodes) == 0, "events of a transaction still open were recorded"
    producer.commit_transaction(30)
    SENT_PATIENT_IDS.add("31129956715")

    wait_until(lambda: recorded(episodes) == len(episodes), what="the transaction's events recorded")
    left = asyncio.run(
        wait_for_intake(endpoints.kafka, intake_groups("samhandling-intake"), timeout_seconds=15)
    )
    assert left == 0, f"{left} offsets behind the ends after every event was recorded"
    assert not group.dead()


def test_a_command_sent_in_a_transaction_is_handled_once_it_commits_and_leaves_no_lag(stack) -> None:
    """Commands come from other systems too (a finance system sending disputes): the
    settlement service reads committed records only and commits past a transaction's marker,
    as intake does (the lag monitor watches its group)."""
    import time

    from confluent_kafka import Producer

    from services.adapters.intake_progress import IntakeProgress

    endpoints, group, _state = stack
    key = f"transactional-command-{uuid.uuid4()}"
    command = {"type": "close_period", "period": "2999-12", "command_id": str(uuid.uuid4())}

    def refused(key: str = key) -> bool:
        return any(v["key"] == key for _k, v in read_topic(endpoints, topics.REJECTED))

    warm_up = f"warm-up-{key}"
    produce(
        endpoints,
        [(topics.COMMANDS, warm_up.encode(), json.dumps(command | {"command_id": warm_up}).encode())],
    )
    wait_until(lambda: refused(warm_up), what="the settlement service handling commands")
    producer = Producer(
        {"bootstrap.servers": endpoints.bootstrap_servers, "transactional.id": "itest-finance"}
    )
    producer.init_transactions(30)
    producer.begin_transaction()
    producer.produce(topics.COMMANDS, key=key.encode(), value=json.dumps(command).encode())
    assert producer.flush(30) == 0
    time.sleep(3)
    assert not refused(), "a command of a transaction still open was handled"
    producer.commit_transaction(30)
    wait_until(refused, what="the command handled (refused: 2999-12 has not ended)")

    async def behind() -> int:
        async with IntakeProgress(endpoints.kafka, {topics.COMMANDS: "samhandling-settlement"}) as progress:
            return await progress.unprocessed(await progress.ends())

    wait_until(lambda: asyncio.run(behind()) == 0, timeout=15, what="the commands group at the end")
    assert not group.dead()


def test_a_closed_months_statements_are_published_again_for_one_party(stack) -> None:
    """`settlement republish`: for a party whose consumer lost its statements, or a topic
    that did; the copies are the statements as first published."""
    from typer.testing import CliRunner

    from services.cli import main

    endpoints, group, _state = stack
    period = Month(2025, 3)  # closed by the first test
    wait_until(lambda: len(_statements(endpoints, period, {"983974724"})) >= 2, what="March statements")

    def copies_to_bergen() -> list[dict]:
        return [v for _k, v in _statements(endpoints, period) if v["recipient"]["id"] == "4601"]

    before = copies_to_bergen()
    env = endpoints.as_env() | {"COLUMNS": "300"}
    result = CliRunner().invoke(main.app, ["republish", str(period), "--party", "4601"], env=env)

    assert result.exit_code == 0, result.output
    assert f"queued {len(before)} cop" in result.output
    wait_until(lambda: len(copies_to_bergen()) == 2 * len(before), what="the copies published again")
    assert sorted(map(json.dumps, copies_to_bergen()[len(before) :])) == sorted(map(json.dumps, before))
    listed = CliRunner().invoke(
        main.app, ["statements", str(period), "--party", "4601", "--format", "json"], env=env
    )
    assert listed.exit_code == 0 and len(listed.stdout.splitlines()) == len(before), "each copy listed once"
    nothing = CliRunner().invoke(main.app, ["republish", "2001-01"], env=env)
    assert nothing.exit_code == 1 and "no statements of 2001-01" in nothing.output
    every_month = CliRunner().invoke(main.app, ["republish", "--party", "4601"], env=env)
    issued = db_value(
        endpoints, "SELECT count(*) FROM statements WHERE municipality = '4601' OR health_trust = '4601'"
    )
    assert every_month.exit_code == 0, every_month.output
    assert (
        f"queued {issued} cop" in every_month.output
        and "of every closed month with 4601" in every_month.output
    )
    assert not group.dead()


def test_no_raw_patient_identifier_is_stored_logged_or_published(stack) -> None:
    endpoints, _group, state = stack
    assert SENT_PATIENT_IDS, "the tests before this one sent patient identifiers"
    wait_until(
        lambda: db_value(endpoints, "SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0,
        what="outbox drained",
    )
    tables = ["inbound_events", "ledger_items", "statements", "rejections", "adjustments", "outbox"]
    dump = " ".join(
        str(db_value(endpoints, f"SELECT coalesce(string_agg(t::text, ' '), '') FROM {table} t"))
        for table in tables
    )
    dump += str(
        db_value(endpoints, "SELECT coalesce(string_agg(convert_from(payload, 'UTF8'), ' '), '') FROM outbox")
    )
    published = json.dumps(
        [v for t in (topics.SETTLEMENTS, topics.REJECTED) for _k, v in read_topic(endpoints, t)]
    )
    logs = " ".join(p.read_text(errors="replace") for p in Path(state / "logs").glob("*.log"))
    assert "patient_pseudonym" in dump, "the scan looks at real stored events"
    for where, text in (("database", dump), ("published messages", published), ("logs", logs)):
        leaked = [pid for pid in SENT_PATIENT_IDS if pid in text]
        assert not leaked, f"{len(leaked)} raw patient identifier(s) found in the {where}"
    assert redact_patient_ids("x 31129956715 y") == "x [redacted] y"


def test_a_pairs_chain_verifies_from_database_and_topic_and_disputes_go_through_the_command_topic(
    stack,
) -> None:
    from services.cli.ledger_commands import _reconcile, _verify

    endpoints, _group, _state = stack
    period = Month(2025, 3)  # closed by the first test
    wait_until(lambda: len(_statements(endpoints, period, {"983974724"})) >= 2, what="March statements")
    _, statement = next(
        (k, v) for k, v in _statements(endpoints, period, {"983974724"}) if v["recipient"]["id"] == "4601"
    )
    assert asyncio.run(_verify(endpoints, "4601", "983974724")) == []
    assert asyncio.run(_reconcile(endpoints, "4601", "983974724", period))
    # a pair nothing is known of is not verified: a ✓ over no statements would prove nothing
    [unknown] = asyncio.run(_verify(endpoints, "9999", "983974724"))
    assert "no statement of 9999 / 983974724" in unknown and "nothing to verify" in unknown
    [mistyped] = asyncio.run(_verify(endpoints, "4601", "98397472"))
    assert "98397472 is not an organisation number" in mistyped

    item = next(
        i for i in statement["items"] if i["category"] == "discharge_ready_bed_days" and i["amount_ore"]
    )
    dispute_id = str(uuid.uuid4())
    command = {
        "type": "open_dispute",
        "command_id": str(uuid.uuid4()),
        "dispute_id": dispute_id,
        "statement_id": statement["statement_id"],
        "episode_id": item["episode_id"],
        "category": "discharge_ready_bed_days",
        "service_month": "2025-03",
        "amount_ore": item["amount_ore"],
        "opened_by": {"role": "municipality", "id": "4601"},
        "reason": "the patient was discharged without a discharge summary",
    }
    too_much = command | {
        "command_id": str(uuid.uuid4()),
        "dispute_id": str(uuid.uuid4()),
        "amount_ore": item["amount_ore"] + 1,
    }
    produce(
        endpoints,
        [
            (topics.COMMANDS, b"dispute", json.dumps(command).encode()),
            (topics.COMMANDS, b"dispute-too-much", json.dumps(too_much).encode()),
        ],
    )
    wait_until(
        lambda: (
            db_value(endpoints, "SELECT status FROM disputes WHERE dispute_id = $1", uuid.UUID(dispute_id))
            == "open"
        ),
        what="dispute opened",
    )
    wait_until(
        lambda: db_value(endpoints, "SELECT count(*) FROM rejections WHERE reason = 'dispute_refused'") == 1,
        what="the excessive dispute refused",
    )
    resolve = {
        "type": "resolve_dispute",
        "command_id": str(uuid.uuid4()),
        "dispute_id": dispute_id,
        "outcome": "partially_upheld",
        "agreed_ore": item["amount_ore"] // 2,
        "resolved_by": "tvisteløsningsnemnda",
        "reason": "advisory opinion",
    }
    produce(endpoints, [(topics.COMMANDS, b"dispute", json.dumps(resolve).encode())])
    wait_until(
        lambda: (
            db_value(endpoints, "SELECT status FROM disputes WHERE dispute_id = $1", uuid.UUID(dispute_id))
            == "partially_upheld"
        ),
        what="dispute resolved",
    )
    assert db_value(
        endpoints, "SELECT amount_delta_ore FROM adjustments WHERE dispute_id = $1", uuid.UUID(dispute_id)
    ) == -(item["amount_ore"] // 2)
    assert (
        db_value(endpoints, "SELECT count(*) FROM dispute_log WHERE dispute_id = $1", uuid.UUID(dispute_id))
        == 2
    )
