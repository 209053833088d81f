"""Commands run beside `settlement up` (statements, verify, reconcile, pending, explain)
find the broker and the database from the environment without needing a data dir."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.runtime.environment import find_endpoints


def test_with_the_environment_naming_both_no_data_dir_and_no_pseudonym_key_are_needed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka:9092")
    monkeypatch.setenv("DATABASE_URL", "postgresql://settlement@db/settlement")
    monkeypatch.delenv("PSEUDONYM_KEY", raising=False)
    data_dir = tmp_path / "not-made"

    endpoints = find_endpoints(data_dir)

    assert (endpoints.bootstrap_servers, endpoints.database_url) == (
        "kafka:9092",
        "postgresql://settlement@db/settlement",
    )
    assert not data_dir.exists(), "a command that only reads must not make a key (nor its directory)"


def test_a_key_kept_by_a_running_settlement_up_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka:9092")
    monkeypatch.setenv("DATABASE_URL", "postgresql://settlement@db/settlement")
    monkeypatch.delenv("PSEUDONYM_KEY", raising=False)
    (tmp_path / "pseudonym.key").write_text("k" * 64 + "\n")

    assert find_endpoints(tmp_path).pseudonym_key == "k" * 64
