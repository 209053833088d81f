"""Monthly statements, money rounding and the settlement month."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from services.domain.calendar import Month, days, oslo_day
from services.domain.ledger import Category, LedgerItem, PayerRole, price_units
from services.domain.money import format_nok, nok_to_ore, round_to_ore
from services.domain.statements import NetPayer, summarise

HELSE_BERGEN = "983974724"
BERGEN = "4601"
MARCH = Month(2024, 3)
DR = Category.DISCHARGE_READY_BED_DAYS
EMERGENCY = Category.EMERGENCY_BED_DAYS
MUNICIPALITY = PayerRole.MUNICIPALITY
TRUST = PayerRole.HEALTH_TRUST
RATE_2024 = "national.discharge-ready.2024"


def item(
    quantity: int,
    unit_price_ore: int | None,
    rule_id: str | None,
    *,
    category: Category = DR,
    payer_role: PayerRole = MUNICIPALITY,
    month: Month = MARCH,
    subject: str = "episode-1",
) -> LedgerItem:
    first = month.first_day
    return LedgerItem(
        category=category,
        subject_id=subject,
        health_trust=HELSE_BERGEN,
        municipality=BERGEN,
        payer_role=payer_role,
        service_month=month,
        first_day=first,
        last_day=first + timedelta(days=quantity - 1),
        quantity=quantity,
        unit_price_ore=unit_price_ore,
        amount_ore=None if unit_price_ore is None else unit_price_ore * quantity,
        rule_id=rule_id,
    )


def line_tuples(items: list[LedgerItem]) -> set[tuple]:
    lines, _ = summarise(items)
    return {
        (
            line.category,
            line.payer_role,
            str(line.service_month),
            line.rated,
            line.quantity,
            line.unit_price_ore,
            line.amount_ore,
            line.rule_id,
        )
        for line in lines
    }


# ---------------------------------------------------------------- summarise


def test_items_of_one_category_price_and_rule_are_summed_into_one_line() -> None:
    items = [
        item(3, 574_500, RATE_2024, subject="episode-1"),
        item(5, 574_500, RATE_2024, subject="episode-2"),
    ]

    assert line_tuples(items) == {
        # 8 days x 5,745 NOK = 45,960 NOK
        (DR, MUNICIPALITY, "2024-03", True, 8, 574_500, 4_596_000, RATE_2024),
    }


def test_different_prices_rules_months_categories_and_payers_make_separate_lines() -> None:
    items = [
        item(2, 574_500, RATE_2024),
        item(1, 500_000, "agreement.cheaper"),
        item(1, 574_500, "agreement.same-price"),
        item(4, 574_500, RATE_2024, month=Month(2024, 4)),
        item(2, 250_000, "trial.emergency", category=EMERGENCY, payer_role=TRUST),
    ]

    assert line_tuples(items) == {
        (DR, MUNICIPALITY, "2024-03", True, 2, 574_500, 1_149_000, RATE_2024),
        (DR, MUNICIPALITY, "2024-03", True, 1, 500_000, 500_000, "agreement.cheaper"),
        (DR, MUNICIPALITY, "2024-03", True, 1, 574_500, 574_500, "agreement.same-price"),
        (DR, MUNICIPALITY, "2024-04", True, 4, 574_500, 2_298_000, RATE_2024),
        (EMERGENCY, TRUST, "2024-03", True, 2, 250_000, 500_000, "trial.emergency"),
    }


def test_unrated_items_are_their_own_line_without_an_amount() -> None:
    items = [
        item(3, 574_500, RATE_2024),
        item(4, None, None, subject="episode-2"),
        item(2, None, None, subject="episode-3"),
    ]

    lines, _ = summarise(items)

    assert line_tuples(items) == {
        (DR, MUNICIPALITY, "2024-03", True, 3, 574_500, 1_723_500, RATE_2024),
        (DR, MUNICIPALITY, "2024-03", False, 6, None, None, None),
    }
    unrated = [line for line in lines if not line.rated]
    assert len(unrated) == 1 and unrated[0].amount_ore is None


def test_totals_count_only_rated_items_and_report_the_unrated_quantity() -> None:
    items = [
        item(3, 574_500, RATE_2024),  # 1,723,500 øre
        item(4, None, None),
        item(2, 250_000, "trial.emergency", category=EMERGENCY, payer_role=TRUST),  # 500,000 øre
        item(1, None, None, category=EMERGENCY, payer_role=TRUST),
    ]

    _, totals = summarise(items)

    assert totals.municipality_pays_ore == 1_723_500
    assert totals.health_trust_pays_ore == 500_000
    assert totals.net_ore == 1_223_500
    assert totals.net_payer is NetPayer.MUNICIPALITY
    assert totals.unrated_quantity == 5


def test_the_health_trust_is_the_net_payer_when_it_owes_more() -> None:
    items = [
        item(1, 574_500, RATE_2024),
        item(3, 250_000, "trial.emergency", category=EMERGENCY, payer_role=TRUST),  # 750,000
    ]

    _, totals = summarise(items)

    assert (totals.municipality_pays_ore, totals.health_trust_pays_ore) == (574_500, 750_000)
    assert totals.net_ore == 175_500
    assert totals.net_payer is NetPayer.HEALTH_TRUST


def test_no_one_is_the_net_payer_when_the_amounts_cancel_out() -> None:
    items = [
        item(2, 250_000, "agreement.a"),
        item(1, 500_000, "trial.emergency", category=EMERGENCY, payer_role=TRUST),
    ]

    _, totals = summarise(items)

    assert totals.net_ore == 0
    assert totals.net_payer is NetPayer.NONE


def test_only_unrated_items_make_a_zero_net_with_no_payer_and_a_held_quantity() -> None:
    _, totals = summarise([item(31, None, None, month=Month(2026, 1))])

    assert (totals.municipality_pays_ore, totals.health_trust_pays_ore, totals.net_ore) == (0, 0, 0)
    assert totals.net_payer is NetPayer.NONE
    assert totals.unrated_quantity == 31


def test_an_empty_statement_has_no_lines_and_zero_totals() -> None:
    lines, totals = summarise([])

    assert lines == []
    assert (totals.net_ore, totals.net_payer, totals.unrated_quantity) == (0, NetPayer.NONE, 0)


def test_the_statement_does_not_depend_on_the_order_of_the_items() -> None:
    items = [
        item(3, 574_500, RATE_2024),
        item(4, None, None),
        item(1, 500_000, "agreement.cheaper"),
        item(2, 250_000, "trial.emergency", category=EMERGENCY, payer_role=TRUST),
        item(6, 574_500, RATE_2024, month=Month(2024, 2)),
    ]
    expected = summarise(items)

    for seed in range(10):
        shuffled = list(items)
        random.Random(seed).shuffle(shuffled)
        assert summarise(shuffled) == expected


# ---------------------------------------------------------------- money


@pytest.mark.parametrize(
    ("amount", "ore"),
    [
        ("0.5", 1),
        ("1.5", 2),
        ("2.5", 3),  # half-up, not to even
        ("2.4999", 2),
        ("2.5001", 3),
        ("123456.5", 123_457),
        ("7", 7),
        ("0.4", 0),
        ("-0.4", 0),
        ("-2.5", -3),  # half away from zero
        ("-2.4", -2),
    ],
)
def test_round_to_ore_rounds_half_away_from_zero(amount: str, ore: int) -> None:
    assert round_to_ore(Decimal(amount)) == ore


@pytest.mark.parametrize(
    ("nok", "ore"),
    [("4000", 400_000), ("4622.125", 462_213), ("0.005", 1), ("0.004", 0), ("5981", 598_100)],
)
def test_a_nok_rate_becomes_whole_ore(nok: str, ore: int) -> None:
    assert nok_to_ore(Decimal(nok)) == ore


def test_a_known_rate_prices_units_and_an_unknown_rate_prices_nothing() -> None:
    assert price_units(3, Decimal("4000")) == (400_000, 1_200_000)
    assert price_units(3, None) == (None, None)


@pytest.mark.parametrize(
    ("ore", "text"),
    [(1_200_000, "12 000.00 NOK"), (5, "0.05 NOK"), (-175_550, "-1 755.50 NOK"), (0, "0.00 NOK")],
)
def test_format_nok_is_unambiguous(ore: int, text: str) -> None:
    assert format_nok(ore) == text


# ---------------------------------------------------------------- the settlement month


def test_a_month_is_parsed_from_and_written_as_yyyy_mm() -> None:
    month = Month.parse("2024-03")

    assert month == Month(2024, 3)
    assert str(month) == "2024-03"
    assert str(Month.parse("0301-01")) == "0301-01"


@pytest.mark.parametrize(
    ("month", "following"),
    [
        (Month(2024, 12), Month(2025, 1)),
        (Month(2018, 12), Month(2019, 1)),
        (Month(2024, 1), Month(2024, 2)),
        (Month(2024, 11), Month(2024, 12)),
    ],
)
def test_the_next_month_of_december_is_january_of_the_next_year(month: Month, following: Month) -> None:
    assert month.next() == following
    assert month < following


@pytest.mark.parametrize(
    ("month", "last"),
    [
        (Month(2024, 2), date(2024, 2, 29)),  # leap year
        (Month(2000, 2), date(2000, 2, 29)),  # divisible by 400
        (Month(2023, 2), date(2023, 2, 28)),
        (Month(2100, 2), date(2100, 2, 28)),  # divisible by 100, not 400
        (Month(2024, 4), date(2024, 4, 30)),
        (Month(2024, 12), date(2024, 12, 31)),
        (Month(2024, 1), date(2024, 1, 31)),
    ],
)
def test_the_last_day_of_a_month(month: Month, last: date) -> None:
    assert month.last_day == last
    assert month.first_day == date(month.year, month.month, 1)


def test_a_day_belongs_to_its_month() -> None:
    assert Month.of(date(2024, 2, 29)) == Month(2024, 2)


@pytest.mark.parametrize(
    "text",
    [
        "2024-13",
        "2024-00",
        "2024-1",
        "24-03",
        "2024/03",
        "2024-03-01",
        "202403",
        "",
        "abcd-ef",
        " 2024-03",
        "2024-03 ",
        "2024- 3",
        "2024-+3",
        "+202-03",
        "2_24-03",
        "0000-03",
        "٢٠٢٤-03",
    ],
)
def test_a_string_not_of_the_form_yyyy_mm_is_not_a_month(text: str) -> None:
    with pytest.raises(ValueError, match="not a month"):
        Month.parse(text)


# ---------------------------------------------------------------- Europe/Oslo days


@pytest.mark.parametrize(
    ("instant", "day"),
    [
        (datetime(2020, 2, 2, 23, 30, tzinfo=UTC), date(2020, 2, 3)),  # CET, UTC+1
        (datetime(2020, 2, 2, 22, 59, tzinfo=UTC), date(2020, 2, 2)),
        (datetime(2020, 7, 1, 22, 30, tzinfo=UTC), date(2020, 7, 2)),  # CEST, UTC+2
        (datetime(2020, 7, 1, 21, 59, tzinfo=UTC), date(2020, 7, 1)),
        (datetime(2018, 12, 31, 23, 0, tzinfo=UTC), date(2019, 1, 1)),
    ],
)
def test_the_calendar_day_is_the_europe_oslo_day(instant: datetime, day: date) -> None:
    assert oslo_day(instant) == day


def test_a_naive_time_has_no_calendar_day() -> None:
    with pytest.raises(ValueError):
        oslo_day(datetime(2020, 2, 2, 23, 30))


def test_days_counts_from_the_first_day_up_to_the_end_day() -> None:
    assert days(date(2012, 3, 5), date(2012, 3, 8)) == 3
    assert days(date(2012, 3, 5), date(2012, 3, 5)) == 0
    assert days(date(2012, 3, 8), date(2012, 3, 5)) == 0
