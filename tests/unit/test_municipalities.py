"""Municipality numbers over time (issue 3 item 5; domain.md "The parties").

Each worked example cites the change it rests on. The changes are Statistics Norway's
(KLASS 131 "Standard for kommuneinndeling" and its change tables), as recorded in
services/municipalities/registry.csv.
"""

from __future__ import annotations

from datetime import date, timedelta
from itertools import pairwise
from pathlib import Path

import pytest

from services.adapters.municipality_registry import load_registry
from services.domain.municipalities import (
    MunicipalityNumberError,
    Registry,
    RegistryError,
    Resolution,
    SplitMunicipality,
    UnknownMunicipality,
    parse_registry,
)
from services.municipalities import DEFAULT_REGISTRY

REGISTRY = load_registry()

D = date.fromisoformat


def ok(number: str, mapped_from: str | None = None) -> Resolution:
    return Resolution(number, mapped_from)


class Split:
    def __init__(self, *successors: str) -> None:
        self.successors = successors


class Unknown:
    pass


# ----------------------------------------------------------------- worked examples

# (number, day, expected, the change that decides it)
EXAMPLES = [
    # 2024: Viken, Vestfold og Telemark, Troms og Finnmark split; their municipalities renumbered
    ("3024", "2024-02-01", ok("3201", "3024"), "2024: 3024 Bærum renumbered 3201 (Akershus)"),
    ("3024", "2023-06-01", ok("3024"), "2020-2023: 3024 is Bærum's number"),
    ("3024", "2024-01-01", ok("3201", "3024"), "2024: the first day of 3201"),
    ("3024", "2023-12-31", ok("3024"), "2024: the last day of 3024"),
    ("3811", "2024-01-01", ok("3911", "3811"), "2024: 3811 Færder renumbered 3911 (Vestfold)"),
    ("5401", "2024-05-01", ok("5501", "5401"), "2024: 5401 Tromsø renumbered 5501 (Troms)"),
    ("3001", "2024-05-01", ok("3101", "3001"), "2024: 3001 Halden renumbered 3101 (Østfold)"),
    ("3201", "2023-12-31", Unknown(), "2024: 3201 did not exist before"),
    ("3201", "2024-01-01", ok("3201"), "2024: 3201 Bærum"),
    # 2024: 1507 Ålesund split into 1508 Ålesund and 1580 Haram
    ("1507", "2024-03-01", Split("1508", "1580"), "2024: 1507 Ålesund split into 1508 + 1580"),
    ("1507", "2023-03-01", ok("1507"), "2020-2023: 1507 Ålesund"),
    ("1508", "2023-12-31", Unknown(), "2024: 1508 did not exist before"),
    ("1580", "2024-01-01", ok("1580"), "2024: 1580 Haram"),
    ("1534", "2021-01-01", ok("1507", "1534"), "2020: 1534 Haram merged into 1507 Ålesund"),
    ("1534", "2024-03-01", Split("1508", "1580"), "2020: 1534 -> 1507, which was split in 2024"),
    # 2020: the reform, 428 -> 356 (422 in 2019)
    ("1243", "2021-01-01", ok("4624", "1243"), "2020: 1243 Os + 1241 Fusa -> 4624 Bjørnafjorden"),
    ("1241", "2021-01-01", ok("4624", "1241"), "2020: 1241 Fusa + 1243 Os -> 4624 Bjørnafjorden"),
    ("1243", "2019-12-31", ok("1243"), "2020: the last day of 1243 Os"),
    ("1201", "2019-05-01", ok("1201"), "before 2020: 1201 Bergen"),
    ("1201", "2020-01-01", ok("4601", "1201"), "2020: 1201 Bergen renumbered 4601 (Vestland)"),
    ("4601", "2019-06-01", Unknown(), "2020: 4601 did not exist yet"),
    ("0219", "2021-03-01", ok("3024", "0219"), "2020: 0219 Bærum renumbered 3024 (Viken)"),
    ("0219", "2024-03-01", ok("3201", "0219"), "2020 and 2024: 0219 -> 3024 -> 3201, renumbered twice"),
    ("1902", "2025-01-01", ok("5501", "1902"), "2020 and 2024: 1902 Tromsø -> 5401 -> 5501"),
    ("0301", "2012-01-01", ok("0301"), "0301 Oslo is unchanged since 2012"),
    ("0301", "2020-01-01", ok("0301"), "2020: 0301 Oslo kept its number"),
    ("0301", "2026-01-01", ok("0301"), "2026: 0301 Oslo, a new name only"),
    ("1103", "2020-06-01", ok("1103"), "2020: 1103 Stavanger kept its number when it took in 1141 and 1142"),
    ("1141", "2020-06-01", ok("1103", "1141"), "2020: 1141 Finnøy merged into 1103 Stavanger"),
    ("1444", "2020-06-01", ok("1577", "1444"), "2020: 1444 Hornindal (Sogn og Fjordane) -> 1577 Volda"),
    ("1850", "2020-02-01", Split("1806", "1875"), "2020: 1850 Tysfjord split between Narvik and Hamarøy"),
    ("5012", "2020-02-01", Split("5055", "5056", "5059"), "2020: 5012 Snillfjord split three ways"),
    # 2018 and 2019: Trøndelag, and the Vestfold mergers
    ("1601", "2018-01-01", ok("5001", "1601"), "2018: 1601 Trondheim renumbered 5001 (Trøndelag)"),
    ("1601", "2024-06-01", ok("5001", "1601"), "2018: 1601 -> 5001, which kept its number in 2020"),
    ("1662", "2020-06-01", ok("5001", "1662"), "2018 and 2020: 1662 Klæbu -> 5030 -> merged into 5001"),
    ("1613", "2019-06-01", ok("5012", "1613"), "2018: 1613 Snillfjord renumbered 5012"),
    ("1613", "2020-06-01", Split("5055", "5056", "5059"), "2018: 1613 -> 5012, which was split in 2020"),
    ("1624", "2018-06-01", ok("5054", "1624"), "2018: 1624 Rissa + 1718 Leksvik -> 5054 Indre Fosen"),
    ("0722", "2018-06-01", ok("0729", "0722"), "2018: 0722 Nøtterøy + 0723 Tjøme -> 0729 Færder"),
    ("0722", "2024-06-01", ok("3911", "0722"), "2018, 2020 and 2024: 0722 -> 0729 -> 3811 -> 3911"),
    ("1567", "2018-12-31", ok("1567"), "2019: the last day of 1567 Rindal in Møre og Romsdal"),
    ("1567", "2019-01-01", ok("5061", "1567"), "2019: 1567 Rindal moved to Trøndelag as 5061"),
    # 2017, 2013, 2012
    ("0706", "2017-03-01", ok("0710", "0706"), "2017: 0706 Sandefjord + 0719 Andebu + 0720 Stokke -> 0710"),
    ("0706", "2025-01-01", ok("3907", "0706"), "2017, 2020, 2024: 0706 -> 0710 -> 3804 -> 3907"),
    (
        "0720",
        "2017-03-01",
        Split("0704", "0710"),
        "2017: 0720 Stokke divided between Tønsberg and Sandefjord",
    ),
    ("1901", "2013-06-01", ok("1903", "1901"), "2013: 1901 Harstad + 1915 Bjarkøy -> 1903 Harstad"),
    ("1915", "2024-06-01", ok("5503", "1915"), "2013, 2020, 2024: 1915 -> 1903 -> 5402 -> 5503"),
    ("1723", "2012-06-01", ok("1756", "1723"), "2012: 1723 Mosvik + 1729 Inderøy -> 1756 Inderøy"),
    ("1756", "2018-06-01", ok("5053", "1756"), "2018: 1756 Inderøy renumbered 5053"),
    # numbers that are not municipalities
    ("9999", "2020-01-01", Unknown(), "SSB's 9999 'Uoppgitt' (not stated) is no municipality"),
    ("2111", "2020-01-01", Unknown(), "Svalbard (2111 Longyearbyen) is outside the municipal division"),
    ("0000", "2020-01-01", Unknown(), "never a municipality number"),
    ("301", "2020-01-01", Unknown(), "three digits: the leading zero is part of the number"),
    ("03O1", "2020-01-01", Unknown(), "not digits"),
    ("0301", "2011-12-31", Unknown(), "before the registry's first day, 2012-01-01"),
]


