"""What `/readyz` says in the log while a probe keeps asking (services/observability/http.py)."""

import logging

import pytest

from services.observability.http import ReadinessLog


def test_an_outage_is_one_line_per_cause_and_one_when_it_is_over(caplog: pytest.LogCaptureFixture) -> None:
    said = ReadinessLog()
    caplog.set_level(logging.DEBUG, logger="services.observability.http")

    for _probe in range(5):
        said.failed(ConnectionRefusedError("connection refused"))
    said.failed(TimeoutError("pool acquire"))
    said.answered()
    said.answered()
    said.failed(ConnectionRefusedError("connection refused"))

    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.levelno >= logging.INFO]
    assert lines == [
        ("WARNING", "not ready: ConnectionRefusedError: connection refused"),
        ("WARNING", "not ready: TimeoutError: pool acquire"),
        ("INFO", "ready again"),
        ("WARNING", "not ready: ConnectionRefusedError: connection refused"),
    ]
