"""`settlement tariffs --explain`: an item's price in words, with its arithmetic."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from services.cli.tariffs import explain
from services.domain.activity import ActivityFact, rate_activity
from services.domain.tariffs import Parameter, Scope, TariffRule, build_book

BERGEN, HELSE_BERGEN = "4601", "983974724"


def _rule(parameter: Parameter, value: str) -> TariffRule:
    return TariffRule(
        id=f"agreement.bergen.{parameter.value}",
        parameter=parameter,
        value=Decimal(value),
        valid_from=date(2025, 1, 1),
        valid_until=None,
        scope=Scope.AGREEMENT,
        municipalities=frozenset({BERGEN}),
        health_trust=HELSE_BERGEN,
    )


@pytest.mark.parametrize(
    ("points", "says"),
    [
        ("1.701", "0.10 x 1.701 DRG points x 52 248.00 NOK = 8 887.38 NOK"),
        ("5.5", "0.10 x 4 DRG points (capped at 4) x 52 248.00 NOK = 20 899.20 NOK"),
    ],
)
def test_an_activitys_price_is_explained_as_share_times_points_times_unit_price(
    points: str, says: str
) -> None:
    book = build_book(
        [
            _rule(Parameter.CO_FINANCING_SHARE, "0.10"),
            _rule(Parameter.CO_FINANCING_UNIT_PRICE_NOK, "52248"),
            _rule(Parameter.CO_FINANCING_CAP_POINTS, "4"),
        ]
    )
    ended = datetime(2025, 10, 6, 12, tzinfo=UTC)
    fact = ActivityFact("activity_recorded", ended, "e1", BERGEN, drg_points=Decimal(points), ended_at=ended)
    [item] = rate_activity("ACT-1", HELSE_BERGEN, [fact], book)

    text = explain(item, book)

    assert text.splitlines()[-1].strip() == says
