"""Hand Kafka records to the handlers undecoded: the services read the bytes themselves.

FastStream decodes a message body before the handler runs: as JSON when the body looks
like it, or as whatever a `content-type` header claims. A body that fails there in a way
it does not expect (an integer of more than 4300 digits, nesting deeper than the parser
recurses, invalid JSON or UTF-8 under a header that promised otherwise) raises outside the
handler; with `AckPolicy.NACK_ON_ERROR` the message is then delivered again, forever, and
its partition stops. The services validate the raw bytes and turn anything they cannot
read into a rejection with a reason, so nothing is gained by decoding first.
"""

from __future__ import annotations

from typing import Any

from faststream.message import StreamMessage


async def undecoded(message: StreamMessage[Any]) -> Any:
    """A FastStream `decoder` that leaves the body as it arrived (bytes, or a batch's list)."""
    return message.body
