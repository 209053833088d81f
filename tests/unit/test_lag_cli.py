"""`settlement lag --once`: a reading a script can trust, or an exit code saying why not."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from rich.console import Console

from services.cli import lag


def _report(*statuses: str, fresh: bool = True, age: float = 1.0) -> dict[str, Any]:
    return {
        "source": "lagmonitor",
        "at": time.time() - age,
        "fresh": fresh,
        "groups": [
            {
                "group": f"g{n}",
                "status": s,
                "lag": 0,
                "lag_seconds": 0.0,
                "window_complete": True,
                "partitions": [],
            }
            for n, s in enumerate(statuses)
        ],
    }


def _once(monkeypatch: pytest.MonkeyPatch, report: dict[str, Any], *, as_json: bool) -> tuple[int, str]:
    monkeypatch.setattr(lag, "from_monitor", lambda url, timeout=2.0: report)
    console = Console(record=True, width=200)
    code = asyncio.run(
        lag.run(
            console,
            monitor_url="http://monitor",
            kafka=None,
            direct={},
            once=True,
            as_json=as_json,
            interval=1.0,
        )
    )
    return code, console.export_text()


@pytest.mark.parametrize("as_json", [False, True])
def test_a_fresh_reading_of_ok_and_warn_groups_exits_0(
    monkeypatch: pytest.MonkeyPatch, as_json: bool
) -> None:
    code, text = _once(monkeypatch, _report("OK", "WARN"), as_json=as_json)

    assert code == 0
    assert "STALE" not in text


@pytest.mark.parametrize("as_json", [False, True])
def test_a_group_in_err_exits_1(monkeypatch: pytest.MonkeyPatch, as_json: bool) -> None:
    assert _once(monkeypatch, _report("OK", "ERR"), as_json=as_json)[0] == 1


def test_a_monitor_that_cannot_read_the_broker_is_stale_however_green_its_last_reading(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The broker frozen: the monitor kept answering with its 47-second-old reading, every
    # group OK, and the command exited 0.
    code, text = _once(monkeypatch, _report("OK", "OK", fresh=False, age=47), as_json=False)

    assert code == 1
    assert "STALE: the lag monitor has not read the broker for 47" in text


@pytest.mark.parametrize("width", [80, 120])
def test_the_table_shows_which_group_and_partition_whole_on_a_narrow_terminal(width: int) -> None:
    # Found in an operations audit: at 80 columns every group and topic read "samha…", and
    # at 120 "samhandling-int…": the runbook's first question (which group, which partition)
    # could not be answered from the table.
    reason = "offset 4 unchanged for 108s with 220 message(s) waiting; no partition of the group moved"
    report = _report("ERR") | {
        "groups": [
            {
                "group": "samhandling-intake.discharge-ready",
                "status": "ERR",
                "lag": 220,
                "lag_seconds": 108.0,
                "window_complete": True,
                "partitions": [
                    {
                        "topic": "samhandling.discharge-ready.v1",
                        "partition": 3,
                        "committed": 4,
                        "log_end": 224,
                        "lag": 220,
                        "lag_seconds": 108.0,
                        "status": "STOP",
                        "reason": reason,
                    }
                ],
            }
        ]
    }
    console = Console(record=True, width=width, color_system=None)
    console.print(lag.table(report))
    text = console.export_text()

    assert "…" not in text
    assert "samhandling-intake.discharge-ready" in text
    assert "samhandling.discharge-ready.v1[3]" in text
    assert "group / topic[partition]" in text
    assert "4/224" in text
    words = " ".join(cell.strip() for line in text.splitlines() for cell in line.split("│")[1:2])
    assert " ".join(reason.split()) in " ".join(words.split())
