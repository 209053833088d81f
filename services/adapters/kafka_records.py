"""Fetched records whose header names are not UTF-8, read instead of refused.

A Kafka header's name is a string on the wire, but nothing checks that its bytes are
UTF-8, and a producer can send any (aiokafka's own Python builder encodes whatever `str`
it is handed; librdkafka copies bytes). aiokafka decodes each name strictly while it reads
a fetch, inside its consumer, before FastStream or the services see the record, so one such
record:
- stopped its partition for good: the `UnicodeDecodeError` ended FastStream's consume
  task, whose supervisor started it again to fetch the same record, in a busy loop;
- could lose records of other partitions (by aiokafka's code; not seen in the test): a
  `getmany()` that had already taken another partition's records from the fetch, moving
  that partition's position on, raised without returning them, and the next commit of the
  consumer's positions went past them.

Headers are no part of the contract (contracts/v1/README.md): the services never read
them. So a batch in which aiokafka's reader (its C extension) meets such a name is read
again here from its bytes, the records it had not yet given first, each name decoded with
backslash escapes for the bytes that are not UTF-8. Every other batch goes through
aiokafka's reader as before, through a wrapper: about 0.1 µs more per record (0.22 µs to
0.32 µs in the slow boot of 2026-12-02, against some 80 µs of intake's CPU per event).

The reader is installed into aiokafka's fetcher (`read_any_header_names`), which takes its
`MemoryRecords` by name; the module checks that it still does, so an aiokafka that reads
fetches otherwise fails the installation, and its test, instead of going unguarded.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from typing import Any

import aiokafka.consumer.fetcher as fetcher
from aiokafka import codec
from aiokafka.record.default_records import DefaultRecord, DefaultRecordBatch
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.record.util import decode_varint

# Record batch v2 (magic 2), KIP-98: base offset int64, length int32, leader epoch int32,
# magic int8, CRC uint32, attributes int16, last offset delta int32, first and max timestamp
# int64, producer id int64, producer epoch int16, base sequence int32, record count int32.
_LENGTH_AT = 8  # the batch's length counts the bytes after its own field
_LOG_OVERHEAD = 12  # base offset and length
_COUNT_AT = 57
_RECORDS_AT = 61
_CODEC_MASK = 0x07
_DECOMPRESS: dict[int, Callable[[memoryview], bytes]] = {
    1: codec.gzip_decode,
    2: lambda data: codec.snappy_decode(bytes(data)),
    3: lambda data: codec.lz4_decode(bytes(data)),
    4: lambda data: codec.zstd_decode(bytes(data)),
}
_LOG_APPEND_TIME = 1


class MemoryRecordsReadingAnyHeaderName:
    """aiokafka's `MemoryRecords` over a fetched partition's bytes, whose record batches
    read records with header names that are not UTF-8 (module docstring)."""

    __slots__ = ("_data", "_pos", "_records")

    def __init__(self, bytes_data: bytes) -> None:
        self._data = bytes_data
        self._records = MemoryRecords(bytes_data)
        self._pos = 0  # where the next batch starts, as aiokafka's reader counts

    def size_in_bytes(self) -> int:
        return int(self._records.size_in_bytes())

    def has_next(self) -> bool:
        return bool(self._records.has_next())

    def next_batch(self) -> Any:
        start = self._pos
        batch = self._records.next_batch()
        if batch is None:
            return None
        (length,) = struct.unpack_from(">i", self._data, start + _LENGTH_AT)
        self._pos = end = start + _LOG_OVERHEAD + length
        if not isinstance(batch, DefaultRecordBatch):  # magic 0 and 1 have no headers
            return batch
        return _BatchReadingAnyHeaderName(batch, self._data, start, end)


class _BatchReadingAnyHeaderName:
    """A record batch as aiokafka's, whose records are read from its bytes once
    aiokafka's reader has refused a header name."""

    __slots__ = ("_batch", "_data", "_end", "_start")

    def __init__(self, batch: Any, data: bytes, start: int, end: int) -> None:
        self._batch = batch
        self._data = data
        self._start = start
        self._end = end

    def __getattr__(self, name: str) -> Any:  # the batch's header: offsets, CRC, control...
        return getattr(self._batch, name)

    def __next__(self) -> Any:  # aiokafka reads a control batch's one record this way
        return next(self._batch)

    def __iter__(self) -> Iterator[Any]:
        given = -1
        try:
            for record in self._batch:
                given = record.offset
                yield record
        except UnicodeDecodeError:
            batch = memoryview(self._data)[self._start : self._end]
            yield from (r for r in records_of(batch) if r.offset > given)


def records_of(batch: memoryview) -> Iterator[Any]:
    """The records of one v2 record batch (its bytes, header included), header names
    decoded with backslash escapes where they are not UTF-8."""
    (base_offset,) = struct.unpack_from(">q", batch, 0)
    (attributes,) = struct.unpack_from(">h", batch, 21)
    first_timestamp, max_timestamp = struct.unpack_from(">qq", batch, 27)
    (count,) = struct.unpack_from(">i", batch, _COUNT_AT)
    timestamp_type = (attributes >> 3) & 1
    compression = attributes & _CODEC_MASK
    records = batch[_RECORDS_AT:]
    buffer = bytearray(_DECOMPRESS[compression](records) if compression else records)
    pos = 0
    for _ in range(count):
        _length, pos = decode_varint(buffer, pos)
        pos += 1  # record attributes, unused
        timestamp_delta, pos = decode_varint(buffer, pos)
        offset_delta, pos = decode_varint(buffer, pos)
        key, pos = _bytes(buffer, pos)
        value, pos = _bytes(buffer, pos)
        header_count, pos = decode_varint(buffer, pos)
        headers = []
        for _ in range(header_count):
            name, pos = _bytes(buffer, pos)
            header_value, pos = _bytes(buffer, pos)
            headers.append(((name or b"").decode("utf-8", "backslashreplace"), header_value))
        timestamp = max_timestamp if timestamp_type == _LOG_APPEND_TIME else first_timestamp + timestamp_delta
        yield DefaultRecord(base_offset + offset_delta, timestamp, timestamp_type, key, value, headers)


def _bytes(buffer: bytearray, pos: int) -> tuple[bytes | None, int]:
    length, pos = decode_varint(buffer, pos)
    if length < 0:
        return None, pos
    return bytes(buffer[pos : pos + length]), pos + length


def read_any_header_names() -> None:
    """Have aiokafka's consumers in this process read records whatever their header names
    (module docstring). Idempotent; fails if aiokafka no longer reads fetches this way."""
    if getattr(fetcher, "MemoryRecords", None) not in (MemoryRecords, MemoryRecordsReadingAnyHeaderName):
        raise RuntimeError(
            "aiokafka's fetcher no longer reads fetches with MemoryRecords: see kafka_records.py"
        )
    fetcher.MemoryRecords = MemoryRecordsReadingAnyHeaderName