@pytest.mark.parametrize(
    ("number", "day", "expected", "change"), EXAMPLES, ids=[f"{e[0]}@{e[1]}" for e in EXAMPLES]
)
def test_resolve(number: str, day: str, expected: object, change: str) -> None:
    if isinstance(expected, Resolution):
        assert REGISTRY.resolve(number, D(day)) == expected, change
    elif isinstance(expected, Split):
        with pytest.raises(SplitMunicipality) as raised:
            REGISTRY.resolve(number, D(day))
        assert raised.value.successors == expected.successors, change
        for successor in expected.successors:
            assert successor in str(raised.value)
        assert (raised.value.number, raised.value.day) == (number, D(day))
    else:
        with pytest.raises(UnknownMunicipality) as unknown:
            REGISTRY.resolve(number, D(day))
        assert (unknown.value.number, unknown.value.day) == (number, D(day)), change


def test_a_split_names_its_successors_and_the_chain_that_led_there() -> None:
    with pytest.raises(SplitMunicipality) as raised:
        REGISTRY.resolve("1534", D("2024-03-01"))
    message = str(raised.value)
    assert "1534 became 1507 on 2020-01-01" in message
    assert "split on 2024-01-01 into 1508 Ålesund and 1580 Haram" in message
    assert (raised.value.split_number, raised.value.split_on) == ("1507", D("2024-01-01"))


