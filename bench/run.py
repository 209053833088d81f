"""`python -m bench`: the pipeline against the raw broker and database, in one run.

Phases, all on the embedded default (or the real ones named by the environment):
1. raw ceiling: a bare aiokafka consumer reading N messages, and a bare asyncpg COPY of N
   rows of the ledger's shape;
2. pipeline: N events published as fast as one producer can, from the first publish until
   the last is recorded by the intake process (one replica, then two in one group);
3. latency: publish-to-ledger p50/p99 at a fixed offered load, to the commit that recorded
   each event (the embedded PostgreSQL is restarted with track_commit_timestamp for it);
4. a month close over the resulting ledger for all pairs;
5. a month close at national scale: about a million priced items over every pair, seeded
   with COPY into a month of its own (bench/close.py);
and the peak resident memory of each intake process.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import asyncpg
import psutil
import typer
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from rich.console import Console
from rich.table import Table

from bench.close import CLOSE_PERIOD, FIRST_CLOSE_PERIOD, close_at_scale
from bench.cpu import CpuAccount, CpuUse, Part
from bench.latency import LatencyFigures, latency, recorded
from bench.publishers import Message, Producer, ProducerOption, Sent, default_producer, publish
from bench.stream import national_stream
from services.adapters.intake_progress import IntakeProgress
from services.adapters.municipality_registry import load_registry
from services.adapters.postgres import create_pool
from services.adapters.tariff_files import load_tariffs
from services.domain.calendar import Month
from services.runtime.embedded import postmaster_pid
from services.runtime.environment import Endpoints, Environment, prepare
from services.runtime.processes import ServiceProcess
from services.settings import intake_groups
from services.settlement.service import close_period
from services.simulator.hospital import iter_encoded
from services.tariffs import DEFAULT_TARIFF_DIR, EXAMPLE_TARIFF_DIR

console = Console()
PERIOD = Month(2025, 10)
NATIONAL_YEAR_EVENTS = 10_000_000
TARIFF_DIRS = (DEFAULT_TARIFF_DIR, EXAMPLE_TARIFF_DIR)
# The intake processes started here are given this prefix, so their groups are known.
INTAKE_GROUP_PREFIX = "bench-intake"


@dataclass
class Results:
    machine: dict[str, Any] = field(default_factory=dict)
    events: int = 0
    pairs: int = 0
    raw_consume_msgs_per_s: float = 0.0
    raw_copy_rows_per_s: float = 0.0
    publish_msgs_per_s: float = 0.0
    producer: str = ""  # the client that published the load (bench/publishers.py, `Producer`)
    pipeline_events_per_s: float = 0.0
    pipeline_events_per_s_two_replicas: float = 0.0
    # CPU per event of each part of the pipeline (bench/cpu.py), in µs, and how busy the
    # machine was meanwhile; for the run with one intake process and the one with two.
    pipeline_cpu_us_per_event: dict[str, float] = field(default_factory=dict)
    pipeline_cpu_busy_share: float = 0.0
    pipeline_cpu_ceiling_per_s: float = 0.0
    pipeline_two_cpu_us_per_event: dict[str, float] = field(default_factory=dict)
    pipeline_two_cpu_busy_share: float = 0.0
    latency_offered_per_s: int = 0
    latency_events: int = 0
    latency_p50_ms: float = 0.0
    latency_p99_ms: float = 0.0
    latency_max_ms: float = 0.0
    # Where the time went (bench/latency.py): the median to the start of the transaction
    # that recorded the event, and the worst delay of the events sent in each second.
    latency_p50_to_start_ms: float = 0.0
    latency_worst_by_second_ms: list[float] = field(default_factory=list)
    latency_to: str = ""  # "commit": to the commit that recorded it; "start": to that transaction's start
    database_settings: dict[str, str] = field(default_factory=dict)  # as the server ran (SERVER_SETTINGS)
    closed_before_pipeline: str = ""  # the month closed before any event is published (`run`)
    close_seconds: float = 0.0
    close_items: int = 0
    close_statements: int = 0
    scale_close_period: str = ""
    scale_close_seconds: float = 0.0
    scale_close_items: int = 0
    scale_close_statements: int = 0
    scale_close_largest_message_bytes: int = 0
    scale_first_close_period: str = ""  # the first such close of the new server (bench/close.py)
    scale_first_close_seconds: float = 0.0
    intake_peak_rss_mb: float = 0.0
    scale_publish_seconds: float = 0.0  # the settlement service publishing the first 1 M-item close
    settlement_peak_rss_mb: float = 0.0
    ledger_events: int = 0
    ledger_items: int = 0
    rejected: int = 0

    def add_latency(self, figures: LatencyFigures) -> None:
        self.latency_events = figures.events
        self.latency_p50_ms = figures.p50_ms
        self.latency_p99_ms = figures.p99_ms
        self.latency_max_ms = figures.max_ms
        self.latency_p50_to_start_ms = figures.p50_to_start_ms
        self.latency_worst_by_second_ms = figures.worst_by_second_ms

    @property
    def ratio_to_raw(self) -> float:
        return (
            self.pipeline_events_per_s / self.raw_consume_msgs_per_s if self.raw_consume_msgs_per_s else 0.0
        )

    @property
    def national_year_minutes(self) -> float:
        """A national year (domain.md, "Scale": about 10 million events) at the measured
        rate of the fastest pipeline run: an extrapolation, not a replay."""
        best = max(self.pipeline_events_per_s, self.pipeline_events_per_s_two_replicas)
        return NATIONAL_YEAR_EVENTS / best / 60 if best else 0.0

    @property
    def scaling(self) -> float:
        return (
            self.pipeline_events_per_s_two_replicas / self.pipeline_events_per_s
            if self.pipeline_events_per_s
            else 0.0
        )


async def raw_consume(bootstrap: str, messages: list[Message], producer: Producer) -> float:
    """A bare consumer reading the same number of messages from a topic of their own."""
    topic = f"bench.raw.{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 6, 1)])
    await admin.close()
    await publish(bootstrap, [(topic, k, v) for _, k, v in messages], producer)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, max_partition_fetch_bytes=8 << 20
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(6)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        started, seen = time.perf_counter(), 0
        while seen < len(messages):
            batch = await consumer.getmany(timeout_ms=500, max_records=10_000)
            seen += sum(len(records) for records in batch.values())
        return len(messages) / (time.perf_counter() - started)
    finally:
        await consumer.stop()


async def raw_copy(database_url: str, rows: int) -> float:
    """A bare COPY of rows shaped like ledger items."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("CREATE TEMP TABLE bench_copy (LIKE ledger_items INCLUDING DEFAULTS)")
        today = datetime.now(UTC).date()
        records = [
            (f"activity:983974724:B-{i}", PERIOD.first_day, 0, "activity_co_financing", f"B-{i}", "983974724",
             "4601", "municipality", today, today, 1, 100_00, 100_00, "rule", False, None, None)
            for i in range(rows)
        ]  # fmt: skip
        columns = [
            "subject_key", "service_month", "part", "category", "subject_id", "health_trust", "municipality",
            "payer_role", "first_day", "last_day", "quantity", "unit_price_ore", "amount_ore", "rule_id",
            "open_ended", "not_payable_reason", "note",
        ]  # fmt: skip
        started = time.perf_counter()
        await conn.copy_records_to_table("bench_copy", records=records, columns=columns)
        return rows / (time.perf_counter() - started)
    finally:
        await conn.close()


