"""The hand-written SlotBatch decoder keeps exactly what fastavro decodes for the fold."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aop.log.avro import AvroCodec, AvroDecodeError
from aop.log.chain_event import RoutedEvent
from aop.log.slot_batch import (
    SlotBatchDecoder,
    SlotBatchEncoder,
    decode_slot_batch_body,
    encode_long,
    fold_view,
)

CODEC = AvroCodec()

texts = st.text(max_size=80)
longs = st.integers(min_value=-(2**63), max_value=2**63 - 1)
events = st.fixed_dictionaries(
    {
        "id": texts,
        "signature": texts,
        "slot": longs,
        "block_time": st.none() | longs,
        "event_index": st.integers(min_value=-(2**31), max_value=2**31 - 1),
        "program_id": texts,
        "name": texts,
        "data": st.binary(max_size=300),
        "fields": st.dictionaries(texts, st.text(max_size=200), max_size=8),
    }
)
batches = st.fixed_dictionaries(
    {
        "partition": st.integers(min_value=-(2**31), max_value=2**31 - 1),
        "first_slot": longs,
        "last_slot": longs,
        "events": st.lists(events, max_size=20),
        "cursor": st.none() | texts,
    }
)


@given(batches)
def test_decode_equals_the_fastavro_view_for_any_batch(batch: dict[str, Any]) -> None:
    """Every value the schema allows decodes to fastavro's id/slot/program_id/data."""
    framed = CODEC.encode("SlotBatch", batch)
    assert decode_slot_batch_body(framed, 10) == fold_view(CODEC.decode_as("SlotBatch", framed))
    assert SlotBatchDecoder(CODEC).decode(framed) == fold_view(batch)


def test_decoder_checks_itself_and_takes_the_fast_path() -> None:
    """The self-check at construction passes, so the fast path is on."""
    assert SlotBatchDecoder(CODEC).fast is True


def test_decode_reads_blocked_arrays_and_maps_with_byte_sizes() -> None:
    """Negative block counts (count, then the block's byte size) are legal Avro: both the
    events array and a fields map written that way decode."""
    event = {
        "id": "s:0",
        "signature": "s",
        "slot": 5,
        "block_time": None,
        "event_index": 0,
        "program_id": "P",
        "name": "N",
        "data": b"\x01\x02",
        "fields": {},
    }
    plain = CODEC.encode("ChainEvent", event)[10:]
    pair = b"\x02k\x02v"  # key "k", value "v"
    with_map = plain[:-1] + encode_long(-1) + encode_long(len(pair)) + pair + b"\x00"
    body = (
        encode_long(3)
        + encode_long(1)
        + encode_long(9)
        + encode_long(-2)
        + encode_long(len(plain) + len(with_map))
        + plain
        + with_map
        + b"\x00"  # end of events
        + b"\x00"  # cursor null
        + b"\x02"  # last_block_time: the long branch
        + encode_long(1_796_666_400)
    )
    assert decode_slot_batch_body(body) == {
        "partition": 3,
        "first_slot": 1,
        "last_slot": 9,
        "events": [
            {"id": "s:0", "slot": 5, "program_id": "P", "data": b"\x01\x02"},
            {"id": "s:0", "slot": 5, "program_id": "P", "data": b"\x01\x02"},
        ],
        "last_block_time": 1_796_666_400,
    }


def test_decode_refuses_other_records_and_garbage() -> None:
    """Not a SlotBatch: AvroDecodeError naming what it is; a truncated body falls back to
    fastavro, which names the problem."""
    decoder = SlotBatchDecoder(CODEC)
    dead = CODEC.encode(
        "DeadLetter",
        {"stage": "s", "reason": "r", "detail": "d", "source": "x", "payload": b"", "at_ms": 1},
    )
    with pytest.raises(AvroDecodeError, match=r"expected a SlotBatch record \(got DeadLetter\)"):
        decoder.decode(dead)
    with pytest.raises(AvroDecodeError, match="not an Avro record of this pipeline"):
        decoder.decode(b"garbage!")
    batch = CODEC.encode(
        "SlotBatch",
        {"partition": 1, "first_slot": 2, "last_slot": 3, "events": [], "cursor": "abc"},
    )
    with pytest.raises(AvroDecodeError, match="SlotBatch body does not parse"):
        decoder.decode(batch[:-2])


routed_events = st.builds(
    RoutedEvent,
    partition=st.just(0),
    slot=longs,
    signature=texts,
    event_index=st.integers(min_value=0, max_value=2**31 - 1),
    name=texts,
    block_time=st.none() | longs,
    program_id=texts,
    data=st.binary(max_size=300),
    fields=st.dictionaries(texts, st.text(max_size=400), max_size=12),
)


@given(st.lists(routed_events, max_size=12), st.none() | texts)
def test_decode_of_the_listeners_records_equals_the_fastavro_view(
    events: list[RoutedEvent], cursor: str | None
) -> None:
    """The listener writes `fields` as sized blocks: the fast path jumps over them and keeps
    what fastavro decodes (block sizes of 1, 2 and more varint bytes all occur)."""
    framed = SlotBatchEncoder(CODEC, topic="t").encode(0, 1, 2, events, cursor)
    assert decode_slot_batch_body(framed, 10) == fold_view(CODEC.decode_as("SlotBatch", framed))


def test_decode_jumps_over_map_blocks_of_every_size_class() -> None:
    """Block sizes under 64 bytes, under 8,192 and above (1, 2 and 3 varint bytes)."""
    sizes = {"small": 10, "medium": 3_000, "large": 20_000}
    events = [
        RoutedEvent(0, 7, f"s{i}", i, "N", None, "P", bytes([i]), {"k": "x" * n})
        for i, n in enumerate(sizes.values())
    ]
    framed = SlotBatchEncoder(CODEC, topic="t").encode(0, 7, 7, events, None)
    blocks = [2 + len(encode_long(n)) + n for n in sizes.values()]  # "k", the text's length, it
    assert [len(encode_long(b)) for b in blocks] == [1, 2, 3]
    assert decode_slot_batch_body(framed, 10)["events"] == [
        {"id": f"s{i}:{i}", "slot": 7, "program_id": "P", "data": bytes([i])} for i in range(3)
    ]
