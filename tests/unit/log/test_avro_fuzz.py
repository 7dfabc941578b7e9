"""Every reader of the log refuses garbage with `AvroDecodeError` and nothing else.

The readers: `AvroCodec.decode` (the projector, settlement and tools, every record type) and
`aop.log.slot_batch.SlotBatchDecoder` (the fold's and the replay's). Inputs: random bytes,
random bytes behind a valid header, strict prefixes of valid records, and valid records with
a wrong fingerprint or magic.
A service turns `AvroDecodeError` into a DLQ record; any other exception would stop it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aop.log.avro import RECORD_TYPES, AvroCodec, AvroDecodeError
from aop.log.slot_batch import SlotBatchDecoder

CODEC = AvroCodec()
_EVENT = {
    "id": "sig:0",
    "signature": "sig",
    "slot": 7,
    "block_time": 1_700_000_000,
    "event_index": 0,
    "program_id": "GnGzNdsQMxMpJfMeqnkGPsvHm8kwaDidiKjNU2dCVZop",
    "name": "ChannelStaked",
    "data": bytes(range(120)),
    "fields": {"amount": "10", "channel": "x" * 44},
}
#: one valid value of each record type, with every kind of field filled.
SAMPLES: dict[str, dict[str, Any]] = {
    "ChainEvent": _EVENT,
    "SlotBatch": {
        "partition": 3,
        "first_slot": 5,
        "last_slot": 9,
        "events": [_EVENT, {**_EVENT, "id": "sig:1", "block_time": None, "fields": {}}],
        "cursor": "sig",
        "last_block_time": 1_796_666_399,
    },
    "InputRange": {"partition": 1, "first_offset": 2, "last_offset": 2**40},
    "EpochRoot": {
        "channel": "alpha",
        "channel_config": "C" * 44,
        "program_id": "P" * 44,
        "mint": "M" * 44,
        "format": "cumulative-v2",
        "epoch": 4,
        "root_seq": 1707,
        "root": bytes(range(32)),
        "dataset_hash": bytes(range(32, 64)),
        "leaf_count": 3,
        "total": "123456789",
        "emission": "1000000000",
        "chunk_count": 1,
        "closed_at_slot": 900,
        "input": [{"partition": 0, "first_offset": 0, "last_offset": 10}],
    },
    "AttentionRoot": {
        "channel": "lofigirl",
        "channel_config": "A" * 44,
        "program_id": "P" * 44,
        "mint": "M" * 44,
        "format": "ring-v0-legacy",
        "epoch": 1_796_666_400,
        "epoch_seconds": 3600,
        "root_seq": 3,
        "root": bytes(range(32)),
        "dataset_hash": bytes(range(32, 64)),
        "leaf_count": 2,
        "total": "1184000000000",
        "emission": "1184000000000",
        "chunk_count": 1,
        "closed_at_ms": 1_796_670_000_000,
        "unbound_users": 1,
        "input": [{"partition": 0, "first_offset": 1, "last_offset": 2}],
    },
    "LeafChunk": {
        "channel_config": "C" * 44,
        "root_seq": 1707,
        "chunk_index": 0,
        "chunk_count": 1,
        "first_leaf": 0,
        "entries": bytes(range(120)),
    },
    "EpochClosed": {
        "partition": 2,
        "epoch": 41,
        "closed_at_slot": 9000,
        "source_offset": 77,
        "closed_at_time": 1_796_666_399,
    },
    "AttentionClosed": {
        "partition": 2,
        "epoch": 1_796_662_800,
        "epoch_seconds": 3600,
        "watermark_ms": 1_796_666_400_000,
        "source_offset": 12,
    },
    "Signal": {
        "id": "irc-8f1",
        "channel": "twitch:lofigirl",
        "user": "Alice",
        "kind": "bits",
        "value": 250,
        "observed_at_ms": 1_796_650_000_123,
        "epoch": None,
    },
    "Binding": {
        "id": "bind-1",
        "user": "alice",
        "wallet": bytes(range(32)),
        "observed_at_ms": 1_796_649_000_000,
    },
    "SignalBatch": {
        "partition": 3,
        "source": "irc-collector",
        "request_id": "0f6c",
        "received_at_ms": 1_796_650_000_500,
        "watermark_ms": 1_796_649_700_500,
        "signals": [
            {
                "id": "irc-8f2",
                "channel": "twitch:lofigirl",
                "user": "bob",
                "kind": "sub",
                "value": 1,
                "observed_at_ms": 1_796_650_000_200,
                "epoch": 1_796_648_400,
            }
        ],
        "bindings": [
            {
                "id": "bind-2",
                "user": "bob",
                "wallet": bytes(32),
                "observed_at_ms": 1_796_650_000_000,
            }
        ],
    },
    "GlobalRoot": {
        "channel_config": "G" * 44,
        "program_id": "P" * 44,
        "mint": "M" * 44,
        "format": "global-v5",
        "epoch": 41,
        "root_seq": 1802,
        "root": bytes(range(32)),
        "dataset_hash": bytes(range(32, 64)),
        "leaf_count": 2,
        "total": "300",
        "base_total": "200",
        "bonus_total": "100",
        "emission": "50",
        "chunk_count": 1,
        "closed_at_slot": 9000,
        "sources": [
            {
                "part": "base_yield",
                "channel": "alpha",
                "channel_config": "C" * 44,
                "format": "cumulative-v2",
                "epoch": 41,
                "root_seq": 12,
                "partition": 2,
                "offset": 70,
                "total": "12345",
            }
        ],
        "resume": [{"partition": 2, "first_offset": 78, "last_offset": 77}],
    },
    "SettlementResult": {
        "channel": "alpha",
        "channel_config": "C" * 44,
        "root_seq": 1707,
        "root": bytes(range(32)),
        "outcome": "PUBLISHED",
        "signature": "sig",
        "slot": 44,
        "attempts": 1,
        "detail": None,
    },
    "DeadLetter": {
        "stage": "fold",
        "reason": "undecodable_batch",
        "detail": "x",
        "source": "aop.chain.events/0/1",
        "payload": b"junk",
        "at_ms": 1,
    },
}
ENCODED = {name: CODEC.encode(name, value) for name, value in SAMPLES.items()}

Reader = Callable[[bytes], object]
READERS: dict[str, Reader] = {
    "codec": CODEC.decode,
    "slot_batch": SlotBatchDecoder(CODEC).decode,
}
reader_names = pytest.mark.parametrize("reader", sorted(READERS))


def _refused_or_decoded(reader: str, data: bytes) -> None:
    """`data` decodes or raises AvroDecodeError; anything else fails the test."""
    with contextlib.suppress(AvroDecodeError):
        READERS[reader](data)


def test_samples_cover_every_record_type_and_round_trip() -> None:
    assert set(SAMPLES) == set(RECORD_TYPES)
    for name, data in ENCODED.items():
        assert CODEC.decode(data) == (name, SAMPLES[name])


@reader_names
@given(st.binary(max_size=300))
def test_random_bytes_are_refused_only_with_avro_decode_error(reader: str, data: bytes) -> None:
    _refused_or_decoded(reader, data)


@reader_names
@given(st.sampled_from(sorted(ENCODED)), st.binary(max_size=300))
def test_random_body_behind_a_valid_header_raises_only_avro_decode_error(
    reader: str, record_type: str, body: bytes
) -> None:
    _refused_or_decoded(reader, ENCODED[record_type][:10] + body)


@reader_names
@pytest.mark.parametrize("record_type", sorted(ENCODED))
def test_every_truncation_of_a_valid_record_is_refused(reader: str, record_type: str) -> None:
    """Every strict prefix (all of them, not a sample) is refused."""
    encoded = ENCODED[record_type]
    accepted = []
    for cut in range(len(encoded)):
        with contextlib.suppress(AvroDecodeError):
            READERS[reader](encoded[:cut])
            accepted.append(cut)
    assert accepted == []


@reader_names
@given(st.sampled_from(sorted(ENCODED)), st.integers(0, 9), st.integers(1, 255))
def test_valid_record_with_a_damaged_header_is_refused(
    reader: str, record_type: str, position: int, flip: int
) -> None:
    """A changed magic byte or fingerprint byte: unknown framing or unknown schema."""
    encoded = bytearray(ENCODED[record_type])
    encoded[position] ^= flip
    with pytest.raises(
        AvroDecodeError,
        match=r"not an Avro record|unknown schema fingerprint|no AOP_SCHEMA_REGISTRY_URL",
    ):
        READERS[reader](bytes(encoded))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xc3\x01" + b"\xff" * 8, "unknown schema fingerprint ffffffffffffffff"),
        (b"\xc3\x01\x00", "not an Avro record of this pipeline"),
        (b"\x00\x00\x00\x00\x07rest", r"schema id 7\) but no AOP_SCHEMA_REGISTRY_URL"),
    ],
)
@reader_names
def test_wrong_framing_names_the_problem(reader: str, data: bytes, message: str) -> None:
    with pytest.raises(AvroDecodeError, match=message):
        READERS[reader](data)


@pytest.mark.parametrize("record_type", sorted(set(RECORD_TYPES) - {"SlotBatch"}))
def test_slot_batch_reader_refuses_other_record_types(record_type: str) -> None:
    with pytest.raises(AvroDecodeError, match=f"expected a SlotBatch record \\(got {record_type}"):
        READERS["slot_batch"](ENCODED[record_type])
