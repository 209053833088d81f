"""What a demo leaves behind in its temporary directory: nothing when it ran, the services'
logs when it failed (its message names one of them), never the database's files."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from services.cli import demo
from services.domain.calendar import Month


def _states(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *, fail: bool) -> list[Path]:
    made: list[Path] = []
    monkeypatch.setattr(demo.tempfile, "tempdir", str(tmp_path))

    def month(period: Month, console: Console, state: Path) -> None:
        made.append(state)
        (state / "logs").mkdir()
        (state / "logs" / "intake.log").write_text("why it stopped\n")
        (state / "pg").mkdir()
        (state / "pg" / "PG_VERSION").write_text("18\n")
        (state / "runtime.env").write_text("KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:1\n")
        if fail:
            raise demo.DemoFailed(f"the intake service stopped; see {state / 'logs' / 'intake.log'}")

    monkeypatch.setattr(demo, "_demo", month)
    return made


def test_a_failed_demo_keeps_the_log_its_message_names_and_nothing_else(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    made = _states(monkeypatch, tmp_path, fail=True)

    with pytest.raises(demo.DemoFailed) as failed:
        demo.run_demo(Month(2025, 10), Console())

    [state] = made
    named = Path(str(failed.value).rpartition("see ")[2])
    assert named.read_text() == "why it stopped\n"
    assert sorted(p.name for p in state.iterdir()) == ["logs"]


def test_a_demo_that_ran_leaves_nothing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    made = _states(monkeypatch, tmp_path, fail=False)

    demo.run_demo(Month(2025, 10), Console())

    [state] = made
    assert not state.exists()


def test_a_demo_in_a_data_dir_given_leaves_it_as_it_is(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _states(monkeypatch, tmp_path, fail=True)
    given = tmp_path / "mine"
    given.mkdir()

    with pytest.raises(demo.DemoFailed):
        demo.run_demo(Month(2025, 10), Console(), data_dir=given)

    assert sorted(p.name for p in given.iterdir()) == ["logs", "pg", "runtime.env"]