class RssSampler:
    def __init__(self, processes: list[ServiceProcess]) -> None:
        self._processes = processes
        self.peak_mb = 0.0

    def sample(self) -> None:
        for process in self._processes:
            if process.pid:
                try:
                    rss = psutil.Process(process.pid).memory_info().rss / 2**20
                except psutil.Error:
                    continue
                self.peak_mb = max(self.peak_mb, rss)


@dataclass
class PipelineRun:
    events: int
    events_per_s: float
    publish_msgs_per_s: float
    cpu: CpuUse


def pipeline_parts(environment: Environment, replicas: list[ServiceProcess]) -> list[Part]:
    """The processes whose CPU a pipeline run costs: this one (the producer), the intake
    replicas, and the embedded broker and database where this run started them."""
    parts = [Part("producer", os.getpid())]
    parts += [Part("intake", replica.pid) for replica in replicas if replica.pid]
    if environment.broker is not None and environment.broker.pid:
        parts.append(Part("broker", environment.broker.pid, with_children=True))
    if environment.postgres is not None and (pid := postmaster_pid(environment.postgres.data_dir)):
        parts.append(Part("postgresql", pid, with_children=True))
    return parts


async def pipeline(
    environment: Environment,
    endpoints: Endpoints,
    events: int,
    seed: int,
    source: str,
    replicas: list[ServiceProcess],
    rss: RssSampler,
    producer: Producer,
) -> PipelineRun:
    """`events` generated events through `replicas`: see `timed_pipeline`."""
    messages = list(iter_encoded(national_stream(events, seed=seed, source=source)))
    return await timed_pipeline(
        environment,
        endpoints,
        lambda: publish(endpoints.bootstrap_servers, messages, producer),
        len(messages),
        source,
        replicas,
        rss,
    )


