"""Hostile input at volume, and a record that keeps failing: rejected with a reason, after
a bounded number of attempts, while everything valid around it is settled exactly."""

from __future__ import annotations

import json
import time

from contracts.v1 import topics
from services.simulator.hospital import Hospital, Published
from tests.faults.audit import audit, expected_handled, message_of, read_raw, wait_settled
from tests.faults.corpus import (
    PERIOD,
    Hostile,
    conflicting_copies,
    draw_examples,
    hospital_month,
    hostile_command,
    hostile_messages,
    oversized,
)
from tests.faults.harness import (
    EVENTS,
    FIGURES,
    HOSTILE,
    SEED,
    FaultStack,
    Figures,
    Stream,
    close_month,
    interleave,
    seeded,
)


def test_hostile_input_at_volume_is_rejected_with_reasons_while_valid_events_settle_exactly(tmp_path) -> None:
    figures, started = Figures("hostile input interleaved with valid events"), time.monotonic()
    rng = seeded("fuzz")
    valid = hospital_month(EVENTS, rng.randrange(1 << 30))
    templates = hospital_month(400, rng.randrange(1 << 30), "fuzz-template")
    hostile: list[Hostile] = [
        *draw_examples(hostile_messages(templates), HOSTILE, SEED),
        *draw_examples(hostile_command(), max(10, HOSTILE // 50), SEED),
        *oversized(templates, 3, rng),
    ]
    # After everything else: exact redeliveries (absorbed) and copies with other content
    # under an id already used (rejected); same key, so after the original on its partition.
    again = rng.sample(valid, len(valid) // 50)
    plan = [*interleave(valid, hostile, rng), *again, *conflicting_copies(valid, len(valid) // 200, rng)]

    with FaultStack(tmp_path) as stack:
        intake, settlement = stack.start("intake"), stack.start("settlement")
        pids = (intake.pid, settlement.pid)
        stream = Stream(stack.endpoints.bootstrap_servers, [message_of(p) for p in plan], seconds=0).start()
        stream.join()
        stack.wait_handled(expected_handled(plan), timeout=180, alive=[intake, settlement])
        close_month(stack, str(PERIOD))
        wait_settled(stack)
        audit(stack, plan, stream.deliveries, figures, alive=[intake, settlement])
        assert (intake.pid, settlement.pid) == pids, "no service process died or was restarted"
    figures.seconds = time.monotonic() - started
    FIGURES.append(figures)


POISONED_SOURCE = "poisoned.983974724"


def _poisoned(count: int, seed: int) -> list[Hostile]:
    """Valid events whose rating fails (the intake runs with the fault hook for their source)."""
    hospital = Hospital(PERIOD, seed=seed, source_prefix="poisoned")
    events: list[Published] = []
    while len(events) < count:
        events.extend(hospital.episode("983974724", "4601"))
    return [
        Hostile(
            "poisoned",
            e.topic,
            e.key.encode(),
            json.dumps(e.value | {"episode_id": "PX-" + e.value["episode_id"]}).encode(),
            frozenset({"processing_failed"}),
            frozenset({e.value["patient_id"]}),
        )
        for e in events[:count]
    ]


def test_a_record_that_keeps_failing_is_rejected_after_bounded_attempts_and_the_records_around_it_are_not(
    tmp_path,
) -> None:
    figures, started = Figures("records whose rating always fails (fault hook)"), time.monotonic()
    rng = seeded("poison")
    valid = hospital_month(EVENTS, rng.randrange(1 << 30))
    plan = interleave(valid, _poisoned(max(10, len(valid) // 400), rng.randrange(1 << 30)), rng)

    with FaultStack(tmp_path) as stack:
        intake = stack.start("intake", env={"FAULT_FAIL_RATING_FOR_SOURCE": POISONED_SOURCE})
        settlement = stack.start("settlement")
        pid = intake.pid
        stream = Stream(stack.endpoints.bootstrap_servers, [message_of(p) for p in plan], seconds=0).start()
        stream.join()
        stack.wait_handled(expected_handled(plan), timeout=180, alive=[intake, settlement])
        close_month(stack, str(PERIOD))
        wait_settled(stack)
        audit(stack, plan, stream.deliveries, figures, alive=[intake, settlement])
        assert intake.pid == pid, "the intake never stopped on them"
        failed = [
            r
            for r in (
                json.loads(raw.value) for raw in read_raw(stack.endpoints.bootstrap_servers, topics.REJECTED)
            )
            if r["reason"] == "processing_failed"
        ]
        assert failed and all("failed 3 times (InjectedFault)" in r["message"] for r in failed), (
            "each was tried a bounded number of times, and the reason is recorded"
        )
    figures.seconds = time.monotonic() - started
    FIGURES.append(figures)