def test_both_rejections_share_a_base_class_that_names_the_number() -> None:
    for number, day in [("1507", "2024-03-01"), ("9999", "2024-03-01"), ("4601", "2019-06-01")]:
        with pytest.raises(MunicipalityNumberError, match=number):
            REGISTRY.resolve(number, D(day))


def test_a_number_used_before_it_existed_says_when_it_starts() -> None:
    with pytest.raises(UnknownMunicipality, match=r"4601 is not in force on 2019-06-01.*from 2020-01-01"):
        REGISTRY.resolve("4601", D("2019-06-01"))


@pytest.mark.parametrize(
    ("number", "day", "name"),
    [
        ("3201", "2024-02-01", "Bærum"),
        ("3024", "2024-02-01", "Bærum"),  # mapped first
        ("1580", "2024-02-01", "Haram"),
        ("1508", "2024-02-01", "Ålesund"),
        ("1243", "2021-01-01", "Bjørnafjorden"),
        ("1243", "2019-01-01", "Os (Hordaland)"),  # SSB disambiguates from 0441 Os (Hedmark)
        ("3018", "2021-01-01", "Våler (Viken)"),
        ("3114", "2024-01-01", "Våler (Østfold)"),
        ("5501", "2024-01-01", "Tromsø"),
    ],
)
def test_name_of(number: str, day: str, name: str) -> None:
    assert REGISTRY.name_of(number, D(day)) == name


def test_name_of_a_split_number_is_refused_like_resolve() -> None:
    with pytest.raises(SplitMunicipality):
        REGISTRY.name_of("1507", D("2024-03-01"))


# ----------------------------------------------------------------- the shipped registry

# Municipalities in force on a day, per SSB's KLASS 131 versions (SSB's "9999 Uoppgitt" not counted):
# 429 in 2012; 428 from 2013 (Harstad + Bjarkøy); 426 from 2017 (Sandefjord); 422 from 2018
# (Trøndelag, Larvik, Holmestrand, Færder, Indre Fosen) and in 2019; 356 from the 2020 reform;
# 357 from 2024 (the Ålesund/Haram split); unchanged on 2026-01-01.
COUNTS = {
    "2012-01-01": 429,
    "2012-12-31": 429,
    "2013-01-01": 428,
    "2016-12-31": 428,
    "2017-01-01": 426,
    "2017-12-31": 426,
    "2018-01-01": 422,
    "2019-12-31": 422,
    "2020-01-01": 356,
    "2023-12-31": 356,
    "2024-01-01": 357,
    "2025-06-30": 357,
    "2026-01-01": 357,
}


@pytest.mark.parametrize(("day", "count"), COUNTS.items())
def test_number_of_municipalities_in_force(day: str, count: int) -> None:
    assert len(REGISTRY.numbers_valid_on(D(day))) == count


