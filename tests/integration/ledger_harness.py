"""Drive the service layer (intake, close, disputes) against a real PostgreSQL, without the
broker: the rules of corrections and disputes are about the database, and this keeps the
many months of a scenario fast. The broker path is covered by test_pipeline.py."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

import asyncpg
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from contracts.v1 import topics
from contracts.v1.outbound import OpenDispute, Party, PartyRole, ResolveDispute
from services.adapters import outbox
from services.adapters import statement_repository as statements_repo
from services.adapters.ledger_repository import item_from_row
from services.adapters.municipality_registry import load_registry
from services.adapters.postgres import create_pool
from services.adapters.statement_repository import ChainHead, Pair, adjustment_from_row
from services.cli import main as cli
from services.domain.calendar import OSLO, Month
from services.domain.chain import statement_hash
from services.domain.tariffs import Parameter, TariffBook, TariffRule
from services.intake.pseudonym import Pseudonymiser
from services.intake.service import IngestResult, IntakeDeps, ingest
from services.intake.validation import RawRecord
from services.settlement.disputes import open_dispute, resolve_dispute
from services.settlement.service import CloseResult, _dispute_movement, carries_what_is_pending, close_period
from services.settlement.statements import build_statements, stored_body

TABLES = (
    "dispute_log, disputes, adjustments, ledger_items, inbound_events, statement_headers, statement_body_parts, "
    "closed_periods, processed_commands, rejections, outbox, tariff_books"
)

# Who pays for a category's items, for the property tests' own sums: items carry no payer
# on the wire, it follows from the category (domain.md sections 1-3).
PAYER_OF = {
    "discharge_ready_bed_days": "municipality",
    "emergency_bed_days": "health_trust",
    "activity_co_financing": "municipality",
}


def now() -> datetime:
    return datetime.now(UTC)


def oslo_at(day: int, hour: int, start: date = date(2025, 1, 1)) -> str:
    """`hour` o'clock in Oslo, `day` days after `start`, as ISO text (the properties' events)."""
    return (
        datetime.combine(start + timedelta(days=day), datetime.min.time(), OSLO)
        .replace(hour=hour)
        .isoformat()
    )


class Ledger:
    def __init__(self, pool: asyncpg.Pool, tariffs: TariffBook) -> None:
        self.pool = pool
        self.tariffs = tariffs
        self.registry = load_registry()
        self._offset = 0

    @classmethod
    async def fresh(cls, database_url: str, tariffs: TariffBook) -> Ledger:
        pool = await create_pool(database_url)
        async with pool.acquire() as conn:
            await conn.execute(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")
        return cls(pool, tariffs)

    async def send(self, *events: tuple[str, dict[str, Any]]) -> IngestResult:
        records = []
        for topic, value in events:
            self._offset += 1
            records.append(RawRecord(topic, 0, self._offset, b"k", json.dumps(value).encode()))
        deps = IntakeDeps(self.pool, self.tariffs, Pseudonymiser(b"t" * 32), now, self.registry)
        result = await ingest(records, deps)
        assert not result.rejected, f"the scenario's own events were rejected: {result.rejected}"
        return result

    async def close(self, month: str, tariffs: TariffBook | None = None) -> CloseResult:
        """Close the month, and check that every statement it issued is what the contract's
        models give for the same items, adjustments and disputes: the same JSON (parsed: the
        order of keys is not part of the contract) and exactly the same hash."""
        if tariffs is not None:
            self.tariffs = tariffs
        async with self.pool.acquire() as conn:
            pending = await carries_what_is_pending(conn, Month.parse(month))
            disputes = await statements_repo.disputes_to_show(conn) if pending else {}
            heads = await statements_repo.chain_heads(conn)
            last_outbox = await conn.fetchval("SELECT coalesce(max(id), 0) FROM outbox")
        result = await close_period(
            self.pool,
            self.tariffs,
            Month.parse(month),
            command_id=uuid.uuid4(),
            clock=now,
            municipalities=self.registry,
        )
        if not result.already_closed:
            await self._check_against_the_models(Month.parse(month), disputes, heads, last_outbox)
        return result

    async def _check_against_the_models(
        self,
        period: Month,
        disputes: dict[Pair, list[asyncpg.Record]],
        heads: dict[Pair, ChainHead],
        last_outbox: int,
    ) -> None:
        async with self.pool.acquire() as conn:
            statements = await conn.fetch("SELECT * FROM statements WHERE period = $1", period.first_day)
            published = {
                (m.key, json.loads(m.payload)["statement_id"]): m.payload
                for m in await outbox.stored_messages(conn, after_id=last_outbox)
            }
            for row in statements:
                pair = (row["municipality"], row["health_trust"])
                sid = row["statement_id"]
                items = [
                    item_from_row(r)
                    for r in await conn.fetch(
                        "SELECT * FROM ledger_items WHERE service_month = $1 AND municipality = $2 "
                        "AND health_trust = $3",
                        period.first_day,
                        *pair,
                    )
                ]
                adjustments = [
                    adjustment_from_row(r)
                    for r in await conn.fetch(
                        "SELECT * FROM adjustments WHERE statement_id = $1 ORDER BY id", sid
                    )
                ]
                head = heads.get(pair)
                to_municipality, to_trust = build_statements(
                    period,
                    *pair,
                    items,
                    row["issued_at"],
                    sequence=head.sequence + 1 if head else 1,
                    previous_hash=head.hash if head else None,
                    adjustments=adjustments,
                    disputes=[_dispute_movement(d) for d in disputes.get(pair, [])],
                )
                copies = [published[(copy.recipient.key, str(sid))] for copy in (to_municipality, to_trust)]
                for payload, copy in zip(copies, (to_municipality, to_trust), strict=True):
                    message = json.loads(payload)
                    assert message == json.loads(copy.model_dump_json())
                    assert message["statement_hash"] == statement_hash(message) == copy.statement_hash
                # Byte for byte, both parties' copies differ only in recipient and counterparty.
                assert _without_parties(copies[0]) == _without_parties(copies[1])
                assert row["hash"] == to_municipality.statement_hash
                assert row["body"] == stored_body(to_municipality)

    async def published(self, recipient: str | None = None) -> list[tuple[bytes, dict[str, Any]]]:
        """The statement messages in the outbox, in order, as the relay publishes them (raw
        bytes, parsed)."""
        async with self.pool.acquire() as conn:
            messages = await outbox.stored_messages(conn, topic=topics.SETTLEMENTS)
        return [
            (m.payload, json.loads(m.payload)) for m in messages if recipient is None or m.key == recipient
        ]

    async def dispute(
        self,
        statement_id: str,
        *,
        episode_id: str | None,
        category: str,
        month: str,
        amount_ore: int,
        by: str,
        reason: str = "discharged without a discharge summary (epikrise)",
    ) -> uuid.UUID:
        role, number = by.split(":")
        dispute_id = uuid.uuid4()
        command = OpenDispute(
            type="open_dispute",
            command_id=uuid.uuid4(),
            dispute_id=dispute_id,
            statement_id=uuid.UUID(statement_id),
            episode_id=episode_id,
            category=category,  # type: ignore[arg-type]
            service_month=month,
            amount_ore=amount_ore,
            opened_by=Party(role=PartyRole(role), id=number),
            reason=reason,
        )
        await open_dispute(self.pool, command, now)
        return dispute_id

    async def resolve(
        self,
        dispute_id: uuid.UUID,
        outcome: str,
        agreed_ore: int | None = None,
        *,
        resolved_by: str = "tvisteløsningsnemnda",
        reason: str = "advisory opinion",
    ) -> None:
        command = ResolveDispute(
            type="resolve_dispute",
            command_id=uuid.uuid4(),
            dispute_id=dispute_id,
            outcome=outcome,  # type: ignore[arg-type]
            agreed_ore=agreed_ore,
            resolved_by=resolved_by,
            reason=reason,
        )
        await resolve_dispute(self.pool, command, now)


async def alter_stored_bodies(conn: asyncpg.Connection, where: str, path: str, value: str) -> None:
    """Alter stored statements as someone with write access to the database could: each body
    that `where` selects in `statements`, set at `path` to the JSON `value`, its parts
    replaced."""
    altered = await conn.fetch(
        "SELECT statement_id, jsonb_set(body::jsonb, $1::text::text[], $2::jsonb)::text AS body "
        f"FROM statements WHERE {where}",
        path,
        value,
    )
    assert altered, f"no statement where {where}"
    for row in altered:
        await conn.execute("DELETE FROM statement_body_parts WHERE statement_id = $1", row["statement_id"])
        await conn.copy_records_to_table(
            "statement_body_parts",
            records=statements_repo.body_parts(row["statement_id"], row["body"].encode()),
        )


def _without_parties(payload: bytes) -> bytes:
    message = json.loads(payload)
    for key in ("recipient", "counterparty"):
        party = f'"{key}":{json.dumps(message[key], separators=(",", ":"))}'.encode()
        assert payload.count(party) == 1
        payload = payload.replace(party, b"")
    return payload


def event(topic: str, kind: str, at: str, trust: str, **fields: Any) -> tuple[str, dict[str, Any]]:
    value = {
        "event_id": str(uuid.uuid4()),
        "type": kind,
        "source": "itest.corrections",
        "occurred_at": at,
        "health_trust": trust,
        "patient_id": "31129956715",
        "care_area": "somatic",
    } | fields
    return topic, value


def discharge_ready_of(trust: str, municipality: str) -> Callable[..., tuple[str, dict[str, Any]]]:
    """`event` for discharge-ready milestones of a pair whose municipality is both the one the
    patient is registered in and the one they stay in."""
    return partial(
        event,
        topics.DISCHARGE_READY,
        trust=trust,
        registered_municipality=municipality,
        staying_municipality=municipality,
    )


def ready_from(
    dr: Callable[..., tuple[str, dict[str, Any]]], episode_id: str, day: str
) -> list[tuple[str, dict[str, Any]]]:
    """The milestones of an episode of `dr`'s pair (discharge_ready_of) discharge-ready from
    `day`, its municipality told that morning: paid from `day` until its end is sent."""
    return [
        dr("admission_notified", f"{day}T08:00:00+01:00", episode_id=episode_id),
        dr("declared_ready", f"{day}T09:00:00+01:00", episode_id=episode_id),
        dr("municipality_notified", f"{day}T11:00:00+01:00", episode_id=episode_id),
    ]


def pending_output(database: str, *options: str) -> str:
    """What `settlement pending` prints for the ledger in `database`, wide enough for its tables."""
    env = {"DATABASE_URL": database, "KAFKA_BOOTSTRAP_SERVERS": "unused:9092", "COLUMNS": "250"}
    result = CliRunner().invoke(cli.app, ["pending", *options], env=env)
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    return result.output


def national_rate(year: int, nok: str) -> TariffRule:
    """A national discharge-ready rate for `year`, as a deployment adds one the shipped book
    lacks (it has none for 2026)."""
    return TariffRule(
        id=f"test.national.discharge-ready.{year}",
        parameter=Parameter.DISCHARGE_READY_DAY_RATE_NOK,
        value=Decimal(nok),
        valid_from=date(year, 1, 1),
        valid_until=date(year + 1, 1, 1),
    )


def inpatient_activity(drg_points: str, started_at: str, ended_at: str) -> dict[str, Any]:
    """An ordinary, non-surgical inpatient activity's facts (DRG 127O)."""
    return {
        "contact_kind": "inpatient",
        "drg": "127O",
        "drg_points": drg_points,
        "surgical": False,
        "category": "ordinary",
        "started_at": started_at,
        "ended_at": ended_at,
    }


