"""`settlement tariffs --explain`: an item's price in words, with its arithmetic."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from click.testing import Result
from typer.testing import CliRunner

from services.cli.tariffs import explain
from services.domain.activity import ActivityFact, rate_activity
from services.domain.calendar import Month
from services.domain.ledger import Category, LedgerItem, PayerRole
from services.domain.money import format_nok
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


def _tariffs_command(monkeypatch: pytest.MonkeyPatch, items: int, *options: str) -> Result:
    """`settlement tariffs` for Bergen's pair, an `--explain` finding `items` items (no database)."""
    from services.cli import main, tariffs
    from services.runtime.environment import Endpoints

    async def explained(
        database_url: str, subject_id: str, health_trust: str, book: object, console: object
    ) -> int:
        return items

    monkeypatch.setattr(tariffs, "explain_subject", explained)
    monkeypatch.setattr(
        main, "located", lambda find, data_dir: Endpoints("k:9092", "postgresql://x", "", False)
    )
    return CliRunner().invoke(main.app, ["tariffs", BERGEN, HELSE_BERGEN, *options], env={"COLUMNS": "200"})


@pytest.mark.parametrize(
    ("options", "table_shown"),
    [([], True), (["--explain", "EP-1"], False), (["--explain", "EP-1", "--on", "2024-05-01"], True)],
)
def test_the_rules_table_is_for_a_day_asked_for_not_today_when_an_item_is_explained(
    options: list[str], table_shown: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _tariffs_command(monkeypatch, 1, *options)

    assert result.exit_code == 0, result.output
    assert ("Rules in force on" in result.output) is table_shown
    if "--on" in options:
        assert "Rules in force on 2024-05-01" in result.output


def test_an_item_priced_under_earlier_values_of_its_rules_shows_no_sum_that_does_not_add_up() -> None:
    share, unit = (
        _rule(Parameter.CO_FINANCING_SHARE, "0.10"),
        _rule(Parameter.CO_FINANCING_UNIT_PRICE_NOK, "52248"),
    )
    ended = datetime(2025, 10, 6, 12, tzinfo=UTC)
    fact = ActivityFact("activity_recorded", ended, "e1", BERGEN, drg_points=Decimal("1.5"), ended_at=ended)
    [item] = rate_activity("ACT-1", HELSE_BERGEN, [fact], build_book([share, unit]))
    raised = build_book([share, replace(unit, value=Decimal("60000"))])

    last = explain(item, raised).splitlines()[-1].strip()

    assert last == "amount 7 837.20 NOK (1.5 DRG points), priced under earlier values of these rules"


def _days(
    category: Category, rule: TariffRule, days: int, unit_ore: int, note: str | None = None
) -> LedgerItem:
    """`days` days of October 2025 from the 6th, priced at `unit_ore` under `rule`."""
    return LedgerItem(
        category=category,
        subject_id="EP-1",
        health_trust=HELSE_BERGEN,
        municipality=BERGEN,
        payer_role=PayerRole.MUNICIPALITY,
        service_month=Month(2025, 10),
        first_day=date(2025, 10, 6),
        last_day=date(2025, 10, 5 + days),
        quantity=days,
        unit_price_ore=unit_ore,
        amount_ore=unit_ore * days,
        rule_id=rule.id,
        note=note,
    )


@pytest.mark.parametrize("quantity", [1, 3])
def test_a_day_priced_under_an_earlier_rate_says_so_beside_todays_value(quantity: int) -> None:
    rate = _rule(Parameter.DISCHARGE_READY_DAY_RATE_NOK, "5981")
    item = _days(Category.DISCHARGE_READY_BED_DAYS, rate, quantity, 598_100)

    as_priced = explain(item, build_book([rate]))
    raised = explain(item, build_book([replace(rate, value=Decimal("6000"))]))

    assert "earlier value" not in as_priced
    assert f"= {format_nok(598_100 * quantity)}" in as_priced.splitlines()[-1]
    assert (
        raised.splitlines()[-1]
        .strip()
        .endswith(
            "priced at 5 981.00 NOK a day under an earlier value of this rule (it is 6 000.00 NOK a day in "
            "the tariff directory read here, which may also be another than the services')"
        )
    )


def test_days_show_their_note_beside_the_arithmetic() -> None:
    rate = _rule(Parameter.EMERGENCY_BED_DAY_RATE_NOK, "2000")
    item = _days(Category.EMERGENCY_BED_DAYS, rate, 3, 200_000, note="mapped 1201 to 4601")

    last = explain(item, build_book([rate])).splitlines()[-1].strip()

    assert last == "3 x 2 000.00 NOK = 6 000.00 NOK (mapped 1201 to 4601)"


@pytest.mark.parametrize(
    ("parameters", "day", "noted"),
    [
        ([Parameter.DISCHARGE_READY_DAY_RATE_NOK], date(2025, 6, 1), False),
        ([Parameter.EMERGENCY_BED_DAY_RATE_NOK], date(2025, 6, 1), True),
        ([], date(2025, 6, 1), True),
        ([Parameter.DISCHARGE_READY_DAY_RATE_NOK], date(2024, 12, 31), True),  # before the rule
    ],
)
def test_a_day_without_the_discharge_ready_rate_is_said_to_hold_its_days(
    parameters: list[Parameter], day: date, noted: bool
) -> None:
    from services.cli.tariffs import unpriced_note

    book = build_book([_rule(parameter, "5000") for parameter in parameters])

    note = unpriced_note(book, BERGEN, HELSE_BERGEN, day)

    assert (note is not None) is noted
    if note:
        assert f"No discharge_ready_day_rate_nok in force on {day}" in note and "held as unrated" in note


def test_explaining_an_episode_with_no_items_exits_1(monkeypatch: pytest.MonkeyPatch) -> None:
    result = _tariffs_command(monkeypatch, 0, "--explain", "EP-NOPE")

    assert result.exit_code == 1, result.output
    assert f"no ledger items or adjustments for EP-NOPE of health trust {HELSE_BERGEN}" in result.output


@pytest.mark.parametrize(
    ("number", "on", "says"),
    [
        ("9999", "2025-10-01", "9999 is no municipality number on 2025-10-01 (not in the registry at all): "
         "intake refuses events that name it for that day"),
        ("1201", "2025-10-01", "1201 is no municipality number on 2025-10-01 (in force 2012-01-01 – 2020-01-01): "
         "events naming it are settled on 4601"),
        (BERGEN, "2025-10-01", None),
        ("1201", "2019-06-01", None),
    ],
)  # fmt: skip
def test_the_rules_of_a_number_that_is_no_municipality_that_day_say_so(
    number: str, on: str, says: str | None
) -> None:
    # Found in a finance audit: `tariffs 9999 TRUST` listed the national rules as if 9999 were
    # a municipality they applied to.
    from services.cli import main

    result = CliRunner().invoke(
        main.app, ["tariffs", number, HELSE_BERGEN, "--on", on], env={"COLUMNS": "300"}
    )

    assert result.exit_code == 0, result.output
    assert f"Rules in force on {on}" in result.output
    if says is None:
        assert "is no municipality number" not in result.output
    else:
        assert says in result.output
