"""The hand-written SlotBatch encoding: fastavro's bytes, with each non-empty `fields` map as
one block carrying its byte size; every Avro reader decodes it to the value."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from aop.log.avro import AvroCodec
from aop.log.chain_event import RoutedEvent
from aop.log.slot_batch import SlotBatchEncoder, encode_long

CODEC = AvroCodec()
LONGS = st.integers(-(2**63), 2**63 - 1)

_events = st.builds(
    RoutedEvent,
    partition=st.integers(0, 2**31 - 1),
    slot=LONGS,
    signature=st.text(max_size=90),
    event_index=st.integers(0, 2**31 - 1),
    name=st.text(max_size=30),
    block_time=st.none() | LONGS,
    program_id=st.text(max_size=44),
    data=st.binary(max_size=300),
    fields=st.dictionaries(st.text(max_size=12), st.text(max_size=60), max_size=8),
)


def test_encode_long_matches_avro_zigzag_varints() -> None:
    assert [encode_long(n) for n in (0, -1, 1, 63, -64, 64, 8191, 16384, 2**63 - 1)] == [
        b"\x00",
        b"\x01",
        b"\x02",
        b"\x7e",
        b"\x7f",
        b"\x80\x01",
        b"\xfe\x7f",
        b"\x80\x80\x02",
        b"\xfe\xff\xff\xff\xff\xff\xff\xff\xff\x01",
    ]


def test_slot_batch_encoder_uses_the_fast_path_for_the_shipped_schemas() -> None:
    assert SlotBatchEncoder(CODEC, topic="t").fast is True


@settings(max_examples=150, deadline=None)
@given(
    partition=st.integers(0, 2**31 - 1),
    first=LONGS,
    last=LONGS,
    events=st.lists(_events, max_size=5),
    cursor=st.none() | st.text(max_size=90),
    block_time=st.none() | LONGS,
)
def test_slot_batch_encoder_bytes_equal_the_codec_and_decode_back(
    partition: int,
    first: int,
    last: int,
    events: list[RoutedEvent],
    cursor: str | None,
    block_time: int | None,
) -> None:
    """Any SlotBatch value: same bytes as AvroCodec.encode, and it decodes to the value."""
    value = {
        "partition": partition,
        "first_slot": first,
        "last_slot": last,
        "events": [e.record for e in events],
        "cursor": cursor,
        "last_block_time": block_time,
    }
    encoded = SlotBatchEncoder(CODEC, topic="t").encode(
        partition, first, last, events, cursor, block_time
    )
    assert encoded == expected_bytes(partition, first, last, events, cursor, block_time)
    assert CODEC.decode_as("SlotBatch", encoded) == value


def test_a_fields_map_is_one_block_with_its_byte_size() -> None:
    """Spelled out: count -2 (zigzag 3), size 9 (zigzag 18), then the entries; an empty map
    is one 0."""
    event = RoutedEvent(0, 1, "s", 0, "N", None, "P", b"", {"k": "v", "ab": "c"})
    body = SlotBatchEncoder(CODEC, topic="t").encode(0, 1, 1, [event], None)[10:]
    tail = b"\x03\x12" + b"\x02k\x02v" + b"\x04ab\x02c" + b"\x00"
    # data b"", map, end of events, cursor null, last_block_time null
    assert body.endswith(b"\x00" + tail + b"\x00\x00\x00")
    empty = SlotBatchEncoder(CODEC, topic="t").encode(0, 1, 1, [event._replace(fields={})], None)
    # data b"", empty map, events end, cursor null, last_block_time null
    assert empty[10:].endswith(b"\x00\x00\x00\x00\x00")


def expected_bytes(
    partition: int,
    first: int,
    last: int,
    events: list[RoutedEvent],
    cursor: str | None,
    block_time: int | None,
) -> bytes:
    """The codec's bytes, each event's non-empty map re-written as a sized block (a second,
    simple implementation: cut out of the codec's own encoding of the event)."""
    empty = {"partition": 0, "first_slot": 0, "last_slot": 0, "events": [], "cursor": None}
    header = CODEC.encode("SlotBatch", empty)[:10]
    out = [encode_long(partition), encode_long(first), encode_long(last)]
    if events:
        out.append(encode_long(len(events)))
    for event in events:
        record = event.record
        full = CODEC.encode("ChainEvent", record)[10:]
        count = len(record["fields"])
        if count:
            before_map = CODEC.encode("ChainEvent", {**record, "fields": {}})[10:-1]
            block = full[len(before_map) + len(encode_long(count)) : -1]
            full = before_map + encode_long(-count) + encode_long(len(block)) + block + b"\x00"
        out.append(full)
    out.append(b"\x00")
    if cursor is None:
        out.append(b"\x00")
    else:
        out.append(b"\x02" + encode_long(len(cursor.encode())) + cursor.encode())
    out.append(b"\x00" if block_time is None else b"\x02" + encode_long(block_time))
    return header + b"".join(out)
