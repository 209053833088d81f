"""One `settlement up` per data dir. A second one on the same directory would start its own
broker and services against the first one's PostgreSQL, and on its way out stop that
PostgreSQL and delete the runtime.env the commands beside the first one read.

The lock is an `flock` on DATA_DIR/up.lock, held for the life of the process: the operating
system releases it when the process ends however it ends (SIGKILL too), so there is no stale
lock to clear. The file itself stays; it holds the pid of the last `up` that took it, for the
message a second one gives."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_FILE = "up.lock"


class DataDirInUse(RuntimeError):
    """Another process holds the data dir's lock."""

    def __init__(self, data_dir: Path, pid: int | None) -> None:
        self.data_dir = data_dir
        self.pid = pid
        by = f" (pid {pid})" if pid else ""
        super().__init__(f"data dir {data_dir} is in use by another `settlement up`{by}; stop that one first")


class DataDirLock:
    """`acquire`, then `with lock:` to hold it until the block ends (or the process does)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._fd: int | None = None

    def acquire(self) -> DataDirLock:
        """Take the lock, or raise `DataDirInUse` having changed nothing but, at most, created
        the directory and an empty lock file."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # Not O_TRUNC: the pid in it is the holder's until the lock is ours. The descriptor is
        # not inherited (PEP 446), so no service or database left running can keep the lock.
        fd = os.open(self.data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise DataDirInUse(self.data_dir, holder) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # drops the lock; the file stays (removing it would race a taker)
            self._fd = None

    def __enter__(self) -> DataDirLock:
        return self if self._fd is not None else self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _holder(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).decode().strip())
    except (OSError, ValueError):
        return None  # the holder has not written its pid yet


def holder_gone(data_dir: Path) -> bool:
    """Whether the `settlement up` that last held the data dir's lock has ended: its pid, in
    the lock file, names no process. False when unsure (no lock file: a data dir of an older
    `up`; no pid in it; a process of that pid that is not ours to signal)."""
    try:
        pid = int((data_dir / LOCK_FILE).read_text().strip())
    except (OSError, ValueError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # a process of that pid that is not ours to signal
    return False
