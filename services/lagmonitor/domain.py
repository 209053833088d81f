"""Consumer-lag status rules, in the spirit of LinkedIn's Burrow. Pure: no Kafka, no clock.

The monitor samples each partition of each consumer group on an interval. A sample is what
could be read from the broker at that moment: the group's committed offset, the log-end
offset, the lag in messages and the timestamp of the oldest unconsumed message. These rules
turn the samples of the last `window_seconds` into a status:

Per partition, first rule that applies:
1. **OK** when the lag is 0 now: caught up is fine however long the topic has been idle.
2. **REWIND** when the committed offset went backwards within the window (someone reset it).
3. **STALL** when lag has existed for the whole window without the committed offset moving,
   while the group did commit progress on another partition in that time: the consumer lives
   but this partition is stuck (a poison message, a handler that never returns).
4. **STOP** when lag has existed for the whole window without the committed offset moving and
   no partition of the group moved either: the consumer is gone (or wholly blocked).
5. **OK** when the lag was 0 at some point in the window: a fresh burst, not a problem yet.
6. **OK** when the window is not yet full: too little history to accuse anyone.
7. **WARN** when the lag did not decrease over the window although offsets move, and messages
   that were already waiting when the window began are still waiting: the consumer works
   but falls behind.
8. **OK** otherwise: lag is being worked off, or the consumer keeps pace with a steady flow
   (a busy topic always shows a few messages in flight; that is not a backlog).

Per group: **ERR** when any partition is STOP or STALL; **WARN** when any is WARN or REWIND
(a rewind is usually someone reprocessing on purpose: worth a look, not a page); else **OK**.

Why "for the whole window without moving" is measured from when lag *appeared* at the current
offset rather than from the last commit: on an idle night topic the last commit may be hours
old, and the first new message must not turn a healthy consumer into STOP on sight (the most
common false alarm of lag monitors).

Why STALL needs the group's other partitions: from outside, Kafka shows offsets, not commit
requests, so "still committing, same offset" (Burrow's STALL) is not visible. Progress on a
sibling partition is the visible proof that the consumer is alive. A single-partition group
that is stuck therefore shows STOP; both are ERR for the group.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum


class PartitionStatus(StrEnum):
    OK = "OK"
    WARN = "WARN"
    STALL = "STALL"
    STOP = "STOP"
    REWIND = "REWIND"


class GroupStatus(StrEnum):
    OK = "OK"
    WARN = "WARN"
    ERR = "ERR"


class Severity(IntEnum):
    """The number exported next to each group's status, for alert thresholds and graphs."""

    OK = 0
    WARN = 1
    ERR = 2


@dataclass(frozen=True, slots=True)
class Thresholds:
    window_seconds: float = 300.0

    def __post_init__(self) -> None:
        if self.window_seconds <= 0:
            raise ValueError("the window must be longer than 0 seconds")


@dataclass(frozen=True, slots=True)
class Sample:
    """One reading of one partition of one group.

    `at` and `oldest_unconsumed_at` are seconds on the same clock (epoch seconds, as in Kafka
    record timestamps). `committed` is None while the group has never committed here."""

    at: float
    committed: int | None
    log_end: int
    lag: int
    oldest_unconsumed_at: float | None = None


@dataclass(frozen=True, slots=True, order=True)
class PartitionKey:
    topic: str
    partition: int


@dataclass(frozen=True, slots=True)
class Reading:
    """One poll of one group: a sample for each partition of the topics it consumes."""

    group: str
    samples: Mapping[PartitionKey, Sample]


@dataclass(frozen=True, slots=True)
class PartitionReport:
    topic: str
    partition: int
    committed: int | None
    log_end: int
    lag: int
    lag_seconds: float
    status: PartitionStatus
    reason: str


@dataclass(frozen=True, slots=True)
class GroupReport:
    group: str
    status: GroupStatus
    partitions: tuple[PartitionReport, ...]
    window_complete: bool

    @property
    def severity(self) -> Severity:
        return Severity[self.status.value]

    @property
    def lag(self) -> int:
        return sum(p.lag for p in self.partitions)

    @property
    def lag_seconds(self) -> float:
        return max((p.lag_seconds for p in self.partitions), default=0.0)


def lag_seconds(samples: Sequence[Sample]) -> float:
    """Age of the oldest unconsumed message at the latest sample; 0 when caught up.

    Read from the message's own timestamp, never interpolated from offset rates, so it cannot
    jump during a burst. Clamped at 0 because producer clocks may run ahead of ours. Where the
    broker gave no timestamp, the time the lag has been seen waiting at this offset is the
    honest lower bound, so the value is never missing."""
    latest = samples[-1]
    if latest.lag <= 0:
        return 0.0
    if latest.oldest_unconsumed_at is not None:
        return max(0.0, latest.at - latest.oldest_unconsumed_at)
    return latest.at - _lagging_since(samples)


def _lagging_since(samples: Sequence[Sample]) -> float:
    """When the current stretch of lag at the current committed offset began: the earliest
    sample of the trailing run with lag and the same committed offset as the latest."""
    latest = samples[-1]
    since = latest.at
    for sample in reversed(samples):
        if sample.lag <= 0 or sample.committed != latest.committed:
            break
        since = sample.at
    return since


def _last_progress(samples: Sequence[Sample]) -> float | None:
    """When the committed offset was last seen to move forward, if it was."""
    for earlier, later in zip(reversed(samples[:-1]), reversed(samples[1:]), strict=True):
        if _moved_forward(earlier, later):
            return later.at
    return None


def _moved_forward(earlier: Sample, later: Sample) -> bool:
    if later.committed is None:
        return False
    return earlier.committed is None or later.committed > earlier.committed


