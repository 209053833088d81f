"""`settlement lag`: the lag monitor's view of every group and partition, as a live table or
as JSON for scripts.

The statuses need a window of history, which the running lag monitor has: ask it first
(its `/lag`). With no monitor running, read the offsets directly; the lags are then exact at
once, while the statuses only mature as this command's own window fills (and a `--once`
reading has no window at all, which the output says).
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from services.adapters.kafka_connection import KafkaConnection
from services.cli.options import say_error
from services.lagmonitor.domain import Thresholds
from services.lagmonitor.service import LagMonitor, project_groups, report_json

Report = dict[str, Any]
_STYLE = {
    "OK": "green",
    "WARN": "yellow",
    "ERR": "bold red",
    "STALL": "red",
    "STOP": "bold red",
    "REWIND": "magenta",
}


def from_monitor(url: str, timeout: float = 2.0) -> Report | None:
    """The monitor's current report, or None when no monitor answers at `url`."""
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/lag", timeout=timeout) as response:
            report: Report = json.loads(response.read())
    except (OSError, urllib.error.URLError, ValueError):
        return None
    if report.get("at") is None:  # up, but has not polled yet
        return None
    return report


@asynccontextmanager
async def direct_reader(
    kafka: KafkaConnection, *, intake_group_prefix: str, settlement_group: str, window_seconds: float
) -> AsyncIterator[Callable[[], Awaitable[Report]]]:
    """Polls the broker in this process; each call returns a fresh report."""
    from services.lagmonitor.kafka_offsets import KafkaOffsets

    offsets = KafkaOffsets(
        kafka, project_groups(intake_group_prefix=intake_group_prefix, settlement_group=settlement_group)
    )
    monitor = LagMonitor(offsets, Thresholds(window_seconds=window_seconds))
    await offsets.start()
    try:

        async def poll() -> Report:
            reports = await monitor.poll()
            return report_json(reports, source="direct", at=monitor.last_poll_at)

        yield poll
    finally:
        await offsets.stop()


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


def stale(report: Report) -> bool:
    """The monitor answers but has not polled successfully for a while (it cannot reach the
    broker): its statuses are from before, and an OK among them proves nothing."""
    return report.get("fresh") is False


def exit_code(report: Report) -> int:
    """For scripts: 0 when every group is OK or WARN on a fresh reading, 1 otherwise."""
    return 1 if stale(report) or any(g["status"] == "ERR" for g in report["groups"]) else 0


def table(report: Report) -> Table:
    at = report.get("at")
    when = time.strftime("%H:%M:%S", time.localtime(at)) if at else "never"
    if report["source"] == "direct":
        caption = "read directly: no lag monitor answered; statuses mature as the window fills"
    else:
        caption = "from the lag monitor"
    title = f"consumer lag at {when}"
    if stale(report):
        age = _age(time.time() - at) if at else "ever"
        title = f"[bold red]STALE[/bold red]: the lag monitor has not read the broker for {age}; {title}"
    # Four narrow columns, each partition's reason on a line of its own under it: with a
    # column each for the group, the topic and the reason, an 80-column terminal cut the
    # names to "samha…", and which group and partition are in trouble is what an operator
    # reads first (docs/runbook.md).
    out = Table(title=title, caption=caption, expand=False)
    out.add_column(Text("group / topic[partition]"), overflow="fold")
    out.add_column("committed/end", justify="right", overflow="fold")
    out.add_column("lag", justify="right", overflow="fold")
    out.add_column("status", overflow="fold")
    for group in report["groups"]:
        status = group["status"]
        window = " (window filling)" if not group["window_complete"] else ""
        out.add_row(
            Text(group["group"], style="bold"),
            "",
            f"{group['lag']}, {_age(group['lag_seconds'])}",
            Text(status + window, style=_STYLE.get(status, "")),
            end_section=not group["partitions"],
        )
        for i, p in enumerate(group["partitions"]):
            committed = "-" if p["committed"] is None else str(p["committed"])
            out.add_row(
                Text(f"  {p['topic']}[{p['partition']}]"),
                f"{committed}/{p['log_end']}",
                f"{p['lag']}, {_age(p['lag_seconds'])}",
                Text(p["status"], style=_STYLE.get(p["status"], "")),
            )
            out.add_row(
                Text(f"    {p['reason']}", style="dim"),
                "",
                "",
                "",
                end_section=i == len(group["partitions"]) - 1,
            )
    return out


async def run(
    console: Console,
    *,
    monitor_url: str | None,
    kafka: KafkaConnection | None,
    direct: dict[str, Any],
    once: bool,
    as_json: bool,
    interval: float,
) -> int:
    """Print once (table or JSON) or keep a live table until Ctrl-C. Returns the exit code."""
    async with AsyncExitStack() as stack:
        poll: Callable[[], Awaitable[Report | None]]
        if monitor_url and await asyncio.to_thread(from_monitor, monitor_url) is not None:
            url = monitor_url

            async def poll() -> Report | None:
                return await asyncio.to_thread(from_monitor, url)

        elif kafka is not None:
            poll = await stack.enter_async_context(direct_reader(kafka, **direct))
        else:
            say_error("no lag monitor answered and no broker is known: start `settlement up`")
            return 2

        if once:
            report = await poll()
            if report is None:
                say_error("the lag monitor stopped answering")
                return 2
            if as_json:
                print(json.dumps(report, indent=2))
            else:
                console.print(table(report))
            return exit_code(report)

        with Live(Text("reading offsets..."), console=console, auto_refresh=False) as live:
            while True:
                report = await poll()
                live.update(
                    table(report) if report else Text("the lag monitor stopped answering", style="red"),
                    refresh=True,
                )
                await asyncio.sleep(interval)
