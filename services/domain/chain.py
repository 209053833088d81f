"""The hash chain over a pair's statements: each carries the hash of the one before, so
either party can prove it holds the complete, unaltered series."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

# Fields that differ between the two parties' copies, and the hash itself, are not hashed.
UNHASHED = frozenset({"recipient", "counterparty", "statement_hash"})


def canonical(body: Mapping[str, Any]) -> bytes:
    content = {k: v for k, v in body.items() if k not in UNHASHED}
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def statement_hash(body: Mapping[str, Any]) -> str:
    return "sha256:" + hashlib.sha256(canonical(body)).hexdigest()


def statement_hash_with_items(body: Mapping[str, Any], items: bytes) -> str:
    """`statement_hash(body)` for a body whose `items` are given apart, already in canonical
    JSON (sorted keys, no spaces, UTF-8; the array's contents without brackets): a month
    of a million items is hashed without a dict per item."""
    return "sha256:" + hashlib.sha256(with_items(canonical({**body, "items": []}), items)).hexdigest()


_EMPTY_ITEMS = b'"items":[]'


def with_items(document: bytes, items: bytes) -> bytes:
    """A JSON statement with an empty `items` array, with `items` (an array's contents,
    without brackets) put in its place."""
    # A key is the only place the marker can occur unescaped: quotes inside strings are \".
    head, found, tail = document.partition(_EMPTY_ITEMS)
    assert found and _EMPTY_ITEMS not in tail, "exactly one empty `items` in the statement's JSON"
    return b"".join((head, b'"items":[', items, b"]", tail))


def chain_breaks(bodies: Sequence[Mapping[str, Any]], stored_hashes: Sequence[str | None] = ()) -> list[str]:
    """What is wrong with a pair's series, in words; empty when it verifies.

    `bodies` in sequence order. Each must hash to its stored hash (when given) and to its
    own `statement_hash` (when present), and name the previous one's hash.
    """
    problems = []
    previous: str | None = None
    for index, body in enumerate(bodies):
        sequence = body.get("sequence")
        name = f"statement {body.get('statement_id')} (sequence {sequence})"
        if sequence != index + 1:
            problems.append(f"{name}: expected sequence {index + 1}: a statement is missing or out of order")
        actual = statement_hash(body)
        if index < len(stored_hashes) and stored_hashes[index] not in (None, actual):
            problems.append(f"{name}: its content does not match its stored hash: it was altered")
        if body.get("statement_hash") not in (None, actual):
            problems.append(
                f"{name}: its content does not match the hash it was published with: it was altered"
            )
        if body.get("previous_statement_hash") != previous:
            problems.append(f"{name}: does not name the previous statement's hash: the chain is broken")
        previous = actual
    return problems
