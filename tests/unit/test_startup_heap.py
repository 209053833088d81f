"""The collector's treatment of a service's heap after start-up (services.runtime.heap)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from services.runtime.heap import settle_startup_heap


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture
def restored_collector() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored_collector")
def test_what_start_up_made_is_frozen_and_young_collections_come_less_often() -> None:
    made_at_start_up = [Node() for _ in range(1_000)]
    frozen_before = gc.get_freeze_count()

    settle_startup_heap(12_345)

    assert gc.get_freeze_count() >= frozen_before + len(made_at_start_up)
    assert gc.get_threshold()[0] == 12_345


@pytest.mark.usefixtures("restored_collector")
def test_a_cycle_made_afterwards_is_still_freed() -> None:
    settle_startup_heap()
    first, second = Node(), Node()
    first.other, second.other = second, first
    gone = weakref.ref(first)
    del first, second

    gc.collect()

    assert gone() is None
