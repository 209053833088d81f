"""The alert rules evaluated by Prometheus's own rule engine (`promtool test rules`) over
series as the services export them: the expressions and their `for:`, not only that the
names exist (test_operations_assets.py). Annotations are left out of the comparison: they
are prose, and promtool would compare them word for word."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ALERTS = Path(__file__).resolve().parents[2] / "infra" / "prometheus" / "alerts.yml"
RATE = 'parameter="discharge_ready_day_rate_nok"'
MISSING = "samhandling_tariff_national_rate_missing_days"
LEFT = "samhandling_tariff_national_rate_days_left"

promtool = shutil.which("promtool")
pytestmark = pytest.mark.skipif(
    promtool is None, reason="needs promtool (Debian package prometheus; .ci/run installs it)"
)


def _series(name: str, values: str, instance: str = "settlement:9102") -> dict[str, str]:
    return {"series": f'{name}{{{RATE}, instance="{instance}"}}', "values": values}


def _alerts(*labels: dict[str, str]) -> list[dict[str, Any]]:
    return [
        {"exp_labels": {"severity": "ticket", "parameter": "discharge_ready_day_rate_nok"} | x}
        for x in labels
    ]


def _run(tmp_path: Path, series: list[dict[str, str]], expected: list[dict[str, Any]]) -> None:
    rules = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules), encoding="utf-8")
    test = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series, "alert_rule_test": expected}],
    }
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test), encoding="utf-8")
    assert promtool is not None
    result = subprocess.run(
        [promtool, "test", "rules", "test.yml"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_missing_national_rate_is_a_ticket_after_a_quarter_of_an_hour_once_for_two_replicas(
    tmp_path: Path,
) -> None:
    _run(
        tmp_path,
        [
            _series(MISSING, "336x90"),
            _series(LEFT, "0x90"),
            _series(MISSING, "336x90", instance="settlement-b:9102"),
            _series(LEFT, "0x90", instance="settlement-b:9102"),
        ],
        [
            {"eval_time": "10m", "alertname": "NationalRateMissing", "exp_alerts": []},
            {"eval_time": "20m", "alertname": "NationalRateMissing", "exp_alerts": _alerts({})},
            {"eval_time": "80m", "alertname": "NationalRateEndsSoon", "exp_alerts": []},
        ],
    )


def test_a_rate_ending_within_two_weeks_is_a_ticket_after_an_hour_and_a_later_end_is_none(
    tmp_path: Path,
) -> None:
    _run(
        tmp_path,
        [_series(MISSING, "0x90"), _series(LEFT, "13x90")],
        [
            {"eval_time": "50m", "alertname": "NationalRateEndsSoon", "exp_alerts": []},
            {"eval_time": "70m", "alertname": "NationalRateEndsSoon", "exp_alerts": _alerts({})},
            {"eval_time": "70m", "alertname": "NationalRateMissing", "exp_alerts": []},
        ],
    )
    _run(
        tmp_path,
        [_series(MISSING, "0x90"), _series(LEFT, "14x90")],
        [{"eval_time": "80m", "alertname": "NationalRateEndsSoon", "exp_alerts": []}],
    )


LONGEST = "samhandling_settlement_stay_running_longest_days"


def _stay(category: str, values: str, instance: str = "settlement:9102") -> dict[str, str]:
    return {"series": f'{LONGEST}{{category="{category}", instance="{instance}"}}', "values": values}


def _stay_alerts(*categories: str) -> list[dict[str, Any]]:
    return [{"exp_labels": {"severity": "ticket", "category": c}} for c in categories]


def test_a_stay_running_past_its_categorys_limit_is_a_ticket_after_an_hour_once_for_two_replicas(
    tmp_path: Path,
) -> None:
    _run(
        tmp_path,
        [
            _stay("discharge_ready_bed_days", "61x90"),
            _stay("discharge_ready_bed_days", "61x90", instance="settlement-b:9102"),
            _stay("emergency_bed_days", "14x90"),  # at its limit: not past it
        ],
        [
            {"eval_time": "50m", "alertname": "StayRunningLong", "exp_alerts": []},
            {
                "eval_time": "70m",
                "alertname": "StayRunningLong",
                "exp_alerts": _stay_alerts("discharge_ready_bed_days"),
            },
        ],
    )
    _run(
        tmp_path,
        [_stay("discharge_ready_bed_days", "60x90"), _stay("emergency_bed_days", "15x90")],
        [
            {
                "eval_time": "70m",
                "alertname": "StayRunningLong",
                "exp_alerts": _stay_alerts("emergency_bed_days"),
            }
        ],
    )
