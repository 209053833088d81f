"""Tariff rules as data (domain.md section 1 rate table, section 4 scopes)."""

from __future__ import annotations

import tomllib
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

import pytest

from services.domain.municipalities import MunicipalityPeriod, Registry
from services.domain.tariffs import (
    Parameter,
    PricedWindow,
    Scope,
    TariffBook,
    TariffError,
    TariffRule,
    build_book,
    changed_windows,
    check_municipalities,
    parse_rules,
)
from services.tariffs import DEFAULT_TARIFF_DIR

HELSE_BERGEN = "983974724"
HELSE_FONNA = "983974694"
BERGEN = "4601"
BJORNAFJORDEN = "4624"
LILLESAND = "4215"
OSLO = "0301"

RATE = Parameter.DISCHARGE_READY_DAY_RATE_NOK

# domain.md section 1, "Rate per bed-day (NOK)".
DOMAIN_RATES = {
    2012: "4000",
    2014: "4255",
    2015: "4387",
    2016: "4505",
    2017: "4622",
    2018: "4747",
    2019: "4885",
    2020: "5036",
    2021: "5167",
    2022: "5306",
    2023: "5508",
    2024: "5745",
    2025: "5981",
}


def shipped_book() -> TariffBook:
    with (DEFAULT_TARIFF_DIR / "national.toml").open("rb") as handle:
        return parse_rules(tomllib.load(handle))


def book_from_toml(text: str) -> TariffBook:
    return parse_rules(tomllib.loads(text))


# ---------------------------------------------------------------- the shipped national.toml


def test_the_shipped_national_tariff_loads_with_thirteen_rates() -> None:
    book = shipped_book()

    assert len(book.rules) == 13
    assert {r.parameter for r in book.rules} == {RATE}
    assert {r.scope for r in book.rules} == {Scope.NATIONAL}
    assert all(r.source.startswith("https://") for r in book.rules)


@pytest.mark.parametrize(("year", "nok"), sorted(DOMAIN_RATES.items()))
def test_the_shipped_rate_of_each_year_is_the_one_in_domain_md(year: int, nok: str) -> None:
    book = shipped_book()

    for day in (date(year, 1, 1), date(year, 6, 15), date(year, 12, 31)):
        rule = book.find(RATE, day, OSLO, HELSE_BERGEN)
        assert rule is not None, day
        assert rule.value == Decimal(nok), day
        assert rule.id == f"national.discharge-ready.{year}"


@pytest.mark.parametrize(
    "day", [date(2011, 12, 31), date(2013, 1, 1), date(2013, 7, 1), date(2013, 12, 31), date(2026, 1, 1)]
)
def test_the_shipped_tariff_has_no_rate_for_unconfirmed_years(day: date) -> None:
    assert shipped_book().find(RATE, day, OSLO, HELSE_BERGEN) is None


# ---------------------------------------------------------------- the most specific rule wins

SCOPED_RULES = f"""
[[rule]]
id = "national.2019"
parameter = "discharge_ready_day_rate_nok"
value = "5000"
valid_from = 2019-01-01

[[rule]]
id = "trial.2020"
parameter = "discharge_ready_day_rate_nok"
value = "4000"
scope = "trial"
municipalities = ["{BJORNAFJORDEN}", "{LILLESAND}"]
valid_from = 2020-01-01
valid_until = 2021-01-01

[[rule]]
id = "agreement.bjornafjorden-bergen"
parameter = "discharge_ready_day_rate_nok"
value = "3000"
scope = "agreement"
municipality = "{BJORNAFJORDEN}"
health_trust = "{HELSE_BERGEN}"
valid_from = 2020-07-01
valid_until = 2020-10-01
"""