async def timed_pipeline(
    environment: Environment,
    endpoints: Endpoints,
    send: Callable[[], Coroutine[Any, Any, Sent]],
    expected: int,
    source: str,
    replicas: list[ServiceProcess],
    rss: RssSampler,
) -> PipelineRun:
    """Events per second from the first publish until the last event is in the ledger, and
    what each part of the pipeline spent of the machine's CPU meanwhile. `send` publishes
    `expected` events, all with sources under `source`.

    Intake commits an offset only after the transaction that recorded its event, so the run
    is over when every intake group has committed up to where the producer wrote: asked of
    the broker every 100 ms for the partitions not caught up yet. (Counting the ledger that
    often took a third of a core from the pipeline it was timing: a scan of the events table
    ten times a second.) The ledger is counted once at the end, to be sure."""
    cpu = CpuAccount(pipeline_parts(environment, replicas))
    async with IntakeProgress(endpoints.kafka, intake_groups(INTAKE_GROUP_PREFIX)) as progress:
        cpu.start()
        sending = asyncio.create_task(send())
        started = time.perf_counter()
        waiting: dict[TopicPartition, int] | None = None  # the partitions not caught up yet
        polls = 0
        while waiting is None or waiting:
            for replica in replicas:
                if not replica.alive():
                    raise RuntimeError(f"an intake replica died; see {replica.log_path}")
            if polls % 5 == 0:  # every half second: reading /proc costs the machine too
                rss.sample()
                cpu.sample()
            polls += 1
            await asyncio.sleep(0.1)
            if sending.done():
                # A committed offset only moves on: a partition caught up is not asked again.
                asked = sending.result().ends if waiting is None else waiting
                behind = await progress.behind(asked)
                waiting = {tp: end for tp, end in asked.items() if behind[tp]}
        elapsed = time.perf_counter() - started
        use = cpu.stop()
    conn = await asyncpg.connect(endpoints.database_url)
    try:
        in_ledger = await recorded(conn, source)
    finally:
        await conn.close()
    if in_ledger != expected:
        raise RuntimeError(
            f"intake committed every offset, but {in_ledger} of {expected} events are in the "
            "ledger: see the rejections table"
        )
    sent = sending.result()
    return PipelineRun(expected, expected / elapsed, expected / sent.seconds, use)


async def warm_up(endpoints: Endpoints, source: str) -> None:
    """One event through each family, so consumer groups have joined before timing starts."""
    messages = list(iter_encoded(national_stream(30, seed=7, source=source)))
    await publish(endpoints.bootstrap_servers, messages)
    conn = await asyncpg.connect(endpoints.database_url)
    try:
        deadline = time.monotonic() + 120
        while await recorded(conn, source) < len(messages):
            if time.monotonic() > deadline:
                raise RuntimeError("intake did not start consuming within 120 s")
            await asyncio.sleep(0.2)
    finally:
        await conn.close()