def draw_discharge_ready_episode(
    draw: Callable[..., Any],
    add: Callable[[str, int, int], None],
    *,
    latest_admission: int,
    longest_wait: int,
) -> None:
    """One discharge-ready episode's milestones for a property test, each made by
    `add(kind, day, hour)`: admitted up to day `latest_admission`, declared ready and the
    municipality notified within days, then discharged, withdrawn (perhaps declared ready
    again), able to receive, or still open, up to `longest_wait` days after the notice (day
    89 at the latest)."""
    admitted = draw(st.integers(0, latest_admission))
    ready = admitted + draw(st.integers(0, 3))
    notified = ready + draw(st.integers(0, 2))
    add("admission_notified", admitted, 8)
    add("declared_ready", ready, 9)
    add("municipality_notified", notified, 11)
    ending = draw(st.sampled_from(["discharged", "ready_withdrawn", "municipality_can_receive", "open"]))
    if ending != "open":
        end = min(89, notified + draw(st.integers(1, longest_wait)))
        add(ending, end, 14)
        if ending == "ready_withdrawn" and end < 85 and draw(st.booleans()):
            again = end + draw(st.integers(1, 3))  # a new cycle
            add("declared_ready", again, 15)
            add("municipality_notified", again, 16)


def ledger_property_settings(env_prefix: str, examples: int) -> settings:
    """Hypothesis settings of a property driven through a real ledger: each example is real
    closes and commands, so `{env_prefix}_EXAMPLES` sets how many (default `examples`), the
    same ones on every run, CI's too, and `{env_prefix}_SHRINK=1` shrinks a failing one
    (minutes on a slow machine); without it the failure shows the example's steps as drawn."""
    return settings(
        max_examples=int(os.environ.get(f"{env_prefix}_EXAMPLES", str(examples))),
        deadline=None,
        derandomize=True,
        database=None,
        phases=[
            Phase.explicit,
            Phase.generate,
            *([Phase.shrink] if os.environ.get(f"{env_prefix}_SHRINK") else []),
        ],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
