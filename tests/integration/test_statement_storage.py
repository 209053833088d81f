"""A statement's body is stored in parts that stay in line in their rows (migration 0017) and
read back through `statements` byte for byte as issued; `settlement verify` reports a body
altered or lost in the database instead of failing on it."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime

import pytest

from contracts.v1 import topics
from services.adapters import outbox
from services.adapters import statement_repository as statements_repo
from services.adapters.outbox import IssuedStatement, OutboxRelay
from services.domain.calendar import Month
from services.settlement.statements import encode_statements
from services.settlement.verification import verify_database
from tests.integration.ledger_harness import Ledger

pytestmark = pytest.mark.integration
PERIOD = Month(2024, 5)
PAIR = ("4601", "983974724")
PART = statements_repo.PART_BYTES


def _statement(items: int, pair: tuple[str, str] = PAIR) -> tuple[object, ...]:
    """A statement row as a close writes it, with `items` items, in a note that puts a
    two-byte letter (ø) across many part boundaries."""
    issued = datetime(2024, 6, 1, 6, 0, tzinfo=UTC)
    padding = b",".join(
        b'{"episode_id":"EP-%06d","note":"Troms\xc3\xb8 %s"}' % (n, b"x" * (n % 7)) for n in range(items)
    )
    encoded = encode_statements(PERIOD, *pair, [], padding, issued)
    return (
        encoded.statement_id, PERIOD.first_day, *pair, encoded.body, issued, encoded.sequence,
        encoded.previous_hash, encoded.hash,
    )  # fmt: skip


def test_the_migration_and_the_repository_cut_bodies_alike() -> None:
    migration = importlib.import_module("services.migrations.versions.0017_statement_bodies_in_parts")
    assert migration.PART_BYTES == PART


def test_a_body_is_cut_into_parts_that_join_to_it() -> None:
    row = _statement(1000)
    body = row[4]
    assert isinstance(body, bytes) and len(body) > 3 * PART
    parts = statements_repo.body_parts(row[0], body)  # type: ignore[arg-type]
    assert [n for _, n, _ in parts] == list(range(len(parts)))
    assert all(len(p) == PART for _, _, p in parts[:-1]) and 0 < len(parts[-1][2]) <= PART
    assert b"".join(p for _, _, p in parts) == body
    assert statements_repo.body_parts(row[0], b"") == []  # type: ignore[arg-type]


async def test_a_stored_body_reads_back_byte_for_byte_from_parts_kept_in_line(ledger: Ledger) -> None:
    small, large = _statement(2), _statement(20_000, ("5501", "983974899"))
    async with ledger.pool.acquire() as conn, conn.transaction():
        await statements_repo.insert_statements(conn, [small, large])
    async with ledger.pool.acquire() as conn:
        for row in (small, large):
            stored = await conn.fetchrow(
                "SELECT body_bytes, body::text AS text, period, municipality, health_trust, issued_at, sequence, "
                "previous_hash, hash FROM statements WHERE statement_id = $1",
                row[0],
            )
            assert stored["body_bytes"] == row[4]
            assert stored["text"].encode() == row[4]  # the json column: the same text, not re-rendered
            assert tuple(stored)[2:] == (*row[1:4], *row[5:])
        parts = await conn.fetchval(
            "SELECT count(*) FROM statement_body_parts WHERE statement_id = $1", large[0]
        )
        assert parts == -(-len(large[4]) // PART) > 100  # type: ignore[arg-type]
        # Nothing went out of line: the parts' TOAST table holds nothing, and no part is
        # larger than it was written.
        assert (
            await conn.fetchval(
                "SELECT pg_relation_size(reltoastrelid) FROM pg_class WHERE relname = 'statement_body_parts'"
            )
            == 0
        )
        assert await conn.fetchval("SELECT max(pg_column_size(bytes)) FROM statement_body_parts") <= PART + 4


async def test_verify_reports_a_body_altered_into_something_else_or_lost(ledger: Ledger) -> None:
    rows = [_statement(400)]
    async with ledger.pool.acquire() as conn, conn.transaction():
        await statements_repo.insert_statements(conn, rows)
    async with ledger.pool.acquire() as conn:
        assert await verify_database(conn, *PAIR) == (1, [])
        sid = rows[0][0]
        # A part in the middle lost: what is left is not JSON.
        await conn.execute("DELETE FROM statement_body_parts WHERE statement_id = $1 AND part = 1", sid)
        count, problems = await verify_database(conn, *PAIR)
        assert (count, problems) == (
            1,
            [f"statement {sid} (sequence 1): its stored body is not a JSON object: it was altered"],
        )
        # Every part lost.
        await conn.execute("DELETE FROM statement_body_parts WHERE statement_id = $1", sid)
        count, problems = await verify_database(conn, *PAIR)
        assert (count, problems) == (
            1,
            [f"statement {sid} (sequence 1): its body is missing from the database"],
        )


async def test_the_relay_holds_a_statement_whose_body_was_lost_and_says_so(ledger: Ledger) -> None:
    row = _statement(3)
    async with ledger.pool.acquire() as conn, conn.transaction():
        await statements_repo.insert_statements(conn, [row])
        await outbox.enqueue_statements(conn, topics.SETTLEMENTS, [IssuedStatement(row[0], row[4], *PAIR)])  # type: ignore[arg-type]
        await conn.execute("DELETE FROM statement_body_parts WHERE statement_id = $1", row[0])
    sent: list[bytes] = []

    async def publish(topic: str, key: str | None, payload: bytes) -> None:
        sent.append(payload)

    with pytest.raises(ValueError, match=f"statement {row[0]}: its body is missing from the database"):
        await OutboxRelay(ledger.pool, publish).publish_pending()
    assert sent == []
    async with ledger.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 2