# What an operator would give a server for this load, where PostgreSQL's defaults suit a
# small machine: the indexes intake inserts into at random (the dedup key, the subject
# hash) outgrow 128 MB of shared buffers within a few million events, and 1 GB of WAL
# between checkpoints makes every page those inserts touch be written into the WAL in
# full again after each checkpoint. Replaying a year of ten million events: PostgreSQL's
# CPU per event 35 µs with the defaults, 24 with these (docs/performance.md). Applied only
# to the embedded server a benchmark starts; a server the environment names is used as
# it is. Neither trades durability: fsync and synchronous commit stay on.
SERVER_SETTINGS = {"shared_buffers": "1GB", "max_wal_size": "8GB"}


async def configure_server(environment: Environment, endpoints: Endpoints) -> tuple[bool, dict[str, str]]:
    """Size the embedded server (`SERVER_SETTINGS`) and have it keep each transaction's
    commit time, so latency can be measured to the commit that put an event in the ledger;
    it is restarted for both. Whether commit times are kept (on a server the environment
    names, latency is then measured to the transaction's start), and the settings the
    server runs with."""
    if environment.postgres is not None:
        conn = await asyncpg.connect(endpoints.database_url)
        try:
            await conn.execute("ALTER SYSTEM SET track_commit_timestamp = on")
            for name, value in SERVER_SETTINGS.items():
                await conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
        finally:
            await conn.close()
        environment.postgres.pg_ctl("-w", "restart", "-m", "fast")  # restart keeps the server's options
    conn = await asyncpg.connect(endpoints.database_url)
    try:
        names = ["track_commit_timestamp", *SERVER_SETTINGS]
        running = {name: str(await conn.fetchval(f"SHOW {name}")) for name in names}
    finally:
        await conn.close()
    return running.pop("track_commit_timestamp") == "on", running


async def close_month(endpoints: Endpoints, period: Month = PERIOD) -> tuple[float, int, int]:
    pool = await create_pool(endpoints.database_url, max_size=3)  # the close and its two readers
    try:
        started = time.perf_counter()
        result = await close_period(
            pool, load_tariffs(*TARIFF_DIRS), period, command_id=uuid.uuid4(),
            clock=lambda: datetime.now(UTC), municipalities=load_registry(),
        )  # fmt: skip
        return time.perf_counter() - started, result.items, result.statements
    finally:
        await pool.close()


async def close_month_before(endpoints: Endpoints, month: Month) -> str:
    """Close the month before `month`, the first month of a benchmark's events: a deployment
    has closed the months before the ones its events are of, and rating then asks of every
    subject whether it may owe one of them (a late event), so a benchmark does too. The latest
    month the ledger has closed after it, as YYYY-MM ("" for none)."""
    await close_month(endpoints, month.previous())
    conn = await asyncpg.connect(endpoints.database_url)
    try:
        period = await conn.fetchval("SELECT max(period) FROM closed_periods")
    finally:
        await conn.close()
    return "" if period is None else str(Month.of(period))


