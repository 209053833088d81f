"""A national year replayed: about ten million events (domain.md, "Scale") through two
intake replicas, timed from the first publish until the last event is in the ledger,
rather than extrapolated from a run of 100,000.

The year (2025) is generated first, a twelfth of the events per month, each month in the
order a hospital sends it, into spool files on disk, one month per process at a time: so
generating it costs the timed run nothing, and memory holds a month at most (the generator
makes about 40,000 events a second on one core). Then one producer publishes the months in
order while the intake replicas consume. The embedded broker, Tansu, keeps every message
in memory: about 7 GB for the whole year.

    python -m bench.year                      # ten million events, about 15 minutes
    python -m bench.year --events 1200000     # a tenth of a year's rate, as a check
"""

from __future__ import annotations

import asyncio
import json
import os
import struct
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any

import asyncpg
import psutil
import typer
from aiokafka import TopicPartition
from rich.console import Console
from rich.table import Table

from bench.publishers import Message, Producer, ProducerOption, Sent, default_producer, publish
from bench.run import (
    INTAKE_GROUP_PREFIX,
    NATIONAL_YEAR_EVENTS,
    TARIFF_DIRS,
    RssSampler,
    close_month_before,
    configure_server,
    machine,
    machine_line,
    timed_pipeline,
    totals,
    warm_up,
)
from bench.stream import national_stream
from contracts.v1 import topics
from services.domain.calendar import Month
from services.runtime.environment import Environment, prepare
from services.runtime.processes import ServiceProcess
from services.simulator.hospital import iter_encoded

console = Console()
YEAR = 2025
SOURCE = "bench-year"
_TOPICS = (topics.DISCHARGE_READY, topics.EMERGENCY_BEDS, topics.ACTIVITY)
_HEADER = struct.Struct("<BHI")  # topic's index, key length, value length


@dataclass
class YearResults:
    events: int = 0
    months: int = 12
    replicas: int = 2
    producer: str = ""
    machine: dict[str, Any] = field(default_factory=dict)
    generate_seconds: float = 0.0
    seconds: float = 0.0
    events_per_s: float = 0.0
    publish_msgs_per_s: float = 0.0
    cpu_us_per_event: dict[str, float] = field(default_factory=dict)
    cpu_busy_share: float = 0.0
    intake_peak_rss_mb: float = 0.0
    broker_peak_rss_mb: float = 0.0
    ledger_events: int = 0
    ledger_items: int = 0
    rejected: int = 0
    database_mb: float = 0.0
    database_settings: dict[str, str] = field(default_factory=dict)  # bench.run.SERVER_SETTINGS
    closed_before: str = ""  # the month closed before the year's first (bench.run.close_month_before)


def month_stream(month: int, events_per_month: int, seed: int) -> list[tuple[str, bytes, bytes]]:
    """One month of the year, as published: deterministic from the seed and the month."""
    stream = national_stream(events_per_month, seed=seed + month, period=Month(YEAR, month), source=SOURCE)
    return list(iter_encoded(stream))


def spool_month(path: Path, month: int, events_per_month: int, seed: int) -> int:
    """Write one month's messages to `path`; how many there are."""
    messages = month_stream(month, events_per_month, seed)
    with path.open("wb") as out:
        for topic, key, value in messages:
            out.write(_HEADER.pack(_TOPICS.index(topic), len(key), len(value)))
            out.write(key)
            out.write(value)
    return len(messages)


def read_spool(path: Path) -> list[Message]:
    with path.open("rb") as spool:
        data = spool.read()
    messages: list[Message] = []
    at = 0
    while at < len(data):
        topic, key_length, value_length = _HEADER.unpack_from(data, at)
        at += _HEADER.size
        key = data[at : at + key_length]
        at += key_length
        messages.append((_TOPICS[topic], key, data[at : at + value_length]))
        at += value_length
    return messages


