"""The year replay's spool: a month written to disk reads back as the very messages, in
order, that the month's stream publishes (bench/year.py)."""

from __future__ import annotations

import json
from pathlib import Path

from bench.year import YEAR, month_stream, read_spool, spool_month


def test_a_spooled_month_reads_back_message_for_message(tmp_path: Path) -> None:
    path = tmp_path / "month.spool"

    written = spool_month(path, 2, 300, seed=9)

    messages = read_spool(path)
    assert written == len(messages) >= 300
    assert messages == month_stream(2, 300, seed=9)


def test_each_month_of_the_year_is_its_own_month() -> None:
    for month in (1, 7, 12):
        days = {json.loads(value)["occurred_at"][:7] for _, _, value in month_stream(month, 60, seed=9)}
        assert f"{YEAR}-{month:02d}" in days
