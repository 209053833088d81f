"""The worker of `python -m bench.ab`: one revision's intake code, timing a round when told.

Run by path, not as part of the `bench` package: `python bench/ab_worker.py TREE MESSAGES
NOW`, where TREE is the revision's worktree, put first on `sys.path` so that `services` is
the revision's own. Commands arrive on stdin and answers leave on stdout, one JSON line
each. It drives the revision's `validate` and `rate_subject`, which every revision since
they were written has.
"""

from __future__ import annotations

import gc
import hashlib
import json
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import date, datetime
from typing import Any


def main(tree: str, messages_path: str, now_text: str) -> None:
    sys.path.insert(0, tree)
    import orjson

    import services
    from services.adapters.municipality_registry import load_registry
    from services.adapters.tariff_files import load_tariffs
    from services.intake.pseudonym import Pseudonymiser
    from services.intake.validation import Accepted, RawRecord, validate
    from services.rating.service import rate_subject
    from services.tariffs import DEFAULT_TARIFF_DIR

    if not str(services.__file__).startswith(tree):  # an installed copy found first
        sys.exit(f"the worker loaded {services.__file__}, not the revision's own code in {tree}")

    with open(messages_path, "rb") as lines:
        messages = [orjson.loads(line) for line in lines]
    records = [
        RawRecord(m["topic"], 0, i, m["key"].encode(), m["value"].encode()) for i, m in enumerate(messages)
    ]
    now = datetime.fromisoformat(now_text)
    pseudonymise, registry = Pseudonymiser(b"bench-ab-" + b"k" * 32), load_registry()
    tariffs = load_tariffs(DEFAULT_TARIFF_DIR)

    def validate_all() -> list[Any]:
        return [validate(r, now=now, pseudonymise=pseudonymise, registry=registry) for r in records]

    facts: dict[str, list[Any]] = defaultdict(list)
    for outcome in validate_all():
        if isinstance(outcome, Accepted):
            facts[outcome.subject_key].append(outcome.payload)
    # As intake rates a subject: again with each new fact, from all of them.
    ratings = [(key, payloads[:n]) for key, payloads in facts.items() for n in range(1, len(payloads) + 1)]
    floor = date(2012, 1, 1)

    def rate_all() -> list[Any]:
        return [rate_subject(key, payloads, tariffs, floor, registry) for key, payloads in ratings]

    def digest(part: str) -> str:
        h = hashlib.sha256()
        if part == "validate":
            for outcome in validate_all():
                if isinstance(outcome, Accepted):
                    h.update(outcome.content_hash + outcome.payload_json)
                else:
                    h.update(f"{outcome.reason.value}:{outcome.message}".encode())
        else:
            for items in rate_all():
                rows = [
                    (
                        i.subject_id,
                        i.municipality,
                        i.first_day,
                        i.last_day,
                        i.quantity,
                        i.amount_ore,
                        i.rule_id,
                        i.note,
                    )
                    for i in items
                ]
                h.update(repr(rows).encode())
        return h.hexdigest()

    # The heap as the services settle it once started (services/runtime/heap.py), the same
    # for every revision compared.
    gc.freeze()
    gc.set_threshold(20_000)
    run: dict[str, Callable[[], list[Any]]] = {"validate": validate_all, "rating": rate_all}
    print(json.dumps({"ready": len(records)}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        if command["do"] == "time":
            started = time.perf_counter()
            run[command["part"]]()
            print(json.dumps({"seconds": time.perf_counter() - started}), flush=True)
        elif command["do"] == "digest":
            print(json.dumps({"digest": digest(command["part"])}), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:4])
