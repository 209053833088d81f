"""`python -m bench.ab`: two revisions' intake code timed in turns, each in a worker of its
own over a git worktree of its own. Checked here on this checkout against itself, small:
that it times every round of both, that the same code gives the same outcomes, and that
it leaves no worktree behind. Not how fast anything is."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from rich.console import Console

from bench.ab import AbError, Side, compare, table

ROOT = Path(__file__).resolve().parents[2]


def _worktrees() -> list[str]:
    listed = subprocess.run(
        ["git", "worktree", "list", "--porcelain"], cwd=ROOT, capture_output=True, text=True
    )
    return [line for line in listed.stdout.splitlines() if line.startswith("worktree ")]


@pytest.fixture
def repository() -> Path:
    if shutil.which("git") is None:
        pytest.skip("needs git, to check revisions out")
    inside = subprocess.run(["git", "rev-parse", "--verify", "HEAD"], cwd=ROOT, capture_output=True)
    if inside.returncode != 0:
        pytest.skip("needs this checkout to be a git repository with a commit")
    return ROOT


@pytest.mark.parametrize("part", ["validate", "rating"])
def test_the_same_revision_twice_is_timed_in_every_round_and_gives_the_same_outcomes(
    repository: Path, part: str
) -> None:
    before = _worktrees()

    sides = compare(repository, ["HEAD", "HEAD"], part=part, events=300, rounds=2)

    assert [len(side.microseconds) for side in sides] == [2, 2]
    assert all(us > 0 for side in sides for us in side.microseconds)
    assert sides[0].commit == sides[1].commit
    assert len(sides[0].digest) == 64 and sides[0].digest == sides[1].digest
    assert _worktrees() == before


def test_a_revision_that_does_not_exist_is_refused_by_name(repository: Path) -> None:
    before = _worktrees()

    with pytest.raises(AbError, match="no-such-revision"):
        compare(repository, ["no-such-revision", "HEAD"], part="validate", events=10, rounds=1)

    assert _worktrees() == before


def test_a_part_that_does_not_exist_is_refused() -> None:
    with pytest.raises(AbError, match="the parts are validate, rating"):
        compare(ROOT, ["HEAD", "HEAD"], part="close", events=10, rounds=1)


def _rendered(sides: list[Side]) -> str:
    console = Console(width=200, record=True)
    console.print(table(sides, "validate"))
    return console.export_text()


def test_the_revision_compared_runs_on_the_interpreter_given(repository: Path, tmp_path: Path) -> None:
    # Another interpreter, as far as the comparison can tell: a script that notes each start
    # and runs this one.
    started = tmp_path / "started"
    other = tmp_path / "python"
    other.write_text(f'#!/bin/sh\necho started >> "{started}"\nexec "{sys.executable}" "$@"\n')
    other.chmod(0o755)

    sides = compare(repository, ["HEAD", "HEAD"], part="validate", events=50, rounds=1, python=str(other))

    assert started.read_text().splitlines() == ["started"]  # one worker, the second
    assert [side.python for side in sides] == [sys.executable, str(other)]
    assert sides[0].digest == sides[1].digest
    assert str(other) in _rendered(sides)
    alike = compare(repository, ["HEAD", "HEAD"], part="validate", events=10, rounds=1)
    assert "python" not in _rendered(alike)  # no column when both run on this one


def test_an_interpreter_that_cannot_run_is_refused_by_name_and_nothing_is_left(
    repository: Path, tmp_path: Path
) -> None:
    before = _worktrees()
    children = set(psutil.Process().children())  # the suite's own servers among them
    missing = tmp_path / "no-such-python"

    with pytest.raises(AbError, match="no-such-python"):
        compare(repository, ["HEAD", "HEAD"], part="validate", events=10, rounds=1, python=str(missing))

    assert _worktrees() == before
    assert set(psutil.Process().children()) == children  # the first side's worker was closed too