def _rewound(samples: Sequence[Sample]) -> bool:
    return any(
        a.committed is not None and b.committed is not None and b.committed < a.committed
        for a, b in itertools.pairwise(samples)
    )


def in_window(samples: Sequence[Sample], now: float, thresholds: Thresholds) -> list[Sample]:
    """The samples of the window, plus the newest one older than it: that anchor is what
    shows whether something held for the *whole* window."""
    cutoff = now - thresholds.window_seconds
    start = 0
    for i, sample in enumerate(samples):
        if sample.at <= cutoff:
            start = i
    return list(samples[start:])


def partition_status(
    samples: Sequence[Sample],
    now: float,
    thresholds: Thresholds,
    *,
    group_progress_at: float | None,
    lagging_since: float | None = None,
) -> tuple[PartitionStatus, str]:
    """The status of one partition and why, from its samples (oldest first) up to `now`.

    `group_progress_at` is when any *other* partition of the group last moved forward;
    `lagging_since`, when known from before the samples (`History`), when the current
    stretch of lag at the current offset began: an outage's reason then says how long it
    has lasted, not at most a window."""
    if not samples:
        raise ValueError("a status needs at least one sample")
    window = in_window(samples, now, thresholds)
    latest = window[-1]
    span = thresholds.window_seconds
    if latest.lag <= 0:
        return PartitionStatus.OK, "caught up"
    if _rewound(window):
        return PartitionStatus.REWIND, "the committed offset went backwards within the window"
    waiting = now - min(_lagging_since(window), lagging_since or now)
    if waiting >= span:
        offset = "no committed offset" if latest.committed is None else f"offset {latest.committed}"
        what = f"{offset} unchanged for {waiting:.0f}s with {latest.lag} message(s) waiting"
        if group_progress_at is not None and now - group_progress_at < span:
            return PartitionStatus.STALL, f"{what}, while the group commits on other partitions"
        return PartitionStatus.STOP, f"{what}; no partition of the group moved"
    if any(s.lag <= 0 for s in window):
        return PartitionStatus.OK, "caught up within the window; lag is new"
    if now - window[0].at < span:
        return PartitionStatus.OK, "window not yet full"
    first = window[0]
    if (latest.committed or 0) >= first.log_end:
        return PartitionStatus.OK, "keeping pace: everything waiting a window ago is consumed"
    if latest.lag >= first.lag:
        return (
            PartitionStatus.WARN,
            f"lag {first.lag} -> {latest.lag} over the window: consuming, falling behind",
        )
    return PartitionStatus.OK, f"lag {first.lag} -> {latest.lag}: working off"


def group_status(statuses: Iterable[PartitionStatus]) -> GroupStatus:
    found = set(statuses)
    if found & {PartitionStatus.STOP, PartitionStatus.STALL}:
        return GroupStatus.ERR
    if found & {PartitionStatus.WARN, PartitionStatus.REWIND}:
        return GroupStatus.WARN
    return GroupStatus.OK


def evaluate_group(
    group: str,
    histories: Mapping[PartitionKey, Sequence[Sample]],
    now: float,
    thresholds: Thresholds,
    lagging_since: Mapping[PartitionKey, float] | None = None,
) -> GroupReport:
    """Every partition's status and the group's, from each partition's samples (and, per
    partition, when its current stretch of lag began, if known: `partition_status`)."""
    progress = {key: _last_progress(in_window(s, now, thresholds)) for key, s in histories.items() if s}
    reports = []
    complete = bool(histories)
    for key in sorted(histories):
        samples = histories[key]
        if not samples:
            continue
        others = [at for other, at in progress.items() if other != key and at is not None]
        status, reason = partition_status(
            samples,
            now,
            thresholds,
            group_progress_at=max(others, default=None),
            lagging_since=(lagging_since or {}).get(key),
        )
        latest = samples[-1]
        complete = complete and now - samples[0].at >= thresholds.window_seconds
        reports.append(
            PartitionReport(
                topic=key.topic,
                partition=key.partition,
                committed=latest.committed,
                log_end=latest.log_end,
                lag=max(0, latest.lag),
                lag_seconds=lag_seconds(in_window(samples, now, thresholds)),
                status=status,
                reason=reason,
            )
        )
    return GroupReport(
        group=group,
        status=group_status(r.status for r in reports),
        partitions=tuple(reports),
        window_complete=complete,
    )


@dataclass
class History:
    """The retained samples per group and partition: the sliding window and its anchor; and
    per partition with lag, since when it has had lag at its current committed offset (the
    window alone forgets that after a window)."""

    thresholds: Thresholds
    _samples: dict[str, dict[PartitionKey, list[Sample]]] = field(default_factory=dict)
    _lagging: dict[str, dict[PartitionKey, tuple[int | None, float]]] = field(default_factory=dict)

    def record(self, group: str, key: PartitionKey, sample: Sample) -> None:
        samples = self._samples.setdefault(group, {}).setdefault(key, [])
        samples.append(sample)
        samples[:] = in_window(samples, sample.at, self.thresholds)
        lagging = self._lagging.setdefault(group, {})
        if sample.lag <= 0:
            lagging.pop(key, None)
        elif key not in lagging or lagging[key][0] != sample.committed:
            lagging[key] = (sample.committed, sample.at)

    def forget(self, group: str, keep: set[PartitionKey]) -> None:
        """Drop partitions that no longer exist (a topic deleted or re-created smaller)."""
        for key in set(self._samples.get(group, {})) - keep:
            del self._samples[group][key]
            self._lagging.get(group, {}).pop(key, None)

    def evaluate(self, group: str, now: float) -> GroupReport:
        since = {key: at for key, (_, at) in self._lagging.get(group, {}).items()}
        return evaluate_group(group, self._samples.get(group, {}), now, self.thresholds, since)
