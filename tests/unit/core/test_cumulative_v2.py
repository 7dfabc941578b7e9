"""core.claims.cumulative_v2: §12 leaves, canonical order, tampering, instructions."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from solders.pubkey import Pubkey

from aop.core.accounts import ChannelConfigV2, RootEntry
from aop.core.claims import ClaimInput, TreeScope, get_claim_format
from aop.core.claims.cumulative_v2 import (
    claim_cumulative_instruction,
    cumulative_leaf,
    publish_cumulative_root_instruction,
)
from aop.core.errors import BorshEncodeError, InvalidIntegerError, InvalidPubkeyError
from aop.core.program_ids import (
    ASSOCIATED_TOKEN_PROGRAM_ID,
    SYSTEM_PROGRAM_ID,
    TOKEN_2022_PROGRAM_ID,
)
from tests.unit.core import independent
from tests.unit.core.strategies import cumulative_datasets, edge_sizes, positive_amounts, pubkeys
from tests.unit.core.vectors import (
    CCM_MINT,
    CHANNEL,
    CHANNEL_CONFIG,
    CHANNEL_CONFIG_HEX,
    CLAIM_STATE_WALLET0,
    EXAMPLE_ENTRIES,
    EXAMPLE_ROOT_SEQ,
    LEAVES,
    MINT_HEX,
    PROGRAM_ID,
    PROTOCOL_STATE,
    ROOT,
    TREASURY,
    WALLET0,
)

PROGRAM = Pubkey.from_string(PROGRAM_ID)
MINT = Pubkey.from_string(CCM_MINT)
CFG = bytes.fromhex(CHANNEL_CONFIG_HEX)
FMT = get_claim_format("cumulative-v2")
SCOPE = TreeScope(PROGRAM, MINT, CHANNEL, root_seq=EXAMPLE_ROOT_SEQ, epoch=0)


def scope_with(root_seq: int) -> TreeScope:
    return TreeScope(PROGRAM, MINT, CHANNEL, root_seq=root_seq, epoch=0)


@pytest.mark.parametrize("index", [0, 1, 2])
def test_cumulative_leaf_matches_reference_vector(index: int) -> None:
    wallet, total = EXAMPLE_ENTRIES[index]
    leaf = cumulative_leaf(
        channel_config=Pubkey.from_string(CHANNEL_CONFIG),
        mint=MINT,
        root_seq=EXAMPLE_ROOT_SEQ,
        wallet=wallet,
        cumulative_total=total,
    )
    assert leaf.hex() == LEAVES[index]
    assert FMT.leaf(SCOPE, wallet, total, index).hex() == LEAVES[index]


def test_scope_derives_the_reference_config_pda_and_mint_bytes() -> None:
    assert (bytes(SCOPE.channel_config).hex(), bytes(SCOPE.mint).hex()) == (
        CHANNEL_CONFIG_HEX,
        MINT_HEX,
    )


def test_example_build_orders_leaves_by_wallet_bytes() -> None:
    tree = FMT.build(SCOPE, [ClaimInput(w, t) for w, t in EXAMPLE_ENTRIES])
    by_wallet = sorted(range(3), key=lambda i: EXAMPLE_ENTRIES[i][0])
    assert tree.leaves == [bytes.fromhex(LEAVES[i]) for i in by_wallet]
    assert tree.root == independent.root_of(tree.leaves)
    assert tree.root.hex() != ROOT  # the reference root is over input order, not ours


def test_example_dataset_hash_is_keccak_of_wallet_and_total_in_wallet_order() -> None:
    tree = FMT.build(SCOPE, [ClaimInput(w, t) for w, t in EXAMPLE_ENTRIES])
    expected = independent.keccak(*(w + independent.u64(t) for w, t in sorted(EXAMPLE_ENTRIES)))
    assert tree.dataset_hash == expected
    assert (tree.leaf_count, tree.total) == (3, 3_500_000_042)


@settings(max_examples=15, deadline=None)
@given(edge_sizes.filter(lambda n: n <= 5000), st.integers(0, 2**32 - 1))
def test_build_of_edge_size_matches_independent_leaves_and_root(size: int, seed: int) -> None:
    rng = random.Random(seed)
    entries = {rng.randbytes(32): rng.randrange(1, 2**64) for _ in range(size)}
    tree = FMT.build(SCOPE, [ClaimInput(w, t) for w, t in entries.items()])
    wallets = sorted(entries)
    leaves = [independent.cumulative_leaf(CFG, bytes(MINT), 1, w, entries[w]) for w in wallets]
    assert tree.wallets == wallets
    assert tree.leaves == leaves
    assert tree.root == independent.root_of(leaves)
    for index in {0, size // 3, size - 1} if size else set():
        assert independent.program_verifies(leaves[index], tree.proof(index), tree.root)


@settings(max_examples=40, deadline=None)
@given(cumulative_datasets(max_size=40).filter(bool), st.data())
def test_changing_amount_wallet_or_root_seq_fails_the_proof(
    inputs: list[ClaimInput], data: st.DataObject
) -> None:
    tree = FMT.build(SCOPE, inputs)
    entry = data.draw(st.sampled_from(tree.entries))
    proof = tree.proof(entry.index)
    leaf = independent.cumulative_leaf(CFG, bytes(MINT), 1, entry.wallet, entry.amount)
    assert independent.program_verifies(leaf, proof, tree.root)

    other_amount = data.draw(positive_amounts.filter(lambda a: a != entry.amount))
    other_wallet = data.draw(pubkeys.filter(lambda w: w != entry.wallet))
    other_seq = data.draw(st.integers(0, 2**64 - 1).filter(lambda s: s != 1))
    for tampered in (
        independent.cumulative_leaf(CFG, bytes(MINT), 1, entry.wallet, other_amount),
        independent.cumulative_leaf(CFG, bytes(MINT), 1, other_wallet, entry.amount),
        independent.cumulative_leaf(CFG, bytes(MINT), other_seq, entry.wallet, entry.amount),
    ):
        assert not independent.program_verifies(tampered, proof, tree.root)


def test_root_seq_enters_every_leaf() -> None:
    inputs = [ClaimInput(w, t) for w, t in EXAMPLE_ENTRIES]
    assert FMT.build(scope_with(1), inputs).root != FMT.build(scope_with(2), inputs).root


def test_leaf_rejects_wallet_not_32_bytes() -> None:
    with pytest.raises(InvalidPubkeyError, match=r"wallet must be 32 raw bytes \(got b'\\x01'\)"):
        FMT.leaf(SCOPE, b"\x01", 1, 0)


def test_leaf_rejects_total_above_u64() -> None:
    with pytest.raises(
        InvalidIntegerError,
        match=rf"cumulative_total must be an integer in 0\.\.{2**64 - 1} \(got {2**64}\)",
    ):
        FMT.leaf(SCOPE, b"\x01" * 32, 2**64, 0)


def test_publish_cumulative_root_data_matches_reference_96_bytes() -> None:
    ix = publish_cumulative_root_instruction(
        program_id=PROGRAM,
        mint=MINT,
        payer=Pubkey.from_string(WALLET0),
        channel=CHANNEL,
        root_seq=1,
        root=bytes.fromhex(ROOT),
        dataset_hash=bytes(32),
    )
    expected = (
        bytes.fromhex("38c189e2399b4019")
        + bytes.fromhex("0c000000")
        + b"youtube_lofi"
        + bytes.fromhex("0100000000000000")
        + bytes.fromhex(ROOT)
        + bytes(32)
    )
    assert (bytes(ix.data), len(ix.data)) == (expected, 96)


def test_publish_cumulative_root_accounts_are_payer_protocol_state_config() -> None:
    payer = Pubkey.from_string(WALLET0)
    ix = FMT.publish_instruction(SCOPE, payer=payer, root=bytes(32), dataset_hash=bytes(32))
    metas = [(str(m.pubkey), m.is_signer, m.is_writable) for m in ix.accounts]
    assert metas == [
        (WALLET0, True, True),
        (PROTOCOL_STATE, False, False),
        (CHANNEL_CONFIG, False, True),
    ]
    assert ix.program_id == PROGRAM


def test_publish_cumulative_root_rejects_root_not_32_bytes() -> None:
    with pytest.raises(BorshEncodeError, match=r"\[u8; 32\] must be 32 bytes \(got 31 bytes\)"):
        FMT.publish_instruction(SCOPE, payer=PROGRAM, root=bytes(31), dataset_hash=bytes(32))


@pytest.mark.parametrize("creator_ata", [None, Pubkey.from_string(TREASURY)])
def test_claim_cumulative_has_data_and_12_accounts_in_program_order(
    creator_ata: Pubkey | None,
) -> None:
    claimer = Pubkey.from_string(WALLET0)
    creator = Pubkey.new_unique()
    proof = [bytes.fromhex(LEAVES[1]), bytes(range(32))]
    ix = claim_cumulative_instruction(
        program_id=PROGRAM,
        mint=MINT,
        claimer=claimer,
        channel=CHANNEL,
        root_seq=1,
        cumulative_total=1_000_000_000,
        proof=proof,
        creator_wallet=creator,
        creator_ata=creator_ata,
    )
    expected_data = (
        bytes.fromhex("a55803c451f8c98a")
        + (12).to_bytes(4, "little")
        + b"youtube_lofi"
        + independent.u64(1)
        + independent.u64(1_000_000_000)
        + (2).to_bytes(4, "little")
        + b"".join(proof)
    )
    assert bytes(ix.data) == expected_data
    claimer_ata, _ = Pubkey.find_program_address(
        [bytes(claimer), bytes(TOKEN_2022_PROGRAM_ID), bytes(MINT)], ASSOCIATED_TOKEN_PROGRAM_ID
    )
    optional = (PROGRAM, False, False) if creator_ata is None else (creator_ata, False, True)
    assert [(m.pubkey, m.is_signer, m.is_writable) for m in ix.accounts] == [
        (claimer, True, True),
        (Pubkey.from_string(PROTOCOL_STATE), False, True),
        (Pubkey.from_string(CHANNEL_CONFIG), False, False),
        (Pubkey.from_string(CLAIM_STATE_WALLET0), False, True),
        (MINT, False, False),
        (Pubkey.from_string(TREASURY), False, True),
        (claimer_ata, False, True),
        (creator, False, False),
        optional,
        (TOKEN_2022_PROGRAM_ID, False, False),
        (ASSOCIATED_TOKEN_PROGRAM_ID, False, False),
        (SYSTEM_PROGRAM_ID, False, False),
    ]


def _config_with(entries: list[RootEntry]) -> bytes:
    return ChannelConfigV2(
        version=1,
        bump=255,
        mint=bytes(MINT),
        subject=bytes(32),
        authority=bytes(32),
        latest_root_seq=max(e.seq for e in entries),
        cutover_epoch=0,
        creator_wallet=bytes(32),
        creator_fee_bps=0,
        roots=tuple(entries),
    ).encode()


def test_published_root_reads_slot_root_seq_mod_4() -> None:
    entries = [RootEntry(seq, bytes([seq]) * 32, bytes(32), 100 + seq) for seq in (4, 5, 2, 3)]
    data = _config_with(entries)
    assert FMT.published_root(scope_with(5), data) == bytes([5]) * 32
    assert FMT.published_root(scope_with(1), data) is None  # slot 1 holds seq 5 now
    assert FMT.root_account(SCOPE) == Pubkey.from_string(CHANNEL_CONFIG)