def machine() -> dict[str, Any]:
    """What the figures were measured on, and when. The boot is part of it: on the
    development VM the same code measured about twice as slow for every hour of one boot
    as in the quick hours of the boot before (docs/performance.md), so runs compare best
    within one boot."""
    return {
        "cpus": psutil.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        # Which build of it: on the development machine Debian's 3.11.2, built with
        # profile-guided and link-time optimisation as the python:3.11-slim image the
        # services ship on is, did intake's work in about a quarter less CPU than pyenv's
        # 3.11.7, built without (docs/performance.md, "The interpreter's build").
        "python_executable": os.path.realpath(sys.executable),
        "booted_at": datetime.fromtimestamp(psutil.boot_time(), UTC).isoformat(timespec="minutes"),
        "measured_at": datetime.now(UTC).isoformat(timespec="minutes"),
    }


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The processor's name: Linux gives it in /proc/cpuinfo (`platform.processor()` is
    often empty there); elsewhere, whatever `platform` knows."""
    try:
        lines = cpuinfo.read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        key, _, value = line.partition(":")
        if key.strip() == "model name" and value.strip():
            return value.strip()
    return platform.processor() or platform.machine()


def machine_line(described: dict[str, Any]) -> str:
    """The machine in one line, under each table."""
    return (
        f"{described['cpu_model']}, {described['cpus']} cores, {described['memory_gb']} GiB; "
        f"Python {described['python']} ({described['python_executable']}); "
        f"up since {described['booted_at']}, measured {described['measured_at']}"
    )


async def totals(endpoints: Endpoints) -> tuple[int, int, int]:
    conn = await asyncpg.connect(endpoints.database_url)
    try:
        return (
            int(await conn.fetchval("SELECT count(*) FROM inbound_events")),
            int(await conn.fetchval("SELECT count(*) FROM ledger_items")),
            int(await conn.fetchval("SELECT count(*) FROM rejections")),
        )
    finally:
        await conn.close()


def run(
    events: int,
    seed: int,
    latency_rate: int,
    latency_seconds: float,
    two_replicas: bool,
    state: Path,
    *,
    close_items: int = 1_000_000,
    producer: Producer | None = None,
) -> Results:
    producer = producer or default_producer()
    results = Results(events=events, producer=producer.value)
    results.machine = machine()
    from bench.stream import pairs

    results.pairs = len(pairs(PERIOD))
    environment = Environment(state, fresh_database=True)
    with environment as endpoints:
        prepare(endpoints)
        to_commit, results.database_settings = asyncio.run(configure_server(environment, endpoints))
        results.latency_to = "commit" if to_commit else "start"
        results.closed_before_pipeline = asyncio.run(close_month_before(endpoints, PERIOD))
        env = endpoints.as_env() | {
            "TARIFF_DIR": ":".join(map(str, TARIFF_DIRS)),
            "INTAKE_GROUP_PREFIX": INTAKE_GROUP_PREFIX,
        }
        messages = list(iter_encoded(national_stream(events, seed=seed, source="bench-raw")))
        with console.status("raw ceiling: bare consumer and bare COPY"):
            results.raw_consume_msgs_per_s = asyncio.run(
                raw_consume(endpoints.bootstrap_servers, messages, producer)
            )
            results.raw_copy_rows_per_s = asyncio.run(raw_copy(endpoints.database_url, events))
        first = ServiceProcess("intake", env, state / "logs").start()
        second = ServiceProcess("intake", env, state / "logs-2")
        rss = RssSampler([first, second])
        try:
            with console.status("pipeline: starting intake"):
                asyncio.run(warm_up(endpoints, "bench-warm"))
            with console.status(f"pipeline: {events} events through one intake process"):
                one = asyncio.run(
                    pipeline(environment, endpoints, events, seed, "bench-one", [first], rss, producer)
                )
            results.pipeline_events_per_s = one.events_per_s
            results.publish_msgs_per_s = one.publish_msgs_per_s
            results.pipeline_cpu_us_per_event = one.cpu.per_event_us(one.events)
            results.pipeline_cpu_busy_share = round(one.cpu.busy_share, 3)
            results.pipeline_cpu_ceiling_per_s = round(one.cpu.ceiling_per_s(one.events))
            with console.status(f"latency at {latency_rate} events/s"):
                results.latency_offered_per_s = latency_rate
                results.add_latency(
                    asyncio.run(
                        latency(
                            endpoints,
                            latency_rate,
                            latency_seconds,
                            seed + 1,
                            to_commit=results.latency_to == "commit",
                        )
                    )
                )
            if two_replicas:
                second.start()
                with console.status("pipeline: a second intake replica joins the groups"):
                    asyncio.run(warm_up(endpoints, "bench-warm-2"))
                    time.sleep(12)  # let the rebalance settle before timing
                with console.status(f"pipeline: {events} events through two intake processes"):
                    two = asyncio.run(
                        pipeline(
                            environment, endpoints, events, seed + 2, "bench-two", [first, second], rss,
                            producer,
                        )
                    )  # fmt: skip
                results.pipeline_events_per_s_two_replicas = two.events_per_s
                results.pipeline_two_cpu_us_per_event = two.cpu.per_event_us(two.events)
                results.pipeline_two_cpu_busy_share = round(two.cpu.busy_share, 3)
        finally:
            second.stop()
            first.stop()
        results.intake_peak_rss_mb = round(rss.peak_mb, 1)
        with console.status(f"closing {PERIOD} for every pair"):
            results.close_seconds, results.close_items, results.close_statements = asyncio.run(
                close_month(endpoints)
            )
        results.ledger_events, results.ledger_items, results.rejected = asyncio.run(totals(endpoints))
        if close_items:  # after the totals: they describe the pipeline's ledger
            tariffs, registry = load_tariffs(*TARIFF_DIRS), load_registry()
            with console.status(f"closing {FIRST_CLOSE_PERIOD} over {close_items:,} seeded items"):
                first_close = asyncio.run(
                    close_at_scale(
                        endpoints.database_url, close_items, seed, tariffs, registry, FIRST_CLOSE_PERIOD
                    )
                )
            results.scale_first_close_period = str(FIRST_CLOSE_PERIOD)
            results.scale_first_close_seconds = first_close.seconds
            with console.status("the settlement service publishes the close's statements"):
                results.scale_publish_seconds, results.settlement_peak_rss_mb = asyncio.run(
                    publish_statements(endpoints, env, state / "logs-settlement")
                )
            with console.status(f"closing {CLOSE_PERIOD} over {close_items:,} seeded items"):
                scale = asyncio.run(
                    close_at_scale(
                        endpoints.database_url, close_items, seed + 1, tariffs, registry, CLOSE_PERIOD
                    )
                )
            results.scale_close_period = str(CLOSE_PERIOD)
            results.scale_close_seconds = scale.seconds
            results.scale_close_items = scale.items
            results.scale_close_statements = scale.statements
            results.scale_close_largest_message_bytes = scale.largest_message_bytes
    return results


async def publish_statements(endpoints: Endpoints, env: dict[str, str], logs: Path) -> tuple[float, float]:
    """Start the settlement service over the closed month and time its relay until every
    statement is on the topic: how long that takes, and the service's peak memory."""
    conn = await asyncpg.connect(endpoints.database_url)
    service = ServiceProcess("settlement", env, logs).start()
    rss = RssSampler([service])
    try:
        started = time.perf_counter()
        deadline = time.monotonic() + 600
        while await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"):
            if not service.alive() or time.monotonic() > deadline:
                raise RuntimeError(
                    f"the settlement service did not publish the statements; see {service.log_path}"
                )
            rss.sample()
            await asyncio.sleep(0.1)
        return time.perf_counter() - started, round(rss.peak_mb, 1)
    finally:
        service.stop()
        await conn.close()


