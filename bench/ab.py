"""Two revisions' intake code timed in turns: `python -m bench.ab BEFORE [AFTER]`.

On a shared machine the same code's speed swings by up to twice within an hour, so two
benchmark runs one after the other compare the hours as much as the code. Here each
revision is checked out into a git worktree of its own and loaded by a worker process of
its own; the workers wait on a pipe and are told to time one round in turn, so a round of
the one and a round of the other are always seconds apart. Each round is the same
generated events through `validate()`, or through `rate_subject()` as intake rates a
subject again with each new fact. The least and the median of the rounds are reported
per revision, and whether both made the same payloads, content hashes and items.

With `--python`, the revision compared runs on another interpreter (one with the project's
dependencies installed): the same revision on both sides then compares two builds of
Python on one code, which on the development machine differed by a quarter of intake's
CPU (docs/performance.md).

The workers (`bench/ab_worker.py`, this checkout's) drive each revision's own
`services.intake.validation.validate` and `services.rating.service.rate_subject`; a
revision without them cannot be compared.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from bench.stream import national_stream

PARTS = ("validate", "rating")

WORKER = Path(__file__).with_name("ab_worker.py")  # run by path, beside the revision's tree


class AbError(RuntimeError):
    """A revision cannot be checked out or compared; the message says which and why."""


@dataclass(frozen=True)
class Side:
    revision: str
    commit: str
    microseconds: list[float]  # per event, one per round
    digest: str
    python: str  # the interpreter the worker ran on

    @property
    def least(self) -> float:
        return min(self.microseconds)

    @property
    def median(self) -> float:
        return statistics.median(self.microseconds)


def _git(*args: str, cwd: Path | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise AbError(f"git {' '.join(args)}: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout.strip()


@contextmanager
def worktree(repository: Path, revision: str, into: Path) -> Iterator[tuple[Path, str]]:
    """`revision` checked out at `into` (detached), removed again afterwards."""
    commit = _git("rev-parse", "--verify", f"{revision}^{{commit}}", cwd=repository)
    _git("worktree", "add", "--detach", "--force", str(into), commit, cwd=repository)
    try:
        yield into, commit
    finally:
        subprocess.run(
            ["git", "worktree", "remove", "--force", str(into)],
            cwd=repository,
            capture_output=True,
            check=False,
        )


class Worker:
    """A process with one revision's code loaded, timing a round when told."""

    def __init__(self, tree: Path, messages: Path, now: str, python: str) -> None:
        try:
            self._process = subprocess.Popen(
                [python, str(WORKER), str(tree), str(messages), now],
                cwd=tree,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
        except OSError as exc:
            raise AbError(f"cannot run the interpreter {python}: {exc.strerror or exc}") from exc
        self.events = int(self._answer()["ready"])

    def _answer(self) -> dict[str, Any]:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise AbError(f"the worker stopped (exit code {self._process.wait()}); its error is above")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def ask(self, **command: str) -> dict[str, Any]:
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps(command) + "\n")
        self._process.stdin.flush()
        return self._answer()

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        self._process.wait(timeout=30)


def compare(
    repository: Path,
    revisions: list[str],
    *,
    part: str,
    events: int,
    rounds: int,
    seed: int = 2012,
    python: str | None = None,
) -> list[Side]:
    """Time `part` for each revision in turns, `rounds` rounds each; the second on `python`
    when given, both on this interpreter otherwise."""
    pythons = (sys.executable, python or sys.executable)
    if part not in PARTS:
        raise AbError(f"no part {part!r}; the parts are {', '.join(PARTS)}")
    with tempfile.TemporaryDirectory(prefix="settlement-ab-") as tmp:
        messages = Path(tmp) / "messages.jsonl"
        with messages.open("wb") as out:
            for published in national_stream(events, seed=seed)[:events]:
                value = orjson.dumps(published.value).decode()
                out.write(
                    orjson.dumps({"topic": published.topic, "key": published.key, "value": value}) + b"\n"
                )
        now = "2025-11-05T00:00:00+00:00"  # after the generated month, so nothing is in the future
        with (
            worktree(repository, revisions[0], Path(tmp) / "a") as (tree_a, commit_a),
            worktree(repository, revisions[1], Path(tmp) / "b") as (tree_b, commit_b),
        ):
            workers: list[Worker] = []
            try:
                # Inside the `try`: should the second fail to start, the first is closed.
                for tree, interpreter in zip((tree_a, tree_b), pythons, strict=True):
                    workers.append(Worker(tree, messages, now, interpreter))
                times: list[list[float]] = [[], []]
                for _ in range(rounds):
                    for index, worker in enumerate(workers):
                        seconds = float(worker.ask(do="time", part=part)["seconds"])
                        times[index].append(seconds / worker.events * 1e6)
                digests = [str(w.ask(do="digest", part=part)["digest"]) for w in workers]
            finally:
                for worker in workers:
                    worker.close()
    return [
        Side(revisions[0], commit_a, times[0], digests[0], pythons[0]),
        Side(revisions[1], commit_b, times[1], digests[1], pythons[1]),
    ]


def table(sides: list[Side], part: str) -> Table:
    out = Table(title=f"{part}, µs per event, timed in turns")
    # The interpreters named only when they differ: otherwise they are this one.
    named = len({side.python for side in sides}) > 1
    texts = ("revision", "commit", *(("python",) if named else ()))
    for column in (*texts, "least", "median", "rounds"):
        out.add_column(column, justify="left" if column in texts else "right")
    for side in sides:
        out.add_row(
            side.revision,
            side.commit[:10],
            *((side.python,) if named else ()),
            f"{side.least:.2f}",
            f"{side.median:.2f}",
            str(len(side.microseconds)),
        )
    return out


def main(
    before: Annotated[str, typer.Argument(help="The revision to compare against, e.g. a commit or main~3")],
    after: Annotated[str, typer.Argument(help="The revision compared")] = "HEAD",
    part: Annotated[str, typer.Option(help="validate or rating")] = "validate",
    events: Annotated[int, typer.Option(min=1, help="Generated events per round")] = 20_000,
    rounds: Annotated[int, typer.Option(min=1, help="Rounds per revision")] = 9,
    python: Annotated[
        str | None,
        typer.Option(
            help="The interpreter the revision compared runs on (default: this one); it needs the "
            "project's dependencies. With one revision on both sides, compares two builds of Python"
        ),
    ] = None,
) -> None:
    """Time two revisions' intake code in turns, on the same events."""
    console = Console()
    try:
        sides = compare(Path.cwd(), [before, after], part=part, events=events, rounds=rounds, python=python)
    except AbError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    console.print(table(sides, part))
    same = sides[0].digest == sides[1].digest
    console.print(
        "the same outcomes from both"
        if same
        else "[yellow]the outcomes differ between the revisions[/yellow]"
    )


if __name__ == "__main__":
    typer.run(main)
