"""After a scenario: compare what the stack ended with to what was sent.

- nothing lost: every valid event is in `inbound_events`, and nothing else is;
- nothing twice: the ledger equals the oracle's items exactly (a duplicated entry would be
  one too many), and a consumer that dedups statements by `statement_id` sees each pair's
  statement once per party, with the oracle's lines and totals to the øre;
- every invalid message has one rejection on `samhandling.rejected.v1`, with a reason it may
  have, and no valid message has any;
- no raw patient identifier in the database, the logs, the rejections or the statements.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from contracts.v1 import topics
from contracts.v1.identifiers import PATIENT_ID_SEPARATORS
from services.adapters.tariff_files import load_tariffs
from services.domain.tariffs import TariffBook
from services.runtime.processes import ServiceProcess
from services.simulator.hospital import Published
from tests.faults.corpus import PERIOD, Hostile, patient_ids
from tests.faults.harness import TARIFF_DIRS, Delivery, FaultStack, Figures, wait_until
from tests.oracle import expected_items, expected_statements
from tests.topic_reader import read_raw

Sent = Published | Hostile


def tariffs() -> TariffBook:
    return load_tariffs(*TARIFF_DIRS)


def message_of(item: Sent) -> tuple[str, bytes | None, bytes | None]:
    if isinstance(item, Hostile):
        return item.message()
    return (item.topic, item.key.encode(), json.dumps(item.value).encode())


def expected_handled(plan: Sequence[Sent]) -> int:
    """Rows the intake and settlement end with: one event per distinct valid event, one
    rejection per invalid message."""
    valid = {(p.value["source"], p.value["event_id"]) for p in plan if isinstance(p, Published)}
    return len(valid) + sum(isinstance(p, Hostile) for p in plan)


def wait_settled(stack: FaultStack, timeout: float = 60.0) -> None:
    """The month closed and every outbox row (statements, rejections) published."""
    wait_until(
        lambda: (
            stack.db.value("SELECT count(*) FROM closed_periods WHERE period = $1", PERIOD.first_day) == 1
            and stack.db.value("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0
        ),
        timeout,
        f"{PERIOD} closed and its statements published",
    )


def audit(
    stack: FaultStack,
    plan: Sequence[Sent],
    deliveries: Sequence[Delivery],
    figures: Figures,
    *,
    alive: Iterable[ServiceProcess] = (),
) -> None:
    for process in alive:
        assert process.alive(), f"{process.name} died; see {process.log_path}"
    valid = [p for p in plan if isinstance(p, Published)]
    hostile = [(p, d) for p, d in zip(plan, deliveries, strict=True) if isinstance(p, Hostile)]
    figures.events = len({(p.value["source"], p.value["event_id"]) for p in valid})
    figures.invalid = len(hostile)
    book = tariffs()

    _check_events(stack, valid, figures)
    _check_ledger(stack, valid, book, figures)
    _check_statements(stack, valid, book, figures)
    _check_rejections(stack, plan, deliveries, figures)
    _check_privacy(stack, patient_ids(valid) | {pid for h, _ in hostile for pid in h.patient_ids}, figures)


def _check_events(stack: FaultStack, valid: Sequence[Published], figures: Figures) -> None:
    sent = {(p.value["source"], p.value["event_id"]) for p in valid}
    stored = {
        (r["source"], r["event_id"])
        for r in stack.db.rows("SELECT source, event_id::text FROM inbound_events")
    }
    lost, foreign = sent - stored, stored - sent
    figures.lost = len(lost)
    assert not lost, f"{len(lost)} valid events lost, e.g. {sorted(lost)[:3]}"
    assert not foreign, (
        f"{len(foreign)} events stored that were never sent as valid, e.g. {sorted(foreign)[:3]}"
    )


_ITEM_FIELDS = (
    "category",
    "subject_id",
    "health_trust",
    "municipality",
    "service_month",
    "first_day",
    "last_day",
    "quantity",
    "amount_ore",
)


def _check_ledger(stack: FaultStack, valid: Sequence[Published], book: TariffBook, figures: Figures) -> None:
    expected = Counter(
        (
            i.category.value,
            i.subject_id,
            i.health_trust,
            i.municipality,
            i.service_month.first_day,
            i.first_day,
            i.last_day,
            i.quantity,
            i.amount_ore,
        )
        for i in expected_items(valid, book, PERIOD.last_day)
    )
    stored = Counter(
        tuple(r[f] for f in _ITEM_FIELDS)
        for r in stack.db.rows(f"SELECT {', '.join(_ITEM_FIELDS)} FROM ledger_items")
    )
    extra, missing = stored - expected, expected - stored
    figures.duplicated = sum(extra.values())
    assert not extra, f"{sum(extra.values())} ledger entries beyond the oracle's, e.g. {list(extra)[:3]}"
    assert not missing, (
        f"{sum(missing.values())} of the oracle's ledger entries missing, e.g. {list(missing)[:3]}"
    )
    # An item is settled by its month's close, on its pair's statement for the month.
    unsettled = stack.db.value(
        "SELECT count(*) FROM ledger_items i LEFT JOIN statements s ON s.period = i.service_month "
        "AND s.municipality = i.municipality AND s.health_trust = i.health_trust "
        "WHERE i.service_month = $1 AND s.statement_id IS NULL",
        PERIOD.first_day,
    )
    assert unsettled == 0, f"{unsettled} items of the closed month on no statement"


def _parties(statement: dict[str, Any]) -> tuple[str, str]:
    roles = {p["role"]: p["id"] for p in (statement["recipient"], statement["counterparty"])}
    return roles["municipality"], roles["health_trust"]


def _check_statements(
    stack: FaultStack, valid: Sequence[Published], book: TariffBook, figures: Figures
) -> None:
    expected = expected_statements(valid, book, PERIOD)
    published = [
        (r.key, json.loads(r.value)) for r in read_raw(stack.endpoints.bootstrap_servers, topics.SETTLEMENTS)
    ]
    published = [(k, s) for k, s in published if s["period"] == str(PERIOD)]
    figures.copies_published = len(published)

    # What a consumer that dedups by statement_id sees, per recipient.
    seen: dict[tuple[str, bytes | None], dict[str, Any]] = {}
    for key, statement in published:
        first = seen.setdefault((statement["statement_id"], key), statement)
        assert first == statement, "a statement published again must be the same statement"
    by_pair: dict[tuple[str, str], list[tuple[bytes | None, dict[str, Any]]]] = defaultdict(list)
    for (_sid, key), statement in seen.items():
        by_pair[_parties(statement)].append((key, statement))

    figures.statements = len(by_pair)
    assert set(by_pair) == set(expected), (
        f"statements for {sorted(set(by_pair) ^ set(expected))[:5]} differ from the oracle's pairs"
    )
    stored = stack.db.value("SELECT count(*) FROM statements WHERE period = $1", PERIOD.first_day)
    assert stored == len(expected), f"{stored} statements stored for {len(expected)} pairs"
    for pair, copies in by_pair.items():
        keys = sorted(k or b"" for k, _ in copies)
        assert keys == sorted([f"municipality:{pair[0]}".encode(), f"health_trust:{pair[1]}".encode()]), (
            f"{pair}: one statement to each party, keyed by recipient; got {keys}"
        )
        (_, a), (_, b) = copies
        for field in ("statement_id", "lines", "items", "totals"):
            assert a[field] == b[field], f"{pair}: the parties' copies differ in {field}"
        lines, totals = expected[pair]
        got = (
            a["totals"]["municipality_pays_ore"],
            a["totals"]["health_trust_pays_ore"],
            a["totals"]["net_ore"],
            a["totals"]["net_payer"],
        )
        want = (
            totals.municipality_pays_ore,
            totals.health_trust_pays_ore,
            totals.net_ore,
            totals.net_payer.value,
        )
        assert got == want, f"{pair}: totals {got}, the oracle says {want}"
        assert [
            (x["category"], x["status"], x["quantity"], x["amount_ore"], x["rule"]) for x in a["lines"]
        ] == [(x.category.value, x.status.value, x.quantity, x.amount_ore, x.rule_id) for x in lines], (
            f"{pair}: lines differ from the oracle's"
        )


def _check_rejections(
    stack: FaultStack, plan: Sequence[Sent], deliveries: Sequence[Delivery], figures: Figures
) -> None:
    rejections: dict[str, dict[str, Any]] = {}
    for raw in read_raw(stack.endpoints.bootstrap_servers, topics.REJECTED):
        rejection = json.loads(raw.value)
        rejections.setdefault(rejection["rejection_id"], rejection)
    at: dict[tuple[str, int, int], list[dict[str, Any]]] = defaultdict(list)
    for rejection in rejections.values():
        at[(rejection["topic"], rejection["partition"], rejection["offset"])].append(rejection)
    figures.rejected = len(rejections)

    wrong: list[str] = []
    for item, delivery in zip(plan, deliveries, strict=True):
        topic = item.topic
        found = at.pop((topic, delivery.partition, delivery.offset), [])
        if isinstance(item, Published):
            if found:
                wrong.append(f"valid event {item.value['event_id']} rejected: {found[0]['reason']}")
        elif len(found) != 1:
            wrong.append(f"{item.kind} on {topic}@{delivery.offset}: {len(found)} rejections")
        elif item.reasons and found[0]["reason"] not in item.reasons:
            wrong.append(
                f"{item.kind}: rejected as {found[0]['reason']}, expected one of {sorted(item.reasons)}"
            )
        elif not found[0]["message"]:
            wrong.append(f"{item.kind}: rejected without a message")
    assert not wrong, f"{len(wrong)} rejection problems, e.g. {wrong[:5]}"
    if at:
        _check_producer_copies(stack, plan, at, figures)


def _check_producer_copies(
    stack: FaultStack,
    plan: Sequence[Sent],
    at: dict[tuple[str, int, int], list[dict[str, Any]]],
    figures: Figures,
) -> None:
    """Rejections at positions the hospital's delivery reports do not name. Without an
    idempotent producer (Tansu has none), a produce request retried after its connection
    was cut can land twice, and only the second copy is reported. Such a copy is a second,
    byte-identical message: it must get its own rejection like the first; anything else
    there is a rejection of something never sent."""
    hostile = {(h.topic, h.key, h.value) for h in plan if isinstance(h, Hostile)}
    records = {
        (topic, r.partition, r.offset): (topic, r.key, r.value)
        for topic in {position[0] for position in at}
        for r in read_raw(stack.endpoints.bootstrap_servers, topic)
    }
    for position, found in at.items():
        assert records.get(position) in hostile, f"a rejection of a message never sent: {found[0]}"
        assert len(found) == 1 and found[0]["reason"] and found[0]["message"], found
    figures.producer_copies = len(at)


# The separators the contract counts (a space, dashes, a dot, `_`, `:`, `/`, no-break spaces).
_WRITTEN_IN_TWO = re.compile(
    r"(?<![0-9])([0-9]{6})[" + re.escape(PATIENT_ID_SEPARATORS) + r"]([0-9]{5})(?![0-9])"
)
_LONG_DIGIT_RUN = re.compile(r"[0-9]{11,}")


def leaked(text: str, ids: set[str]) -> set[str]:
    """The ids in `text`: as 11 digits, inside a longer run of digits, or written 6 + 5 with a
    separator between. (Not by joining any digits across separators: at volume that
    matches some identifier by chance, e.g. a trust number, a space and a date.)"""
    found: set[str] = set()
    # Also with the replacement characters taken out: a payload in UTF-16 has a NUL beside
    # every digit, and a NUL stored as U+FFFD kept the digits of an id apart.
    for variant in {text, text.replace("\ufffd", "")}:
        found.update(a + b for a, b in _WRITTEN_IN_TWO.findall(variant))
        for run in _LONG_DIGIT_RUN.findall(variant):
            found.update(run[i : i + 11] for i in range(len(run) - 10))
    return found & ids


def _check_privacy(stack: FaultStack, ids: set[str], figures: Figures) -> None:
    figures.patient_ids_scanned = len(ids)
    # Every column of every table as text, but bytea: shown as hex, any binary turns into long
    # runs of digits that match some identifier by chance. The only bytea holding data is
    # the outbox payload (rejections), scanned decoded below; the others are hashes. A
    # statement's copies are made from its body (in `statements`) when published, and are
    # scanned on the topic too.
    columns: dict[str, list[str]] = defaultdict(list)
    for r in stack.db.rows(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = 'public' AND data_type <> 'bytea' ORDER BY table_name, ordinal_position"
    ):
        columns[r["table_name"]].append(f'"{r["column_name"]}"::text')
    places = {
        f"table {table}": str(
            stack.db.value(
                f"SELECT coalesce(string_agg(concat_ws(' ', {', '.join(cols)}), ' '), '') FROM \"{table}\""
            )
        )
        for table, cols in columns.items()
    }
    places["outbox payloads"] = str(
        stack.db.value("SELECT coalesce(string_agg(convert_from(payload, 'UTF8'), ' '), '') FROM outbox")
    )
    places["logs"] = stack.logs()
    for topic in (topics.REJECTED, topics.SETTLEMENTS):
        records = read_raw(stack.endpoints.bootstrap_servers, topic)
        places[topic] = " ".join(
            (r.key or b"").decode(errors="replace") + " " + r.value.decode(errors="replace") for r in records
        )
    assert "patient_pseudonym" in places["table inbound_events"], "the scan looks at real stored events"
    assert '"statement_hash"' in places["table statements"], "and at the bodies the copies are made from"
    problems = {where: len(found) for where, text in places.items() if (found := leaked(text, ids))}
    assert not problems, f"raw patient identifiers found: {problems}"
