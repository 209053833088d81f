"""A month is rendered in ranges of pairs: consecutive, in order, every pair in exactly one,
each range closed once it has at least the size asked for."""

from __future__ import annotations

import pytest

from services.settlement.month_rendering import pair_ranges

A, B, C, D = ("0301", "974"), ("0301", "983"), ("1103", "974"), ("4601", "983")


@pytest.mark.parametrize(
    ("items", "size", "ranges"),
    [
        ({}, 10, []),
        ({A: 1}, 10, [(A, A)]),
        ({A: 3, B: 3, C: 3, D: 3}, 6, [(A, B), (C, D)]),
        ({A: 3, B: 3, C: 3, D: 3}, 7, [(A, C), (D, D)]),
        # a pair with more than the size is a range of its own; the order is the pairs', not the dict's
        ({D: 1, C: 50, B: 1, A: 1}, 10, [(A, C), (D, D)]),
        ({A: 50, B: 50, C: 1}, 10, [(A, A), (B, B), (C, C)]),
        ({A: 2, B: 2, C: 2, D: 2}, 1, [(A, A), (B, B), (C, C), (D, D)]),
    ],
)
def test_pairs_are_cut_into_consecutive_ranges(
    items: dict[tuple[str, str], int], size: int, ranges: list[tuple[tuple[str, str], tuple[str, str]]]
) -> None:
    assert pair_ranges(items, size) == ranges


def test_every_pair_is_in_exactly_one_range() -> None:
    items = {(f"{m:04d}", f"9{t:08d}"): (m * 7 + t) % 13 + 1 for m in range(40) for t in range(3)}
    ranges = pair_ranges(items, 25)
    everyone = sorted(items)
    covered = [p for first, last in ranges for p in everyone if first <= p <= last]
    assert covered == everyone
    assert all(sum(items[p] for p in everyone if first <= p <= last) >= 25 for first, last in ranges[:-1])
