"""A service started while the broker is away says so in a line and exits 2, for its
supervisor to start it again (docs/runbook.md, ServiceDown): not a page of traceback in a
restarting container's log."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from services.runtime.processes import SERVICES

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("service", list(SERVICES))
def test_a_service_started_while_the_broker_is_away_says_so_in_a_line(database: str, service: str) -> None:
    env = os.environ | {
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
        "DATABASE_URL": database,
        "PSEUDONYM_KEY": "k" * 32,
        "COLUMNS": "200",
    }

    result = subprocess.run(
        [sys.executable, "-m", "services.cli.main", "run", service],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 2, result.stdout + result.stderr
    assert f"{service}: could not reach the broker: KafkaConnectionError" in result.stdout
    # and the client's own account of it in the service's log (the commands keep it out of theirs)
    assert 'Unable connect to "127.0.0.1:1"' in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