@pytest.mark.parametrize(
    ("day", "municipality", "trust", "winner"),
    [
        pytest.param(
            date(2020, 8, 1),
            BJORNAFJORDEN,
            HELSE_BERGEN,
            "agreement.bjornafjorden-bergen",
            id="agreement-beats-trial-and-national",
        ),
        pytest.param(
            date(2020, 7, 1),
            BJORNAFJORDEN,
            HELSE_BERGEN,
            "agreement.bjornafjorden-bergen",
            id="agreement-on-its-first-day",
        ),
        pytest.param(
            date(2020, 9, 30),
            BJORNAFJORDEN,
            HELSE_BERGEN,
            "agreement.bjornafjorden-bergen",
            id="agreement-on-its-last-day",
        ),
        pytest.param(
            date(2020, 10, 1),
            BJORNAFJORDEN,
            HELSE_BERGEN,
            "trial.2020",
            id="agreement-valid-until-is-exclusive",
        ),
        pytest.param(
            date(2020, 6, 30),
            BJORNAFJORDEN,
            HELSE_BERGEN,
            "trial.2020",
            id="trial-before-the-agreement-starts",
        ),
        pytest.param(
            date(2020, 8, 1), BJORNAFJORDEN, HELSE_FONNA, "trial.2020", id="agreement-is-only-for-its-trust"
        ),
        pytest.param(
            date(2020, 8, 1), LILLESAND, HELSE_BERGEN, "trial.2020", id="trial-applies-to-every-participant"
        ),
        pytest.param(
            date(2020, 8, 1), BERGEN, HELSE_BERGEN, "national.2019", id="trial-does-not-apply-to-others"
        ),
        pytest.param(
            date(2019, 12, 31), BJORNAFJORDEN, HELSE_BERGEN, "national.2019", id="trial-not-before-its-window"
        ),
        pytest.param(
            date(2020, 12, 31), BJORNAFJORDEN, HELSE_FONNA, "trial.2020", id="trial-on-its-last-day"
        ),
        pytest.param(
            date(2021, 1, 1), BJORNAFJORDEN, HELSE_BERGEN, "national.2019", id="trial-not-after-its-window"
        ),
    ],
)
def test_the_most_specific_rule_in_force_on_the_day_wins(
    day: date, municipality: str, trust: str, winner: str
) -> None:
    book = book_from_toml(SCOPED_RULES)
    reordered = build_book(reversed(book.rules))

    for tariffs in (book, reordered):
        rule = tariffs.find(RATE, day, municipality, trust)
        assert rule is not None
        assert rule.id == winner


def test_no_rule_is_found_before_any_is_in_force() -> None:
    assert book_from_toml(SCOPED_RULES).find(RATE, date(2018, 12, 31), BERGEN, HELSE_BERGEN) is None


def test_a_rule_for_one_parameter_does_not_answer_for_another() -> None:
    book = book_from_toml(SCOPED_RULES)

    assert (
        book.find(Parameter.DISCHARGE_READY_GRACE_HOURS, date(2020, 8, 1), BJORNAFJORDEN, HELSE_BERGEN)
        is None
    )


def test_for_pair_lists_the_winning_rule_of_each_parameter() -> None:
    book = book_from_toml(
        SCOPED_RULES
        + f"""
[[rule]]
id = "agreement.grace"
parameter = "discharge_ready_grace_hours"
value = 24
scope = "agreement"
municipality = "{BJORNAFJORDEN}"
health_trust = "{HELSE_BERGEN}"
valid_from = 2020-01-01
"""
    )

    found = book.for_pair(date(2020, 8, 1), BJORNAFJORDEN, HELSE_BERGEN)

    assert sorted(r.id for r in found) == ["agreement.bjornafjorden-bergen", "agreement.grace"]
    assert [r.id for r in book.for_pair(date(2020, 8, 1), BERGEN, HELSE_BERGEN)] == ["national.2019"]


# ---------------------------------------------------------------- overlapping rules


def rule_toml(rule_id: str, valid_from: str, valid_until: str | None, extra: str = "") -> str:
    until = f"valid_until = {valid_until}\n" if valid_until else ""
    return (
        f'[[rule]]\nid = "{rule_id}"\nparameter = "discharge_ready_day_rate_nok"\nvalue = "5000"\n'
        f"valid_from = {valid_from}\n{until}{extra}\n"
    )


