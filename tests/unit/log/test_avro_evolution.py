"""Records written before a schema gained a field still decode (Avro schema resolution).

The vectors are what the pipeline at e9d8331 (before `last_block_time` and `closed_at_time`)
wrote: their headers carry the old fingerprints.
"""

from __future__ import annotations

import io
import json
import struct

import fastavro

from aop.log.avro import PREVIOUS_VERSIONS, SCHEMA_DIR, AvroCodec
from aop.log.slot_batch import SlotBatchDecoder
from tests.unit.log.test_avro import InMemoryRegistry

#: SlotBatch {partition 3, slots 5..9, one event, cursor "sig"} as e9d8331 encoded it.
OLD_SLOT_BATCH = bytes.fromhex(
    "c30193f9177c48a79565060a12020a7369673a30067369670e02bed0b7b10d000250024e04010202026b"
    "027600000206736967"
)
#: EpochClosed {partition 2, epoch 41, closed_at_slot 9000, source_offset 77}, likewise.
OLD_EPOCH_CLOSED = bytes.fromhex("c301793516d0826890fc0452d08c019a01")
EVENT = {
    "id": "sig:0",
    "signature": "sig",
    "slot": 7,
    "block_time": 1_796_666_399,
    "event_index": 0,
    "program_id": "P",
    "name": "N",
    "data": b"\x01\x02",
    "fields": {"k": "v"},
}


def test_an_old_slot_batch_decodes_with_no_block_time() -> None:
    codec = AvroCodec()
    assert codec.decode(OLD_SLOT_BATCH) == (
        "SlotBatch",
        {
            "partition": 3,
            "first_slot": 5,
            "last_slot": 9,
            "events": [EVENT],
            "cursor": "sig",
            "last_block_time": None,
        },
    )
    assert SlotBatchDecoder(codec).decode(OLD_SLOT_BATCH)["last_block_time"] is None


def test_an_old_epoch_closed_decodes_with_no_closing_time() -> None:
    assert AvroCodec().decode(OLD_EPOCH_CLOSED) == (
        "EpochClosed",
        {
            "partition": 2,
            "epoch": 41,
            "closed_at_slot": 9000,
            "source_offset": 77,
            "closed_at_time": None,
        },
    )


def test_new_records_carry_the_new_fingerprint_and_field() -> None:
    codec = AvroCodec()
    value = {
        "partition": 3,
        "first_slot": 5,
        "last_slot": 9,
        "events": [EVENT],
        "cursor": "sig",
        "last_block_time": 1_796_666_400,
    }
    data = codec.encode("SlotBatch", value)
    assert data[2:10] != OLD_SLOT_BATCH[2:10]
    assert codec.decode(data) == ("SlotBatch", value)
    assert SlotBatchDecoder(codec).decode(data)["last_block_time"] == 1_796_666_400


def test_an_old_schema_registered_in_a_registry_resolves_too() -> None:
    """A Confluent-framed record whose registry schema is the previous SlotBatch."""
    registry = InMemoryRegistry()
    old = (SCHEMA_DIR / "previous" / "SlotBatch.1.avsc").read_text()
    chain_event = json.loads((SCHEMA_DIR / "ChainEvent.avsc").read_text())
    standalone = json.loads(old)
    standalone["fields"][3]["type"]["items"] = chain_event
    parsed = fastavro.parse_schema(standalone)
    registry.schemas[7] = json.dumps(standalone)
    body = io.BytesIO()
    fastavro.schemaless_writer(
        body,
        parsed,
        {"partition": 1, "first_slot": 2, "last_slot": 3, "events": [], "cursor": None},
    )
    data = struct.pack(">bI", 0, 7) + body.getvalue()
    assert AvroCodec(registry).decode(data)[1]["last_block_time"] is None


def test_every_previous_version_file_exists() -> None:
    for name, versions in PREVIOUS_VERSIONS.items():
        for version in versions:
            assert (SCHEMA_DIR / "previous" / f"{name}.{version}.avsc").is_file()
