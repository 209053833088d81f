"""A service started while the broker or the database is away says so in a line and exits 2,
for its supervisor to start it again (docs/runbook.md, ServiceDown): not a page of traceback
in a restarting container's log, not the clients' complaints of being left open, and not,
with its HTTP endpoints, a process that stays up answering `/healthz` with nothing consumed.
With and without a metrics port: docker-compose and `settlement up` give one."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from services.runtime.embedded import free_port
from services.runtime.processes import SERVICES

pytestmark = pytest.mark.integration


def _run(service: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # No COLUMNS: as in a container's log, where nothing says how wide a line may be.
    environment = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    return subprocess.run(
        [sys.executable, "-m", "services.cli.main", "run", service],
        env=environment | {"PSEUDONYM_KEY": "k" * 32} | env,
        capture_output=True,
        text=True,
        timeout=120,  # a start that hung would end here, failing the test
    )


def _with_port(with_port: bool) -> dict[str, str]:
    return {"METRICS_PORT": str(free_port())} if with_port else {}


@pytest.mark.parametrize("with_port", [False, True], ids=["no-port", "metrics-port"])
@pytest.mark.parametrize("service", list(SERVICES))
def test_a_service_started_while_the_broker_is_away_says_so_in_a_line(
    database: str, service: str, with_port: bool
) -> None:
    env = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "DATABASE_URL": database} | _with_port(with_port)

    result = _run(service, env)

    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    said = [line for line in result.stderr.splitlines() if "could not reach" in line]
    assert said == [
        f"{service}: could not reach the broker at 127.0.0.1:1: KafkaConnectionError: Unable to bootstrap from "
        "[('127.0.0.1', 1, <AddressFamily.AF_INET: 2>)]"
    ], output
    # and the client's own account of it in the service's log (the commands keep it out of theirs)
    assert 'Unable connect to "127.0.0.1:1"' in output
    assert "Traceback" not in output
    assert "Unclosed" not in output  # nothing a half-done start opened is left open


@pytest.mark.parametrize("with_port", [False, True], ids=["no-port", "metrics-port"])
@pytest.mark.parametrize("service", ["intake", "settlement"])
def test_a_service_started_while_the_database_is_away_says_so_in_a_line(
    service: str, with_port: bool
) -> None:
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
        "DATABASE_URL": "postgresql://settlement:s3cret@127.0.0.1:1/ledger",
    } | _with_port(with_port)

    result = _run(service, env)

    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    said = [line for line in result.stderr.splitlines() if "could not reach" in line]
    assert len(said) == 1, output
    assert said[0].startswith(f"{service}: could not reach the database at 127.0.0.1:1/ledger: "), output
    assert "Traceback" not in output and "s3cret" not in output


@pytest.mark.parametrize("service", list(SERVICES))
def test_a_service_whose_metrics_port_is_taken_says_so_in_a_line_before_starting(service: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",  # never reached: the port is refused first
            "DATABASE_URL": "postgresql://settlement@127.0.0.1:1/ledger",
            "METRICS_PORT": str(port),
        }

        result = _run(service, env)

    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert result.stderr.strip().splitlines()[-1] == (
        f"{service}: cannot listen on 127.0.0.1:{port} (METRICS_PORT): Address already in use"
    ), output
    assert "Traceback" not in output and "could not reach" not in output


async def test_a_service_holds_as_many_database_connections_as_it_is_given(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.bootstrap import open_resources
    from services.settings import load_settings

    for name, value in {
        "DATABASE_URL": database,
        "PSEUDONYM_KEY": "k" * 32,
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
        "DATABASE_POOL_SIZE": "2",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SECRETS_DIR", raising=False)

    resources = await open_resources(load_settings())
    try:
        assert resources.pool.get_max_size() == 2
    finally:
        await resources.pool.close()