def table(r: Results) -> Table:
    t = Table(
        title=f"{r.events} events over {r.pairs} municipality-trust pairs",  # the cores: in the caption
        caption=machine_line(r.machine),
    )
    for header in ("measure", "value", "vs raw ceiling"):
        t.add_column(header, justify="right" if header != "measure" else "left")
    t.add_row("raw: bare aiokafka consumer", f"{r.raw_consume_msgs_per_s:,.0f} msg/s", "1.00")
    t.add_row("raw: bare asyncpg COPY", f"{r.raw_copy_rows_per_s:,.0f} rows/s", "")
    t.add_row(f"publish (one {r.producer} producer)", f"{r.publish_msgs_per_s:,.0f} msg/s", "")
    t.add_row("pipeline, 1 intake", f"{r.pipeline_events_per_s:,.0f} events/s", f"{r.ratio_to_raw:.3f}")
    if r.pipeline_events_per_s_two_replicas:
        t.add_row(
            "pipeline, 2 intake replicas",
            f"{r.pipeline_events_per_s_two_replicas:,.0f} events/s",
            f"scaling x{r.scaling:.2f}",
        )
    for label, per_event, busy in (
        ("1 intake", r.pipeline_cpu_us_per_event, r.pipeline_cpu_busy_share),
        ("2 intake replicas", r.pipeline_two_cpu_us_per_event, r.pipeline_two_cpu_busy_share),
    ):
        if per_event:
            t.add_row(
                f"CPU per event, {label} (machine {busy:.0%} busy)",
                f"{sum(per_event.values()):,.0f} µs: "
                + ", ".join(f"{name} {us:,.0f}" for name, us in per_event.items()),
                "",
            )
    if r.pipeline_cpu_ceiling_per_s:
        t.add_row(
            f"most events/s at that CPU per event, every core busy ({r.machine['cpus']} cores)",
            f"{r.pipeline_cpu_ceiling_per_s:,.0f} events/s",
            "",
        )
    t.add_row(
        f"a national year ({NATIONAL_YEAR_EVENTS / 1e6:.0f} M events) at the best rate above",
        f"{r.national_year_minutes:,.0f} min (extrapolated)",
        "",
    )
    to = "to commit" if r.latency_to == "commit" else "to transaction start"
    t.add_row(f"latency p50 @ {r.latency_offered_per_s}/s, {to}", f"{r.latency_p50_ms:,.0f} ms", "")
    t.add_row(f"latency p99 @ {r.latency_offered_per_s}/s, {to}", f"{r.latency_p99_ms:,.0f} ms", "")
    if r.latency_worst_by_second_ms:
        worst = r.latency_worst_by_second_ms.index(max(r.latency_worst_by_second_ms))
        t.add_row(
            f"latency max, {to}; p50 to the write's start",
            f"{r.latency_max_ms:,.0f} ms (second {worst + 1} of the phase); {r.latency_p50_to_start_ms:,.0f} ms",
            "",
        )
    t.add_row(
        f"month close after the pipeline ({PERIOD})",
        f"{r.close_seconds:.2f} s for {r.close_items:,} items, {r.close_statements} statements",
        "",
    )
    if r.scale_close_items:
        t.add_row(
            f"month close, {r.scale_close_items / 1e6:.2g} M items ({r.scale_close_period}, seeded, "
            f"after {r.scale_first_close_period})",
            f"{r.scale_close_seconds:.2f} s for {r.scale_close_items:,} items, {r.scale_close_statements} "
            f"statements; largest message {r.scale_close_largest_message_bytes / 2**20:.2f} MiB",
            "",
        )
        t.add_row(
            f"the first such close of the new server ({r.scale_first_close_period})",
            f"{r.scale_first_close_seconds:.2f} s",
            "",
        )
        t.add_row(
            "settlement service publishing the first's statements",
            f"{r.scale_publish_seconds:.1f} s; peak RSS {r.settlement_peak_rss_mb:,.0f} MB",
            "",
        )
    t.add_row("intake peak RSS", f"{r.intake_peak_rss_mb:,.0f} MB", "")
    t.add_row(
        "database server", ", ".join(f"{name} {value}" for name, value in r.database_settings.items()), ""
    )
    t.add_row("closed before the pipeline", r.closed_before_pipeline or "no month", "")
    t.add_row("ledger", f"{r.ledger_events:,} events, {r.ledger_items:,} items, {r.rejected} rejected", "")
    return t