def test_2024_retired_114_numbers_and_created_115() -> None:
    # KS / regjeringen: 114 municipalities got new numbers on 2024-01-01 (113 in the three split
    # counties, plus 1507 Ålesund, split into the two new numbers 1508 and 1580).
    retired = {p.number for p in REGISTRY.periods if p.valid_until == D("2024-01-01")}
    created = {p.number for p in REGISTRY.periods if p.valid_from == D("2024-01-01")}
    assert len(retired) == 114
    assert len(created) == 115
    assert {n[:2] for n in retired} == {"30", "38", "54", "15"}
    assert {n[:2] for n in created} == {"31", "32", "33", "39", "40", "55", "56", "15"}


def test_2020_reform_422_to_356() -> None:
    retired = {p.number for p in REGISTRY.periods if p.valid_until == D("2020-01-01")}
    created = {p.number for p in REGISTRY.periods if p.valid_from == D("2020-01-01")}
    assert 422 - len(retired) + len(created) == 356


def test_every_period_is_well_formed() -> None:
    periods = REGISTRY.periods
    assert len({(p.number, p.valid_from) for p in periods}) == len(periods)
    for p in periods:
        assert len(p.number) == 4 and p.number.isdigit()
        assert p.name.strip() == p.name and p.name
        assert p.valid_until is None or p.valid_from < p.valid_until
    assert "9999" not in REGISTRY.numbers()
    assert not {n for n in REGISTRY.numbers() if n.startswith(("21", "22", "23"))}  # Svalbard etc.


def test_no_number_has_overlapping_periods() -> None:
    by_number: dict[str, list[tuple[date, date]]] = {}
    for p in REGISTRY.periods:
        by_number.setdefault(p.number, []).append((p.valid_from, p.valid_until or date.max))
    for number, spans in by_number.items():
        spans.sort()
        for (_, end), (start, _) in pairwise(spans):
            assert end <= start, number


def test_every_successor_exists_and_is_in_force_the_day_its_predecessor_retired() -> None:
    for p in REGISTRY.periods:
        if p.valid_until is None:
            assert p.successors == (), p.number
            continue
        assert p.successors, f"{p.number} retired without successors"
        for successor in p.successors:
            assert REGISTRY.period_on(successor, p.valid_until) is not None, (p.number, successor)


CHANGE_DAYS = sorted(
    {p.valid_from for p in REGISTRY.periods} | {p.valid_until for p in REGISTRY.periods if p.valid_until}
)


def test_every_number_resolves_on_every_later_change_day_to_a_number_in_force_or_a_split() -> None:
    """No chain of successors ends in a number that is not in force: a number that once existed
    is either settled on a municipality of the day or rejected as split, never unknown."""
    for number in REGISTRY.numbers():
        first = min(p.valid_from for p in REGISTRY.periods if p.number == number)
        for day in [d for d in CHANGE_DAYS if d >= first] + [date(2030, 1, 1)]:
            try:
                resolved = REGISTRY.resolve(number, day)
            except SplitMunicipality:
                continue
            assert resolved.number in REGISTRY.numbers_valid_on(day), (number, day)
            assert (resolved.mapped_from is None) == (resolved.number == number)


def test_the_shipped_file_names_its_source_and_licence() -> None:
    header = [
        line for line in DEFAULT_REGISTRY.read_text(encoding="utf-8").splitlines() if line.startswith("#")
    ]
    text = "\n".join(header)
    assert "KLASS classification 131" in text and "Statistics Norway" in text
    assert "Norwegian Licence for Open Government Data (NLOD" in text
    assert DEFAULT_REGISTRY.parent.name == "municipalities" and DEFAULT_REGISTRY.name == "registry.csv"


# ----------------------------------------------------------------- refused registry data

HEADER = "number,name,valid_from,valid_until,successors\n"


def registry(body: str) -> Registry:
    return parse_registry("# a comment\n" + HEADER + body, source="test.csv")


def test_a_small_registry_with_a_merger_a_renumbering_and_a_split() -> None:
    r = registry(
        "0001,A,2012-01-01,2015-01-01,0003\n"
        "0002,B,2012-01-01,2015-01-01,0003\n"
        "0003,AB,2015-01-01,2020-01-01,0004\n"
        "0004,AB,2020-01-01,2024-01-01,0005;0006\n"
        "0005,A,2024-01-01,,\n"
        "0006,B,2024-01-01,,\n"
    )
    assert r.resolve("0001", D("2016-01-01")) == ok("0003", "0001")
    assert r.resolve("0001", D("2021-01-01")) == ok("0004", "0001")
    with pytest.raises(SplitMunicipality, match="0001 became 0003 on 2015-01-01, then 0004 on 2020-01-01"):
        r.resolve("0001", D("2024-01-01"))
    assert r.name_of("0002", D("2016-01-01")) == "AB"


