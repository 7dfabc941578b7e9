"""core.claims.global_roots: the §G7 vectors, accounts at §G2's offsets, instructions, events,
and random held-out datasets checked by the independent re-statement (`independent`)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from solders.pubkey import Pubkey

from aop.core.accounts import ClaimStateGlobal, GlobalRootConfig, ProtocolState, RootEntry
from aop.core.anchor import account_discriminator, instruction_discriminator
from aop.core.claims import ClaimInput, TreeScope, get_claim_format, get_global_format
from aop.core.claims.global_roots import (
    claim_global_instruction,
    claim_global_v2_instruction,
    global_v4_leaf,
    global_v5_leaf,
    initialize_global_root_instruction,
    publish_global_root_instruction,
)
from aop.core.errors import (
    AccountDecodeError,
    DuplicateWalletError,
    InvalidAmountError,
    InvalidIntegerError,
    NoChannelError,
    UnknownClaimFormatError,
)
from aop.core.events import GlobalRewardsClaimed, GlobalRootPublished, decode_event
from aop.core.pda import (
    associated_token_address,
    claim_state_global_address,
    claim_state_global_addresses,
    global_protocol_state_address,
    global_root_config_address,
)
from tests.unit.core import global_vectors as g
from tests.unit.core import independent
from tests.unit.core.vectors import CCM_MINT, PROGRAM_ID, WALLET0

PROGRAM = Pubkey.from_string(PROGRAM_ID)
MINT = Pubkey.from_string(CCM_MINT)
W0 = Pubkey.from_string(WALLET0)


def scope(root_seq: int = g.ROOT_SEQ, **kw: object) -> TreeScope:
    return TreeScope(PROGRAM, MINT, None, root_seq, 0, **kw)  # type: ignore[arg-type]


# -- PDAs (§G7.1) ----------------------------------------------------------------------------


def test_global_pdas_match_the_reference_addresses_and_bumps() -> None:
    singleton = global_protocol_state_address(program_id=PROGRAM, mint=MINT)
    legacy = global_protocol_state_address(program_id=PROGRAM, mint=MINT, seeds="mint")
    config = global_root_config_address(program_id=PROGRAM, mint=MINT)
    claim_w0 = claim_state_global_address(program_id=PROGRAM, mint=MINT, wallet=W0)
    claim_01 = claim_state_global_address(
        program_id=PROGRAM, mint=MINT, wallet=Pubkey(bytes([1]) * 32)
    )
    assert (str(singleton.address), singleton.bump) == (
        g.PROTOCOL_STATE_SINGLETON,
        g.PROTOCOL_STATE_SINGLETON_BUMP,
    )
    assert (str(legacy.address), legacy.bump) == (
        g.PROTOCOL_STATE_LEGACY,
        g.PROTOCOL_STATE_LEGACY_BUMP,
    )
    assert (str(config.address), config.bump) == (g.GLOBAL_ROOT_CONFIG, g.GLOBAL_ROOT_CONFIG_BUMP)
    assert (str(claim_w0.address), claim_w0.bump) == (
        g.CLAIM_STATE_GLOBAL_W0,
        g.CLAIM_STATE_GLOBAL_W0_BUMP,
    )
    assert (str(claim_01.address), claim_01.bump) == (
        g.CLAIM_STATE_GLOBAL_01,
        g.CLAIM_STATE_GLOBAL_01_BUMP,
    )


def test_treasuries_are_the_atas_of_each_protocol_state() -> None:
    singleton = Pubkey.from_string(g.PROTOCOL_STATE_SINGLETON)
    legacy = Pubkey.from_string(g.PROTOCOL_STATE_LEGACY)
    assert str(associated_token_address(owner=singleton, mint=MINT)) == g.TREASURY_SINGLETON
    assert str(associated_token_address(owner=legacy, mint=MINT)) == g.TREASURY_LEGACY
    assert str(associated_token_address(owner=W0, mint=MINT)) == g.CLAIMER_ATA_W0


def test_claim_state_global_addresses_in_bulk_equal_one_by_one() -> None:
    wallets = [bytes(W0), bytes([1]) * 32]
    blob = claim_state_global_addresses(program_id=PROGRAM, mint=MINT, wallets=b"".join(wallets))
    assert [blob[:32], blob[32:]] == [
        bytes(Pubkey.from_string(g.CLAIM_STATE_GLOBAL_W0)),
        bytes(Pubkey.from_string(g.CLAIM_STATE_GLOBAL_01)),
    ]


# -- leaves (§G7.2) and the three-leaf V5 tree (§G7.3) ----------------------------------------


def test_v4_leaf_is_the_reference_vector() -> None:
    leaf = global_v4_leaf(mint=MINT, root_seq=7, wallet=g.W0, cumulative_total=1_000_000_000)
    assert leaf.hex() == g.V4_LEAF_W0_1E9
    assert leaf == independent.global_v4_leaf(g.MINT, 7, g.W0, 1_000_000_000)


def test_v5_leaf_is_the_reference_vector_not_the_unmerged_branch_form() -> None:
    leaf = global_v5_leaf(
        mint=MINT, root_seq=7, wallet=g.W0, base_yield=600_000_000, attention_bonus=400_000_000
    )
    assert leaf.hex() == g.V5_LEAF_W0
    assert leaf.hex() != g.V5_BRANCH_LEAF_W0
    assert (
        get_claim_format("global-v5").leaf(scope(), g.W0, 600_000_000, 5, bonus=400_000_000) == leaf
    )


def test_three_leaf_v5_tree_matches_root_leaves_levels_and_proofs() -> None:
    fmt = get_global_format("global-v5")
    # input order deliberately not the leaf order: the format sorts by wallet bytes
    inputs = [ClaimInput(w, base, 0, bonus) for w, base, bonus, _ in reversed(g.V5_TREE)]
    tree = fmt.build(scope(), inputs)
    assert tree.root.hex() == g.V5_ROOT
    assert [leaf.hex() for leaf in tree.leaves] == [row[3] for row in g.V5_TREE]
    assert tree.levels[1].hex() == "".join(g.V5_LEVEL1)
    assert [[node.hex() for node in tree.proof(i)] for i in range(3)] == [
        list(p) for p in g.V5_PROOFS
    ]
    assert tree.base_amounts == [5, 0, 600_000_000]
    assert tree.bonus_amounts == [0, 42, 400_000_000]
    assert tree.amounts == [5, 42, 1_000_000_000]
    assert tree.total == 1_000_000_047
    for i, (_, _, _, leaf) in enumerate(g.V5_TREE):
        assert independent.program_verifies(bytes.fromhex(leaf), tree.proof(i), tree.root)


def test_v5_dataset_is_the_records_in_leaf_order_and_its_hash() -> None:
    tree = get_global_format("global-v5").build_from_parts(
        scope(), {w: (base, bonus) for w, base, bonus, _ in g.V5_TREE}
    )
    expected = b"".join(
        w + base.to_bytes(8, "little") + bonus.to_bytes(8, "little")
        for w, base, bonus, _ in g.V5_TREE
    )
    assert tree.dataset == expected
    assert tree.dataset_hash == independent.keccak(expected)


def test_v4_from_parts_commits_to_the_sum() -> None:
    parts = {w: (base, bonus) for w, base, bonus, _ in g.V5_TREE}
    tree = get_global_format("global-v4").build_from_parts(scope(), parts)
    expected = [
        independent.global_v4_leaf(g.MINT, 7, w, base + bonus) for w, base, bonus, _ in g.V5_TREE
    ]
    assert tree.leaves == expected
    assert tree.root == independent.root_of(expected)
    assert tree.amounts == [5, 42, 1_000_000_000]


def test_zero_totals_are_left_out_and_an_empty_tree_has_the_zero_root() -> None:
    fmt = get_global_format("global-v5")
    tree = fmt.build_from_parts(scope(), {bytes([9]) * 32: (0, 0), g.W0: (0, 1)})
    assert tree.wallets == [g.W0]
    assert tree.root == independent.global_v5_leaf(g.MINT, 7, g.W0, 0, 1)
    assert fmt.build_from_parts(scope(), {}).root == bytes(32)


@settings(max_examples=40, deadline=None)
@given(
    st.dictionaries(
        st.binary(min_size=32, max_size=32),
        st.tuples(st.integers(0, 2**63), st.integers(0, 2**63 - 1)),
        max_size=40,
    ),
    st.integers(1, 2**64 - 1),
)
def test_random_v5_datasets_verify_with_the_independent_verifier(
    parts: dict[bytes, tuple[int, int]], root_seq: int
) -> None:
    tree = get_global_format("global-v5").build_from_parts(scope(root_seq), parts)
    kept = sorted((w, b, o) for w, (b, o) in parts.items() if b or o)
    leaves = [independent.global_v5_leaf(g.MINT, root_seq, w, b, o) for w, b, o in kept]
    assert tree.leaves == leaves
    assert tree.root == independent.root_of(leaves)
    for i, leaf in enumerate(leaves):
        assert independent.proof_of(leaves, i) == tree.proof(i)
        assert independent.program_verifies(leaf, tree.proof(i), tree.root)


def test_a_held_out_random_dataset_of_2049_wallets() -> None:
    """Seeded, odd at several levels; every proof folds to the root with pycryptodome's keccak."""
    rng = random.Random(20261207)
    parts = {rng.randbytes(32): (rng.randrange(2**40), rng.randrange(2**40)) for _ in range(2049)}
    tree = get_global_format("global-v5").build_from_parts(scope(1802), parts)
    ordered = sorted(parts.items())
    leaves = [independent.global_v5_leaf(g.MINT, 1802, w, b, o) for w, (b, o) in ordered]
    assert tree.root == independent.root_of(leaves)
    for i in (0, 1, 1024, 2047, 2048):
        assert independent.fold(leaves[i], tree.proof(i)) == tree.root


