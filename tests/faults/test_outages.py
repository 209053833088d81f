"""The database and the broker away for a while: the services wait, retry and carry on,
without a restart of their own, and no valid event becomes a rejection."""

from __future__ import annotations

import time

import pytest

from services.runtime.processes import ServiceProcess
from tests.faults.audit import audit, expected_handled, message_of, wait_settled
from tests.faults.corpus import PERIOD, draw_examples, hospital_month, hostile_messages
from tests.faults.harness import (
    EVENTS,
    FIGURES,
    OUTAGE_SECONDS,
    SEED,
    FaultStack,
    Figures,
    Stream,
    close_month,
    interleave,
    seeded,
    wait_until,
)


def _outage(seconds: float, processes: list[ServiceProcess], what: str) -> None:
    """Hold the outage for `seconds`, failing at once if a service dies meanwhile."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        dead = [p.name for p in processes if not p.alive()]
        assert not dead, f"{dead} died during the {what} outage"
        time.sleep(0.2)


def _scenario(tmp_path, name: str, stop, start, outage: str) -> str:  # type: ignore[no-untyped-def]
    """Stream, `stop` something mid-stream for OUTAGE_SECONDS, `start` it again, then check;
    returns the services' logs."""
    figures, started = Figures(name), time.monotonic()
    rng = seeded(name)
    valid = hospital_month(EVENTS, rng.randrange(1 << 30))
    plan = interleave(valid, draw_examples(hostile_messages(valid[:300]), len(valid) // 100, SEED), rng)
    total = expected_handled(plan)

    with FaultStack(tmp_path) as stack:
        intake, settlement = stack.start("intake"), stack.start("settlement")
        pids = (intake.pid, settlement.pid)
        # Published over a while, so the outage falls in the middle of the stream.
        stream = Stream(stack.endpoints.bootstrap_servers, [message_of(p) for p in plan], seconds=10).start()
        point = rng.uniform(0.2, 0.5) * total
        wait_until(lambda: (stack.handled() or 0) > point, 90, "the stream under way", every=0.05)
        handled = stack.handled() or 0
        stop(stack)
        assert handled < total, "the outage came after the stream"
        _outage(OUTAGE_SECONDS, [intake, settlement], outage)
        start(stack)
        figures.outages.append(f"{outage} {OUTAGE_SECONDS:g}s")
        stream.join()
        stack.wait_handled(total, timeout=180, alive=[intake, settlement])
        assert (intake.pid, settlement.pid) == pids, "the services carried on without a restart"
        close_month(stack, str(PERIOD))
        wait_settled(stack)
        audit(stack, plan, stream.deliveries, figures, alive=[intake, settlement])
        assert (intake.pid, settlement.pid) == pids
        failed = stack.db.value("SELECT count(*) FROM rejections WHERE reason = 'processing_failed'")
        assert failed == 0, "an outage is never a record's failure"
        logs = stack.logs()
    figures.seconds = time.monotonic() - started
    FIGURES.append(figures)
    return logs


def test_postgresql_stopped_mid_stream_the_services_wait_retry_and_carry_on(tmp_path) -> None:
    logs = _scenario(
        tmp_path,
        "PostgreSQL stopped mid-stream, then started",
        FaultStack.stop_postgres,
        FaultStack.start_postgres,
        "PostgreSQL",
    )
    assert "database unavailable" in logs, "the services saw the outage and retried"
    assert "database available again" in logs, "and said when it was over"
    # One line each way, not the driver's tracebacks (asyncpg's pool reconnecting by itself).
    assert "Traceback" not in logs and "asyncpg.pool" not in logs


@pytest.mark.parametrize(
    ("how", "stop", "start"),
    [
        ("connections refused", FaultStack.cut_broker, FaultStack.restore_broker),
        ("broker frozen (SIGSTOP)", lambda s: s.broker.pause(), lambda s: s.broker.resume()),
    ],
    ids=["refused", "frozen"],
)
def test_the_broker_unreachable_mid_stream_the_services_reconnect_by_themselves(
    tmp_path, how, stop, start
) -> None:
    _scenario(tmp_path, f"broker unreachable mid-stream: {how}", stop, start, f"broker ({how})")
