"""core.events: the §4 log line, every event's round trip, and typed decode errors."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from typing import get_type_hints

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aop.core.errors import BorshEncodeError, EventDecodeError
from aop.core.events import (
    EVENT_TYPES,
    I64,
    U16,
    U64,
    Bool,
    ChannelEmergencyUnstaked,
    ChannelStaked,
    ChannelUnstaked,
    CumulativeRewardsClaimed,
    Event,
    ProtocolPaused,
    PubkeyBytes,
    UnknownEvent,
    decode_event,
)
from tests.unit.core.strategies import i64s, pubkeys, u16s, u64s
from tests.unit.core.vectors import (
    CHANNEL_CONFIG_HEX,
    CLAIM_LOG_LINE,
    EVENT_DISCRIMINATORS,
    WALLET0_HEX,
)

CLAIM_PAYLOAD = base64.b64decode(CLAIM_LOG_LINE.removeprefix("Program data: "))


def test_reference_claim_log_line_decodes_to_the_example_claim() -> None:
    event = decode_event(CLAIM_PAYLOAD)
    assert event == CumulativeRewardsClaimed(
        channel=bytes.fromhex(CHANNEL_CONFIG_HEX),
        claimer=bytes.fromhex(WALLET0_HEX),
        user_amount=1_000_000_000,
        creator_amount=0,
        cumulative_total=1_000_000_000,
        root_seq=1,
    )
    assert len(CLAIM_PAYLOAD) == CumulativeRewardsClaimed.size() == 104
    assert event.encode() == CLAIM_PAYLOAD


@pytest.mark.parametrize("name", sorted(EVENT_TYPES))
def test_event_discriminator_is_sha256_of_event_name(name: str) -> None:
    expected = hashlib.sha256(f"event:{name}".encode()).digest()[:8]
    assert expected == EVENT_TYPES[name].DISCRIMINATOR
    if name in EVENT_DISCRIMINATORS:
        assert expected.hex() == EVENT_DISCRIMINATORS[name]


def test_staking_events_have_events_rs_field_order() -> None:
    assert [f.name for f in dataclasses.fields(ChannelStaked)] == [
        "user", "channel", "amount", "nft_mint", "lock_duration", "boost_bps", "timestamp",
    ]  # fmt: skip
    assert [f.name for f in dataclasses.fields(ChannelUnstaked)] == [
        "user", "channel", "amount", "nft_mint", "timestamp",
    ]  # fmt: skip
    assert [f.name for f in dataclasses.fields(ChannelEmergencyUnstaked)] == [
        "user", "channel", "staked_amount", "penalty_amount", "returned_amount", "nft_mint",
        "remaining_lock_slots", "timestamp",
    ]  # fmt: skip


def test_channel_staked_encodes_borsh_fields_in_declaration_order() -> None:
    event = ChannelStaked(b"\x01" * 32, b"\x02" * 32, 5, b"\x03" * 32, 6, 7, -8)
    assert event.encode() == (
        hashlib.sha256(b"event:ChannelStaked").digest()[:8]
        + b"\x01" * 32 + b"\x02" * 32 + (5).to_bytes(8, "little") + b"\x03" * 32
        + (6).to_bytes(8, "little") + (7).to_bytes(8, "little")
        + (-8).to_bytes(8, "little", signed=True)
    )  # fmt: skip


_BY_TYPE: list[tuple[object, st.SearchStrategy[object]]] = [
    (PubkeyBytes, pubkeys),
    (U64, u64s),
    (I64, i64s),
    (U16, u16s),
    (Bool, st.booleans()),
]


@st.composite
def events(draw: st.DrawFn) -> Event:
    """Any known event, each field drawn from its annotated Borsh type."""
    cls = draw(st.sampled_from(sorted(EVENT_TYPES.values(), key=lambda c: c.NAME)))
    hints = get_type_hints(cls, include_extras=True)
    values = []
    for field in dataclasses.fields(cls):
        values.append(draw(next(s for t, s in _BY_TYPE if hints[field.name] == t)))
    return cls(*values)


@given(events())
def test_decode_event_of_encode_round_trips(event: Event) -> None:
    payload = event.encode()
    assert len(payload) == type(event).size()
    assert decode_event(payload) == event
    assert type(event).decode(payload) == event


@given(
    st.binary(min_size=8, max_size=8).filter(
        lambda d: d not in {c.DISCRIMINATOR for c in EVENT_TYPES.values()}
    ),
    st.binary(max_size=50),
)
def test_unknown_discriminator_gives_unknown_event(disc: bytes, body: bytes) -> None:
    event = decode_event(disc + body)
    assert event == UnknownEvent(disc, body)
    assert isinstance(event, UnknownEvent) and event.encode() == disc + body


def test_payload_shorter_than_discriminator_raises() -> None:
    with pytest.raises(EventDecodeError, match=r"8-byte discriminator \(got 5 bytes\)"):
        decode_event(b"\x00" * 5)


def test_short_payload_of_known_event_raises() -> None:
    with pytest.raises(
        EventDecodeError,
        match=r"CumulativeRewardsClaimed: payload must be 104 bytes \(got 103: short\)",
    ):
        decode_event(CLAIM_PAYLOAD[:-1])


def test_trailing_bytes_after_known_event_raise() -> None:
    with pytest.raises(
        EventDecodeError,
        match=r"CumulativeRewardsClaimed: payload must be 104 bytes \(got 106: trailing bytes\)",
    ):
        decode_event(CLAIM_PAYLOAD + b"\x00\x00")


def test_bool_byte_other_than_0_or_1_raises() -> None:
    payload = bytearray(ProtocolPaused(b"\x01" * 32, True, b"\x02" * 32, 5).encode())
    payload[8 + 32] = 2
    with pytest.raises(
        EventDecodeError, match=r"ProtocolPaused: bool field paused must be 0 or 1 \(got 2\)"
    ):
        decode_event(bytes(payload))


def test_decode_with_other_events_discriminator_raises() -> None:
    with pytest.raises(EventDecodeError, match=r"ChannelStaked: discriminator must be"):
        ChannelStaked.decode(CLAIM_PAYLOAD)


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (
            ChannelUnstaked(b"\x01" * 31, b"\x02" * 32, 1, b"\x03" * 32, 0),
            r"ChannelUnstaked\.user must be 32 bytes",
        ),
        (
            ChannelUnstaked(b"\x01" * 32, b"\x02" * 32, -1, b"\x03" * 32, 0),
            r"ChannelUnstaked\.amount must be an int in 0\.\.18446744073709551615 \(got -1\)",
        ),
        (
            ProtocolPaused(b"\x01" * 32, 1, b"\x02" * 32, 0),
            r"ProtocolPaused\.paused must be a bool \(got 1\)",
        ),  # type: ignore[arg-type]
    ],
)
def test_encode_rejects_field_outside_its_type(event: Event, message: str) -> None:
    with pytest.raises(BorshEncodeError, match=message):
        event.encode()