def spool_year(directory: Path, events: int, seed: int) -> tuple[list[Path], int]:
    """The year's months in spool files, generated side by side on every core."""
    per_month = max(1, events // 12)
    paths = [directory / f"{YEAR}-{month:02d}.spool" for month in range(1, 13)]
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        counts = list(pool.map(spool_month, paths, range(1, 13), [per_month] * 12, [seed] * 12))
    return paths, sum(counts)


async def publish_months(bootstrap: str, paths: list[Path], producer: Producer) -> Sent:
    """Each month in turn, read from its spool and published; where every partition ends."""
    started = time.perf_counter()
    ends: dict[TopicPartition, int] = {}
    for path in paths:
        messages = await asyncio.to_thread(read_spool, path)
        sent = await publish(bootstrap, messages, producer)
        for partition, end in sent.ends.items():
            ends[partition] = max(ends.get(partition, 0), end)
    return Sent(time.perf_counter() - started, ends)


async def _database_mb(database_url: str) -> float:
    conn = await asyncpg.connect(database_url)
    try:
        return float(await conn.fetchval("SELECT pg_database_size(current_database())")) / 2**20
    finally:
        await conn.close()


def run_year(
    events: int, seed: int, state: Path, *, replicas: int = 2, producer: Producer | None = None
) -> YearResults:
    producer = producer or default_producer()
    results = YearResults(replicas=replicas, producer=producer.value)
    results.machine = machine()
    spools = state / "spool"
    spools.mkdir(parents=True, exist_ok=True)
    with console.status(f"generating {events:,} events of {YEAR} onto disk"):
        started = time.perf_counter()
        paths, results.events = spool_year(spools, events, seed)
        results.generate_seconds = time.perf_counter() - started
    environment = Environment(state / "environment", fresh_database=True)
    with environment as endpoints:
        prepare(endpoints)
        _, results.database_settings = asyncio.run(configure_server(environment, endpoints))
        results.closed_before = asyncio.run(close_month_before(endpoints, Month(YEAR, 1)))
        env = endpoints.as_env() | {
            "TARIFF_DIR": ":".join(map(str, TARIFF_DIRS)),
            "INTAKE_GROUP_PREFIX": INTAKE_GROUP_PREFIX,
        }
        processes = [ServiceProcess("intake", env, state / f"logs-{n}") for n in range(replicas)]
        rss = RssSampler(processes)
        broker_peak = 0.0
        try:
            for n, process in enumerate(processes):
                process.start()
                with console.status(f"intake replica {n + 1} of {replicas} joins the groups"):
                    asyncio.run(warm_up(endpoints, f"bench-year-warm-{n}"))
            if replicas > 1:
                time.sleep(12)  # let the rebalance settle before timing
            with console.status(f"{results.events:,} events of {YEAR} through {replicas} intake process(es)"):
                run = asyncio.run(
                    timed_pipeline(
                        environment,
                        endpoints,
                        lambda: publish_months(endpoints.bootstrap_servers, paths, producer),
                        results.events,
                        SOURCE,
                        processes,
                        rss,
                    )
                )
            if environment.broker is not None and environment.broker.pid:
                broker_peak = psutil.Process(environment.broker.pid).memory_info().rss / 2**20
        finally:
            for process in reversed(processes):
                process.stop()
        results.seconds = run.events / run.events_per_s
        results.events_per_s = run.events_per_s
        results.publish_msgs_per_s = run.publish_msgs_per_s
        results.cpu_us_per_event = run.cpu.per_event_us(run.events)
        results.cpu_busy_share = round(run.cpu.busy_share, 3)
        results.intake_peak_rss_mb = round(rss.peak_mb, 1)
        results.broker_peak_rss_mb = round(broker_peak, 1)
        results.ledger_events, results.ledger_items, results.rejected = asyncio.run(totals(endpoints))
        results.database_mb = round(asyncio.run(_database_mb(endpoints.database_url)), 1)
    return results


def table(r: YearResults) -> Table:
    t = Table(
        title=f"a year ({YEAR}) of {r.events:,} events, {r.replicas} intake replica(s)",
        caption=machine_line(r.machine),
    )
    t.add_column("measure")
    t.add_column("value", justify="right")
    t.add_row("generated beforehand (not timed)", f"{r.generate_seconds:,.0f} s")
    t.add_row("first publish to last event in the ledger", f"{r.seconds / 60:,.1f} min ({r.seconds:,.0f} s)")
    t.add_row("pipeline", f"{r.events_per_s:,.0f} events/s")
    t.add_row(f"publish (one {r.producer} producer)", f"{r.publish_msgs_per_s:,.0f} msg/s")
    cpu = r.cpu_us_per_event
    t.add_row(
        f"CPU per event (machine {r.cpu_busy_share:.0%} busy)",
        f"{sum(cpu.values()):.0f} µs: " + ", ".join(f"{part} {us:.0f}" for part, us in cpu.items()),
    )
    t.add_row("intake peak RSS", f"{r.intake_peak_rss_mb:,.0f} MB")
    t.add_row("database server", ", ".join(f"{name} {value}" for name, value in r.database_settings.items()))
    t.add_row("closed before the year", r.closed_before or "no month")
    t.add_row("broker RSS at the end (every message in memory)", f"{r.broker_peak_rss_mb:,.0f} MB")
    t.add_row(
        "ledger", f"{r.ledger_events:,} events, {r.ledger_items:,} items, {r.rejected} rejected, "
        f"{r.database_mb:,.0f} MB on disk"
    )  # fmt: skip
    return t


def main(
    events: Annotated[int, typer.Option(help="Events in the year")] = NATIONAL_YEAR_EVENTS,
    seed: Annotated[int, typer.Option(help="Seed of the generated year")] = 2025,
    replicas: Annotated[int, typer.Option(min=1, max=6, help="Intake replicas in one group")] = 2,
    producer: ProducerOption = None,
    out: Annotated[Path, typer.Option(help="Where to write the results as JSON")] = Path(
        "bench/results/year.json"
    ),
) -> None:
    """Replay a national year of events through intake and rating, and print the table."""
    with tempfile.TemporaryDirectory(prefix="settlement-year-") as tmp:
        results = run_year(events, seed, Path(tmp), replicas=replicas, producer=producer)
    console.print(table(results))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(asdict(results), indent=2) + "\n", encoding="utf-8")
    console.print(f"written to {out}")


if __name__ == "__main__":
    typer.run(main)
