"""The latency phase's figures from its deliveries, by worked examples."""

from __future__ import annotations

import pytest

from bench.latency import Delivery, LatencyFigures, latency_figures


def at(sent: float, to_start_ms: float, to_commit_ms: float) -> Delivery:
    return Delivery(sent, sent + to_start_ms / 1000, sent + to_commit_ms / 1000)


@pytest.mark.parametrize(
    ("deliveries", "p50", "p99", "largest", "p50_to_start", "worst_by_second"),
    [
        pytest.param(
            [at(100.0, 10, 50), at(100.4, 20, 30), at(101.2, 400, 500)],
            50, 500, 500, 20, [50, 500],
            id="three events over two seconds: the late one is the second second's worst",
        ),
        pytest.param(
            [at(101.2, 400, 500), at(100.0, 10, 50), at(100.4, 20, 30)],
            50, 500, 500, 20, [50, 500],
            id="in any order: seconds count from the first sent",
        ),
        pytest.param(
            [at(100.7, 5, 20), at(101.5, 5, 30), at(101.8, 5, 70)],
            30, 70, 70, 5, [30, 70],
            id="a second is a second from the first event sent, not of the clock",
        ),
        pytest.param(
            [at(10.0, 5, 40), at(12.5, 5, 60)],
            50, 60, 60, 5, [40, 0, 60],
            id="a second with nothing sent reads as none",
        ),
        pytest.param(
            [at(10.0, -3, -1), at(10.1, 2, 8)],
            4, 8, 8, 1, [8],
            id="clocks a hair apart: a delay below zero counts as none",
        ),
        pytest.param(
            [at(50.0 + i / 200, 1, i + 1) for i in range(200)],
            100.5, 199, 200, 1, [200],
            id="two hundred events in a second: p99 is the 199th, the worst is the last",
        ),
    ],
)  # fmt: skip
def test_latency_figures(
    deliveries: list[Delivery],
    p50: float,
    p99: float,
    largest: float,
    p50_to_start: float,
    worst_by_second: list[float],
) -> None:
    figures = latency_figures(deliveries)
    assert figures.events == len(deliveries)
    assert figures.p50_ms == pytest.approx(p50)
    assert figures.p99_ms == pytest.approx(p99)
    assert figures.max_ms == pytest.approx(largest)
    assert figures.p50_to_start_ms == pytest.approx(p50_to_start)
    assert figures.worst_by_second_ms == pytest.approx(worst_by_second, abs=0.05)


def test_no_deliveries_no_figures() -> None:
    assert latency_figures([]) == LatencyFigures()
