"""core.accounts: layouts checked at the reference's byte offsets, round trips, errors."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aop.core.accounts import ChannelConfigV2, ChannelSlot, ChannelState, ProtocolState, RootEntry
from aop.core.errors import AccountDecodeError, BorshEncodeError, InvalidIntegerError
from tests.unit.core.strategies import pubkeys, u8s, u16s, u64s
from tests.unit.core.vectors import ACCOUNT_DISCRIMINATORS

DISC = {name: bytes.fromhex(hex_) for name, hex_ in ACCOUNT_DISCRIMINATORS.items()}


def key(n: int) -> bytes:
    return bytes([n]) * 32


def test_protocol_state_genesis_layout_decodes_at_reference_offsets() -> None:
    data = bytearray(141)
    data[0:8] = DISC["ProtocolState"]
    data[8], data[9] = 1, 2
    data[10:42], data[42:74], data[74:106], data[106:138] = key(1), key(2), key(3), key(4)
    data[138], data[139], data[140] = 1, 0, 253
    state = ProtocolState.decode(bytes(data))
    assert state == ProtocolState(
        is_initialized=True, version=2, admin=key(1), publisher=key(2), treasury=key(3),
        mint=key(4), paused=True, require_receipt=False, bump=253, oracle_authority=None,
    )  # fmt: skip
    assert state.encode() == bytes(data)


def test_protocol_state_head_layout_has_oracle_authority_after_treasury() -> None:
    data = bytearray(173)
    data[0:8] = DISC["ProtocolState"]
    data[8] = 1
    data[10:42], data[42:74], data[74:106] = key(1), key(2), key(3)
    data[106:138], data[138:170] = key(9), key(4)
    data[170], data[172] = 0, 254
    state = ProtocolState.decode(bytes(data))
    assert (state.oracle_authority, state.mint, state.paused, state.bump) == (
        key(9),
        key(4),
        False,
        254,
    )
    assert state.encode() == bytes(data)


def _root_entry_bytes(seq: int, root: bytes, dataset_hash: bytes, slot: int) -> bytes:
    return struct.pack("<Q32s32sQ", seq, root, dataset_hash, slot)


def test_channel_config_v2_decodes_at_reference_offsets() -> None:
    data = bytearray(482)
    data[0:8] = DISC["ChannelConfigV2"]
    data[8], data[9] = 1, 255
    data[10:42], data[42:74], data[74:106] = key(1), key(2), key(3)
    data[106:114] = (7).to_bytes(8, "little")
    data[114:122] = (900).to_bytes(8, "little")
    data[122:154] = key(4)
    data[154:156] = (250).to_bytes(2, "little")
    for k, seq in enumerate((4, 5, 6, 7)):
        data[162 + 80 * k : 242 + 80 * k] = _root_entry_bytes(
            seq, key(10 + k), key(20 + k), 1000 + k
        )
    cfg = ChannelConfigV2.decode(bytes(data))
    assert (cfg.mint, cfg.subject, cfg.authority) == (key(1), key(2), key(3))
    assert (cfg.latest_root_seq, cfg.cutover_epoch) == (7, 900)
    assert (cfg.creator_wallet, cfg.creator_fee_bps) == (key(4), 250)
    assert cfg.roots[2] == RootEntry(6, key(12), key(22), 1002)
    assert cfg.root_entry(7) == RootEntry(7, key(13), key(23), 1003)
    assert cfg.root_entry(3) is None
    assert cfg.encode() == bytes(data)


def test_channel_config_v2_premigration_layout_has_roots_at_122() -> None:
    data = bytearray(442)
    data[0:8] = DISC["ChannelConfigV2"]
    data[106:114] = (1).to_bytes(8, "little")
    data[122:202] = _root_entry_bytes(4, key(5), key(6), 77)
    cfg = ChannelConfigV2.decode(bytes(data))
    assert (cfg.creator_wallet, cfg.creator_fee_bps) == (None, None)
    assert cfg.roots[0] == RootEntry(4, key(5), key(6), 77)
    assert cfg.encode() == bytes(data)


def test_channel_state_decodes_at_repr_c_offsets() -> None:
    data = bytearray(1848)
    data[0:8] = DISC["ChannelState"]
    data[8], data[9] = 1, 250
    data[10:42], data[42:74] = key(1), key(2)
    data[80:88] = (23).to_bytes(8, "little")
    slot3 = 88 + 176 * 3
    data[slot3 : slot3 + 8] = (23).to_bytes(8, "little")
    data[slot3 + 8 : slot3 + 40] = key(7)
    data[slot3 + 40 : slot3 + 42] = (2).to_bytes(2, "little")
    data[slot3 + 42] = 0b0000_0101
    state = ChannelState.decode(bytes(data))
    assert (state.mint, state.streamer, state.latest_epoch) == (key(1), key(2), 23)
    slot = state.slots[3]
    assert (slot.epoch, slot.root, slot.claim_count) == (23, key(7), 2)
    assert [slot.is_claimed(i) for i in range(4)] == [True, False, True, False]
    assert state.slot_for(23) == slot and state.slot_for(13) is None
    assert state.encode() == bytes(data)


def test_channel_slot_is_claimed_rejects_index_above_1023() -> None:
    slot = ChannelSlot(0, bytes(32), 0, bytes(128))
    with pytest.raises(
        InvalidIntegerError, match=r"index must be an integer in 0\.\.1023 \(got 1024\)"
    ):
        slot.is_claimed(1024)


root_entries = st.builds(RootEntry, u64s, pubkeys, pubkeys, u64s)
protocol_states = st.builds(
    ProtocolState,
    is_initialized=st.booleans(), version=u8s, admin=pubkeys, publisher=pubkeys,
    treasury=pubkeys, mint=pubkeys, paused=st.booleans(), require_receipt=st.booleans(),
    bump=u8s, oracle_authority=st.none() | pubkeys,
)  # fmt: skip
channel_configs = st.builds(
    ChannelConfigV2,
    version=u8s, bump=u8s, mint=pubkeys, subject=pubkeys, authority=pubkeys,
    latest_root_seq=u64s, cutover_epoch=u64s, creator_wallet=st.none(), creator_fee_bps=st.none(),
    roots=st.tuples(root_entries, root_entries, root_entries, root_entries),
) | st.builds(
    ChannelConfigV2,
    version=u8s, bump=u8s, mint=pubkeys, subject=pubkeys, authority=pubkeys,
    latest_root_seq=u64s, cutover_epoch=u64s, creator_wallet=pubkeys, creator_fee_bps=u16s,
    roots=st.tuples(root_entries, root_entries, root_entries, root_entries),
)  # fmt: skip
channel_slots = st.builds(ChannelSlot, u64s, pubkeys, u16s, st.binary(min_size=128, max_size=128))
channel_states = st.builds(
    ChannelState, u8s, u8s, pubkeys, pubkeys, u64s,
    st.lists(channel_slots, min_size=10, max_size=10).map(tuple),
)  # fmt: skip


@given(protocol_states | channel_configs | channel_states)
def test_decode_of_encode_round_trips(
    account: ProtocolState | ChannelConfigV2 | ChannelState,
) -> None:
    data = account.encode()
    assert type(account).decode(data) == account
    assert type(account).decode(data).encode() == data


@pytest.mark.parametrize("cls", [ProtocolState, ChannelConfigV2, ChannelState])
def test_decode_rejects_other_discriminator(cls: type[ProtocolState]) -> None:
    with pytest.raises(
        AccountDecodeError,
        match=rf"{cls.__name__}: discriminator must be [0-9a-f]{{16}} \(got 0000000000000000\)",
    ):
        cls.decode(bytes(200))


@pytest.mark.parametrize(
    ("cls", "lengths"),
    [(ProtocolState, "141 or 173"), (ChannelConfigV2, "482 or 442"), (ChannelState, "1848")],
)
def test_decode_rejects_other_length(cls: type[ProtocolState], lengths: str) -> None:
    data = DISC[cls.__name__] + bytes(100)
    with pytest.raises(
        AccountDecodeError, match=rf"{cls.__name__}: data must be {lengths} bytes \(got 108\)"
    ):
        cls.decode(data)


def test_protocol_state_decode_rejects_bool_byte_2() -> None:
    data = bytearray(141)
    data[0:8] = DISC["ProtocolState"]
    data[8] = 2
    with pytest.raises(
        AccountDecodeError, match=r"ProtocolState: bool at offset 8 must be 0 or 1 \(got 2\)"
    ):
        ProtocolState.decode(bytes(data))


def test_channel_config_encode_rejects_one_creator_field_without_the_other() -> None:
    cfg = ChannelConfigV2(
        1, 1, key(1), key(2), key(3), 0, 0, key(4), None, (RootEntry(0, key(0), key(0), 0),) * 4
    )
    with pytest.raises(
        BorshEncodeError, match=r"creator_wallet and creator_fee_bps must both be set"
    ):
        cfg.encode()


def test_channel_state_encode_rejects_wrong_slot_count() -> None:
    state = ChannelState(1, 1, key(1), key(2), 0, (ChannelSlot(0, key(0), 0, bytes(128)),) * 9)
    with pytest.raises(BorshEncodeError, match=r"slots must have 10 entries \(got 9\)"):
        state.encode()