# -- refusals ---------------------------------------------------------------------------------


def test_base_plus_bonus_over_u64_is_refused_naming_the_entry() -> None:
    fmt = get_global_format("global-v5")
    with pytest.raises(
        InvalidAmountError, match=r"base_yield \+ attention_bonus .* must fit a u64"
    ):
        fmt.build_from_parts(scope(), {g.W0: (2**63, 2**63)})
    with pytest.raises(InvalidIntegerError, match="must fit a u64"):
        global_v5_leaf(mint=MINT, root_seq=1, wallet=g.W0, base_yield=2**64 - 1, attention_bonus=1)
    with pytest.raises(InvalidAmountError, match="attention_bonus must be an integer"):
        fmt.build(scope(), [ClaimInput(g.W0, 1, 0, -1)])


def test_duplicate_wallets_and_bonus_to_one_part_formats_are_refused() -> None:
    with pytest.raises(DuplicateWalletError):
        get_global_format("global-v5").build(scope(), [ClaimInput(g.W0, 1), ClaimInput(g.W0, 2)])
    with pytest.raises(InvalidAmountError, match="bonus must be 0"):
        get_global_format("global-v4").build(scope(), [ClaimInput(g.W0, 1, 0, 5)])
    with pytest.raises(InvalidIntegerError, match="bonus must be 0"):
        get_global_format("global-v4").leaf(scope(), g.W0, 1, 0, bonus=1)