TRIAL_A = f'scope = "trial"\nmunicipalities = ["{BJORNAFJORDEN}", "{LILLESAND}"]\n'
TRIAL_B = f'scope = "trial"\nmunicipalities = ["{LILLESAND}", "{BERGEN}"]\n'
TRIAL_C = f'scope = "trial"\nmunicipalities = ["{BERGEN}"]\n'
AGREEMENT_BERGEN = f'scope = "agreement"\nmunicipality = "{BJORNAFJORDEN}"\nhealth_trust = "{HELSE_BERGEN}"\n'
AGREEMENT_FONNA = f'scope = "agreement"\nmunicipality = "{BJORNAFJORDEN}"\nhealth_trust = "{HELSE_FONNA}"\n'
AGREEMENT_OTHER_MUNICIPALITY = (
    f'scope = "agreement"\nmunicipality = "{BERGEN}"\nhealth_trust = "{HELSE_BERGEN}"\n'
)


@pytest.mark.parametrize(
    "document",
    [
        pytest.param(
            rule_toml("first", "2020-01-01", "2021-01-01") + rule_toml("second", "2020-06-01", "2021-06-01"),
            id="national-partly-overlapping",
        ),
        pytest.param(
            rule_toml("first", "2020-01-01", None) + rule_toml("second", "2024-01-01", None),
            id="national-both-open-ended",
        ),
        pytest.param(
            rule_toml("first", "2020-01-01", "2020-02-01") + rule_toml("second", "2020-01-31", "2020-03-01"),
            id="national-overlapping-by-one-day",
        ),
        pytest.param(
            rule_toml("first", "2024-01-01", "2025-01-01") + rule_toml("second", "2020-01-01", None),
            id="national-later-rule-listed-first",
        ),
        pytest.param(
            rule_toml("first", "2020-01-01", "2021-01-01") + rule_toml("second", "2020-03-01", "2020-04-01"),
            id="national-one-inside-the-other",
        ),
        pytest.param(
            rule_toml("first", "2020-01-01", "2021-01-01", TRIAL_A)
            + rule_toml("second", "2020-06-01", None, TRIAL_B),
            id="trials-sharing-a-municipality",
        ),
        pytest.param(
            rule_toml("first", "2020-01-01", None, AGREEMENT_BERGEN)
            + rule_toml("second", "2022-01-01", None, AGREEMENT_BERGEN),
            id="agreements-for-the-same-pair",
        ),
    ],
)
def test_two_overlapping_rules_of_the_same_scope_are_refused_naming_both(document: str) -> None:
    with pytest.raises(TariffError) as refused:
        book_from_toml(document)

    message = str(refused.value)
    assert "'first'" in message
    assert "'second'" in message


@pytest.mark.parametrize(
    "document",
    [
        pytest.param(
            rule_toml("2020", "2020-01-01", "2021-01-01") + rule_toml("2021", "2021-01-01", None),
            id="national-adjacent",
        ),
        pytest.param(
            rule_toml("2021", "2021-01-01", "2022-01-01") + rule_toml("2020", "2020-01-01", "2021-01-01"),
            id="national-adjacent-listed-backwards",
        ),
        pytest.param(
            rule_toml("first", "2020-01-01", "2021-01-01", TRIAL_A)
            + rule_toml("second", "2021-01-01", None, TRIAL_B),
            id="trials-adjacent",
        ),
        pytest.param(
            rule_toml("first", "2020-01-01", None, TRIAL_A)
            + rule_toml("second", "2020-01-01", None, TRIAL_C),
            id="trials-with-no-municipality-in-common",
        ),
        pytest.param(
            rule_toml("first", "2020-01-01", None, AGREEMENT_BERGEN)
            + rule_toml("second", "2020-01-01", None, AGREEMENT_FONNA),
            id="agreements-with-different-trusts",
        ),
        pytest.param(
            rule_toml("first", "2020-01-01", None, AGREEMENT_BERGEN)
            + rule_toml("second", "2020-01-01", None, AGREEMENT_OTHER_MUNICIPALITY),
            id="agreements-with-different-municipalities",
        ),
        pytest.param(
            rule_toml("first", "2020-01-01", None) + rule_toml("second", "2020-01-01", None, TRIAL_A),
            id="national-and-trial-overlap",
        ),
        pytest.param(
            rule_toml("first", "2020-01-01", None)
            + rule_toml("second", "2020-01-01", None).replace(
                "discharge_ready_day_rate_nok", "emergency_bed_day_rate_nok"
            ),
            id="different-parameters",
        ),
    ],
)
def test_rules_that_do_not_compete_for_a_day_are_accepted(document: str) -> None:
    assert len(book_from_toml(document).rules) == 2


