"""core.claims.ring_v0: the §12 ring leaf, index order, limits, instructions."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from solders.pubkey import Pubkey

from aop.core.accounts import ChannelSlot, ChannelState
from aop.core.claims import ClaimInput, TreeScope, get_claim_format
from aop.core.claims.ring_v0 import (
    MAX_CLAIMS,
    claim_channel_open_instruction,
    ring_claim_id,
    ring_leaf,
    ring_slot,
)
from aop.core.errors import ClaimIdTooLongError, InvalidIntegerError, TooManyClaimsError
from aop.core.program_ids import (
    ASSOCIATED_TOKEN_PROGRAM_ID,
    SYSTEM_PROGRAM_ID,
    TOKEN_2022_PROGRAM_ID,
)
from tests.unit.core import independent
from tests.unit.core.strategies import ring_datasets
from tests.unit.core.vectors import CCM_MINT, PROGRAM_ID, PROTOCOL_STATE, RING_LEAF, TREASURY

PROGRAM = Pubkey.from_string(PROGRAM_ID)
MINT = Pubkey.from_string(CCM_MINT)
FMT = get_claim_format("ring-v0")
SCOPE = TreeScope(PROGRAM, MINT, "twitch:unit", root_seq=0, epoch=17)


def test_ring_leaf_matches_reference_vector() -> None:
    assert ring_leaf(b"\x07" * 32, 5, 123456, "twitch:unit:alice").hex() == RING_LEAF


def test_claim_id_is_channel_colon_epoch() -> None:
    assert ring_claim_id("twitch:unit", 17) == "twitch:unit:17"


def test_claim_id_longer_than_64_bytes_raises() -> None:
    with pytest.raises(ClaimIdTooLongError, match=r"must be at most 64 bytes \(got 67\)"):
        ring_claim_id("c" * 64, 17)


def test_build_refuses_scope_whose_claim_id_is_too_long() -> None:
    scope = TreeScope(PROGRAM, MINT, "c" * 60, root_seq=0, epoch=12345)
    with pytest.raises(
        ClaimIdTooLongError, match=r"claim id 'c{60}:12345' must be at most 64 bytes"
    ):
        FMT.build(scope, [ClaimInput(b"\x01" * 32, 1)])


def test_ring_slot_is_epoch_mod_10() -> None:
    assert [ring_slot(e) for e in (0, 9, 10, 17, 12345)] == [0, 9, 0, 7, 5]


@settings(max_examples=40, deadline=None)
@given(ring_datasets())
def test_index_follows_first_seen_then_wallet_and_leaves_match_independent(
    inputs: list[ClaimInput],
) -> None:
    tree = FMT.build(SCOPE, inputs)
    expected_order = sorted(inputs, key=lambda i: (i.first_seen, i.wallet))
    assert tree.wallets == [i.wallet for i in expected_order]
    leaves = [
        independent.ring_leaf(i.wallet, n, i.amount, "twitch:unit:17")
        for n, i in enumerate(expected_order)
    ]
    assert tree.leaves == leaves
    assert tree.root == independent.root_of(leaves)
    assert tree.dataset_hash == independent.keccak(
        *(
            i.wallet + n.to_bytes(4, "little") + independent.u64(i.amount)
            for n, i in enumerate(expected_order)
        )
    )


def test_build_accepts_exactly_1024_claims() -> None:
    inputs = [ClaimInput(i.to_bytes(32, "big"), 1, i) for i in range(MAX_CLAIMS)]
    assert FMT.build(SCOPE, inputs).leaf_count == 1024


def test_build_refuses_more_than_1024_claims_naming_the_count() -> None:
    inputs = [ClaimInput(i.to_bytes(32, "big"), 1, i) for i in range(MAX_CLAIMS + 1)]
    with pytest.raises(
        TooManyClaimsError,
        match=r"channel 'twitch:unit' epoch 17 has 1025 claims; ring-v0 holds at most 1024",
    ):
        FMT.build(SCOPE, inputs)


def test_leaf_rejects_index_above_u32() -> None:
    with pytest.raises(
        InvalidIntegerError, match=r"index must be an integer in 0\.\.4294967295 \(got 4294967296\)"
    ):
        FMT.leaf(SCOPE, b"\x01" * 32, 1, 2**32)


def test_set_channel_merkle_root_data_and_accounts() -> None:
    payer = Pubkey.new_unique()
    root = bytes(range(32))
    ix = FMT.publish_instruction(SCOPE, payer=payer, root=root, dataset_hash=bytes(32))
    assert bytes(ix.data) == (
        bytes.fromhex("411810063f69997b") + (11).to_bytes(4, "little") + b"twitch:unit"
        + independent.u64(17) + root
    )  # fmt: skip
    channel_state, _ = Pubkey.find_program_address(
        [b"channel_state", bytes(MINT), independent.subject("twitch:unit")], PROGRAM
    )
    assert [(m.pubkey, m.is_signer, m.is_writable) for m in ix.accounts] == [
        (payer, True, True),
        (Pubkey.from_string(PROTOCOL_STATE), False, True),
        (channel_state, False, True),
        (SYSTEM_PROGRAM_ID, False, False),
    ]


def test_claim_channel_open_data_and_accounts() -> None:
    claimer = Pubkey.new_unique()
    proof = [bytes([9]) * 32]
    ix = claim_channel_open_instruction(
        program_id=PROGRAM,
        mint=MINT,
        claimer=claimer,
        channel="twitch:unit",
        epoch=17,
        index=5,
        amount=123456,
        claim_id="twitch:unit:17",
        proof=proof,
    )
    assert bytes(ix.data) == (
        bytes.fromhex("dfabbb29a7470fb8") + (11).to_bytes(4, "little") + b"twitch:unit"
        + independent.u64(17) + (5).to_bytes(4, "little") + independent.u64(123456)
        + (14).to_bytes(4, "little") + b"twitch:unit:17" + (1).to_bytes(4, "little") + proof[0]
    )  # fmt: skip
    channel_state, _ = Pubkey.find_program_address(
        [b"channel_state", bytes(MINT), independent.subject("twitch:unit")], PROGRAM
    )
    claimer_ata, _ = Pubkey.find_program_address(
        [bytes(claimer), bytes(TOKEN_2022_PROGRAM_ID), bytes(MINT)], ASSOCIATED_TOKEN_PROGRAM_ID
    )
    assert [(m.pubkey, m.is_signer, m.is_writable) for m in ix.accounts] == [
        (claimer, True, True),
        (Pubkey.from_string(PROTOCOL_STATE), False, True),
        (channel_state, False, True),
        (MINT, False, False),
        (Pubkey.from_string(TREASURY), False, True),
        (claimer_ata, False, True),
        (TOKEN_2022_PROGRAM_ID, False, False),
        (ASSOCIATED_TOKEN_PROGRAM_ID, False, False),
        (SYSTEM_PROGRAM_ID, False, False),
    ]


def test_published_root_reads_slot_epoch_mod_10() -> None:
    empty = ChannelSlot(0, bytes(32), 0, bytes(128))
    slots = [empty] * 10
    slots[7] = ChannelSlot(17, b"\x05" * 32, 2, bytes(128))
    data = ChannelState(1, 254, bytes(MINT), bytes(32), 17, tuple(slots)).encode()
    assert FMT.published_root(SCOPE, data) == b"\x05" * 32
    other = TreeScope(PROGRAM, MINT, "twitch:unit", root_seq=0, epoch=27)
    assert FMT.published_root(other, data) is None