def test_a_global_scope_has_no_channel_and_the_registry_knows_the_global_formats() -> None:
    with pytest.raises(NoChannelError):
        _ = scope().channel_config
    assert get_claim_format("global-v4").is_global and get_claim_format("global-v5").is_global
    assert not get_claim_format("cumulative-v2").is_global
    with pytest.raises(UnknownClaimFormatError, match="global-v4, global-v5"):
        get_global_format("cumulative-v2")


# -- accounts (§G2) ---------------------------------------------------------------------------


def _root_entry(seq: int, fill: int) -> bytes:
    return (
        seq.to_bytes(8, "little")
        + bytes([fill]) * 32
        + bytes([fill + 1]) * 32
        + (seq * 10).to_bytes(8, "little")
    )


def test_global_root_config_decodes_at_the_reference_offsets_and_round_trips() -> None:
    data = bytearray(370)
    data[0:8] = bytes.fromhex(g.GLOBAL_ROOT_CONFIG_DISC)
    data[8], data[9] = 1, 255
    data[10:42] = g.MINT
    data[42:50] = (1806).to_bytes(8, "little")
    for k, seq in enumerate((1804, 1805, 1806, 1803)):  # seq % 4 == k
        data[50 + 80 * k : 130 + 80 * k] = _root_entry(seq, k * 2)
    config = GlobalRootConfig.decode(bytes(data))
    assert (config.version, config.bump, config.mint, config.latest_root_seq) == (
        1,
        255,
        g.MINT,
        1806,
    )
    assert config.root_entry(1805) == RootEntry(1805, bytes([2]) * 32, bytes([3]) * 32, 18050)
    assert config.root_entry(1801) is None  # replaced by 1805 in slot 1
    assert config.encode() == bytes(data)
    assert account_discriminator("GlobalRootConfig").hex() == g.GLOBAL_ROOT_CONFIG_DISC


