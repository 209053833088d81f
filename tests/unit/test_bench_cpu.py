"""The benchmark's CPU accounting: each part's core-seconds, its descendants included when
asked, and the arithmetic of the figures reported from them."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.cpu import CpuAccount, CpuUse, Part
from services.runtime.embedded import postmaster_pid

BURN = "import time\nend = time.process_time() + {seconds}\nwhile time.process_time() < end: pass\n"
# A parent that starts a child burning CPU, then burns some itself.
PARENT = (
    "import subprocess, sys\n"
    "child = subprocess.Popen([sys.executable, '-c', {child!r}])\n" + BURN + "child.wait()\n"
)


def _run_and_account(with_children: bool) -> CpuUse:
    script = PARENT.format(child=BURN.format(seconds=0.6), seconds=0.3)
    process = subprocess.Popen([sys.executable, "-c", script])
    account = CpuAccount([Part("parent", process.pid, with_children=with_children)])
    account.start()
    while process.poll() is None:
        account.sample()
        time.sleep(0.02)
    # Ended: its last sample stands (a process cannot be read after it has gone).
    return account.stop()


def test_a_part_with_its_children_counts_the_cpu_its_descendants_spent() -> None:
    use = _run_and_account(with_children=True)
    assert use.by_part["parent"] == pytest.approx(0.9, abs=0.25)


def test_a_part_without_its_children_counts_only_its_own_cpu() -> None:
    use = _run_and_account(with_children=False)
    assert use.by_part["parent"] == pytest.approx(0.3, abs=0.15)


def test_the_machine_busy_time_covers_the_parts_so_the_rest_is_other() -> None:
    use = _run_and_account(with_children=True)
    assert use.machine_busy >= use.by_part["parent"] * 0.9
    assert use.seconds > 0 and use.cores >= 1


def test_per_event_figures_and_the_ceiling_follow_from_the_core_seconds() -> None:
    use = CpuUse(seconds=10.0, cores=2, by_part={"intake": 6.0, "postgresql": 2.0}, machine_busy=10.0)
    assert use.other == pytest.approx(2.0)
    assert use.busy_share == pytest.approx(0.5)
    assert use.per_event_us(100_000) == {"intake": 60.0, "postgresql": 20.0, "other": 20.0}
    # 100 µs of the machine per event: two cores do at most 20,000 events a second.
    assert use.ceiling_per_s(100_000) == pytest.approx(20_000)
    assert use.per_event_us(0) == {} and CpuUse(1.0, 2).ceiling_per_s(10) == 0.0


def test_the_postmaster_is_found_from_its_pid_file(tmp_path: Path) -> None:
    assert postmaster_pid(tmp_path) is None
    (tmp_path / "postmaster.pid").write_text("4242\n/data\n1700000000\n", encoding="utf-8")
    assert postmaster_pid(tmp_path) == 4242
