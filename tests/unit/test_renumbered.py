"""Items settled on the municipality number of their days (services.domain.renumbered, rules
M1-M3; docs/municipalities.md "Rules"; domain.md section 1 "Who pays").

The registry is the shipped one: 1507 Ålesund split on 2024-01-01 into 1508 Ålesund and
1580 Haram, 0720 Stokke on 2017-01-01 into 0704 Tønsberg and 0710 Sandefjord, 5012
Snillfjord on 2020-01-01 three ways; 3024 Bærum renumbered 3201 on 2024-01-01; 1534 Haram
merged into 1507 in 2020.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

import pytest

from services.adapters.municipality_registry import load_registry
from services.adapters.tariff_files import load_tariffs
from services.domain.calendar import Month
from services.domain.ledger import Category, ItemStatus, LedgerItem, PayerRole
from services.domain.renumbered import settle_numbers
from services.domain.statements import summarise
from services.rating.service import rate_subject
from services.tariffs import DEFAULT_TARIFF_DIR

REGISTRY = load_registry()
NATIONAL = load_tariffs(DEFAULT_TARIFF_DIR)
MOLDE_HF = "997005562"  # Helse Møre og Romsdal
D = date.fromisoformat

DR = Category.DISCHARGE_READY_BED_DAYS
KAD = Category.EMERGENCY_BED_DAYS
ACT = Category.ACTIVITY_CO_FINANCING

ALESUND_SPLIT = "municipality number 1507 was split on 2024-01-01 into 1508 Ålesund and 1580 Haram"
HELD_DR_2024 = (
    f"{ALESUND_SPLIT}: nothing owed on 1507 until the hospital sends a municipality_notified of the "
    "episode dated 2024-01-01 naming 1508 or 1580 as its staying municipality"
)


def item(
    category: Category,
    municipality: str,
    first: str,
    last: str,
    unit_ore: int | None,
    note: str | None = None,
) -> LedgerItem:
    days = (D(last) - D(first)).days + 1
    return LedgerItem(
        category=category,
        subject_id="subject-1",
        health_trust=MOLDE_HF,
        municipality=municipality,
        payer_role=PayerRole.HEALTH_TRUST if category is KAD else PayerRole.MUNICIPALITY,
        service_month=Month.of(D(first)),
        first_day=D(first),
        last_day=D(last),
        quantity=days,
        unit_price_ore=unit_ore,
        amount_ore=None if unit_ore is None else unit_ore * days,
        rule_id=None if unit_ore is None else "some.rule",
        note=note,
    )


# (municipality, status, amount_ore, not_payable_reason, note) of the settled item.
Expected = tuple[str, ItemStatus, int | None, str | None, str | None]

# Columns: rule, item, what intake mapped (successor -> number given), expected.
WORKED_EXAMPLES = [
    pytest.param(
        "M1; municipalities.md rule 1: a number in force on the item's days stays, unnoted",
        item(DR, "1507", "2023-12-20", "2023-12-31", 550_800),
        {},
        ("1507", ItemStatus.PRICED, 12 * 550_800, None, None),
        id="in-force-no-change",
    ),
    pytest.param(
        "M1; municipalities.md rule 2: renumbered after the events (3024 -> 3201), mapped, with a note",
        item(DR, "3024", "2024-01-01", "2024-01-04", 574_500),
        {},
        (
            "3201",
            ItemStatus.PRICED,
            2_298_000,
            None,
            "municipality number 3024 retired: settled on its successor 3201",
        ),
        id="renumbered-3024-3201-mapped",
    ),
    pytest.param(
        "M1; municipalities.md rule 2: intake mapped the events' number, and the item says so",
        item(DR, "4601", "2021-03-01", "2021-03-03", 516_700),
        {"4601": "1201"},
        (
            "4601",
            ItemStatus.PRICED,
            3 * 516_700,
            None,
            "municipality number 1201 retired: settled on its successor 4601",
        ),
        id="mapped-at-intake",
    ),
    pytest.param(
        "M2; R4 from 2019 the staying municipality pays: split 1507 held, the reason says how to move it",
        item(DR, "1507", "2024-01-01", "2024-01-04", 574_500),
        {},
        ("1507", ItemStatus.NOT_PAYABLE, None, HELD_DR_2024, None),
        id="split-1507-discharge-ready-held",
    ),
    pytest.param(
        "M2; R4 before 2019 the registered municipality pays: the reason names that field",
        item(DR, "0720", "2017-01-01", "2017-01-09", 462_200),
        {},
        (
            "0720",
            ItemStatus.NOT_PAYABLE,
            None,
            "municipality number 0720 was split on 2017-01-01 into 0704 Tønsberg and 0710 Sandefjord: "
            "nothing owed on 0720 until the hospital sends a municipality_notified of the episode dated "
            "2017-01-01 naming 0704 or 0710 as its registered municipality",
            None,
        ),
        id="split-0720-2017-registered-pays",
    ),
    pytest.param(
        "M2; municipalities.md rule 3: a three-way split names every part",
        item(DR, "5012", "2020-01-01", "2020-01-02", 503_600),
        {},
        (
            "5012",
            ItemStatus.NOT_PAYABLE,
            None,
            "municipality number 5012 was split on 2020-01-01 into 5055 Heim, 5056 Hitra and 5059 Orkland: "
            "nothing owed on 5012 until the hospital sends a municipality_notified of the episode dated "
            "2020-01-01 naming 5055, 5056 or 5059 as its staying municipality",
            None,
        ),
        id="split-5012-three-ways",
    ),
    pytest.param(
        "M2; municipalities.md rule 3: a number merged into one split later names the chain",
        item(DR, "1534", "2024-01-01", "2024-01-02", 574_500),
        {},
        (
            "1534",
            ItemStatus.NOT_PAYABLE,
            None,
            "municipality number 1534 became 1507, which was split on 2024-01-01 into 1508 Ålesund and "
            "1580 Haram: nothing owed on 1534 until the hospital sends a municipality_notified of the "
            "episode dated 2024-01-01 naming 1508 or 1580 as its staying municipality",
            None,
        ),
        id="merged-then-split-1534",
    ),
    pytest.param(
        "M2 and M1: held on the split number, the intake mapping that led to it still said",
        item(DR, "1507", "2024-01-01", "2024-01-02", 574_500),
        {"1507": "1534"},
        (
            "1507",
            ItemStatus.NOT_PAYABLE,
            None,
            HELD_DR_2024,
            "municipality number 1534 retired: settled on its successor 1507",
        ),
        id="mapped-at-intake-then-split",
    ),
    pytest.param(
        "M2; R6 an unrated day on a split number is held too: nothing is owed on it, priced or not",
        item(DR, "1507", "2024-01-01", "2024-01-02", None),
        {},
        ("1507", ItemStatus.NOT_PAYABLE, None, HELD_DR_2024, None),
        id="split-unrated-held",
    ),
    pytest.param(
        "M2; A3 the latest fact decides an activity's payer: held until a correction names a part",
        item(ACT, "1507", "2024-01-02", "2024-01-02", 1_234_500, note="1.0 DRG points"),
        {},
        (
            "1507",
            ItemStatus.NOT_PAYABLE,
            None,
            f"{ALESUND_SPLIT}: nothing owed on 1507 until the hospital sends an activity_corrected dated "
            "on or after 2024-01-01 naming 1508 or 1580 as its registered municipality",
            "1.0 DRG points",
        ),
        id="split-activity-held",
    ),
    pytest.param(
        "M3: an emergency-bed stay keeps its first event's municipality: priced, with a note",
        item(KAD, "1507", "2024-01-01", "2024-01-02", 320_000),
        {},
        (
            "1507",
            ItemStatus.PRICED,
            640_000,
            None,
            f"{ALESUND_SPLIT}: settled on 1507, the municipality of the stay's first event, which no "
            "event dated after the split changes",
        ),
        id="split-emergency-beds-noted",
    ),
]


def compact(settled: LedgerItem) -> Expected:
    return (
        settled.municipality,
        settled.status,
        settled.amount_ore,
        settled.not_payable_reason,
        settled.note,
    )


@pytest.mark.parametrize(("rule", "given", "mapped", "expected"), WORKED_EXAMPLES)
def test_a_worked_example_settles_the_item_as_expected(
    rule: str, given: LedgerItem, mapped: dict[str, str], expected: Expected
) -> None:
    [settled] = settle_numbers([given], REGISTRY, mapped)
    assert compact(settled) == expected, rule
    # Only the number, the price and what is said may change: never the days.
    same = ("first_day", "last_day", "quantity", "service_month", "open_ended", "payer_role")
    assert all(getattr(settled, field) == getattr(given, field) for field in same)


def test_every_row_of_the_table_cites_a_rule() -> None:
    for row in WORKED_EXAMPLES:
        assert str(row.values[0]).startswith("M"), row.id


def test_without_a_registry_only_what_intake_mapped_is_said() -> None:
    given = item(DR, "1507", "2024-01-01", "2024-01-04", 574_500)
    [settled] = settle_numbers([given], None, {"1507": "1534"})
    assert settled == replace(given, note="municipality number 1534 retired: settled on its successor 1507")


def test_the_held_days_are_one_line_of_their_own_with_the_reason_and_no_amount() -> None:
    december = item(DR, "1507", "2023-12-20", "2023-12-31", 550_800)
    january = [
        item(DR, "1507", "2024-01-01", "2024-01-04", 574_500),
        replace(item(DR, "1507", "2024-01-10", "2024-01-31", 574_500), subject_id="subject-2"),
    ]
    lines, totals = summarise(settle_numbers([december, *january], REGISTRY, {}))
    assert [
        (str(line.service_month), line.status, line.quantity, line.amount_ore, line.note) for line in lines
    ] == [
        ("2023-12", ItemStatus.PRICED, 12, 12 * 550_800, None),
        ("2024-01", ItemStatus.NOT_PAYABLE, 4 + 22, None, HELD_DR_2024),
    ]
    assert totals.municipality_pays_ore == 12 * 550_800


def test_an_emergency_bed_line_on_a_split_number_carries_the_note() -> None:
    lines, _ = summarise(
        settle_numbers([item(KAD, "1507", "2024-01-01", "2024-01-02", 320_000)], REGISTRY, {})
    )
    [line] = lines
    assert (line.amount_ore, line.note) == (
        640_000,
        f"{ALESUND_SPLIT}: settled on 1507, the municipality of the stay's first event, which no "
        "event dated after the split changes",
    )


# ------------------------------------------------------- the audit's episode, through rating


def episode_event(kind: str, at: str, municipality: str) -> dict[str, Any]:
    return {
        "type": kind,
        "occurred_at": at,
        "event_id": f"{kind}-{at}",
        "registered_municipality": municipality,
        "staying_municipality": municipality,
        "care_area": "somatic",
    }


# EP-AAL-1 at Helse Møre og Romsdal: admitted, declared ready and notified in December 2023
# under 1507; discharged on 5 January 2024 under 1508 (intake refuses 1507 from 2024-01-01).
EP_AAL_1 = [
    episode_event("admission_notified", "2023-12-10T10:00:00+01:00", "1507"),
    episode_event("declared_ready", "2023-12-20T10:00:00+01:00", "1507"),
    episode_event("municipality_notified", "2023-12-20T11:00:00+01:00", "1507"),
    episode_event("discharged", "2024-01-05T12:00:00+01:00", "1508"),
]
DECEMBER = ("2023-12", "1507", "2023-12-20", "2023-12-31", 12, 12 * 550_800, ItemStatus.PRICED)

# Columns: rule, extra events of the episode, expected items (month, municipality, first day,
# last day, days, amount, status).
AUDITED_EPISODE = [
    pytest.param(
        "M2; R4 the latest event before 1-4 Jan names 1507, split that day: held, not billed to 1507",
        [],
        [DECEMBER, ("2024-01", "1507", "2024-01-01", "2024-01-04", 4, None, ItemStatus.NOT_PAYABLE)],
        id="as-audited-january-held",
    ),
    pytest.param(
        "M2; R4 an event on the split day naming 1508 moves every held day: 4 x 5,745 NOK = 22,980 NOK",
        [episode_event("municipality_notified", "2024-01-01T08:00:00+01:00", "1508")],
        [DECEMBER, ("2024-01", "1508", "2024-01-01", "2024-01-04", 4, 2_298_000, ItemStatus.PRICED)],
        id="notice-on-the-split-day-moves-all",
    ),
    pytest.param(
        "M2; R4 an event dated later moves the days from its own day; the ones before stay held",
        [episode_event("municipality_notified", "2024-01-03T08:00:00+01:00", "1580")],
        [
            DECEMBER,
            ("2024-01", "1507", "2024-01-01", "2024-01-02", 2, None, ItemStatus.NOT_PAYABLE),
            ("2024-01", "1580", "2024-01-03", "2024-01-04", 2, 1_149_000, ItemStatus.PRICED),
        ],
        id="notice-later-moves-from-its-day",
    ),
    pytest.param(
        "M1; R4 the merger counterpart (3024 -> 3201) is mapped and priced, with its note",
        None,
        [
            ("2023-12", "3024", "2023-12-20", "2023-12-31", 12, 12 * 550_800, ItemStatus.PRICED),
            ("2024-01", "3201", "2024-01-01", "2024-01-04", 4, 2_298_000, ItemStatus.PRICED),
        ],
        id="renumbered-bærum-mapped",
    ),
]


@pytest.mark.parametrize(("rule", "extra", "expected"), AUDITED_EPISODE)
def test_the_audited_episode_across_the_split(
    rule: str, extra: list[dict[str, Any]] | None, expected: list[tuple[object, ...]]
) -> None:
    if extra is None:  # the same episode in Bærum
        events = [
            episode_event(e["type"], e["occurred_at"], "3201" if e["type"] == "discharged" else "3024")
            for e in EP_AAL_1
        ]
    else:
        events = EP_AAL_1 + extra
    items = rate_subject(f"discharge_ready:{MOLDE_HF}:EP-AAL-1", events, NATIONAL, D("2024-01-31"), REGISTRY)
    got = [
        (
            str(i.service_month),
            i.municipality,
            i.first_day.isoformat(),
            i.last_day.isoformat(),
            i.quantity,
            i.amount_ore,
            i.status,
        )
        for i in items
    ]
    assert got == expected, rule
    for i in items:
        if i.status is ItemStatus.NOT_PAYABLE:
            assert i.not_payable_reason == HELD_DR_2024
        elif i.municipality == "3201":
            assert i.note == "municipality number 3024 retired: settled on its successor 3201"
        else:
            assert i.note is None
