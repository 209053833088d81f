"""The embedded PostgreSQL's data directory is removed even while a killed server's last
processes still write into it (they did once, and a benchmark lost its table)."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

import pytest

from services.runtime import embedded


def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "pgdata"
    (path / "pg_wal").mkdir(parents=True)
    (path / "pg_wal" / "000000010000000000000001").write_bytes(b"\0" * 16)
    return path


def writer_for(times: int, calls: list[Path]) -> object:
    """rmtree as it goes while a dying server writes: refused `times` times, then done."""
    real = shutil.rmtree

    def rmtree(path: Path) -> None:
        calls.append(path)
        if len(calls) <= times:
            (Path(path) / "pg_wal" / f"late-{len(calls)}").write_bytes(b"\0")
            raise OSError(errno.ENOTEMPTY, "Directory not empty", "pg_wal")
        real(path)

    return rmtree


def test_a_directory_still_written_to_is_removed_once_the_writing_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, calls = data_dir(tmp_path), []
    monkeypatch.setattr(embedded.shutil, "rmtree", writer_for(3, calls))
    embedded.remove_data_dir(path, pause=0)
    assert not path.exists()
    assert len(calls) == 4


def test_a_directory_that_cannot_be_removed_says_why_after_its_attempts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, calls = data_dir(tmp_path), []
    monkeypatch.setattr(embedded.shutil, "rmtree", writer_for(10, calls))
    with pytest.raises(OSError, match="not empty"):
        embedded.remove_data_dir(path, attempts=5, pause=0)
    assert len(calls) == 5
    assert path.exists()


def test_a_directory_gone_already_is_fine(tmp_path: Path) -> None:
    embedded.remove_data_dir(tmp_path / "never-made", pause=0)
    assert not (tmp_path / "never-made").exists()
