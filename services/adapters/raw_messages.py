"""Hand Kafka records to the handlers undecoded: the services read the bytes themselves.

FastStream decodes a message body before the handler runs: as JSON when the body looks
like it, or as whatever a `content-type` header claims. A body that fails there in a way
it does not expect (an integer of more than 4300 digits, nesting deeper than the parser
recurses, invalid JSON or UTF-8 under a header that promised otherwise) raises outside the
handler; with `AckPolicy.NACK_ON_ERROR` the message is then delivered again, forever, and
its partition stops. The services validate the raw bytes and turn anything they cannot
read into a rejection with a reason, so nothing is gained by decoding first.

Its parser also decodes every header as UTF-8, strictly, and a header with no value (which
Kafka allows) or one that is not text raised there in the same way. Headers are no part of
the contract, so `readable_headers` makes them text before the parser sees them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka.structs import ConsumerRecord
from faststream.message import StreamMessage


async def undecoded(message: StreamMessage[Any]) -> Any:
    """A FastStream `decoder` that leaves the body as it arrived (bytes, or a batch's list)."""
    return message.body


async def readable_headers(
    message: ConsumerRecord[Any, Any] | tuple[ConsumerRecord[Any, Any], ...],
    original: Callable[[Any], Awaitable[StreamMessage[Any]]],
) -> StreamMessage[Any]:
    """A FastStream `parser` for a record or a batch: the framework's own, on records whose
    header values are all text (one with no value or not UTF-8 is given a readable one)."""
    if isinstance(message, tuple):
        return await original(tuple(_readable(record) for record in message))
    return await original(_readable(message))


def _readable(record: ConsumerRecord[Any, Any]) -> ConsumerRecord[Any, Any]:
    if not record.headers:  # nearly every record: nothing to look at
        return record
    try:
        for _name, value in record.headers:
            value.decode()
    except (AttributeError, UnicodeDecodeError):  # no value (None), or not UTF-8
        headers = tuple(
            (name, (value or b"").decode("utf-8", errors="replace").encode())
            for name, value in record.headers
        )
        return dataclasses.replace(record, headers=headers)
    return record


# How both services' brokers read records: the bytes as they came, headers or not text.
READ_RAW: dict[str, Any] = {"decoder": undecoded, "parser": readable_headers}