def test_adjacent_rules_hand_over_on_the_boundary_day() -> None:
    book = book_from_toml(rule_toml("old", "2020-01-01", "2021-01-01") + rule_toml("new", "2021-01-01", None))

    old = book.find(RATE, date(2020, 12, 31), OSLO, HELSE_BERGEN)
    new = book.find(RATE, date(2021, 1, 1), OSLO, HELSE_BERGEN)
    assert (old.id if old else None, new.id if new else None) == ("old", "new")


def test_two_rules_with_the_same_id_are_refused() -> None:
    with pytest.raises(TariffError, match="share the id 'twin'"):
        book_from_toml(rule_toml("twin", "2020-01-01", "2021-01-01") + rule_toml("twin", "2021-01-01", None))


# ---------------------------------------------------------------- malformed rules

VALID_FIELDS = {
    "id": '"bad"',
    "parameter": '"discharge_ready_day_rate_nok"',
    "value": '"5000"',
    "valid_from": "2020-01-01",
}


def malformed(**changes: str | None) -> str:
    fields = {**VALID_FIELDS, **changes}
    body = "".join(f"{key} = {value}\n" for key, value in fields.items() if value is not None)
    return f"[[rule]]\n{body}"


def test_the_template_for_malformed_rules_is_itself_valid() -> None:
    assert [r.id for r in book_from_toml(malformed()).rules] == ["bad"]


@pytest.mark.parametrize(
    ("document", "says"),
    [
        pytest.param(malformed(parameter=None), "lacks 'parameter'", id="missing-parameter"),
        pytest.param(malformed(value=None), "lacks 'value'", id="missing-value"),
        pytest.param(malformed(valid_from=None), "lacks 'valid_from'", id="missing-valid-from"),
        pytest.param(malformed(parameter='"bed_day_rate"'), "bed_day_rate", id="unknown-parameter"),
        pytest.param(malformed(scope='"regional"'), "regional", id="bad-scope"),
        pytest.param(
            malformed(scope='"agreement"', municipality=f'"{BJORNAFJORDEN}"'),
            "one municipality and one health_trust",
            id="agreement-without-health-trust",
        ),
        pytest.param(
            malformed(scope='"agreement"', health_trust=f'"{HELSE_BERGEN}"'),
            "one municipality and one health_trust",
            id="agreement-without-municipality",
        ),
        pytest.param(
            malformed(
                scope='"agreement"',
                municipalities=f'["{BJORNAFJORDEN}", "{BERGEN}"]',
                health_trust=f'"{HELSE_BERGEN}"',
            ),
            "one municipality and one health_trust",
            id="agreement-with-two-municipalities",
        ),
        pytest.param(
            malformed(scope='"trial"'), "a trial names its municipalities", id="trial-without-municipalities"
        ),
        pytest.param(
            malformed(municipality=f'"{BERGEN}"'),
            "a national rule names no parties",
            id="national-naming-a-party",
        ),
        pytest.param(
            malformed(valid_until="2019-12-31"),
            "valid_until must be after valid_from",
            id="until-before-from",
        ),
        pytest.param(
            malformed(valid_until="2020-01-01"),
            "valid_until must be after valid_from",
            id="until-equal-to-from",
        ),
        pytest.param(malformed(value='"-1"'), "must not be negative", id="negative-value"),
        pytest.param(malformed(value="-4000"), "must not be negative", id="negative-number"),
        pytest.param(malformed(valid_from='"2020-01-01"'), "must be dates", id="valid-from-a-string"),
        pytest.param(malformed(valid_until='"2021-01-01"'), "must be dates", id="valid-until-a-string"),
        pytest.param(
            malformed(valid_from="2020-01-01T00:00:00"), "must be dates", id="valid-from-a-date-time"
        ),
        pytest.param(
            malformed(valid_until="2021-01-01T00:00:00"), "must be dates", id="valid-until-a-date-time"
        ),
        pytest.param(malformed(value='"five thousand"'), "must be a number", id="value-not-a-number"),
        pytest.param(malformed(value='"NaN"'), "must be a number", id="value-nan"),
        pytest.param(malformed(value="inf"), "must be a number", id="value-infinite"),
        pytest.param(malformed(value="true"), "must be a number", id="value-a-boolean"),
    ],
)
def test_a_malformed_rule_is_refused_with_a_message_naming_it(document: str, says: str) -> None:
    with pytest.raises(TariffError) as refused:
        book_from_toml(document)

    message = str(refused.value)
    assert "'bad'" in message
    assert says in message


