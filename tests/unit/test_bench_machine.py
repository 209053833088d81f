"""What each benchmark table says about the machine it was measured on."""

from __future__ import annotations

import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

import psutil

from bench.run import cpu_model, machine, machine_line

CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 7B13
cpu MHz\t\t: 2445.428

processor\t: 1
model name\t: AMD EPYC 7B13
"""


def test_the_processor_is_named_from_cpuinfo(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(CPUINFO)
    assert cpu_model(cpuinfo) == "AMD EPYC 7B13"


def test_without_cpuinfo_the_processor_is_what_platform_knows(tmp_path: Path) -> None:
    expected = platform.processor() or platform.machine()
    assert cpu_model(tmp_path / "absent") == expected
    (tmp_path / "no-model").write_text("processor\t: 0\nmodel name\t:   \n")
    assert cpu_model(tmp_path / "no-model") == expected


def test_the_machine_is_described_with_its_boot_and_the_time_of_the_run() -> None:
    before = datetime.now(UTC).replace(second=0, microsecond=0)
    described = machine()
    assert described["cpus"] == psutil.cpu_count()
    assert described["python"] == platform.python_version()
    assert described["python_executable"] == os.path.realpath(sys.executable)
    booted = datetime.fromisoformat(described["booted_at"])
    measured = datetime.fromisoformat(described["measured_at"])
    assert booted <= measured
    assert before <= measured <= datetime.now(UTC)
    assert abs(booted.timestamp() - psutil.boot_time()) < 60
    line = machine_line(described)
    for key in ("cpu_model", "python_executable", "booted_at", "measured_at"):
        assert described[key] in line, key
