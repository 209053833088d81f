"""The lag status rules over recorded windows (services/lagmonitor/domain.py).

Each recording is what the monitor would have read, poll by poll: per partition, the
committed offset and the log-end offset (lag is their difference). Every recording is
evaluated at *every* poll, as the live monitor does, because a rule that is right at the end
but pages someone halfway through is still a false alarm. Window: 60 s, polls every 10 s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from services.lagmonitor.domain import (
    GroupStatus,
    History,
    PartitionKey,
    PartitionStatus,
    Sample,
    Severity,
    Thresholds,
    evaluate_group,
    group_status,
    in_window,
    lag_seconds,
)

WINDOW = Thresholds(window_seconds=60)
POLL = 10.0
T0 = 1_760_000_000.0  # epoch seconds, like Kafka timestamps
P0 = PartitionKey("samhandling.discharge-ready.v1", 0)
P1 = PartitionKey("samhandling.discharge-ready.v1", 1)

OK, WARN, STALL, STOP, REWIND = (
    PartitionStatus.OK,
    PartitionStatus.WARN,
    PartitionStatus.STALL,
    PartitionStatus.STOP,
    PartitionStatus.REWIND,
)


def polls(*readings: tuple[int | None, int]) -> list[Sample]:
    """(committed, log_end) per poll, POLL seconds apart, starting at T0."""
    return [
        Sample(
            at=T0 + i * POLL,
            committed=committed,
            log_end=log_end,
            lag=log_end - (committed or 0),
        )
        for i, (committed, log_end) in enumerate(readings)
    ]


def idle(n: int, offset: int) -> list[tuple[int | None, int]]:
    return [(offset, offset)] * n


@dataclass
class Recording:
    partitions: dict[PartitionKey, list[Sample]]
    final: dict[PartitionKey, PartitionStatus]
    group_final: GroupStatus
    never: set[GroupStatus] = field(default_factory=set)  # at no poll may the group be this


def statuses_over_time(partitions: dict[PartitionKey, list[Sample]]) -> list[tuple[float, GroupStatus]]:
    times = sorted({s.at for samples in partitions.values() for s in samples})
    out = []
    for now in times:
        seen = {k: [s for s in v if s.at <= now] for k, v in partitions.items()}
        out.append((now, evaluate_group("g", seen, now, WINDOW).status))
    return out


RECORDINGS = {
    # Nothing arrives at night and the group is caught up: OK, however long the silence.
    "idle and caught up": Recording(
        {P0: polls(*idle(40, 1234)), P1: polls(*idle(40, 0))},
        {P0: OK, P1: OK},
        GroupStatus.OK,
        never={GroupStatus.WARN, GroupStatus.ERR},
    ),
    # A group that has never committed, on an empty partition: lag 0, not "unknown".
    "never committed, nothing to read": Recording(
        {P0: polls(*[(None, 0)] * 10)},
        {P0: OK},
        GroupStatus.OK,
        never={GroupStatus.WARN, GroupStatus.ERR},
    ),
    # After hours idle the first message arrives and is consumed one poll later. The last
    # commit is hours old; that must not read as "stopped".
    "idle for hours, then one message handled": Recording(
        {P0: polls(*idle(30, 500), (500, 501), (501, 501))},
        {P0: OK},
        GroupStatus.OK,
        never={GroupStatus.WARN, GroupStatus.ERR},
    ),
    # The morning burst: 5000 messages at once, worked off in batches.
    "burst worked off": Recording(
        {
            P0: polls(
                *idle(3, 0),
                (0, 5000),
                (0, 5000),
                (2000, 5000),
                (2000, 5200),
                (3000, 5400),
                (4500, 5400),
                (5400, 5400),
                *idle(5, 5400),
            )
        },
        {P0: OK},
        GroupStatus.OK,
        never={GroupStatus.ERR},
    ),
    # A burst arriving faster than the consumer handles it: it works, but what waited a
    # window ago still waits and the lag does not shrink.
    "burst arriving faster than it is consumed": Recording(
        {P0: polls((0, 0), *[(300 * i, 1000 * i) for i in range(1, 12)])},
        {P0: WARN},
        GroupStatus.WARN,
        never={GroupStatus.ERR},
    ),
    # A busy steady feed: every poll catches a few messages in flight, never 0, never old.
    "steady flow, always a few in flight": Recording(
        {P0: polls(*[(40 * i, 40 * i + 6) for i in range(1, 20)])},
        {P0: OK},
        GroupStatus.OK,
        never={GroupStatus.WARN, GroupStatus.ERR},
    ),
    # A batch consumer that commits every 30 s while working off a backlog: the offset is
    # still for less than the window at a time, so never STALL or STOP.
    "slow batches, commits every 30 s": Recording(
        {
            P0: polls(
                (0, 9000),
                (0, 9000),
                (0, 9000),
                (3000, 9000),
                (3000, 9000),
                (3000, 9000),
                (6000, 9000),
                (6000, 9000),
                (6000, 9000),
                (9000, 9000),
            )
        },
        {P0: OK},
        GroupStatus.OK,
        never={GroupStatus.ERR},
    ),
    # The consumer process is gone while events keep coming.
    "stopped consumer": Recording(
        {
            P0: polls(*idle(3, 100), *[(100, 100 + 7 * i) for i in range(1, 10)]),
            P1: polls(*idle(3, 40), *[(40, 40 + 3 * i) for i in range(1, 10)]),
        },
        {P0: STOP, P1: STOP},
        GroupStatus.ERR,
    ),
    # Never started at all, with events waiting (committed offset unknown).
    "consumer never started, events waiting": Recording(
        {P0: polls(*[(None, 25)] * 8)},
        {P0: STOP},
        GroupStatus.ERR,
    ),
    # One partition stuck on a message while the group commits on another.
    "stuck partition": Recording(
        {
            P0: polls(*[(70, 70 + i) for i in range(12)]),
            P1: polls(*[(10 * i, 10 * i + 5) for i in range(12)]),
        },
        {P0: STALL, P1: OK},
        GroupStatus.ERR,
    ),
    # Someone reset the group's offset to reprocess.
    "reset offset": Recording(
        {P0: polls(*idle(5, 1000), (200, 1000), (400, 1000))},
        {P0: REWIND},
        GroupStatus.WARN,
        never={GroupStatus.ERR},
    ),
}


@pytest.mark.parametrize("name", list(RECORDINGS))
def test_status_at_the_end_of_each_recording(name: str) -> None:
    recording = RECORDINGS[name]
    now = max(s.at for samples in recording.partitions.values() for s in samples)
    report = evaluate_group("g", recording.partitions, now, WINDOW)
    found = {PartitionKey(p.topic, p.partition): p.status for p in report.partitions}
    assert found == recording.final, [p.reason for p in report.partitions]
    assert report.status is recording.group_final


@pytest.mark.parametrize("name", [n for n, r in RECORDINGS.items() if r.never])
def test_no_false_alarm_at_any_poll_of_the_recording(name: str) -> None:
    recording = RECORDINGS[name]
    seen = {status for _, status in statuses_over_time(recording.partitions)}
    assert not seen & recording.never, seen


def test_a_stopped_consumer_is_not_an_alarm_before_the_window_has_passed() -> None:
    """A restart or a rebalance takes seconds: only lag waiting a whole window is STOP."""
    recording = RECORDINGS["stopped consumer"]
    timeline = statuses_over_time(recording.partitions)
    first_lag_at = T0 + 3 * POLL
    for at, status in timeline:
        if at - first_lag_at < WINDOW.window_seconds:
            assert status is GroupStatus.OK, at - first_lag_at
    assert timeline[-1][1] is GroupStatus.ERR


def test_a_stuck_single_partition_group_is_stop_because_nothing_else_shows_it_alive() -> None:
    samples = {P0: polls(*[(7, 9)] * 8)}
    report = evaluate_group("settlement", samples, samples[P0][-1].at, WINDOW)
    assert report.partitions[0].status is STOP
    assert report.status is GroupStatus.ERR


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([], GroupStatus.OK),
        ([OK, OK], GroupStatus.OK),
        ([OK, WARN], GroupStatus.WARN),
        ([OK, REWIND], GroupStatus.WARN),
        ([WARN, STALL], GroupStatus.ERR),
        ([OK, STOP], GroupStatus.ERR),
        ([REWIND, STOP, STALL], GroupStatus.ERR),
    ],
)
def test_group_status_is_err_when_any_partition_is_stop_or_stall(
    statuses: Sequence[PartitionStatus], expected: GroupStatus
) -> None:
    assert group_status(statuses) is expected
    assert Severity[expected.value] == {"OK": 0, "WARN": 1, "ERR": 2}[expected.value]


# -- lag in seconds --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        # Caught up: 0, even though the last message is a day old.
        (Sample(at=T0, committed=10, log_end=10, lag=0, oldest_unconsumed_at=T0 - 86_400), 0.0),
        # The oldest waiting message was written 42 s ago.
        (Sample(at=T0, committed=10, log_end=15, lag=5, oldest_unconsumed_at=T0 - 42), 42.0),
        # A producer clock ahead of ours never gives a negative age.
        (Sample(at=T0, committed=10, log_end=15, lag=5, oldest_unconsumed_at=T0 + 3), 0.0),
    ],
    ids=["caught up", "from the timestamp", "producer clock ahead"],
)
def test_lag_seconds_is_the_age_of_the_oldest_unconsumed_message(sample: Sample, expected: float) -> None:
    assert lag_seconds([sample]) == expected


def test_lag_seconds_grows_with_the_clock_while_a_consumer_is_stopped() -> None:
    written = T0 + 5
    samples = [
        Sample(
            at=T0 + i * POLL, committed=3, log_end=3 + i, lag=i, oldest_unconsumed_at=written if i else None
        )
        for i in range(6)
    ]
    ages = [lag_seconds(samples[: i + 1]) for i in range(6)]
    assert ages[0] == 0.0
    assert ages[1:] == [POLL * i - 5 for i in range(1, 6)]


def test_lag_seconds_without_a_timestamp_is_how_long_the_lag_has_been_seen() -> None:
    samples = polls((3, 3), (3, 4), (3, 6), (3, 9))
    assert lag_seconds(samples) == 2 * POLL


def test_lag_seconds_does_not_jump_during_a_burst() -> None:
    """Read from the message, not extrapolated from offset rates: 50 000 messages written
    within one second are one second old, not minutes."""
    burst = Sample(at=T0 + 1, committed=0, log_end=50_000, lag=50_000, oldest_unconsumed_at=T0)
    assert lag_seconds([burst]) == 1.0


# -- the sliding window ----------------------------------------------------------------


def test_the_window_keeps_one_sample_older_than_itself_as_its_anchor() -> None:
    samples = polls(*idle(20, 5))
    kept = in_window(samples, samples[-1].at, WINDOW)
    assert kept[0].at <= samples[-1].at - WINDOW.window_seconds < kept[1].at
    assert kept[-1] == samples[-1]


def test_history_keeps_only_the_window_and_forgets_vanished_partitions() -> None:
    history = History(WINDOW)
    for sample in polls(*idle(50, 5)):
        history.record("g", P0, sample)
        history.record("g", P1, sample)
    report = history.evaluate("g", T0 + 49 * POLL)
    assert report.window_complete and report.status is GroupStatus.OK
    assert len(history._samples["g"][P0]) == WINDOW.window_seconds / POLL + 1
    history.forget("g", {P0})
    assert [p.partition for p in history.evaluate("g", T0 + 49 * POLL).partitions] == [0]


def test_a_new_monitor_does_not_accuse_anyone_before_its_window_is_full() -> None:
    """Lag that was growing before the monitor started is not yet proof of anything."""
    samples = {P0: polls((10, 500), (10, 600))}
    report = evaluate_group("g", samples, samples[P0][-1].at, WINDOW)
    assert report.status is GroupStatus.OK and not report.window_complete


def test_a_stopped_partition_says_how_long_it_has_been_stopped_not_at_most_a_window() -> None:
    # Found in an operations audit: "offset 4 unchanged for 41s" after two minutes of
    # outage with a 40 s window, because the reason was worked out from the window alone.
    history = History(WINDOW)
    stopped = polls(*idle(3, 5), *[(5, 5 + i) for i in range(1, 40)])  # stopped from the 4th poll
    for sample in stopped:
        history.record("g", P0, sample)

    [partition] = history.evaluate("g", stopped[-1].at).partitions

    assert partition.status is STOP
    assert partition.reason.startswith(f"offset 5 unchanged for {stopped[-1].at - stopped[3].at:.0f}s ")
    assert stopped[-1].at - stopped[3].at > 5 * WINDOW.window_seconds
