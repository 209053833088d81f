"""What the lag monitor exports follows the partitions it finds: a partition that goes
away (a topic deleted, a group moved off it) stops being reported, every series of it."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from services.lagmonitor.domain import GroupReport, GroupStatus, PartitionReport, PartitionStatus
from services.observability.metrics import LagMetrics


def _partition(topic: str, partition: int, log_end: int) -> PartitionReport:
    return PartitionReport(topic, partition, log_end - 1, log_end, 1, 0.5, PartitionStatus.OK, "")


def _report(group: str, *partitions: PartitionReport) -> GroupReport:
    return GroupReport(group, GroupStatus.OK, partitions, window_complete=True)


def _labels_of(registry: CollectorRegistry, name: str) -> set[tuple[str, ...]]:
    return {
        tuple(sample.labels.values())
        for family in registry.collect()
        for sample in family.samples
        if sample.name == name
    }


def test_a_partition_that_goes_away_is_no_longer_reported() -> None:
    registry = CollectorRegistry()
    metrics = LagMetrics(registry)
    metrics.update(
        [_report("intake", _partition("kept", 0, 10), _partition("deleted", 0, 20))], at=1.0, seconds=0.1
    )
    assert _labels_of(registry, "kafka_topic_partition_current_offset") == {("kept", "0"), ("deleted", "0")}

    metrics.update([_report("intake", _partition("kept", 0, 11))], at=2.0, seconds=0.1)

    assert _labels_of(registry, "kafka_topic_partition_current_offset") == {("kept", "0")}
    for name in (
        "kafka_consumergroup_lag",
        "kafka_consumergroup_lag_seconds",
        "kafka_consumergroup_current_offset",
    ):
        assert _labels_of(registry, name) == {("intake", "kept", "0")}, name
    assert {labels[:3] for labels in _labels_of(registry, "samhandling_consumergroup_partition_status")} == {
        ("intake", "kept", "0")
    }


def test_a_partition_still_read_by_another_group_keeps_its_log_end() -> None:
    registry = CollectorRegistry()
    metrics = LagMetrics(registry)
    shared = _partition("shared", 0, 10)
    metrics.update([_report("a", shared), _report("b", shared)], at=1.0, seconds=0.1)

    metrics.update([_report("a", shared)], at=2.0, seconds=0.1)

    assert _labels_of(registry, "kafka_topic_partition_current_offset") == {("shared", "0")}
    assert _labels_of(registry, "kafka_consumergroup_lag") == {("a", "shared", "0")}
