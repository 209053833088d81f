"""The data dir's lock (`settlement up`, one per data dir): held by one, refused to a second
with the holder's pid, and free again once the holder lets go or dies, however it dies."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from services.runtime.lock import LOCK_FILE, DataDirInUse, DataDirLock


def test_a_second_taker_is_refused_with_the_holders_pid(tmp_path: Path) -> None:
    data_dir = tmp_path / "new" / "state"  # made by the lock, as by `up`
    with DataDirLock(data_dir).acquire():
        with pytest.raises(DataDirInUse) as refused:
            DataDirLock(data_dir).acquire()
        assert refused.value.pid == os.getpid()
        assert str(refused.value) == (
            f"data dir {data_dir} is in use by another `settlement up` (pid {os.getpid()}); stop that one first"
        )
        assert (data_dir / LOCK_FILE).read_text() == f"{os.getpid()}\n"  # the refusal left it
    with DataDirLock(data_dir).acquire():  # released at the end of the block
        pass


def test_a_holder_killed_leaves_no_stale_lock(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, pathlib\n"
            "from services.runtime.lock import DataDirLock\n"
            f"DataDirLock(pathlib.Path({str(tmp_path)!r})).acquire()\n"
            "print('held', flush=True)\n"
            "sys.stdin.read()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(DataDirInUse) as refused:
            DataDirLock(tmp_path).acquire()
        assert refused.value.pid == holder.pid
    finally:
        holder.kill()  # SIGKILL: nothing of its own clean-up runs
        holder.wait()
    with DataDirLock(tmp_path).acquire():
        assert (tmp_path / LOCK_FILE).read_text() == f"{os.getpid()}\n"


def test_what_a_killed_up_left_in_runtime_env_is_not_read(tmp_path: Path) -> None:
    from services.runtime.environment import RUNTIME_FILE, find_kafka

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a pid that names no process now
    (tmp_path / "up.lock").write_text(f"{gone.pid}\n")
    (tmp_path / RUNTIME_FILE).write_text("KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:1\n")
    environment = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "environ", environment)
        with pytest.raises(LookupError, match="no `settlement up` is running with data dir"):
            find_kafka(tmp_path)
        (tmp_path / "up.lock").write_text(f"{os.getpid()}\n")  # a running one's is read
        assert str(find_kafka(tmp_path)) == "127.0.0.1:1"