def test_fresh_config_publish_of_seq_7_lands_at_offset_290() -> None:
    entries = [RootEntry(0, bytes(32), bytes(32), 0)] * 4
    entries[7 % 4] = RootEntry(7, bytes.fromhex(g.V5_ROOT), bytes(32), 9)
    data = GlobalRootConfig(1, 255, g.MINT, 7, tuple(entries)).encode()
    assert data[290:298] == (7).to_bytes(8, "little")
    assert data[298:330].hex() == g.V5_ROOT


def test_claim_state_global_decodes_at_the_reference_offsets() -> None:
    data = (
        bytes.fromhex(g.CLAIM_STATE_GLOBAL_DISC)
        + bytes([1, 254])
        + g.MINT
        + g.W0
        + (123).to_bytes(8, "little")
        + (1801).to_bytes(8, "little")
    )
    assert len(data) == 90
    state = ClaimStateGlobal.decode(data)
    assert (state.mint, state.wallet, state.claimed_total, state.last_claim_seq) == (
        g.MINT,
        g.W0,
        123,
        1801,
    )
    assert state.encode() == data
    with pytest.raises(AccountDecodeError, match="must be 90 bytes"):
        ClaimStateGlobal.decode(data + b"\x00")


def test_head_protocol_state_has_mint_at_138() -> None:
    data = bytearray(173)
    data[0:8] = bytes.fromhex(g.PROTOCOL_STATE_DISC)
    data[8], data[9] = 1, 1
    data[42:74] = bytes([7]) * 32  # publisher
    data[106:138] = bytes([8]) * 32  # oracle_authority
    data[138:170] = g.MINT
    data[172] = 254
    state = ProtocolState.decode(bytes(data))
    assert (state.publisher, state.oracle_authority, state.mint, state.bump) == (
        bytes([7]) * 32,
        bytes([8]) * 32,
        g.MINT,
        254,
    )


# -- instructions (§G3, §G7.4) ----------------------------------------------------------------


def _metas(ix: object) -> list[tuple[str, bool, bool]]:
    return [(str(m.pubkey), m.is_signer, m.is_writable) for m in ix.accounts]  # type: ignore[attr-defined]


def test_publish_global_root_bytes_and_accounts() -> None:
    ix = publish_global_root_instruction(
        program_id=PROGRAM,
        mint=MINT,
        payer=W0,
        root_seq=7,
        root=bytes.fromhex(g.V5_ROOT),
        dataset_hash=bytes(32),
    )
    assert bytes(ix.data).hex() == g.PUBLISH_DATA and len(ix.data) == 80
    assert _metas(ix) == [
        (WALLET0, True, True),
        (g.PROTOCOL_STATE_SINGLETON, False, False),
        (g.GLOBAL_ROOT_CONFIG, False, True),
    ]
    via_format = get_claim_format("global-v5").publish_instruction(
        scope(), payer=W0, root=bytes.fromhex(g.V5_ROOT), dataset_hash=bytes(32)
    )
    assert bytes(via_format.data) == bytes(ix.data) and _metas(via_format) == _metas(ix)
    legacy = publish_global_root_instruction(
        program_id=PROGRAM,
        mint=MINT,
        payer=W0,
        root_seq=7,
        root=bytes(32),
        dataset_hash=bytes(32),
        protocol_seeds="mint",
    )
    assert _metas(legacy)[1] == (g.PROTOCOL_STATE_LEGACY, False, False)


