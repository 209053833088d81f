"""Fetched records with header names that are not UTF-8 (services/adapters/kafka_records.py).

The record batches here are built as a producer builds them (aiokafka's Python builder,
which encodes whatever `str` it is given), then read as the consumer's fetcher reads them.
"""

from __future__ import annotations

import struct
from typing import Any

import aiokafka.consumer.fetcher as fetcher
import pytest
from aiokafka.record.default_records import DefaultRecordBatch, _DefaultRecordBatchBuilderPy
from aiokafka.record.memory_records import MemoryRecords

from services.adapters.kafka_records import (
    MemoryRecordsReadingAnyHeaderName,
    read_any_header_names,
    records_of,
)

NOT_UTF8 = b"\xff\xfe-name"
GZIP = DefaultRecordBatch.CODEC_GZIP


class _Undecodable(str):
    """A header name whose bytes on the wire are not UTF-8."""

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return NOT_UTF8


def _batch(base_offset: int, records: list[dict[str, Any]], compression: int = 0) -> bytes:
    builder = _DefaultRecordBatchBuilderPy(2, compression, 0, -1, -1, -1, 1 << 20)
    for delta, record in enumerate(records):
        builder.append(delta, record["timestamp"], record["key"], record["value"], record["headers"])
    data = bytearray(builder.build())
    struct.pack_into(">q", data, 0, base_offset)  # the broker's; outside the CRC
    return bytes(data)


def _records(count: int, bad: set[int]) -> list[dict[str, Any]]:
    return [
        {
            "timestamp": 1_760_000_000_000 + n,
            "key": f"key-{n}".encode(),
            "value": None if n == 1 else f'{{"n": {n}}}'.encode(),  # a tombstone too
            "headers": [(_Undecodable("x"), b"v"), ("traceparent", None)] if n in bad else [("h", b"%d" % n)],
        }
        for n in range(count)
    ]


def _read(memory_records: Any) -> list[Any]:
    out = []
    while memory_records.has_next():
        batch = memory_records.next_batch()
        assert batch.validate_crc(), "the batch's header is aiokafka's"
        out.extend(batch)
    return out


def _fields(record: Any) -> tuple[Any, ...]:
    return (
        record.offset,
        record.timestamp,
        record.timestamp_type,
        record.key,
        record.value,
        list(record.headers),
    )


def _expected(base: int, records: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (
            base + n,
            r["timestamp"],
            0,
            r["key"],
            r["value"],
            [(name if type(name) is str else "\\xff\\xfe-name", value) for name, value in r["headers"]],
        )
        for n, r in enumerate(records)
    ]


@pytest.mark.parametrize("compression", [0, GZIP], ids=["plain", "gzip"])
@pytest.mark.parametrize("bad", [{0}, {3}, {6}, {2, 5}], ids=["first", "middle", "last", "two"])
def test_every_record_is_read_whatever_its_header_names(compression: int, bad: set[int]) -> None:
    first, second = _records(7, bad), _records(4, set())
    data = _batch(100, first, compression) + _batch(107, second, compression)
    with pytest.raises(UnicodeDecodeError):
        _read(MemoryRecords(data))  # aiokafka's own reader: the reason for all this

    read = _read(MemoryRecordsReadingAnyHeaderName(data))

    assert [_fields(r) for r in read] == _expected(100, first) + _expected(107, second)


@pytest.mark.parametrize("compression", [0, GZIP], ids=["plain", "gzip"])
def test_the_reader_of_a_refused_batch_reads_any_batch_as_aiokafka_does(compression: int) -> None:
    clean = _records(5, set())
    data = _batch(42, clean, compression)

    ours = list(records_of(memoryview(data)))

    assert [_fields(r) for r in ours] == [_fields(r) for r in _read(MemoryRecords(data))]
    assert [_fields(r) for r in ours] == _expected(42, clean)


def test_batches_without_such_names_are_aiokafkas_own() -> None:
    data = _batch(0, _records(3, set())) + _batch(3, _records(2, set()))
    records = MemoryRecordsReadingAnyHeaderName(data)

    assert records.size_in_bytes() == len(data)
    batch = records.next_batch()
    assert (batch.base_offset, batch.next_offset, batch.is_control_batch) == (0, 3, False)
    assert [r.offset for r in batch] == [0, 1, 2]
    assert records.has_next()
    assert [r.offset for r in records.next_batch()] == [3, 4]
    assert not records.has_next()
    assert records.next_batch() is None


def test_the_reader_is_installed_into_aiokafkas_fetcher_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetcher, "MemoryRecords", MemoryRecords)

    read_any_header_names()
    read_any_header_names()

    assert fetcher.MemoryRecords is MemoryRecordsReadingAnyHeaderName


def test_an_aiokafka_that_reads_fetches_otherwise_is_noticed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetcher, "MemoryRecords", object)

    with pytest.raises(RuntimeError, match=r"kafka_records\.py"):
        read_any_header_names()