def main(
    events: Annotated[int, typer.Option(help="Events per pipeline run")] = 100_000,
    seed: Annotated[int, typer.Option(help="Seed of the generated stream")] = 2012,
    latency_rate: Annotated[int, typer.Option(help="Offered load for the latency phase, events/s")] = 2_000,
    latency_seconds: Annotated[float, typer.Option(help="Length of the latency phase")] = 15.0,
    two_replicas: Annotated[bool, typer.Option(help="Also run with two intake replicas")] = True,
    close_items: Annotated[
        int, typer.Option(help="Items seeded for the national-scale month close (0: skip it)")
    ] = 1_000_000,
    producer: ProducerOption = None,
    out: Annotated[Path, typer.Option(help="Where to write the results as JSON")] = Path(
        "bench/results/latest.json"
    ),
) -> None:
    """Benchmark the pipeline against the raw broker and database, and print the table."""
    with tempfile.TemporaryDirectory(prefix="settlement-bench-") as tmp:
        results = run(
            events,
            seed,
            latency_rate,
            latency_seconds,
            two_replicas,
            Path(tmp),
            close_items=close_items,
            producer=producer,
        )
    console.print(table(results))
    out.parent.mkdir(parents=True, exist_ok=True)
    document = asdict(results) | {
        "ratio_to_raw": results.ratio_to_raw,
        "scaling": results.scaling,
        "national_year_minutes": results.national_year_minutes,
    }
    out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    console.print(f"written to {out}")


if __name__ == "__main__":
    typer.run(main)
