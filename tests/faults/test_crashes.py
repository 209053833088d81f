"""Processes killed: the intake at random moments, the settlement service between its
database commit and its publish, one of two intake replicas for good."""

from __future__ import annotations

import time

from contracts.v1 import topics
from tests.faults.audit import audit, expected_handled, message_of, read_raw, wait_settled
from tests.faults.corpus import PERIOD, draw_examples, hospital_month, hostile_messages
from tests.faults.harness import (
    EVENTS,
    FIGURES,
    KILLS,
    SEED,
    FaultStack,
    Figures,
    Stream,
    assignment,
    close_month,
    interleave,
    seeded,
    wait_until,
)


def test_the_intake_killed_at_random_moments_loses_nothing_and_counts_nothing_twice(tmp_path) -> None:
    figures, started = Figures("intake killed with SIGKILL, restarted each time"), time.monotonic()
    rng = seeded("intake-kills")
    valid = hospital_month(EVENTS, rng.randrange(1 << 30))
    plan = interleave(valid, draw_examples(hostile_messages(valid[:300]), len(valid) // 100, SEED), rng)
    total = expected_handled(plan)

    with FaultStack(tmp_path) as stack:
        intake, settlement = stack.start("intake"), stack.start("settlement")
        # The last tenth of the stream is held back until the last kill, so every kill lands
        # while the stream is still coming: each when the intake has got to a random point.
        hold_from = len(plan) * 9 // 10
        before_hold = expected_handled(plan[:hold_from])
        stream = Stream(
            stack.endpoints.bootstrap_servers,
            [message_of(p) for p in plan],
            seconds=KILLS * 4,
            hold_from=hold_from,
        ).start()
        for point in sorted(rng.uniform(0.05, 0.75) * total for _ in range(KILLS)):
            since = stack.handled() or 0

            def consuming(since: int = since, point: float = point) -> bool:
                handled = stack.handled() or 0
                return handled > max(since, point) or handled >= before_hold

            wait_until(consuming, 90, "the (restarted) intake to make progress", every=0.05)
            time.sleep(rng.uniform(0, 0.3))
            handled = stack.handled() or 0
            intake.kill()
            figures.kills += 1
            print(f"kill {figures.kills}: {handled}/{total} handled, {time.monotonic() - started:.1f}s")
            stack.restart(intake)
        stream.release()
        stream.join()
        stack.wait_handled(total, timeout=120, alive=[intake, settlement])
        close_month(stack, str(PERIOD))
        wait_settled(stack)
        audit(stack, plan, stream.deliveries, figures, alive=[intake, settlement])
    figures.seconds = time.monotonic() - started
    FIGURES.append(figures)


def test_the_settlement_service_killed_between_commit_and_publish_publishes_each_statement_once_per_party(
    tmp_path,
) -> None:
    figures, started = Figures("settlement killed between its close commit and publishing"), time.monotonic()
    rng = seeded("settlement-crash")
    valid = hospital_month(EVENTS, rng.randrange(1 << 30))
    plan = interleave(valid, draw_examples(hostile_messages(valid[:300]), len(valid) // 100, SEED), rng)

    with FaultStack(tmp_path) as stack:
        intake = stack.start("intake")
        crashing = stack.start("settlement", env={"FAULT_CRASH_AFTER_CLOSE_COMMIT": "true"})
        stream = Stream(stack.endpoints.bootstrap_servers, [message_of(p) for p in plan], seconds=0).start()
        stream.join()
        stack.wait_handled(expected_handled(plan), timeout=120, alive=[intake, crashing])
        wait_until(
            lambda: stack.db.value("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0,
            30,
            "the rejections published",
        )

        # Both services run an outbox relay: with the intake's stopped, the statements can
        # reach the topic only through the settlement service.
        intake.stop()
        close_month(stack, str(PERIOD))
        wait_until(lambda: not crashing.alive(), 60, "the settlement service to exit at the fault hook")
        figures.kills += 1
        assert crashing.returncode() == 86, "it exited at the hook, not for another reason"
        pairs = stack.db.value("SELECT count(*) FROM statements WHERE period = $1", PERIOD.first_day)
        assert pairs > 0 and stack.db.value("SELECT count(*) FROM closed_periods") == 1, "the close committed"
        assert (
            stack.db.value(
                "SELECT count(*) FROM outbox WHERE published_at IS NULL AND topic = $1", topics.SETTLEMENTS
            )
            == 2 * pairs
        ), "every copy is waiting in the outbox"
        assert not [r for r in read_raw(stack.endpoints.bootstrap_servers, topics.SETTLEMENTS)], (
            "none published"
        )

        settlement = stack.start("settlement")  # restarted, without the hook
        wait_settled(stack)
        stack.restart(intake)
        close_month(stack, str(PERIOD))  # and closing again changes nothing
        wait_until(lambda: stack.db.value("SELECT count(*) FROM processed_commands") >= 2, 30, "second close")
        wait_settled(stack)
        audit(stack, plan, stream.deliveries, figures, alive=[intake, settlement])
        assert figures.copies_published == 2 * pairs
    figures.seconds = time.monotonic() - started
    FIGURES.append(figures)


def test_two_intake_replicas_one_killed_mid_stream_the_survivor_takes_its_partitions_and_totals_stay_exact(
    tmp_path,
) -> None:
    figures, started = Figures("two intake replicas, one killed for good"), time.monotonic()
    rng = seeded("replicas")
    valid = hospital_month(EVENTS, rng.randrange(1 << 30))
    plan = interleave(valid, draw_examples(hostile_messages(valid[:300]), len(valid) // 100, SEED), rng)
    total = expected_handled(plan)

    with FaultStack(tmp_path) as stack:
        survivor = stack.start("intake", replica="intake-a")
        doomed = stack.start("intake", replica="intake-b")
        settlement = stack.start("settlement")

        def shared() -> bool:
            a, b = assignment(survivor), assignment(doomed)
            return all(a.get(t) and b.get(t) and a[t] | b[t] == set(range(6)) for t in topics.INBOUND)

        wait_until(shared, 60, "both replicas to hold partitions of every inbound topic")
        stream = Stream(stack.endpoints.bootstrap_servers, [message_of(p) for p in plan], seconds=8).start()
        point = rng.uniform(0.2, 0.6) * total
        wait_until(lambda: (stack.handled() or 0) > point, 90, "the stream under way", every=0.05)
        assert (stack.handled() or 0) < total
        doomed.kill()
        figures.kills += 1
        stream.join()
        stack.wait_handled(total, timeout=120, alive=[survivor, settlement])
        assert all(assignment(survivor).get(t) == set(range(6)) for t in topics.INBOUND), (
            "the survivor holds every partition"
        )
        close_month(stack, str(PERIOD))
        wait_settled(stack)
        audit(stack, plan, stream.deliveries, figures, alive=[survivor, settlement])
    figures.seconds = time.monotonic() - started
    FIGURES.append(figures)
