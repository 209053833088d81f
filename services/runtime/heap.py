"""How the garbage collector treats a long-running service's heap.

CPython's cyclic collector runs whenever 700 more container objects were made than
freed, and each run walks the young objects, older generations now and then, the whole
heap at times. A service makes thousands of containers per batch (parsed messages,
payload dicts, rows), nearly all freed by reference counting alone, and holds tens of
thousands made once at start-up (modules, the tariff book, the municipality registry)
that no collection will ever free. Measured on intake (perf, py-spy): the collector took
about 7 % of its CPU.
"""

from __future__ import annotations

import gc

# Young objects allowed before a collection: 700 (CPython's default) collects after about
# one message's worth; 20,000 after a few hundred messages, a few megabytes at most.
YOUNG_THRESHOLD = 20_000


def settle_startup_heap(young_threshold: int = YOUNG_THRESHOLD) -> None:
    """Move everything alive after start-up out of the collector's sight (`gc.freeze`) and
    collect the young generation less often. Cycles made later are still found and freed;
    what start-up made lives as long as the process anyway."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(young_threshold, middle, old)
