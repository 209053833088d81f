"""Each party's copy of a statement is made from the stored body when it is published
(`addressed_copy`): it must be, byte for byte, the copy the contract's model gives, with
the items as the close rendered them (canonical JSON), for both parties."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest

from contracts.v1.outbound import Category as WireCategory
from contracts.v1.outbound import DisputeEntry, Party, PartyRole, SettlementStatement
from services.adapters.outbox import addressed_copy, copy_size
from services.domain.calendar import Month
from services.domain.chain import statement_hash, with_items
from services.domain.ledger import Category, LedgerItem, PayerRole
from services.domain.statements import Adjustment, DisputeMovement
from services.settlement.statements import build_statements, encode_statements

PERIOD = Month(2024, 3)
ISSUED = datetime(2024, 4, 1, 5, 0, 7, 123456, tzinfo=UTC)
BERGEN, HELSE_BERGEN = "4601", "983974724"
TROMSO, UNN = "5501", "983974899"


def _item(
    category: Category, subject: str, day: int, quantity: int, unit: int | None, note: str | None = None
) -> LedgerItem:
    return LedgerItem(
        category=category,
        subject_id=subject,
        health_trust=HELSE_BERGEN,
        municipality=BERGEN,
        payer_role=PayerRole.MUNICIPALITY,
        service_month=PERIOD,
        first_day=date(2024, 3, day),
        last_day=date(2024, 3, day + quantity - 1),
        quantity=quantity,
        unit_price_ore=unit,
        amount_ore=None if unit is None else unit * quantity,
        rule_id=None if unit is None else "national.discharge-ready.2024",
        note=note,
    )


ITEMS = [
    _item(Category.DISCHARGE_READY_BED_DAYS, "EP-1", 1, 5, 598_100),
    _item(Category.DISCHARGE_READY_BED_DAYS, "EP-2", 10, 2, None),
    _item(
        Category.ACTIVITY_CO_FINANCING,
        "ACT-Æ1",
        4,
        1,
        52_248,
        note='Tromsø «capped» "at 4" \\ tab\t newline\n ctl\x01 🏥',
    ),
]

DISPUTE = uuid.UUID("0b4f5a7e-3c1d-4a8e-9f0b-5d2c1e6a7b8c")
RELEASED = uuid.UUID("9e8d7c6b-5a49-4838-a726-150493827161")
ADJUSTMENTS = [
    Adjustment(
        category=Category.DISCHARGE_READY_BED_DAYS,
        payer_role=PayerRole.MUNICIPALITY,
        corrects_month=Month(2024, 2),
        subject_id="EP-Ø",
        quantity_delta=-1,
        amount_delta_ore=-598_100,
        cause="event",
        caused_by=("sykehus-ø", "3f2a1b4c-5d6e-4f70-8192-a3b4c5d6e7f8"),
        note="utskrivningsklar dag trukket",
    ),
    Adjustment(
        category=Category.ACTIVITY_CO_FINANCING,
        payer_role=PayerRole.MUNICIPALITY,
        corrects_month=Month(2024, 1),
        subject_id="ACT-9",
        quantity_delta=0,
        amount_delta_ore=-1_500,
        cause="dispute",
        dispute_id=str(RELEASED),
    ),
]


def _dispute(dispute_id: uuid.UUID, effect: str, status: str) -> tuple[DisputeMovement, DisputeEntry]:
    movement = DisputeMovement(
        dispute_id=str(dispute_id), payer_role=PayerRole.MUNICIPALITY, amount_ore=1_500, effect=effect
    )
    entry = DisputeEntry(
        dispute_id=dispute_id,
        disputed_statement_id=uuid.UUID("11111111-2222-4333-8444-555555555555"),
        episode_id="ACT-9",
        category=WireCategory.ACTIVITY_CO_FINANCING,
        service_month="2024-01",
        payer_role=PartyRole.MUNICIPALITY,
        amount_ore=1_500,
        status=status,  # type: ignore[arg-type]
        effect=effect,  # type: ignore[arg-type]
        agreed_ore=1_500 if status != "open" else None,
        opened_by="kommune 4601 (Bjørnafjorden-saka)",
        reason='utskrevet uten epikrise — "ikke betalbar"',
    )
    return movement, entry


DISPUTES = [_dispute(DISPUTE, "held", "open"), _dispute(RELEASED, "released", "upheld")]

CASES: dict[str, dict[str, Any]] = {
    "items": {"items": ITEMS},
    "adjustments, disputes and non-ASCII text": {
        "items": ITEMS,
        "adjustments": ADJUSTMENTS,
        "disputes": DISPUTES,
        "sequence": 4,
        "previous_hash": "sha256:" + "c0" * 32,
    },
    "no items": {
        "items": [],
        "adjustments": ADJUSTMENTS[:1],
        "sequence": 2,
        "previous_hash": "sha256:" + "0" * 64,
    },
}


def _canonical_items(statement: SettlementStatement) -> bytes:
    """The items as a close renders them in SQL: canonical JSON, the array's contents."""
    return ",".join(
        json.dumps(i.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        for i in statement.items
    ).encode()


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize(("municipality", "health_trust"), [(BERGEN, HELSE_BERGEN), (TROMSO, UNN)])
def test_a_partys_copy_from_the_stored_body_is_the_models_copy_byte_for_byte(
    case: str, municipality: str, health_trust: str
) -> None:
    given = dict(CASES[case])
    items = given.pop("items")
    to_municipality, to_trust = build_statements(PERIOD, municipality, health_trust, items, ISSUED, **given)
    canonical = _canonical_items(to_municipality)
    encoded = encode_statements(PERIOD, municipality, health_trust, items, canonical, ISSUED, **given)

    for role, model in ((PartyRole.MUNICIPALITY, to_municipality), (PartyRole.HEALTH_TRUST, to_trust)):
        copy = addressed_copy(encoded.body, role, municipality, health_trust)
        # What the close published before the outbox referred to the body: the model's own
        # JSON of the copy with no items, the rendered items spliced in.
        expected = with_items(model.model_copy(update={"items": ()}).model_dump_json().encode(), canonical)
        assert copy == expected
        assert copy_size(encoded.body, role, municipality, health_trust) == len(copy)
        assert json.loads(copy) == json.loads(model.model_dump_json())
        assert SettlementStatement.model_validate_json(copy) == model
        message = json.loads(copy)
        assert message["recipient"] == model.recipient.model_dump(mode="json")
        assert message["statement_hash"] == statement_hash(message) == encoded.hash == model.statement_hash
        # Non-ASCII text as UTF-8, not escaped: in the items as rendered, and elsewhere as
        # pydantic writes it.
        assert ("Tromsø «capped»".encode() in copy and "🏥".encode() in copy) == bool(items)
        assert ('"EP-Ø"'.encode() in copy) == bool(given.get("adjustments"))
        assert ("uten epikrise — ".encode() in copy) == bool(given.get("disputes"))


def test_a_party_is_put_in_as_the_contract_serialises_it() -> None:
    [to_municipality, _] = build_statements(PERIOD, BERGEN, HELSE_BERGEN, [], ISSUED)
    body = encode_statements(PERIOD, BERGEN, HELSE_BERGEN, [], b"", ISSUED).body
    copy = addressed_copy(body, PartyRole.MUNICIPALITY, BERGEN, HELSE_BERGEN)
    recipient = Party(role=PartyRole.MUNICIPALITY, id=BERGEN).model_dump_json().encode()
    assert b'"period":"2024-03","recipient":' + recipient in copy
    assert b'"recipient":{"role":"municipality","id":"4601"},' in copy
    assert b'"counterparty":{"role":"health_trust","id":"983974724"},"sequence":1,' in copy
    assert copy == to_municipality.model_dump_json().encode()


@pytest.mark.parametrize("body", [b"", b"{}", b'{"sequence":1}', b'{"period":"2024-03","sequence":1}'])
def test_what_is_not_a_stored_body_is_refused(body: bytes) -> None:
    with pytest.raises(ValueError, match="not a stored statement body"):
        addressed_copy(body, PartyRole.MUNICIPALITY, BERGEN, HELSE_BERGEN)
