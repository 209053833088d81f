"""Whether the book has the national discharge-ready rate for a day, and for how long: what
the settlement service's gauges and start-up warning say (domain.md section 1: a day
without a rate waits as unrated until the operator adds it)."""

from __future__ import annotations

import math
from datetime import date
from decimal import Decimal

import pytest

from services.adapters.tariff_files import load_tariffs
from services.domain.tariffs import (
    NATIONAL_RATES_REQUIRED,
    Parameter,
    Scope,
    TariffRule,
    build_book,
    national_cover,
)
from services.observability.metrics import SettlementMetrics, new_registry
from services.settlement.tariff_cover import cover_warnings
from services.tariffs import DEFAULT_TARIFF_DIR

RATE = Parameter.DISCHARGE_READY_DAY_RATE_NOK


def _rule(rule_id: str, start: date, end: date | None, scope: Scope = Scope.NATIONAL) -> TariffRule:
    extra = (
        {}
        if scope is Scope.NATIONAL
        else {"municipalities": frozenset({"4601"}), "health_trust": "983974724"}
    )
    return TariffRule(rule_id, RATE, Decimal("5000"), start, end, scope, **extra)  # type: ignore[arg-type]


Y2024 = _rule("n2024", date(2024, 1, 1), date(2025, 1, 1))
Y2025 = _rule("n2025", date(2025, 1, 1), date(2026, 1, 1))
Y2027 = _rule("n2027", date(2027, 1, 1), date(2028, 1, 1))
OPEN = _rule("n-open", date(2026, 1, 1), None)
AGREED_2026 = _rule("a2026", date(2026, 1, 1), date(2027, 1, 1), Scope.AGREEMENT)


@pytest.mark.parametrize(
    ("rules", "day", "ends", "missing_since", "missing_days", "days_left"),
    [
        # in force: the stretch of rules that follow one another ends with the last of them
        ((Y2024, Y2025), date(2024, 6, 1), date(2026, 1, 1), None, 0, 579),
        ((Y2024, Y2025), date(2025, 12, 31), date(2026, 1, 1), None, 0, 1),
        ((Y2025, OPEN), date(2025, 3, 1), None, None, 0, math.inf),
        # a gap ends the stretch: 2026 missing, 2027 there
        ((Y2025, Y2027), date(2025, 12, 1), date(2026, 1, 1), None, 0, 31),
        # missing: since the last rule ended, today counted
        ((Y2024, Y2025), date(2026, 1, 1), None, date(2026, 1, 1), 1, 0),
        ((Y2024, Y2025), date(2026, 12, 2), None, date(2026, 1, 1), 336, 0),
        ((Y2025, Y2027), date(2026, 12, 2), None, date(2026, 1, 1), 336, 0),
        # an agreement's rate is no national one: the other pairs' days still wait
        ((Y2025, AGREED_2026), date(2026, 2, 1), None, date(2026, 1, 1), 32, 0),
        # no national rule at all: missing since the law required one
        ((AGREED_2026,), date(2026, 1, 1), None, date(2012, 1, 1), 5115, 0),
    ],
)
def test_the_national_cover_of_a_day(
    rules: tuple[TariffRule, ...],
    day: date,
    ends: date | None,
    missing_since: date | None,
    missing_days: int,
    days_left: float,
) -> None:
    cover = national_cover(build_book(rules), RATE, day)

    assert (cover.ends, cover.missing_since) == (ends, missing_since)
    assert cover.in_force is (missing_since is None)
    assert (cover.missing_days, cover.days_left) == (missing_days, days_left)


def test_a_day_before_the_law_required_a_rate_has_none_missing() -> None:
    cover = national_cover(build_book([Y2024]), RATE, date(2011, 12, 31))

    assert cover.missing_days == 0


def test_the_shipped_book_has_the_rate_through_2025_and_none_for_2026() -> None:
    # docs/domain.md: 2026 is not confirmed by any source found, so it is missing on purpose.
    book = load_tariffs(DEFAULT_TARIFF_DIR)
    assert national_cover(book, RATE, date(2025, 12, 31)).ends == date(2026, 1, 1)
    assert national_cover(book, RATE, date(2026, 12, 2)).missing_since == date(2026, 1, 1)
    assert national_cover(book, RATE, date(2013, 6, 1)).missing_since == date(2013, 1, 1)
    assert national_cover(book, RATE, date(2014, 6, 1)).ends == date(2026, 1, 1)
    assert set(NATIONAL_RATES_REQUIRED) == {RATE}


@pytest.mark.parametrize(
    ("rules", "day", "says"),
    [
        ((Y2024, Y2025), date(2026, 12, 2), "none since 2026-01-01"),
        ((Y2024, Y2025), date(2025, 12, 1), "ends after 2025-12-31"),
        ((Y2024, Y2025), date(2025, 11, 30), None),  # 32 days left: not yet
        ((Y2024, Y2025), date(2025, 6, 1), None),
        ((Y2025, OPEN), date(2025, 12, 31), None),
    ],
)
def test_the_settlement_service_warns_of_a_missing_or_ending_national_rate_at_start(
    rules: tuple[TariffRule, ...], day: date, says: str | None
) -> None:
    lines = cover_warnings(build_book(rules), day)

    if says is None:
        assert lines == []
        return
    [line] = lines
    assert says in line and "discharge_ready_day_rate_nok" in line
    assert "docs/tariffs.md" in line, "it says how to add the rate"


def test_the_gauges_are_worked_out_at_each_scrape_for_the_day_it_is() -> None:
    registry = new_registry()
    metrics = SettlementMetrics(registry)
    today = [date(2025, 12, 30)]
    metrics.watch_national_rates(build_book([Y2024, Y2025]), lambda: today[0])
    labels = {"parameter": RATE.value}

    def read() -> tuple[float | None, float | None]:
        return (
            registry.get_sample_value("samhandling_tariff_national_rate_missing_days", labels),
            registry.get_sample_value("samhandling_tariff_national_rate_days_left", labels),
        )

    assert read() == (0, 2)
    today[0] = date(2026, 1, 1)
    assert read() == (1, 0)
    today[0] = date(2026, 12, 2)
    assert read() == (336, 0)