def test_claim_global_v2_bytes_and_accounts_self_and_sponsored() -> None:
    proof = [bytes.fromhex(g.V5_LEAF_W0), bytes.fromhex(g.V5_LEVEL1[0])]
    ix = claim_global_v2_instruction(
        program_id=PROGRAM,
        mint=MINT,
        claimer=W0,
        root_seq=7,
        base_yield=600_000_000,
        attention_bonus=400_000_000,
        proof=proof,
    )
    assert bytes(ix.data).hex() == g.CLAIM_V2_DATA and len(ix.data) == 100
    assert _metas(ix) == [
        (WALLET0, True, True),
        (g.PROTOCOL_STATE_SINGLETON, False, True),
        (g.GLOBAL_ROOT_CONFIG, False, False),
        (g.CLAIM_STATE_GLOBAL_W0, False, True),
        (CCM_MINT, False, False),
        (g.TREASURY_SINGLETON, False, True),
        (g.CLAIMER_ATA_W0, False, True),
        (g.TOKEN_2022, False, False),
        (g.ASSOCIATED_TOKEN_PROGRAM, False, False),
        (g.SYSTEM_PROGRAM, False, False),
    ]
    relayer = Pubkey(bytes([5]) * 32)
    sponsored = claim_global_v2_instruction(
        program_id=PROGRAM,
        mint=MINT,
        claimer=W0,
        root_seq=7,
        base_yield=600_000_000,
        attention_bonus=400_000_000,
        proof=proof,
        payer=relayer,
        protocol_seeds="mint",
    )
    assert bytes(sponsored.data).hex() == g.CLAIM_SPONSORED_V2_DISC + g.CLAIM_V2_DATA[16:]
    assert _metas(sponsored)[:3] == [
        (str(relayer), True, True),
        (WALLET0, False, False),
        (g.PROTOCOL_STATE_LEGACY, False, True),
    ]
    assert _metas(sponsored)[6] == (g.TREASURY_LEGACY, False, True)


def test_claim_global_v4_single_leaf_bytes() -> None:
    ix = claim_global_instruction(
        program_id=PROGRAM,
        mint=MINT,
        claimer=W0,
        root_seq=7,
        cumulative_total=1_000_000_000,
        proof=[],
    )
    assert bytes(ix.data).hex() == g.CLAIM_V4_SINGLE_LEAF_DATA
    sponsored = claim_global_instruction(
        program_id=PROGRAM,
        mint=MINT,
        claimer=W0,
        root_seq=7,
        cumulative_total=1_000_000_000,
        proof=[],
        payer=Pubkey(bytes([5]) * 32),
    )
    assert (
        bytes(sponsored.data).hex() == g.CLAIM_SPONSORED_V4_DISC + g.CLAIM_V4_SINGLE_LEAF_DATA[16:]
    )


def test_initialize_global_root_discriminator_and_accounts() -> None:
    ix = initialize_global_root_instruction(program_id=PROGRAM, mint=MINT, payer=W0)
    assert bytes(ix.data).hex() == g.INITIALIZE_GLOBAL_ROOT_DISC
    assert (
        instruction_discriminator("initialize_global_root").hex() == g.INITIALIZE_GLOBAL_ROOT_DISC
    )
    assert [m[0] for m in _metas(ix)] == [
        WALLET0,
        g.PROTOCOL_STATE_SINGLETON,
        g.GLOBAL_ROOT_CONFIG,
        g.SYSTEM_PROGRAM,
    ]


# -- events (§G4, §G7.5) ----------------------------------------------------------------------


def test_global_events_encode_to_the_reference_payloads_and_decode_back() -> None:
    published = GlobalRootPublished(
        mint=g.MINT,
        root_seq=7,
        root=bytes.fromhex(g.V5_ROOT),
        dataset_hash=bytes(32),
        publisher=g.W0,
        slot=123456789,
    )
    assert published.encode().hex() == g.EVENT_ROOT_PUBLISHED and GlobalRootPublished.size() == 152
    claimed = GlobalRewardsClaimed(claimer=g.W0, amount=10**9, cumulative_total=10**9, root_seq=7)
    assert claimed.encode().hex() == g.EVENT_REWARDS_CLAIMED and GlobalRewardsClaimed.size() == 64
    assert decode_event(bytes.fromhex(g.EVENT_ROOT_PUBLISHED)) == published
    assert decode_event(bytes.fromhex(g.EVENT_REWARDS_CLAIMED)) == claimed
