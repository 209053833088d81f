"""A close renders items in SQL and sums lines there, without a model per item: the
statements it publishes and stores must be what the contract's models give for the same
items, as JSON (parsed: items are rendered with sorted keys, and the order of keys is not
part of the contract) and with exactly the same hash (the harness's `close` checks every
statement of every close; here the items are the awkward ones)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from contracts.v1.outbound import PartyRole, SettlementStatement
from services.adapters import statement_repository as statements_repo
from services.adapters.ledger_repository import item_from_row
from services.adapters.outbox import addressed_copy
from services.domain.calendar import Month
from services.domain.chain import statement_hash
from services.settlement.statements import build_statements, encode_statements, stored_body
from tests.integration.ledger_harness import Ledger

pytestmark = pytest.mark.integration
COLUMNS = (
    "subject_key", "service_month", "part", "category", "subject_id", "health_trust", "municipality",
    "payer_role", "first_day", "last_day", "quantity", "unit_price_ore", "amount_ore", "rule_id",
    "open_ended", "not_payable_reason", "note",
)  # fmt: skip
PERIOD = Month(2024, 5)
MONTH = PERIOD.first_day
ACT, DR, EMERGENCY = "activity_co_financing", "discharge_ready_bed_days", "emergency_bed_days"


def row(
    category: str,
    subject: str,
    first: int,
    days: int,
    unit: int | None,
    *,
    municipality: str = "4601",
    trust: str = "983974724",
    payer: str = "municipality",
    rule: str | None = "rule.a",
    reason: str | None = None,
    note: str | None = None,
    part: int = 0,
    amount: int | None = None,
) -> tuple[Any, ...]:
    family = {ACT: "activity", DR: "discharge_ready", EMERGENCY: "emergency_beds"}[category]
    start = MONTH.replace(day=first)
    return (
        f"{family}:{trust}:{subject}", MONTH, part, category, subject, trust, municipality, payer, start,
        start.replace(day=first + days - 1), days, unit,
        amount if amount is not None else (None if unit is None else unit * days), rule, False, reason, note,
    )  # fmt: skip


AWKWARD = [
    # activities: each its own price; notes with quotes, a backslash, a tab, a newline, a
    # control character, non-ASCII and an emoji, all escaped as JSON escapes them
    row(ACT, "ACT-2", 3, 1, 81_350, note='1.5 DRG points "capped" at 4 \\ x'),
    row(ACT, "ACT-1", 3, 1, 52_248, note="tab\there\nnewline \x01 ctl, Tromsø Bjørnafjorden 🏥"),
    row(ACT, "ACT-10", 2, 1, 1, note="municipality number 1201 retired: settled on its successor 4601"),
    row(ACT, "ACT-3", 9, 1, None, rule=None, note="2.1 DRG points"),  # unrated
    row(ACT, "act-lower", 9, 1, 7, note=""),  # sorts after upper case, bytewise
    # bed-days: runs of one subject in two parts, one price per line, unrated and mapped days
    row(DR, "EP-1", 1, 5, 598_100, rule="national.discharge-ready.2024"),
    row(DR, "EP-1", 20, 3, 598_100, rule="national.discharge-ready.2024", part=1),
    row(
        DR,
        "EP-2",
        4,
        2,
        598_100,
        rule="national.discharge-ready.2024",
        note="x; municipality number 1201 retired: settled on its successor 4601; y",
    ),
    row(DR, "EP-3", 7, 4, None, rule=None),
    # the other direction, held: not payable with and without an empty reason
    row(
        EMERGENCY,
        "KAD-1",
        2,
        3,
        None,
        payer="health_trust",
        rule=None,
        reason="no emergency-bed rate agreed for this pair: nothing owed",
    ),
    row(EMERGENCY, "KAD-2", 5, 2, None, payer="health_trust", rule=None, reason="", note='why "not"'),
    row(EMERGENCY, "KAD-3", 8, 2, 320_000, payer="health_trust", rule="agreement.x"),
    # a second pair, and a third with the same municipality
    row(ACT, "ACT-9", 4, 1, 99, municipality="4624"),
    row(DR, "EP-9", 4, 2, 598_100, municipality="4601", trust="983971636"),
]


# The items' free text is written as JSON strings by JSON_SCALAR on PostgreSQL 17 and later,
# by to_json before: both are held to the models' bytes, whichever the server would use.
@pytest.mark.parametrize("since", [0, 1000], ids=["JSON_SCALAR", "to_json"])
async def test_items_rendered_in_sql_give_the_models_bytes_and_hash(
    ledger: Ledger, since: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(statements_repo, "_JSON_SCALAR_SINCE", since)
    issued = datetime(2024, 6, 1, 6, 30, 12, 345678, tzinfo=UTC)
    async with ledger.pool.acquire() as conn, conn.transaction():
        if since == 0 and conn.get_server_version().major < 17:
            pytest.skip("JSON_SCALAR needs PostgreSQL 17; this server renders with to_json")
        await conn.copy_records_to_table("ledger_items", records=AWKWARD, columns=COLUMNS)
        await conn.execute("SET LOCAL DateStyle = 'SQL, DMY'")  # a server's own style does not matter
        await statements_repo.render_settings(conn)
        every = sorted((r[6], r[5]) for r in AWKWARD)  # (municipality, health trust)
        rendered = dict(await statements_repo.rendered_pairs(conn, PERIOD, every[0], every[-1]))
        sums = await statements_repo.line_sums(conn, PERIOD)
        stored = await conn.fetch("SELECT * FROM ledger_items")

    assert (
        set(rendered)
        == set(sums.lines)
        == set(sums.items)
        == {("4601", "983974724"), ("4624", "983974724"), ("4601", "983971636")}
    )
    assert list(rendered) == sorted(rendered), "the pairs come in the order statements are issued in"
    for pair, items in rendered.items():
        mine = [item_from_row(r) for r in stored if (r["municipality"], r["health_trust"]) == pair]
        assert items.count == len(mine) == sums.items[pair]
        extra: dict[str, Any] = {"sequence": 3, "previous_hash": "sha256:" + "ab" * 32}
        to_municipality, to_trust = build_statements(PERIOD, *pair, mine, issued, **extra)
        encoded = encode_statements(PERIOD, *pair, sums.lines[pair], items.canonical, issued, **extra)
        for_municipality = addressed_copy(encoded.body, PartyRole.MUNICIPALITY, *pair)
        for_trust = addressed_copy(encoded.body, PartyRole.HEALTH_TRUST, *pair)

        assert json.loads(for_municipality) == json.loads(to_municipality.model_dump_json())
        assert json.loads(for_trust) == json.loads(to_trust.model_dump_json())
        assert encoded.hash == to_municipality.statement_hash == statement_hash(json.loads(for_trust))
        # The bytes hashed are the items as they are published: canonical JSON, sorted keys.
        hashed = json.dumps(
            json.loads(to_municipality.model_dump_json())["items"],
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode()
        assert b"[" + items.canonical + b"]" == hashed
        assert hashed in for_municipality and hashed in for_trust
        assert json.loads(encoded.body) == stored_body(to_municipality)
        assert SettlementStatement.model_validate_json(for_municipality) == to_municipality


async def test_awkward_items_are_published_exactly_as_the_models_give_them(ledger: Ledger) -> None:
    priced = [r for r in AWKWARD if r[12] is not None]  # held days are re-rated from facts at a close
    async with ledger.pool.acquire() as conn:
        await conn.copy_records_to_table("ledger_items", records=priced, columns=COLUMNS)

    result = await ledger.close("2024-05")  # checks every statement against build_statements

    assert (result.statements, result.items) == (3, len(priced))
    published = await ledger.published()
    assert len(published) == 6
    for payload, message in published:
        statement = SettlementStatement.model_validate_json(payload)
        assert json.loads(statement.model_dump_json()) == message
        assert statement_hash(message) == message["statement_hash"]
    bergen = next(
        m for _, m in published if m["recipient"]["id"] == "4601" and m["counterparty"]["id"] == "983974724"
    )
    assert [i["episode_id"] for i in bergen["items"]] == [
        "ACT-1", "ACT-10", "ACT-2", "act-lower", "EP-1", "EP-1", "EP-2", "KAD-3",
    ]  # fmt: skip
    assert bergen["totals"]["municipality_pays_ore"] == 52_248 + 1 + 81_350 + 7 + 8 * 598_100 + 2 * 598_100
    assert bergen["totals"]["health_trust_pays_ore"] == 2 * 320_000
    mapped = [line for line in bergen["lines"] if line["note"] and "1201" in line["note"]]
    assert len(mapped) == 2, "a mapped number gets a line of its own, also among other notes"


async def test_a_month_with_nothing_but_adjustments_still_gets_its_statement(ledger: Ledger) -> None:
    async with ledger.pool.acquire() as conn:
        await conn.copy_records_to_table("ledger_items", records=AWKWARD[:2], columns=COLUMNS)
    await ledger.close("2024-05")
    async with ledger.pool.acquire() as conn:
        await conn.execute(
            """
            INSERT INTO adjustments (subject_key, corrects_month, category, subject_id, municipality,
                                     health_trust, payer_role, quantity_delta, amount_delta_ore, cause, note)
            VALUES ('activity:983974724:ACT-1', $1, $2, 'ACT-1', '4601', '983974724', 'municipality', 0, -500,
                    'tariff', 'a "corrected" rate')
            """,
            MONTH,
            ACT,
        )

    result = await ledger.close("2024-06")

    assert (result.statements, result.items) == (1, 0)
    [(_, june)] = [p for p in await ledger.published("municipality:4601")][1:]
    assert june["items"] == [] and june["adjustments"][0]["amount_delta_ore"] == -500
    assert june["previous_statement_hash"] is not None
