"""Intake service layer: a batch of raw records in, one database transaction out.

Offsets are committed by the subscriber only after this returns, i.e. after the commit:
a crash anywhere before that redelivers the batch, and the dedup key makes the second
delivery a no-op.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from contracts.v1.outbound import ReasonCode
from services.adapters import ledger_repository as repo
from services.adapters import rejection_repository
from services.adapters.postgres import TRANSIENT_DB_ERRORS, DatabaseOutage, UnitOfWork, retry_transient
from services.domain.municipalities import Registry
from services.domain.tariffs import TariffBook
from services.intake.pseudonym import Pseudonymiser
from services.intake.validation import Accepted, Outcome, RawRecord, Rejected, differing_fields, validate
from services.rating.service import rerate

log = logging.getLogger(__name__)
MAX_ATTEMPTS_PER_RECORD = 3
CHUNK = 500  # records per transaction; a batch of 2,000 is four of them, overlapped
YIELD_EVERY = 25  # records validated between turns given to the write in flight


@dataclass
class IntakeDeps:
    pool: asyncpg.Pool
    tariffs: TariffBook
    pseudonymise: Pseudonymiser
    clock: Callable[[], datetime]
    registry: Registry | None = None
    # Test-only fault hook (Settings.fault_fail_rating_for_source), None in operation.
    fail_rating_for_source: str | None = None
    # How many of the process's writes run at once: one limit for all the topics' batches,
    # all of the pool's connections but one, left for the outbox relay, which would otherwise
    # wait behind a chunk of 500 for each of its statements.
    writes: asyncio.Semaphore = field(init=False)
    # What the process says of the database being away: one for all its tasks (bootstrap).
    outage: DatabaseOutage = field(default_factory=DatabaseOutage)

    def __post_init__(self) -> None:
        self.writes = asyncio.Semaphore(max(1, int(self.pool.get_max_size()) - 1))


class InjectedFault(RuntimeError):
    """Raised only by the test-only hook `fail_rating_for_source`: a non-transient failure."""


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    ledger_items: int = 0
    off_key: int = 0  # accepted with a key other than the subject id (the contract's key)
    # Where each rejected record was and why, "topic[partition]@offset reason", for the log.
    rejected_at: list[str] = field(default_factory=list)

    def add(self, other: IngestResult) -> None:
        self.rejected_at.extend(other.rejected_at)
        self.off_key += other.off_key
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.ledger_items += other.ledger_items
        for reason, count in other.rejected.items():
            self.rejected[reason] = self.rejected.get(reason, 0) + count


async def ingest(records: Sequence[RawRecord], deps: IntakeDeps) -> IngestResult:
    """Validate and write `records`: a batch of up to `CHUNK` in one transaction, a larger
    one cut by partition, each partition's in order, in chunks, and different partitions'
    at the same time, each on a connection of its own.

    Under load, while one partition's chunk is being written, another's is validated or
    written, and the database and the Python process stop taking turns. At a moderate load
    a poll brings a few records of each partition, and a transaction apiece cost more than
    the records in it: at 2,000 events/s, three times the transactions and half as much
    latency again (docs/performance.md). A subject whose events came on two partitions (a
    producer keying or partitioning otherwise than the contract asks) is written by one
    transaction after the other: each holds its subjects' locks (`lock_subjects`). The
    caller commits offsets only after this returns; a crash redelivers the whole batch, and
    what was written already is recognised as duplicates."""
    now = deps.clock()
    groups = [records] if len(records) <= CHUNK else _by_partition(records)
    tasks = [asyncio.create_task(_ingest_in_order(group, deps, now)) for group in groups]
    try:
        results = await asyncio.gather(*tasks)
    finally:
        # One failed: the others stop too (the batch is delivered again as a whole).
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    total = IngestResult()
    for result in results:
        total.add(result)
    return total


def _by_partition(records: Sequence[RawRecord]) -> list[Sequence[RawRecord]]:
    by_partition: dict[tuple[str, int], list[RawRecord]] = {}
    for record in records:
        by_partition.setdefault((record.topic, record.partition), []).append(record)
    return list(by_partition.values())


async def _ingest_in_order(records: Sequence[RawRecord], deps: IntakeDeps, now: datetime) -> IngestResult:
    """`records` (a partition's, or a small batch) in chunks, validating one chunk while the
    one before is being written: validation is Python's work and the write mostly the
    database's. The writes stay one after another, in order, so a chunk is always rated
    with everything before it committed."""
    result = IngestResult()
    writing: asyncio.Task[IngestResult] | None = None
    try:
        for start in range(0, len(records), CHUNK):
            outcomes: list[Outcome] = []
            off_key = 0
            for record in records[start : start + CHUNK]:
                outcome = _validate(record, deps, now)
                if isinstance(outcome, Accepted) and record.key != outcome.subject_id.encode():
                    off_key += 1
                outcomes.append(outcome)
                if len(outcomes) % YIELD_EVERY == 0:
                    await asyncio.sleep(0)  # the writes in flight send their next statements
            result.off_key += off_key
            if writing is not None:
                result.add(await writing)
            writing = asyncio.create_task(_write_in_turn(outcomes, deps, now))
        if writing is not None:
            result.add(await writing)
            writing = None
    finally:
        if writing is not None and not writing.done():
            writing.cancel()
            await asyncio.gather(writing, return_exceptions=True)
    return result


async def _write_in_turn(outcomes: Sequence[Outcome], deps: IntakeDeps, now: datetime) -> IngestResult:
    async with deps.writes:
        return await _write_in_halves(outcomes, deps, now)


async def _write_in_halves(outcomes: Sequence[Outcome], deps: IntakeDeps, now: datetime) -> IngestResult:
    """The outcomes in one transaction; should that fail for a reason that is not transient,
    each half in its own, down to single records. A record that cannot be written then costs
    its batch about 2·log2(n) transactions instead of n, and the records around it are
    written as usual."""
    if len(outcomes) == 1:
        return await _write_alone(outcomes[0], deps, now)
    try:
        return await retry_transient(
            lambda: _write(outcomes, deps, now), what="intake batch", outage=deps.outage
        )
    except Exception as exc:
        log.warning("intake batch of %d failed (%s); writing it in halves", len(outcomes), type(exc).__name__)
    middle = len(outcomes) // 2
    result = await _write_in_halves(outcomes[:middle], deps, now)
    result.add(await _write_in_halves(outcomes[middle:], deps, now))
    return result


def _validate(record: RawRecord, deps: IntakeDeps, now: datetime) -> Outcome:
    """Validation is meant to be total. Should it raise all the same, the record is rejected
    rather than the batch failed: a redelivery would raise again, and the partition would
    be stuck on that record for good."""
    try:
        return validate(record, now=now, pseudonymise=deps.pseudonymise, registry=deps.registry)
    except Exception as exc:
        # Only the type: the message of an arbitrary exception may quote the payload.
        log.error(
            "validation raised %s on %s[%d]@%d; rejected",
            type(exc).__name__,
            record.topic,
            record.partition,
            record.offset,
        )
        return Rejected(
            record, ReasonCode.PROCESSING_FAILED, f"validation failed ({type(exc).__name__}); not retried"
        )


async def _write_alone(outcome: Outcome, deps: IntakeDeps, now: datetime) -> IngestResult:
    """A record that fails for a reason that is not transient is tried a bounded number of
    times and then rejected with the reason, so one poisoned message cannot stop a partition."""
    last_error = ""
    for _attempt in range(MAX_ATTEMPTS_PER_RECORD):
        try:
            return await retry_transient(
                lambda: _write([outcome], deps, now), what="intake record", outage=deps.outage
            )
        except TRANSIENT_DB_ERRORS:  # pragma: no cover - retry_transient never lets these out
            raise
        except Exception as exc:
            last_error = type(exc).__name__
    record = outcome.record
    log.error(
        "%s[%d]@%d failed %d times (%s); rejected",
        record.topic,
        record.partition,
        record.offset,
        MAX_ATTEMPTS_PER_RECORD,
        last_error,
    )
    failed = Rejected(
        record,
        ReasonCode.PROCESSING_FAILED,
        f"failed {MAX_ATTEMPTS_PER_RECORD} times ({last_error}); not retried further",
    )
    return await retry_transient(
        lambda: _write([failed], deps, now), what="intake rejection", outage=deps.outage
    )


async def _write(outcomes: Sequence[Outcome], deps: IntakeDeps, now: datetime) -> IngestResult:
    result = IngestResult()
    rejections = [o for o in outcomes if isinstance(o, Rejected)]
    first: dict[tuple[str, str], Accepted] = {}
    repeats: list[Accepted] = []
    for outcome in outcomes:
        if isinstance(outcome, Accepted):
            if outcome.dedup_key in first:
                repeats.append(outcome)
            else:
                first[outcome.dedup_key] = outcome

    async with UnitOfWork(deps.pool) as uow:
        # Every statement below finds rows by key: the batch's subjects and dedup keys. On a
        # table without statistics (a new database, or one just filled, until autovacuum has
        # analysed it) the planner took a few hundred keys for most of the table and read all
        # of it, once per chunk: PostgreSQL spent 150-390 µs of CPU per event instead of 20.
        await uow.conn.execute("SET LOCAL enable_seqscan = off")
        await uow.lock_periods(exclusive=False)
        await uow.lock_subjects(e.subject_key for e in first.values())
        # The facts stored before this batch, read first: the batch's own are in hand
        # already, and reading them back would decode every payload a second time.
        facts = await repo.payloads_by_subject(uow.conn, {e.subject_key for e in first.values()})
        stored = {(p["source"], p["event_id"]) for payloads in facts.values() for p in payloads}
        inserted = await repo.insert_new_events(uow.conn, [e for k, e in first.items() if k not in stored])
        seen_before = [e for key, e in first.items() if key not in inserted] + repeats
        known = await repo.stored_hashes(uow.conn, {e.dedup_key for e in seen_before})
        conflicts = [e for e in seen_before if known.get(e.dedup_key) != e.content_hash]
        result.duplicates += len(seen_before) - len(conflicts)
        if conflicts:
            first_sent = await repo.stored_payloads(uow.conn, {e.dedup_key for e in conflicts})
        for event in conflicts:
            rejections.append(
                Rejected(
                    event.record,
                    ReasonCode.DUPLICATE_CONFLICT,
                    f"source {event.source!r} already sent event {event.event_id} with other content"
                    f"{differing_fields(first_sent.get(event.dedup_key), event.payload)}; the first one stands",
                )
            )
        new_events = [first[key] for key in inserted]
        # By instant as a number: comparing the datetimes themselves asks their time zones
        # for the offset at every comparison, 4 µs per event at 500 a chunk, against 0.6.
        by_instant = sorted(new_events, key=lambda e: e.occurred_at.timestamp())
        causes = {e.subject_key: e.dedup_key for e in by_instant}
        if deps.fail_rating_for_source and any(e.source == deps.fail_rating_for_source for e in new_events):
            # After the insert on purpose: the rollback must take the event rows with it.
            raise InjectedFault(f"fault injection: rating events of {deps.fail_rating_for_source!r} fails")
        for event in new_events:
            facts.setdefault(event.subject_key, []).append(event.payload)
        rated = await rerate(
            uow.conn, causes.keys(), deps.tariffs, causes=causes, municipalities=deps.registry, facts=facts
        )
        await rejection_repository.record(uow.conn, rejections, now)
        await uow.commit()

    result.accepted = len(new_events)
    result.ledger_items = rated.items_written
    for rejection in rejections:
        result.rejected[rejection.reason.value] = result.rejected.get(rejection.reason.value, 0) + 1
        result.rejected_at.append(f"{rejection.record.place} {rejection.reason.value}")
    return result