def test_a_rule_without_an_id_is_named_by_its_position() -> None:
    document = rule_toml("first", "2020-01-01", None) + malformed(id=None, value='"-5"')

    with pytest.raises(TariffError, match="'#2'"):
        book_from_toml(document)


def test_a_document_whose_rule_is_not_an_array_is_refused() -> None:
    with pytest.raises(TariffError, match=r"array of \[\[rule\]\]"):
        book_from_toml(malformed().replace("[[rule]]", "[rule]"))


def test_an_empty_document_gives_an_empty_book() -> None:
    assert parse_rules({}).rules == ()


def test_the_answers_remembered_are_bounded_and_stay_right_after_forgetting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from services.domain import tariffs

    monkeypatch.setattr(tariffs, "FOUND_KEPT", 5)
    remembering, fresh = shipped_book(), shipped_book()
    days = [date(2019, 12, 28) + timedelta(days=n) for n in range(12)]  # across a new rate
    for day in days * 2:
        assert remembering.find(
            Parameter.DISCHARGE_READY_DAY_RATE_NOK, day, "4601", "983974724"
        ) == fresh.find(Parameter.DISCHARGE_READY_DAY_RATE_NOK, day, "4601", "983974724")
        assert len(remembering._found) <= 5  # the memory it may hold (private: no other way to see it)


# ---------------------------------------------------------------- what a changed book re-prices


def _with(book: TariffBook, *rules: TariffRule, without: str | None = None) -> TariffBook:
    return build_book([*(r for r in book.rules if r.id != without), *rules])


def test_an_unchanged_book_changes_no_window_and_keeps_its_fingerprint() -> None:
    book = shipped_book()

    assert changed_windows(book.windows(), shipped_book().windows()) == []
    assert book.fingerprint() == shipped_book().fingerprint()


def test_a_corrected_rate_reprices_its_days_as_they_were_and_as_they_are() -> None:
    book = shipped_book()
    old = next(r for r in book.rules if r.id == "national.discharge-ready.2024")
    corrected = replace(old, value=Decimal("5750"))
    shortened = replace(old, valid_until=date(2024, 12, 31))  # its dates changed, not its value

    for changed in (corrected, shortened):
        new = _with(book, changed, without=old.id)
        windows = changed_windows(book.windows(), new.windows())
        assert {(w.valid_from, w.valid_until) for w in windows} == {
            (old.valid_from, old.valid_until),
            (changed.valid_from, changed.valid_until),
        }
        assert all(w.category == "discharge_ready_bed_days" and not w.municipalities for w in windows)
        assert new.fingerprint() != book.fingerprint()


def test_a_rule_added_or_removed_reprices_its_days_for_its_parties_only() -> None:
    book = shipped_book()
    trial = TariffRule(
        id="trial.lillesand.share",
        parameter=Parameter.CO_FINANCING_SHARE,
        value=Decimal("0.1"),
        valid_from=date(2020, 1, 1),
        valid_until=date(2023, 1, 1),
        scope=Scope.TRIAL,
        municipalities=frozenset({LILLESAND}),
    )
    agreement = TariffRule(
        id="agreement.bergen.emergency",
        parameter=Parameter.EMERGENCY_BED_DAY_RATE_NOK,
        value=Decimal("3000"),
        valid_from=date(2024, 1, 1),
        valid_until=None,
        scope=Scope.AGREEMENT,
        municipalities=frozenset({BERGEN}),
        health_trust=HELSE_BERGEN,
    )
    with_both = _with(book, trial, agreement)

    added = changed_windows(book.windows(), with_both.windows())
    removed = changed_windows(with_both.windows(), book.windows())

    assert added == removed == [PricedWindow.of(agreement), PricedWindow.of(trial)]
    assert (added[0].category, added[0].municipalities, added[0].health_trust) == (
        "emergency_bed_days",
        frozenset({BERGEN}),
        HELSE_BERGEN,
    )
    assert (added[1].category, added[1].municipalities, added[1].health_trust) == (
        "activity_co_financing",
        frozenset({LILLESAND}),
        None,
    )


