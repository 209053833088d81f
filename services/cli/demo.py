"""`settlement demo`: a simulated hospital month through the real services, end to end."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from pathlib import Path

import asyncpg
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from services.cli.kafka_tools import publish_events, read_statements, send_close
from services.cli.render import print_statements
from services.domain.calendar import Month
from services.runtime.environment import Endpoints, Environment, prepare
from services.runtime.processes import ServiceGroup
from services.simulator.hospital import Hospital, iter_encoded
from services.tariffs import DEFAULT_TARIFF_DIR, EXAMPLE_TARIFF_DIR


class DemoFailed(RuntimeError):
    pass


async def _wait_for(
    what: str,
    check: object,
    target: int,
    progress: Progress,
    group: ServiceGroup,
    limit_seconds: float = 120.0,
) -> None:
    task = progress.add_task(what, total=target)
    deadline = time.monotonic() + limit_seconds
    while True:
        done = await check()  # type: ignore[operator]
        progress.update(task, completed=min(done, target))
        if done >= target:
            return
        if dead := group.dead():
            raise DemoFailed(f"the {dead[0].name} service stopped; see {dead[0].log_path}")
        if time.monotonic() > deadline:
            raise DemoFailed(f"timed out: {what} ({done}/{target})")
        await asyncio.sleep(0.25)


async def run_month(endpoints: Endpoints, period: Month, group: ServiceGroup, console: Console) -> None:
    """A simulated hospital month through running services: published, recorded, closed,
    and both copies of every statement on the topic; `DemoFailed` if any step is not."""
    events = Hospital(period, seed=2012).month(emergency_heavy=frozenset({"5501"}))
    conn = await asyncpg.connect(endpoints.database_url)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    try:
        with Progress(*columns, console=console) as progress:
            task = progress.add_task(f"hospital publishes {period}", total=len(events))
            await publish_events(endpoints.kafka, iter_encoded(events), lambda n: progress.advance(task, n))

            async def settled_events() -> int:
                accepted = await conn.fetchval("SELECT count(*) FROM inbound_events")
                rejected = await conn.fetchval("SELECT count(*) FROM rejections")
                return int(accepted) + int(rejected)

            await _wait_for("intake validates, records, prices", settled_events, len(events), progress, group)
            await send_close(endpoints.kafka, str(period))

            async def closed() -> int:
                return int(
                    await conn.fetchval(
                        "SELECT count(*) FROM closed_periods WHERE period = $1", period.first_day
                    )
                )

            await _wait_for(f"settlement closes {period}", closed, 1, progress, group)
            pairs = int(
                await conn.fetchval("SELECT count(*) FROM statements WHERE period = $1", period.first_day)
            )

            async def published() -> int:
                return len(await read_statements(endpoints.kafka, period=str(period)))

            await _wait_for("statements published to both parties", published, 2 * pairs, progress, group)
        statements = await read_statements(endpoints.kafka, period=str(period))
    finally:
        await conn.close()
    print_statements(console, statements)
    console.print(
        f"[bold]{len(events)}[/bold] events from the simulated hospital became [bold]{pairs}[/bold] "
        f"statements, each published once to the municipality and once to the health trust "
        f"on samhandling.settlements.v1."
    )


def run_demo(period: Month, console: Console, data_dir: Path | None = None) -> None:
    if data_dir is not None:
        _demo(period, console, data_dir)
        return
    state = Path(tempfile.mkdtemp(prefix="settlement-demo-"))
    try:
        _demo(period, console, state)
    except DemoFailed:
        # The failure names a service's log: the logs are kept, the database's files not.
        for path in state.iterdir():
            if path.is_dir() and path.name != "logs":
                shutil.rmtree(path, ignore_errors=True)
            elif path.is_file():
                path.unlink()
        raise
    except BaseException:
        shutil.rmtree(state, ignore_errors=True)
        raise
    shutil.rmtree(state, ignore_errors=True)


def _demo(period: Month, console: Console, state: Path) -> None:
    with (
        console.status("starting the broker (Tansu) and PostgreSQL"),
        Environment(state, fresh_database=True) as endpoints,
    ):
        console.print(f"broker {endpoints.bootstrap_servers} · database ready · logs in {escape(str(state))}")
        prepare(endpoints)
        # The shipped national tariffs plus the example agreements and trial, so the demo
        # shows all three families priced and a pair where the trust is the net payer.
        tariffs = os.pathsep.join(map(str, (DEFAULT_TARIFF_DIR, EXAMPLE_TARIFF_DIR)))
        env = endpoints.as_env() | {"TARIFF_DIR": tariffs}
        with ServiceGroup(env, state / "logs") as group:
            asyncio.run(run_month(endpoints, period, group, console))
