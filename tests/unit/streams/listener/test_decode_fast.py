"""TxDecoder's struct fast path: the same fields, partition and errors as `core.events`."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st
from solders.pubkey import Pubkey

from aop.core.errors import EventDecodeError
from aop.core.events import Event, ProtocolPaused, decode_event
from aop.core.routing import PROTOCOL_PARTITION, partition_for_channel
from aop.streams.listener.decode import TxDecoder
from aop.streams.listener.model import TxLogs
from tests.unit.core.test_events import events
from tests.unit.streams.listener.conftest import PROGRAM, data_line, program_logs

SIG = "3yZe7d9DkE4ZqpaSpA8kD4F9oYwJ1bX5nQv2uC6hTg8rLmN1sW7xK2jH5fR9tB3cV6yU8iO4pA1eD7gF2hJ5kL"
PARTITIONS = 12


def _tx(payloads: list[bytes]) -> TxLogs:
    return TxLogs(
        SIG, 77, 1_700_000_000, None, tuple(program_logs([data_line(p) for p in payloads]))
    )


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes):
        return str(Pubkey.from_bytes(value))
    return str(value)


def _expected(event: Event) -> tuple[str, dict[str, str], int]:
    """Name, text fields and partition, computed from the event object (the oracle)."""
    fields = {f.name: _text(getattr(event, f.name)) for f in dataclasses.fields(event)}  # type: ignore[arg-type]
    channel = getattr(event, "channel", None) or getattr(event, "channel_config", None)
    partition = (
        PROTOCOL_PARTITION if channel is None else partition_for_channel(channel, PARTITIONS)
    )
    return event.NAME, fields, partition


@settings(max_examples=300, deadline=None)
@given(st.lists(events(), min_size=1, max_size=4))
def test_decode_fields_and_partition_equal_the_event_objects(batch: list[Event]) -> None:
    """Every known event type, any field values: the text fields `core.events` gives."""
    decoder = TxDecoder(PROGRAM, PARTITIONS)
    for _ in range(2):  # cold, then with the pubkey and partition caches filled
        out = decoder.decode(_tx([e.encode() for e in batch]))
        assert out.dead == []
        got = [(e.name, e.fields, e.partition) for e in out.events]
        assert got == [_expected(e) for e in batch]
        names = [[f.name for f in dataclasses.fields(e)] for e in batch]  # type: ignore[arg-type]
        assert [list(e.fields) for e in out.events] == names  # same key order
        assert [e.data for e in out.events] == [e.encode() for e in batch]
        assert [e.event_index for e in out.events] == list(range(len(batch)))


@given(events(), st.sampled_from([-1, 1]))
def test_decode_wrong_length_is_dead_with_decode_events_message(event: Event, delta: int) -> None:
    """One byte short or one trailing byte: undecodable, with `decode_event`'s own text."""
    payload = event.encode()
    payload = payload[:-1] if delta < 0 else payload + b"\x00"
    try:
        decode_event(payload)
    except EventDecodeError as exc:
        message = str(exc)
    out = TxDecoder(PROGRAM, PARTITIONS).decode(_tx([payload]))
    assert out.events == []
    assert [(d.reason, d.detail, d.payload) for d in out.dead] == [
        ("undecodable_event", f"slot 77: {message}", payload)
    ]


def test_decode_bool_byte_other_than_zero_or_one_is_dead() -> None:
    paused = ProtocolPaused(bytes(32), True, bytes(32), 5).encode()
    garbled = paused[:40] + b"\x02" + paused[41:]
    out = TxDecoder(PROGRAM, PARTITIONS).decode(_tx([garbled]))
    assert out.events == []
    assert [d.reason for d in out.dead] == ["undecodable_event"]
    assert "bool field paused must be 0 or 1 (got 2)" in out.dead[0].detail
