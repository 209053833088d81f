"""infra/ and docker-compose.yml agree with the code: every metric the dashboard and the
alert rules query is one the services export, and Prometheus scrapes every service where
docker-compose serves it. (Nothing here needs Docker; a real Prometheus scrape is in
tests/integration/test_operations.py.)"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from contracts.v1 import topics
from services.adapters.kafka_connection import KafkaConnection
from services.intake.app import create_broker
from services.observability.metrics import (
    IntakeMetrics,
    LagMetrics,
    OutboxMetrics,
    SettlementMetrics,
    instrument_broker,
    new_registry,
)
from services.runtime.processes import SERVICES

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
DASHBOARD = INFRA / "grafana" / "dashboards" / "samhandling-operations.json"
ALERTS = INFRA / "prometheus" / "alerts.yml"
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gauge": ("",),
}
_METRIC = re.compile(r"\b(?:samhandling|kafka|faststream)_[a-z0-9_]+")


def _series_names(registry: CollectorRegistry) -> set[str]:
    return {
        family.name + suffix for family in registry.collect() for suffix in _SUFFIXES.get(family.type, ("",))
    }


@pytest.fixture(scope="module")
def exported() -> set[str]:
    registry = new_registry()
    IntakeMetrics(registry)
    SettlementMetrics(registry)
    OutboxMetrics(registry, topics.SETTLEMENTS)
    LagMetrics(registry)
    broker, _ = create_broker(KafkaConnection("localhost:9092"))
    instrument_broker(broker, registry, "intake")
    return _series_names(registry)


def _dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    queries = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    queries += [v["definition"] for v in dashboard["templating"]["list"]]
    return queries


def _alert_rules() -> list[dict]:
    return [
        rule
        for group in yaml.safe_load(ALERTS.read_text(encoding="utf-8"))["groups"]
        for rule in group["rules"]
    ]


def test_every_metric_on_the_dashboard_is_exported(exported: set[str]) -> None:
    queried = {name for query in _dashboard_queries() for name in _METRIC.findall(query)}
    assert queried, "the dashboard queries nothing"
    assert queried <= exported, sorted(queried - exported)


def test_the_dashboard_shows_lag_throughput_rejections_and_settlement_runs() -> None:
    text = " ".join(_dashboard_queries())
    for metric in (
        "kafka_consumergroup_lag",
        "kafka_consumergroup_lag_seconds",
        "samhandling_consumergroup_status_code",
        "samhandling_intake_records_received_total",
        "samhandling_intake_records_rejected_total",
        "samhandling_settlement_commands_total",
    ):
        assert metric in text, metric


def test_every_metric_in_the_alert_rules_is_exported_and_every_status_alerts(exported: set[str]) -> None:
    rules = _alert_rules()
    queried = {name for rule in rules for name in _METRIC.findall(rule["expr"])}
    assert queried <= exported, sorted(queried - exported)
    exprs = " ".join(rule["expr"] for rule in rules)
    for status in ("ERR", "WARN", "REWIND"):
        assert f'status="{status}"' in exprs
    assert all(rule["labels"]["severity"] in {"page", "ticket", "info"} for rule in rules)


def test_every_alert_links_to_its_section_of_the_runbook() -> None:
    # The person paged at night starts from the alert: its link must lead to what to do.
    runbook = (ROOT / "docs" / "runbook.md").read_text(encoding="utf-8")
    sections = {line[3:].strip() for line in runbook.splitlines() if line.startswith("## ")}
    for rule in _alert_rules():
        assert rule["alert"] in sections, f"no runbook section for {rule['alert']}"
        assert rule["annotations"]["runbook_url"] == f"docs/runbook.md#{rule['alert'].lower()}"


def test_prometheus_scrapes_every_service_where_docker_compose_serves_its_metrics() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    prometheus = yaml.safe_load((INFRA / "prometheus" / "prometheus.yml").read_text(encoding="utf-8"))
    targets = {
        job["job_name"]: [t for c in job["static_configs"] for t in c["targets"]]
        for job in prometheus["scrape_configs"]
    }
    for name in SERVICES:
        service = compose["services"][name]
        assert service["command"] == ["run", name]
        port = service["environment"]["METRICS_PORT"]
        assert service["environment"]["METRICS_HOST"] == "0.0.0.0"
        assert targets[name] == [f"{name}:{port}"]
        assert any(mapping.endswith(f":{port}") for mapping in service["ports"])
    assert "PSEUDONYM_KEY" not in compose["services"]["lagmonitor"]["environment"]
    assert "/etc/prometheus/alerts.yml" in prometheus["rule_files"]
    for volume in compose["services"]["prometheus"]["volumes"] + compose["services"]["grafana"]["volumes"]:
        source = volume.split(":")[0]
        if source.startswith("./"):
            assert (ROOT / source).is_dir(), source


def test_the_dashboard_uses_the_provisioned_datasource() -> None:
    datasource = yaml.safe_load(
        (INFRA / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text(encoding="utf-8")
    )["datasources"][0]
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    uids = {p["datasource"]["uid"] for p in dashboard["panels"] if "datasource" in p}
    assert uids == {datasource["uid"]}


def test_the_broker_and_the_database_keep_their_data_in_their_volumes() -> None:
    # apache/kafka keeps its log in /tmp/kraft-combined-logs unless KAFKA_LOG_DIRS says
    # otherwise: recreating the container lost events, offsets and published statements.
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    for name, data_dir in (
        ("kafka", compose["services"]["kafka"]["environment"].get("KAFKA_LOG_DIRS")),
        ("postgres", "/var/lib/postgresql/data"),
    ):
        mounted = [v.split(":", 1)[1] for v in compose["services"][name]["volumes"]]
        assert data_dir in mounted, f"{name} keeps its data in {data_dir}, outside its volumes {mounted}"
        assert compose["services"][name]["volumes"][0].split(":", 1)[0] in compose["volumes"]


def test_every_setting_the_services_read_is_documented() -> None:
    from services.settings import LagMonitorSettings, Settings

    docs = (ROOT / "README.md").read_text(encoding="utf-8") + "".join(
        p.read_text(encoding="utf-8") for p in (ROOT / "docs").glob("*.md")
    )
    missing = [
        name.upper()
        for cls in (Settings, LagMonitorSettings)
        for name in cls.model_fields
        if name.upper() not in docs
    ]
    assert missing == [], f"read from the environment but in no document: {missing}"


def test_months_left_open_are_a_ticket_once_a_close_in_progress_would_have_finished() -> None:
    # Months closed one after another from the latest back leave earlier ones open for
    # minutes; the items of a month left open are unbilled, not lost: nobody is woken.
    [rule] = [rule for rule in _alert_rules() if rule["alert"] == "MonthsLeftOpen"]
    assert "samhandling_settlement_months_left_open" in rule["expr"]
    assert rule["labels"]["severity"] == "ticket"
    amount, unit = int(rule["for"][:-1]), rule["for"][-1]
    assert amount * {"m": 60, "h": 3600}[unit] >= 3600
