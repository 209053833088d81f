"""Where the machine's CPU goes during a timed phase: core-seconds per part of the pipeline.

On two shared cores the pipeline's rate is bounded by the CPU every event costs all of its
parts together (the producer, the broker, the intake, the database), not by any one of
them: `cores / (CPU per event)` is the most this machine can do at that cost. Measuring
each part's share says which part a change must make cheaper, and how far the target is.

Each part is a process, with or without its descendants (PostgreSQL's backends are
children of the postmaster, the broker's and the services' are their own processes).
Processes are sampled while the phase runs: one born during the phase counts from zero,
one that ends counts up to its last sample. The machine's busy time is counted as well,
so whatever no part accounts for (short-lived processes, the kernel, anything else on
the machine) shows as "other".
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import psutil


@dataclass(frozen=True)
class Part:
    name: str
    pid: int
    with_children: bool = False


@dataclass
class CpuUse:
    """Core-seconds per part, over a phase of `seconds` on `cores` cores."""

    seconds: float
    cores: int
    by_part: dict[str, float] = field(default_factory=dict)
    machine_busy: float = 0.0  # every core's busy time, whatever ran

    @property
    def other(self) -> float:
        return max(0.0, self.machine_busy - sum(self.by_part.values()))

    @property
    def busy_share(self) -> float:
        """How much of the machine was busy: 1.0 is every core all the time."""
        return self.machine_busy / (self.seconds * self.cores) if self.seconds and self.cores else 0.0

    def per_event_us(self, events: int) -> dict[str, float]:
        shares = self.by_part | {"other": self.other}
        return {name: round(seconds / events * 1e6, 1) for name, seconds in shares.items()} if events else {}

    def ceiling_per_s(self, events: int) -> float:
        """Events per second if every core were busy at this CPU per event."""
        busy = self.machine_busy or sum(self.by_part.values())
        return self.cores * events / busy if busy else 0.0


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def _machine_busy() -> float:
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


class CpuAccount:
    """`start()`, `sample()` as often as is cheap (every 100 ms), `stop()` for the figures."""

    def __init__(self, parts: Iterable[Part]) -> None:
        self._parts = list(parts)
        self._first: dict[tuple[str, int], float] = {}
        self._last: dict[tuple[str, int], float] = {}
        self._started_busy = 0.0
        self._started_at = 0.0

    def _processes(self) -> Iterator[tuple[str, psutil.Process]]:
        for part in self._parts:
            try:
                root = psutil.Process(part.pid)
                family = [root, *root.children(recursive=True)] if part.with_children else [root]
            except psutil.Error:
                continue
            for process in family:
                yield part.name, process

    def _read(self, *, baseline: bool) -> None:
        for name, process in self._processes():
            try:
                used = _cpu(process)
            except psutil.Error:
                continue  # ended between listing and reading: its last sample stands
            key = (name, process.pid)
            if key not in self._first:
                self._first[key] = used if baseline else 0.0
            self._last[key] = used

    def start(self) -> None:
        self._first.clear()
        self._last.clear()
        self._started_busy = _machine_busy()
        self._started_at = time.monotonic()
        self._read(baseline=True)

    def sample(self) -> None:
        self._read(baseline=False)

    def stop(self) -> CpuUse:
        self._read(baseline=False)
        use = CpuUse(
            seconds=time.monotonic() - self._started_at,
            cores=psutil.cpu_count() or 1,
            machine_busy=_machine_busy() - self._started_busy,
        )
        for part in self._parts:
            use.by_part.setdefault(part.name, 0.0)
        for key, last in self._last.items():
            use.by_part[key[0]] += max(0.0, last - self._first[key])
        return use
