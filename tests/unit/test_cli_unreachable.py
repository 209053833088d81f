"""A command whose database or broker is away says so in one line and exits 2: no traceback
of the drivers' internals, and never the database password. On standard error, and not
wrapped however narrow the terminal (none here: rich's 80 columns)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from services.adapters.stores import database_location

NOWHERE = {
    "DATABASE_URL": "postgresql://finance:s3cret@127.0.0.1:1/ledger",
    "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
}


def _settlement(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli.main", *args],
        env={k: v for k, v in os.environ.items() if k != "COLUMNS"} | NOWHERE,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["pending"], "could not reach the database at 127.0.0.1:1/ledger: "),
        (["rejections"], "could not reach the database at 127.0.0.1:1/ledger: "),
        (
            ["reconcile", "4601", "983974724", "2025-10"],
            "could not reach the database at 127.0.0.1:1/ledger: ",
        ),
        (["statements", "2025-10"], "could not reach the broker at 127.0.0.1:1: "),
        # not a line of the CSV a finance office redirects into a file
        (["statements", "2025-10", "--format", "csv"], "could not reach the broker at 127.0.0.1:1: "),
        (["migrate"], "could not reach the database at 127.0.0.1:1/ledger: "),
        (["create-topics"], "could not reach the broker at 127.0.0.1:1: "),
        (["lag", "--once"], "could not reach the broker at 127.0.0.1:1: "),
        (["lag", "--json"], "could not reach the broker at 127.0.0.1:1: "),
        (["close", "2025-10"], "could not reach the broker at 127.0.0.1:1: "),
    ],
)
def test_a_store_that_is_away_is_named_in_one_line(args: list[str], says: str) -> None:
    result = _settlement(*args)

    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert result.stdout == "", output
    assert result.stderr.startswith(says), output
    assert "Traceback" not in output and "s3cret" not in output
    assert len(result.stderr.strip().splitlines()) == 1, output
    assert len(result.stderr.strip()) > 80  # so one line means it was not wrapped


@pytest.mark.parametrize(
    ("url", "where"),
    [
        ("postgresql://u:pw@db.example:5433/ledger", "db.example:5433/ledger"),
        ("postgresql://u@/ledger?host=/run/postgresql", "/run/postgresql/ledger"),
        ("postgresql://u:pw@db.example:port/ledger", "db.example/ledger"),
    ],
)
def test_a_database_is_named_by_where_it_is_never_by_its_password(url: str, where: str) -> None:
    assert database_location(url) == where


def test_a_certificate_the_database_url_names_that_is_missing_is_named_not_the_server() -> None:
    url = "postgresql://finance:s3cret@127.0.0.1:1/ledger?sslmode=verify-full&sslrootcert=/nowhere/ca.pem"
    result = subprocess.run(
        [sys.executable, "-m", "services.cli.main", "migrate"],
        env={k: v for k, v in os.environ.items() if k != "COLUMNS"} | {"DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip() == (
        "could not reach the database at 127.0.0.1:1/ledger: no such file: sslrootcert=/nowhere/ca.pem"
    )


@pytest.mark.parametrize("args", [["close", "2025-10"], ["statements", "2025-10"]])
def test_the_commands_that_read_or_write_only_the_topics_need_no_database(args: list[str]) -> None:
    environment = {k: v for k, v in os.environ.items() if k not in {"COLUMNS", "DATABASE_URL", "SECRETS_DIR"}}
    result = subprocess.run(
        [sys.executable, "-m", "services.cli.main", *args, "--data-dir", "/nonexistent"],
        env=environment | {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 2, result.stdout + result.stderr
    # it went for the broker, not asking for DATABASE_URL first
    assert result.stderr.startswith("could not reach the broker at 127.0.0.1:1: "), result.stderr


NOT_A_URL = ("nonsense", "DATABASE_URL: not a PostgreSQL URL: ")
NOT_A_PORT = (
    "postgresql://finance:s3cret@127.0.0.1:notaport/ledger",
    "DATABASE_URL: its port is not a number: ",
)


@pytest.mark.parametrize(
    ("args", "url", "says"),
    [
        (["migrate"], *NOT_A_URL),
        (["run", "intake"], *NOT_A_URL),
        (["pending"], *NOT_A_PORT),
        (["run", "settlement"], *NOT_A_PORT),
    ],
)
def test_a_database_url_that_is_not_one_is_said_in_one_line(args: list[str], url: str, says: str) -> None:
    # Found in an operations audit: asyncpg's "invalid DSN" and int()'s "invalid literal" came
    # as pages of traceback, exit 1, from the services (docker-compose's restart loop) and
    # the setup step's `migrate`.
    result = subprocess.run(
        [sys.executable, "-m", "services.cli.main", *args],
        env={k: v for k, v in os.environ.items() if k != "COLUMNS"}
        | NOWHERE
        | {"DATABASE_URL": url, "PSEUDONYM_KEY": "k" * 40},
        capture_output=True,
        text=True,
        timeout=60,
    )

    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert says in result.stderr, output
    assert "Traceback" not in output and "s3cret" not in output
    assert len(result.stderr.strip().splitlines()) == 1, output