# Ålesund: 1504 until 2020, 1507 from 2020 to 2024 (then split into 1508 and 1580), 1508 since.
ALESUND = Registry(
    [
        MunicipalityPeriod("1504", "Ålesund", date(2012, 1, 1), date(2020, 1, 1), ("1507",)),
        MunicipalityPeriod("1507", "Ålesund", date(2020, 1, 1), date(2024, 1, 1), ("1508", "1580")),
        MunicipalityPeriod("1508", "Ålesund", date(2024, 1, 1), None),
        MunicipalityPeriod("1580", "Haram", date(2024, 1, 1), None),
    ]
)


def _rule(scope: Scope, municipalities: set[str], valid_from: date, valid_until: date | None) -> TariffRule:
    return TariffRule(
        id="local",
        parameter=RATE,
        value=Decimal("6000"),
        valid_from=valid_from,
        valid_until=valid_until,
        scope=scope,
        municipalities=frozenset(municipalities),
        health_trust=HELSE_BERGEN if scope is Scope.AGREEMENT else None,
    )


@pytest.mark.parametrize(
    ("scope", "municipalities", "valid_from", "valid_until", "refused"),
    [
        (Scope.AGREEMENT, {"1507"}, date(2023, 6, 1), None, None),  # in force for its first months
        (Scope.AGREEMENT, {"1507"}, date(2019, 1, 1), date(2020, 1, 2), None),  # its first day only
        (Scope.AGREEMENT, {"1507"}, date(2024, 1, 1), None, "1507 is in force on none of its days"),
        (Scope.AGREEMENT, {"1507"}, date(2019, 1, 1), date(2020, 1, 1), "1507 is in force on none"),
        (Scope.TRIAL, {"1508", "1580"}, date(2024, 1, 1), None, None),
        (Scope.TRIAL, {"1508", "1504"}, date(2025, 1, 1), date(2026, 1, 1), "1504 is in force on none"),
        (
            Scope.AGREEMENT,
            {"1805"},
            date(2025, 1, 1),
            None,
            "1805 is not a municipality number in the registry",
        ),
        (Scope.NATIONAL, set(), date(2011, 1, 1), date(2012, 1, 1), None),  # names no municipality
    ],
)
def test_a_rule_for_a_municipality_in_force_on_none_of_its_days_is_refused(
    scope: Scope, municipalities: set[str], valid_from: date, valid_until: date | None, refused: str | None
) -> None:
    book = build_book([_rule(scope, municipalities, valid_from, valid_until)])

    if refused is None:
        check_municipalities(book, ALESUND)
    else:
        with pytest.raises(TariffError, match=refused):
            check_municipalities(book, ALESUND)


def test_the_refusal_says_when_the_number_was_in_force_and_who_took_over() -> None:
    book = build_book([_rule(Scope.AGREEMENT, {"1507"}, date(2025, 1, 1), None)])

    with pytest.raises(TariffError) as refused:
        check_municipalities(book, ALESUND)

    assert str(refused.value) == (
        "tariff rule 'local' (from 2025-01-01, until further notice): municipality 1507 is in force on "
        "none of its days (Ålesund from 2020-01-01 until 2024-01-01, then 1508, 1580), so the rule "
        "could never apply"
    )


def test_the_shipped_and_example_rules_name_municipalities_in_force() -> None:
    from services.adapters.municipality_registry import load_registry
    from services.adapters.tariff_files import load_tariffs
    from services.tariffs import EXAMPLE_TARIFF_DIR

    check_municipalities(load_tariffs(DEFAULT_TARIFF_DIR, EXAMPLE_TARIFF_DIR), load_registry())
