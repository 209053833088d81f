"""The monitor's loop: read offsets, keep the window, evaluate, hand the reports on."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from services.lagmonitor.domain import GroupReport, GroupStatus, History, Reading, Thresholds

log = logging.getLogger("services.lagmonitor")


class OffsetSource(Protocol):
    async def read(self) -> Sequence[Reading]: ...


def project_groups(*, intake_group_prefix: str, settlement_group: str) -> dict[str, tuple[str, ...]]:
    """Group -> topics, taken from the services' own subscribers, so the monitor cannot
    watch a group name the services stopped using. (The brokers are made to be read, never
    connected.)"""
    from services.adapters.kafka_connection import KafkaConnection
    from services.intake.app import create_broker as intake_broker
    from services.settlement.app import create_broker as settlement_broker

    unconnected = KafkaConnection("unconnected:9092")
    brokers = [
        intake_broker(unconnected, group_prefix=intake_group_prefix)[0],
        settlement_broker(unconnected, group_id=settlement_group)[0],
    ]
    groups: dict[str, tuple[str, ...]] = {}
    for broker in brokers:
        for subscriber in broker.subscribers:
            group = subscriber.group_id  # type: ignore[attr-defined]
            groups[group] = (*groups.get(group, ()), *(t.name for t in subscriber.topics))  # type: ignore[attr-defined]
    return dict(sorted(groups.items()))


class LagMonitor:
    def __init__(
        self,
        source: OffsetSource,
        thresholds: Thresholds,
        *,
        clock: Callable[[], float] = time.time,
        on_reports: Callable[[list[GroupReport], float], None] | None = None,
    ) -> None:
        self._source = source
        self._history = History(thresholds)
        self._clock = clock
        self._on_reports = on_reports
        self.reports: list[GroupReport] = []
        self.last_poll_at: float | None = None

    async def poll(self) -> list[GroupReport]:
        readings = await self._source.read()
        now = self._clock()
        reports = []
        for reading in readings:
            for key, sample in reading.samples.items():
                self._history.record(reading.group, key, sample)
            self._history.forget(reading.group, set(reading.samples))
            reports.append(self._history.evaluate(reading.group, now))
        self._log_changes(reports)
        self.reports, self.last_poll_at = reports, now
        return reports

    def _log_changes(self, reports: list[GroupReport]) -> None:
        before = {r.group: r.status for r in self.reports}
        for report in reports:
            if before.get(report.group, GroupStatus.OK) is report.status:
                continue
            worst = [p for p in report.partitions if p.status.value != "OK"]
            detail = "; ".join(f"{p.topic}[{p.partition}] {p.status}: {p.reason}" for p in worst[:3])
            level = logging.INFO if report.status is GroupStatus.OK else logging.WARNING
            log.log(level, "group %s is %s %s", report.group, report.status, detail)

    async def run(
        self,
        stop: asyncio.Event,
        poll_seconds: float,
        on_error: Callable[[], None],
        *,
        poll_timeout: float | None = None,
    ) -> None:
        """Poll every `poll_seconds` until `stop`. A poll that fails, or takes longer than
        `poll_timeout` (by default, as long as the reading stays fresh: a broker frozen
        rather than away answers nothing and refuses nothing), counts as failed."""
        timeout = poll_timeout if poll_timeout is not None else 3 * poll_seconds + 10
        while not stop.is_set():
            started = time.perf_counter()
            try:
                reports = await asyncio.wait_for(self.poll(), timeout=timeout)
                if self._on_reports is not None:
                    self._on_reports(reports, time.perf_counter() - started)
            except TimeoutError:
                log.warning("lag poll failed: no answer from the broker in %.0f s", timeout)
                on_error()
            except Exception:
                # The broker may be away; the window keeps what it has, and the next poll retries.
                log.warning("lag poll failed", exc_info=True)
                on_error()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=poll_seconds)

    def fresh(self, poll_seconds: float) -> bool:
        """A poll succeeded recently enough that the reports mean something."""
        return self.last_poll_at is not None and self._clock() - self.last_poll_at < 3 * poll_seconds + 10


def report_json(
    reports: Sequence[GroupReport], *, source: str, at: float | None, fresh: bool = True
) -> dict[str, Any]:
    """The shape of `settlement lag --once --json` and of the monitor's `/lag`. `fresh` is
    false when the monitor's last successful poll is too old for its statuses to mean
    anything (it cannot reach the broker): the report is then the last one it could make."""
    return {
        "source": source,
        "at": at,
        "fresh": fresh,
        "groups": [
            {
                "group": r.group,
                "status": r.status.value,
                "lag": r.lag,
                "lag_seconds": round(r.lag_seconds, 3),
                "window_complete": r.window_complete,
                "partitions": [
                    {
                        "topic": p.topic,
                        "partition": p.partition,
                        "committed": p.committed,
                        "log_end": p.log_end,
                        "lag": p.lag,
                        "lag_seconds": round(p.lag_seconds, 3),
                        "status": p.status.value,
                        "reason": p.reason,
                    }
                    for p in r.partitions
                ],
            }
            for r in reports
        ],
    }