def test_a_number_reused_after_a_gap_resolves_by_date() -> None:
    r = registry("0001,Old,2012-01-01,2015-01-01,0002\n0002,Other,2012-01-01,,\n0001,New,2018-01-01,,\n")
    assert r.resolve("0001", D("2016-01-01")) == ok("0002", "0001")
    assert r.resolve("0001", D("2019-01-01")) == ok("0001")
    assert r.name_of("0001", D("2019-01-01")) == "New"


def test_a_number_is_in_force_for_good_from_the_start_of_its_last_period_with_no_end() -> None:
    r = registry(
        "0001,Old,2012-01-01,2015-01-01,0002\n0002,Other,2012-01-01,,\n0001,New,2018-01-01,,\n0003,C,2012-01-01,2015-01-01,0002\n"
    )

    assert r.in_force_for_good_from("0001") == D("2018-01-01")  # reused after a gap
    assert r.in_force_for_good_from("0002") == D("2012-01-01")
    assert r.in_force_for_good_from("0003") is None  # retired
    assert r.in_force_for_good_from("0009") is None  # never used
    for day in ("2018-01-01", "2019-06-30", "2031-12-31"):
        assert r.resolve("0001", D(day)) == ok("0001")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("0001,A,2012-01-01,,\n0001,A,2015-01-01,,\n", "overlap"),
        ("0001,A,2012-01-01,2016-01-01,0002\n0001,A,2015-01-01,,\n0002,B,2012-01-01,,\n", "overlap"),
        ("0001,A,2012-01-01,2015-01-01,\n", "without successors"),
        ("0001,A,2012-01-01,,0002\n0002,B,2012-01-01,,\n", "still in force .* cannot have successors"),
        ("0001,A,2012-01-01,2015-01-01,0009\n", "successor 0009 is not in force on 2015-01-01"),
        ("0001,A,2012-01-01,2015-01-01,0002\n0002,B,2016-01-01,,\n", "successor 0002 is not in force"),
        ("0001,A,2012-01-01,2015-01-01,0001\n", "itself"),
        ("0001,A,2012-01-01,2015-01-01,0002;0002\n0002,B,2012-01-01,,\n", "twice"),
        ("301,Oslo,2012-01-01,,\n", "not four digits"),
        ("0001,,2012-01-01,,\n", "no name"),
        ("0001,A,2012-13-01,,\n", "not an ISO date"),
        ("0001,A,20120101,,\n", "not an ISO date"),
        ("0001,A,2015-01-01,2015-01-01,0002\n", "not after"),
        ("0001,A,2012-01-01\n", "expected 5 fields"),
        ("", "empty"),
    ],
)
def test_inconsistent_registry_data_is_refused_with_a_message(body: str, message: str) -> None:
    with pytest.raises(RegistryError, match=message) as refused:
        registry(body)
    assert "test.csv" in str(refused.value)


def test_a_wrong_header_is_refused() -> None:
    with pytest.raises(RegistryError, match="expected the header"):
        parse_registry("number,name,from,until,successors\n", source="test.csv")
    with pytest.raises(RegistryError, match="no header"):
        parse_registry("# only a comment\n", source="test.csv")


def test_load_registry_names_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="cannot read"):
        load_registry(tmp_path / "missing.csv")


def test_the_resolutions_remembered_are_bounded_and_stay_right_after_forgetting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from services.domain import municipalities

    monkeypatch.setattr(municipalities, "RESOLVED_KEPT", 5)
    remembering, fresh = load_registry(), load_registry()
    days = [date(2019, 12, 28) + timedelta(days=n) for n in range(12)]  # across the 2020 reform
    for day in days * 2:
        assert remembering.resolve("1201", day) == fresh.resolve("1201", day)
        assert len(remembering._resolved) <= 5  # the memory it may hold (private: no other way to see it)
