"""The log codec: both framings round-trip; garbage is refused with a reason."""

from __future__ import annotations

import json
import struct
from typing import Any

import fastavro
import pytest
from fastavro.schema import to_parsing_canonical_form
from hypothesis import given, settings
from hypothesis import strategies as st

from aop.log.avro import (
    RECORD_TYPES,
    SCHEMA_DIR,
    AvroCodec,
    AvroDecodeError,
    SchemaRegistry,
    _schemas,
)

U64 = st.integers(min_value=0, max_value=2**63 - 1)
chain_events = st.fixed_dictionaries(
    {
        "id": st.text(max_size=100),
        "signature": st.text(max_size=90),
        "slot": U64,
        "block_time": st.none() | U64,
        "event_index": st.integers(min_value=0, max_value=2**31 - 1),
        "program_id": st.text(max_size=44),
        "name": st.text(max_size=40),
        "data": st.binary(max_size=200),
        "fields": st.dictionaries(st.text(max_size=20), st.text(max_size=50), max_size=8),
    }
)
slot_batches = st.fixed_dictionaries(
    {
        "partition": st.integers(min_value=0, max_value=1023),
        "first_slot": U64,
        "last_slot": U64,
        "events": st.lists(chain_events, max_size=5),
        "cursor": st.none() | st.text(max_size=90),
        "last_block_time": st.none() | st.integers(min_value=-(2**63), max_value=2**63 - 1),
    }
)


@given(slot_batches)
def test_slot_batch_round_trips_in_single_object_encoding(batch: dict[str, Any]) -> None:
    codec = AvroCodec()
    data = codec.encode("SlotBatch", batch)
    assert data[:2] == b"\xc3\x01"
    assert codec.decode(data) == ("SlotBatch", batch)


def test_single_object_header_carries_the_crc64_avro_fingerprint_of_the_schema() -> None:
    """The fingerprint is recomputed here from the Avro spec's Rabin CRC-64 definition."""

    def crc64_avro(data: bytes) -> bytes:
        empty = 0xC15D213AA4D7A795
        table = []
        for i in range(256):
            fp = i
            for _ in range(8):
                fp = (fp >> 1) ^ (empty & -(fp & 1))
            table.append(fp)
        result = empty
        for byte in data:
            result = (result >> 8) ^ table[(result ^ byte) & 0xFF]
        return result.to_bytes(8, "little")

    canonical = (
        '{"name":"aop.v1.InputRange","type":"record","fields":[{"name":"partition","type":"int"},'
        '{"name":"first_offset","type":"long"},{"name":"last_offset","type":"long"}]}'
    )
    data = AvroCodec().encode("InputRange", {"partition": 1, "first_offset": 4, "last_offset": 5})
    assert data[2:10] == crc64_avro(canonical.encode())


class InMemoryRegistry(SchemaRegistry):
    """A registry double keeping schemas in a dict (the wire format is what is under test)."""

    def __init__(self) -> None:
        self.subjects: dict[str, int] = {}
        self.schemas: dict[int, str] = {}

    def register(self, subject: str, schema: str) -> int:
        schema_id = self.subjects.setdefault(subject, len(self.subjects) + 1)
        self.schemas[schema_id] = schema
        return schema_id

    def schema_by_id(self, schema_id: int) -> str:
        return self.schemas[schema_id]


def test_confluent_framing_round_trips_and_plain_reader_names_the_missing_registry() -> None:
    registry = InMemoryRegistry()
    writer = AvroCodec(registry)
    value = {"partition": 3, "first_offset": 10, "last_offset": 20}
    data = writer.encode("InputRange", value, topic="aop.epoch.roots")
    assert data[:5] == struct.pack(">bI", 0, 1)
    assert registry.subjects == {"aop.epoch.roots-aop.v1.InputRange": 1}
    assert AvroCodec(registry).decode(data) == ("InputRange", value)
    with pytest.raises(AvroDecodeError, match="no AOP_SCHEMA_REGISTRY_URL is set"):
        AvroCodec().decode(data)


@pytest.mark.parametrize("record_type", RECORD_TYPES)
def test_each_registered_schema_stands_alone(record_type: str) -> None:
    """A registry knows nothing of our other schema files: what we register for a type must
    parse on its own (names used from other files defined inline at their first use)."""
    registry = InMemoryRegistry()
    AvroCodec(registry)._confluent_id(registry, _schemas()[record_type], "t")
    (text,) = registry.schemas.values()
    parsed = fastavro.parse_schema(json.loads(text))  # a fresh parser: no named types known
    assert to_parsing_canonical_form(parsed) == text


@settings(max_examples=20)
@given(slot_batches)
def test_a_slot_batch_in_confluent_framing_reads_back_through_the_registry_alone(
    batch: dict[str, Any],
) -> None:
    """SlotBatch uses ChainEvent, defined in another file: a reader that only has the
    registry's text for the id still decodes it."""
    registry = InMemoryRegistry()
    data = AvroCodec(registry).encode("SlotBatch", batch, topic="aop.chain.events")
    assert data[0] == 0
    assert AvroCodec(registry).decode(data) == ("SlotBatch", batch)


def test_reader_with_registry_still_reads_single_object_records() -> None:
    value = {"partition": 0, "first_offset": 1, "last_offset": 2}
    data = AvroCodec().encode("InputRange", value)
    assert AvroCodec(InMemoryRegistry()).decode(data) == ("InputRange", value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not an Avro record of this pipeline"),
        (b"{json}", "not an Avro record of this pipeline"),
        (b"\xc3\x01" + b"\x00" * 8 + b"\x02", "unknown schema fingerprint 0000000000000000"),
    ],
)
def test_garbage_is_refused_with_a_reason(data: bytes, message: str) -> None:
    with pytest.raises(AvroDecodeError, match=message):
        AvroCodec().decode(data)


def test_truncated_body_is_refused() -> None:
    data = AvroCodec().encode(
        "InputRange", {"partition": 1, "first_offset": 2**40, "last_offset": 3}
    )
    with pytest.raises(AvroDecodeError, match="InputRange body does not parse"):
        AvroCodec().decode(data[:12])


def test_decode_as_insists_on_the_record_type() -> None:
    data = AvroCodec().encode("InputRange", {"partition": 1, "first_offset": 2, "last_offset": 3})
    with pytest.raises(AvroDecodeError, match=r"expected a SlotBatch record \(got InputRange\)"):
        AvroCodec().decode_as("SlotBatch", data)


def test_every_schema_file_is_a_registered_record_type() -> None:
    names = {
        json.loads(p.read_text())["name"] for p in SCHEMA_DIR.iterdir() if p.name.endswith(".avsc")
    }
    from aop.log.avro import RECORD_TYPES

    assert names == set(RECORD_TYPES)
