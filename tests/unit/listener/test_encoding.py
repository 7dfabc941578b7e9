"""The hand-written SlotBatch encoding gives fastavro's exact bytes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from aop.avro import AvroCodec
from streams.listener.encoding import SlotBatchEncoder, encode_long
from streams.listener.model import RoutedEvent

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
)
def test_slot_batch_encoder_bytes_equal_the_codec_and_decode_back(
    partition: int, first: int, last: int, events: list[RoutedEvent], cursor: str | None
) -> None:
    """Any SlotBatch value: same bytes as AvroCodec.encode, and it decodes to the value."""
    value = {
        "partition": partition,
        "first_slot": first,
        "last_slot": last,
        "events": [e.record for e in events],
        "cursor": cursor,
    }
    encoded = SlotBatchEncoder(CODEC, topic="t").encode(partition, first, last, events, cursor)
    assert encoded == CODEC.encode("SlotBatch", value)
    assert CODEC.decode_as("SlotBatch", encoded) == value
