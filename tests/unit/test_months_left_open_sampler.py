"""The settlement service's months-left-open gauges through a database outage."""

from __future__ import annotations

import asyncio
import logging

import asyncpg
import pytest

from services.observability.metrics import SettlementMetrics, new_registry
from services.observability.probes import months_left_open_sampler, run_sampler


async def test_a_sample_the_database_refuses_keeps_the_last_values_and_says_so_at_debug(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Reading 0 through an outage would say "nothing left open" when nobody knows; the
    # outage itself is ServiceNotReady's to tell, so the sampler only notes it.
    registry = new_registry()
    metrics = SettlementMetrics(registry)
    metrics.left_open(months=2, items=7, amount_ore=4_186_700)
    pool = await asyncpg.create_pool("postgresql://nobody@127.0.0.1:1/nothing", min_size=0)
    stop = asyncio.Event()
    caplog.set_level(logging.DEBUG, logger="services.observability.probes")
    sampler = asyncio.create_task(run_sampler(pool, months_left_open_sampler(metrics, 0.05), stop))
    try:
        for _ in range(400):  # 20 s at most
            if any("months left open not sampled" in r.getMessage() for r in caplog.records):
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await sampler
        await pool.close()

    [record, *_] = [r for r in caplog.records if "months left open not sampled" in r.getMessage()]
    assert record.levelno == logging.DEBUG
    assert registry.get_sample_value("samhandling_settlement_months_left_open") == 2
    assert registry.get_sample_value("samhandling_settlement_items_left_open") == 7
    assert registry.get_sample_value("samhandling_settlement_amount_left_open_ore") == 4_186_700
