"""The deployed program's global instructions run in-process: the reference's §G3 rules,
error codes and §G7 vectors, and what the `deployed` profile routes (and fails with 101).

Expected bytes are assembled here from the reference (`tests.unit.core.global_vectors`) and
trees from the independent re-statement (`tests.unit.core.independent`), never from the
simulator's or core's own output.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable
from typing import Any

import pytest
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from aop.core.accounts import ClaimStateGlobal, GlobalRootConfig
from aop.core.anchor import instruction_discriminator
from aop.core.claims.cumulative_v2 import (
    claim_cumulative_instruction,
    publish_cumulative_root_instruction,
)
from aop.core.claims.global_roots import (
    claim_global_instruction,
    claim_global_v2_instruction,
    initialize_global_root_instruction,
    publish_global_root_instruction,
)
from aop.core.claims.ring_v0 import set_channel_merkle_root_instruction
from aop.core.pda import associated_token_address, claim_state_global_address
from aop.simchain import SimChain, SimConfig
from aop.simchain.instructions import (
    set_paused_instruction,
    stake_channel_instruction,
    update_publisher_instruction,
)
from aop.simchain.ledger import Account, TxRecord
from aop.simchain.program import routes
from aop.simchain.runtime import LAMPORTS_PER_SIGNATURE
from aop.simchain.token import decode_token_account
from tests.unit.core import global_vectors as g
from tests.unit.core.independent import (
    global_v4_leaf,
    global_v5_leaf,
    keccak,
    proof_of,
    root_of,
    u64,
)
from tests.unit.simchain.landing import custom, send

CHANNEL = "twitch:x"
#: the deployed profile on the reference's program id and mint (§G7), a config at seq 6, so
#: the §G7 root (seq 7) is the next to publish.
DEPLOYED = SimConfig(
    program="deployed",
    global_latest_root_seq=6,
    seed=3,
    slot_ms=0,
    rate=0,
    workload=False,
    wallets=4,
    channels=(CHANNEL,),
    claim_channels=(),
)
#: Token-2022 rent of a 165-byte token account and of the 90-byte ClaimStateGlobal
#: ((128 + size) x 6960, reference §G2.2).
ATA_RENT = (128 + 165) * 6960
CLAIM_STATE_RENT = 1_517_280
U64_MAX = 2**64 - 1


@pytest.fixture
def chain() -> SimChain:
    return SimChain(DEPLOYED)


def data(chain: SimChain, address: str | Pubkey) -> bytes:
    account = chain.ledger.accounts.get(Pubkey.from_string(str(address)))
    assert account is not None
    return account.data


def tokens(chain: SimChain, owner: bytes | Pubkey) -> int:
    ata = associated_token_address(owner=Pubkey(bytes(owner)), mint=chain.mint)
    account = chain.ledger.accounts.get(ata)
    return 0 if account is None else decode_token_account(account.data)[2]


def lamports(chain: SimChain, key: Pubkey) -> int:
    account = chain.ledger.accounts.get(key)
    return 0 if account is None else account.lamports


def publish(chain: SimChain, seq: int, root: bytes, signer: Keypair | None = None) -> TxRecord:
    signer = signer or chain.keys.publisher
    ix = publish_global_root_instruction(
        program_id=chain.program_id,
        mint=chain.mint,
        payer=signer.pubkey(),
        root_seq=seq,
        root=root,
        dataset_hash=bytes(32),
    )
    return send(chain, [ix], [signer])


def claim(
    chain: SimChain, claimer: bytes | Keypair, build: Callable[..., Instruction], **args: Any
) -> TxRecord:
    """A self-claim when `claimer` is a keypair, else sponsored by wallet 3 (the relayer)."""
    relayer = chain.keys.wallet(3)
    own = isinstance(claimer, Keypair)
    ix = build(
        program_id=chain.program_id,
        mint=chain.mint,
        claimer=claimer.pubkey() if isinstance(claimer, Keypair) else Pubkey(claimer),
        payer=None if own else relayer.pubkey(),
        **args,
    )
    return send(chain, [ix], [claimer if isinstance(claimer, Keypair) else relayer])


def claim_v5(
    chain: SimChain,
    claimer: bytes | Keypair,
    seq: int,
    base: int,
    bonus: int,
    proof: list[bytes],
    **extra: Any,
) -> TxRecord:
    """`claim_global_v2` (or its sponsored variant, see `claim`)."""
    parts = {"base_yield": base, "attention_bonus": bonus}
    return claim(
        chain, claimer, claim_global_v2_instruction, root_seq=seq, proof=proof, **parts, **extra
    )


def claim_v4(
    chain: SimChain, claimer: bytes | Keypair, seq: int, total: int, proof: list[bytes]
) -> TxRecord:
    """`claim_global` (or its sponsored variant, see `claim`)."""
    return claim(
        chain, claimer, claim_global_instruction, root_seq=seq, cumulative_total=total, proof=proof
    )


def claim_state(chain: SimChain, wallet: bytes) -> ClaimStateGlobal:
    address = claim_state_global_address(
        program_id=chain.program_id, mint=chain.mint, wallet=Pubkey(wallet)
    ).address
    return ClaimStateGlobal.decode(data(chain, address))


def rewards_claimed(claimer: bytes, amount: int, total: int, seq: int) -> bytes:
    """§G4: GlobalRewardsClaimed, 64 bytes."""
    return bytes.fromhex("955e89d5189b603d") + claimer + u64(amount) + u64(total) + u64(seq)


def v5_tree(chain: SimChain, seq: int, parts: dict[bytes, tuple[int, int]]) -> list[bytes]:
    """Leaves of a V5 tree in wallet order (independent helpers)."""
    mint = bytes(chain.mint)
    return [global_v5_leaf(mint, seq, w, *parts[w]) for w in sorted(parts)]


# -- genesis -------------------------------------------------------------------------------


def test_genesis_writes_the_deployed_accounts_at_the_reference_addresses(chain: SimChain) -> None:
    """The singleton ProtocolState (173 bytes, mint at 138), the GlobalRootConfig (latest at
    offset 42) and the funded treasury ATA are at §G7.1's addresses."""
    state = data(chain, g.PROTOCOL_STATE_SINGLETON)
    assert (len(state), state[:8].hex()) == (173, g.PROTOCOL_STATE_DISC)
    assert state[138:170] == g.MINT
    assert state[10:42] == bytes(chain.keys.admin.pubkey())
    assert state[42:74] == bytes(chain.keys.publisher.pubkey())
    assert (state[170], state[172]) == (0, g.PROTOCOL_STATE_SINGLETON_BUMP)
    config = data(chain, g.GLOBAL_ROOT_CONFIG)
    assert (len(config), config[:8].hex(), config[8], config[9]) == (
        370,
        g.GLOBAL_ROOT_CONFIG_DISC,
        1,
        g.GLOBAL_ROOT_CONFIG_BUMP,
    )
    assert (config[10:42], struct.unpack_from("<Q", config, 42)[0]) == (g.MINT, 6)
    treasury = data(chain, g.TREASURY_SINGLETON)
    mint, owner, amount = decode_token_account(treasury)
    assert (str(mint), str(owner), amount) == (str(chain.mint), g.PROTOCOL_STATE_SINGLETON, 10**18)


# -- publish_global_root -------------------------------------------------------------------


def test_publish_writes_ring_entry_and_emits_the_event(chain: SimChain) -> None:
    """§G7.4: seq 7 lands in roots[3] (offset 290), latest becomes 7; GlobalRootPublished
    holds mint, seq, root, dataset_hash, the signer and the slot (§G4)."""
    root = bytes.fromhex(g.V5_ROOT)
    record = publish(chain, 7, root)
    assert record.err is None
    config = data(chain, g.GLOBAL_ROOT_CONFIG)
    assert struct.unpack_from("<Q", config, 42)[0] == 7
    assert config[290:370] == u64(7) + root + bytes(32) + u64(record.slot)
    publisher = bytes(chain.keys.publisher.pubkey())
    (event,) = record.events
    assert event.name == "GlobalRootPublished"
    assert event.data == (
        bytes.fromhex("f53ed38c750d1ebc")
        + g.MINT
        + u64(7)
        + root
        + bytes(32)
        + publisher
        + u64(record.slot)
    )
    assert "Program log: Instruction: PublishGlobalRoot" in record.logs


def test_publish_accepts_only_the_next_seq(chain: SimChain) -> None:
    """root_seq must be latest + 1: the same seq again, a gap and seq 0 are 6006."""
    assert publish(chain, 7, keccak(b"a")).err is None
    assert [custom(publish(chain, seq, keccak(b"b"))) for seq in (7, 9, 0)] == [6006] * 3
    assert publish(chain, 8, keccak(b"b")).err is None


def test_publish_needs_admin_or_publisher_and_pause_stops_the_publisher(chain: SimChain) -> None:
    """A wallet is Unauthorized (6000); paused, the publisher gets 6002 and the admin
    publishes (§G3.2 steps 1-2)."""
    stranger = chain.keys.wallet(0)
    assert custom(publish(chain, 7, keccak(b"x"), stranger)) == 6000
    chain.setup_protocol(paused=True)
    chain.produce_slot()
    assert custom(publish(chain, 7, keccak(b"x"))) == 6002
    assert publish(chain, 7, keccak(b"x"), chain.keys.admin).err is None


def test_publish_checks_the_config_version_and_mint(chain: SimChain) -> None:
    """A config of version 0 is 6009; a config holding another mint is 6016."""
    key = Pubkey.from_string(g.GLOBAL_ROOT_CONFIG)
    original = GlobalRootConfig.decode(data(chain, key))
    for changed, code in (
        (dataclasses.replace(original, version=0), 6009),
        (dataclasses.replace(original, mint=bytes([9]) * 32), 6016),
    ):
        overwrite(chain, key, changed.encode())
        assert custom(publish(chain, 7, keccak(b"x"))) == code


def test_publish_to_another_mints_config_fails_the_seeds_constraint(chain: SimChain) -> None:
    """A GlobalRootConfig not at ["global_root", protocol_state.mint] is ConstraintSeeds
    (2006), and the program's own account of another kind is a discriminator mismatch."""
    other = chain.setup_global_root(latest_root_seq=6, mint=Pubkey(bytes([9]) * 32))
    chain.produce_slot()
    for config, code in ((other, 2006), (chain.channel_config(CHANNEL), 3002)):
        ix = publish_global_root_instruction(
            program_id=chain.program_id,
            mint=chain.mint,
            payer=chain.keys.publisher.pubkey(),
            root_seq=7,
            root=keccak(b"x"),
            dataset_hash=bytes(32),
        )
        metas = [*ix.accounts[:2], AccountMeta(config, is_signer=False, is_writable=True)]
        record = send(chain, [Instruction(ix.program_id, ix.data, metas)], [chain.keys.publisher])
        assert custom(record) == code


def overwrite(chain: SimChain, key: Pubkey, new_data: bytes) -> None:
    """Rewrite a program account's data directly (a tampered account for a negative test)."""
    account = chain.ledger.accounts.get(key)
    assert account is not None
    chain.ledger.accounts.put(
        key, Account(account.lamports, new_data, account.owner), chain.ledger.pending_slot
    )
    chain.produce_slot()


# -- claims: the §G7 vectors -----------------------------------------------------------------


def test_sponsored_v5_claims_of_the_three_leaf_tree_pay_each_wallet(chain: SimChain) -> None:
    """§G7.3: the reference's root at seq 7; the relayer claims for each of its three wallets
    (not signers, no keys here) with the reference's proofs: each ATA receives base + bonus,
    each ClaimStateGlobal (W0's at §G7.1's address) holds the total and seq 7, each event is
    §G4's 64 bytes, and the relayer pays the fee and both rents."""
    assert publish(chain, 7, bytes.fromhex(g.V5_ROOT)).err is None
    relayer = chain.keys.wallet(3).pubkey()
    for (wallet, base, bonus, _), proof in zip(g.V5_TREE, g.V5_PROOFS, strict=True):
        before = lamports(chain, relayer)
        record = claim_v5(chain, wallet, 7, base, bonus, [bytes.fromhex(p) for p in proof])
        assert record.err is None, record.logs
        assert lamports(chain, relayer) == before - (
            LAMPORTS_PER_SIGNATURE + CLAIM_STATE_RENT + ATA_RENT
        )
        assert tokens(chain, wallet) == base + bonus
        assert [e.data for e in record.events] == [
            rewards_claimed(wallet, base + bonus, base + bonus, 7)
        ]
        state = claim_state(chain, wallet)
        assert (state.version, state.mint, state.wallet) == (1, g.MINT, wallet)
        assert (state.claimed_total, state.last_claim_seq) == (base + bonus, 7)
    w0_state = data(chain, g.CLAIM_STATE_GLOBAL_W0)
    assert (w0_state[:8].hex(), w0_state[9]) == (g.CLAIM_STATE_GLOBAL_DISC, 255)
    assert decode_token_account(data(chain, g.CLAIMER_ATA_W0))[2] == 1_000_000_000
    assert decode_token_account(data(chain, g.TREASURY_SINGLETON))[2] == 10**18 - (
        5 + 42 + 1_000_000_000
    )


def test_v4_single_leaf_claim_emits_the_reference_event(chain: SimChain) -> None:
    """§G7.4/§G7.5: root = W0's V4 leaf (total 1e9, seq 7), empty proof; the sponsored V4
    claim pays 1e9 and emits exactly the reference's GlobalRewardsClaimed payload."""
    assert publish(chain, 7, bytes.fromhex(g.V4_LEAF_W0_1E9)).err is None
    record = claim_v4(chain, g.W0, 7, 1_000_000_000, [])
    assert record.err is None, record.logs
    assert [e.data.hex() for e in record.events] == [g.EVENT_REWARDS_CLAIMED]
    assert tokens(chain, g.W0) == 1_000_000_000


def test_proof_errors_and_the_checked_add(chain: SimChain) -> None:
    """A wrong sibling is InvalidProof (6004), 33 nodes InvalidProofLength (6005), a base +
    bonus over u64 MathOverflow (6041); nothing is paid."""
    assert publish(chain, 7, bytes.fromhex(g.V5_ROOT)).err is None
    wallet, base, bonus, _ = g.V5_TREE[2]
    good = [bytes.fromhex(p) for p in g.V5_PROOFS[2]]
    assert custom(claim_v5(chain, wallet, 7, base, bonus, [good[0], keccak(b"no")])) == 6004
    assert custom(claim_v5(chain, wallet, 7, base + 1, bonus, good)) == 6004
    assert custom(claim_v5(chain, wallet, 7, base, bonus, [good[0]] * 33)) == 6005
    assert custom(claim_v5(chain, wallet, 7, U64_MAX, 1, good)) == 6041
    assert tokens(chain, wallet) == 0


# -- claims: ring, idempotence, V4 and V5 together -------------------------------------------


def test_each_of_the_last_four_seqs_is_claimable_and_the_fifth_oldest_is_not(
    chain: SimChain,
) -> None:
    """Seqs 7..11 published, the wallet's total rising with each: claims against 8, 9, 10, 11
    pay the deltas; seq 7 (its ring entry now holds 11) is RootTooOldOrMissing (6007)."""
    wallet = chain.keys.wallet(0)
    me, other = bytes(wallet.pubkey()), bytes([7]) * 32
    trees = {}
    for seq in range(7, 12):
        parts = {me: (100 * seq, seq), other: (1, 0)}
        leaves = v5_tree(chain, seq, parts)
        trees[seq] = (parts[me], proof_of(leaves, sorted(parts).index(me)))
        assert publish(chain, seq, root_of(leaves)).err is None
    (base, bonus), proof = trees[7]
    assert custom(claim_v5(chain, wallet, 7, base, bonus, proof)) == 6007
    paid = 0
    for seq in range(8, 12):
        (base, bonus), proof = trees[seq]
        before = tokens(chain, me)
        record = claim_v5(chain, wallet, seq, base, bonus, proof)
        assert record.err is None, record.logs
        assert tokens(chain, me) - before == base + bonus - paid
        assert [e.data for e in record.events] == [
            rewards_claimed(me, base + bonus - paid, base + bonus, seq)
        ]
        paid = base + bonus
    assert (claim_state(chain, me).claimed_total, claim_state(chain, me).last_claim_seq) == (
        1_111,
        11,
    )


def test_second_claim_is_a_no_op_and_v4_continues_the_v5_total(chain: SimChain) -> None:
    """The same V5 claim again succeeds with no event and no transfer; a V4 root at the next
    seq with total + 10 pays exactly 10 (one ClaimStateGlobal for both), a V4 total below
    the claimed one is again a no-op."""
    wallet = chain.keys.wallet(1)
    me = bytes(wallet.pubkey())
    parts = {me: (600, 400), bytes([5]) * 32: (3, 4)}
    leaves = v5_tree(chain, 7, parts)
    assert publish(chain, 7, root_of(leaves)).err is None
    proof = proof_of(leaves, sorted(parts).index(me))
    funded = tokens(chain, me)  # the workload's wallets hold tokens from genesis
    first = claim_v5(chain, wallet, 7, 600, 400, proof)
    assert (first.err, tokens(chain, me) - funded) == (None, 1_000)
    start = tokens(chain, me)
    again = claim_v5(chain, wallet, 7, 600, 400, proof)
    assert (again.err, again.events, tokens(chain, me)) == (None, (), start)
    mint = bytes(chain.mint)
    v4_leaves = sorted([global_v4_leaf(mint, 8, me, 1_010), global_v4_leaf(mint, 8, g.W0, 9)])
    assert publish(chain, 8, root_of(v4_leaves)).err is None
    v4_proof = proof_of(v4_leaves, v4_leaves.index(global_v4_leaf(mint, 8, me, 1_010)))
    topped = claim_v4(chain, wallet, 8, 1_010, v4_proof)
    assert [e.data for e in topped.events] == [rewards_claimed(me, 10, 1_010, 8)]
    assert tokens(chain, me) == start + 10
    assert (claim_state(chain, me).claimed_total, claim_state(chain, me).last_claim_seq) == (
        1_010,
        8,
    )
    lower = sorted([global_v4_leaf(mint, 9, me, 5), global_v4_leaf(mint, 9, g.W0, 9)])
    assert publish(chain, 9, root_of(lower)).err is None
    below = claim_v4(
        chain, wallet, 9, 5, proof_of(lower, lower.index(global_v4_leaf(mint, 9, me, 5)))
    )
    assert (below.err, below.events, tokens(chain, me)) == (None, (), start + 10)
    assert claim_state(chain, me).claimed_total == 1_010


def test_self_claim_needs_the_claimer_signature_and_creates_its_accounts(chain: SimChain) -> None:
    """A self-claim: the claimer is fee payer and signer and pays both rents; a zero-total
    leaf initialises the claim state without a transfer or an event."""
    wallet = chain.keys.wallet(2)
    me = bytes(wallet.pubkey())
    leaves = [global_v5_leaf(bytes(chain.mint), 7, me, 0, 0)]
    assert publish(chain, 7, root_of(leaves)).err is None
    before = lamports(chain, wallet.pubkey())
    record = claim_v5(chain, wallet, 7, 0, 0, [])
    assert (record.err, record.events) == (None, ())
    assert lamports(chain, wallet.pubkey()) == before - LAMPORTS_PER_SIGNATURE - CLAIM_STATE_RENT
    state = claim_state(chain, me)
    assert (state.version, state.wallet, state.claimed_total, state.last_claim_seq) == (
        1,
        me,
        0,
        0,
    )


# -- claims: account and state checks --------------------------------------------------------


def test_claim_checks_pause_mint_token_program_config_and_claim_state(chain: SimChain) -> None:
    """Paused: 6002; another mint (its own treasury ATA): 6016; a token program other than
    Token-2022: 6019; a config of version 0: 6009; a claim state naming another wallet: 6008."""
    wallet = chain.keys.wallet(0)
    me = bytes(wallet.pubkey())
    leaves = [global_v5_leaf(bytes(chain.mint), 7, me, 50, 0)]
    assert publish(chain, 7, root_of(leaves)).err is None
    funded = tokens(chain, me)
    assert custom(claim_v5(chain, wallet, 7, 50, 0, [], token_program=Pubkey(bytes(32)))) == 6019

    other_mint = Pubkey(bytes([8]) * 32)
    singleton = Pubkey.from_string(g.PROTOCOL_STATE_SINGLETON)
    chain.genesis.protocol(
        mint=other_mint,
        admin=chain.keys.admin.pubkey(),
        publisher=chain.keys.publisher.pubkey(),
        paused=False,
        treasury_balance=0,
        slot=chain.ledger.pending_slot,
    )  # writes the other mint's account
    chain.genesis.token_account(singleton, other_mint, 10**6, chain.ledger.pending_slot)
    chain.produce_slot()
    ix = claim_global_v2_instruction(
        program_id=chain.program_id,
        mint=chain.mint,
        claimer=wallet.pubkey(),
        root_seq=7,
        base_yield=50,
        attention_bonus=0,
        proof=[],
    )
    metas = list(ix.accounts)
    metas[4] = AccountMeta(other_mint, is_signer=False, is_writable=False)
    for index, owner in ((5, singleton), (6, wallet.pubkey())):
        metas[index] = AccountMeta(
            associated_token_address(owner=owner, mint=other_mint),
            is_signer=False,
            is_writable=True,
        )
    assert custom(send(chain, [Instruction(ix.program_id, ix.data, metas)], [wallet])) == 6016

    chain.setup_protocol(paused=True)
    chain.produce_slot()
    assert custom(claim_v5(chain, wallet, 7, 50, 0, [])) == 6002
    chain.setup_protocol(paused=False)
    chain.produce_slot()

    key = Pubkey.from_string(g.GLOBAL_ROOT_CONFIG)
    config = data(chain, key)
    overwrite(chain, key, config[:8] + b"\x00" + config[9:])  # version (offset 8) = 0
    assert custom(claim_v5(chain, wallet, 7, 50, 0, [])) == 6009
    overwrite(chain, key, config)

    assert claim_v5(chain, wallet, 7, 50, 0, []).err is None
    state_key = claim_state_global_address(
        program_id=chain.program_id, mint=chain.mint, wallet=wallet.pubkey()
    ).address
    tampered = dataclasses.replace(claim_state(chain, me), wallet=bytes([6]) * 32)
    overwrite(chain, state_key, tampered.encode())
    assert custom(claim_v5(chain, wallet, 7, 50, 0, [])) == 6008
    assert tokens(chain, me) - funded == 50


# -- routing -------------------------------------------------------------------------------


def _raw(chain: SimChain, name: str, signer: Keypair) -> Instruction:
    """An instruction carrying only `name`'s discriminator (routing happens before decoding)."""
    return Instruction(
        chain.program_id,
        instruction_discriminator(name),
        [AccountMeta(signer.pubkey(), is_signer=True, is_writable=True)],
    )


def test_deployed_profile_fails_every_v022_instruction_with_101(chain: SimChain) -> None:
    """publish_cumulative_root, claim_cumulative, initialize_channel_cumulative,
    set_channel_merkle_root, the admin instructions and initialize_global_root are not routed:
    Anchor's InstructionFallbackNotFound (101)."""
    admin, wallet = chain.keys.admin, chain.keys.wallet(0)
    common = {"program_id": chain.program_id, "mint": chain.mint}
    unrouted = [
        publish_cumulative_root_instruction(
            **common,
            payer=admin.pubkey(),
            channel=CHANNEL,
            root_seq=1,
            root=keccak(b"r"),
            dataset_hash=bytes(32),
        ),
        set_channel_merkle_root_instruction(
            **common, payer=admin.pubkey(), channel=CHANNEL, epoch=1, root=keccak(b"r")
        ),
        set_paused_instruction(**common, admin=admin.pubkey(), paused=True),
        update_publisher_instruction(**common, admin=admin.pubkey(), new_publisher=admin.pubkey()),
        initialize_global_root_instruction(**common, payer=admin.pubkey()),
        _raw(chain, "initialize_channel_cumulative", admin),
        _raw(chain, "admin_recover_root_seq", admin),
        _raw(chain, "claim_channel_open", admin),
    ]
    for ix in unrouted:
        record = send(chain, [ix], [admin])
        assert custom(record) == 101, record.logs
        assert any("InstructionFallbackNotFound" in line for line in record.logs)
    creator = chain.keys.creator(CHANNEL).pubkey()
    claim = claim_cumulative_instruction(
        **common,
        claimer=wallet.pubkey(),
        channel=CHANNEL,
        root_seq=1,
        cumulative_total=1,
        proof=[],
        creator_wallet=creator,
        creator_ata=associated_token_address(owner=creator, mint=chain.mint),
    )
    assert custom(send(chain, [claim], [wallet])) == 101


def test_deployed_profile_keeps_the_simulated_staking(chain: SimChain) -> None:
    """The stated departure: stake_channel still runs (the base-yield source)."""
    wallet = chain.keys.wallet(0)
    ix = stake_channel_instruction(
        program_id=chain.program_id,
        mint=chain.mint,
        user=wallet.pubkey(),
        channel=CHANNEL,
        amount=2 * 10**9,
        lock_duration=0,
    )
    record = send(chain, [ix], [wallet])
    assert [e.name for e in record.events] == ["ChannelStaked"]


def test_v022_profile_routes_its_instructions_and_not_the_global_ones() -> None:
    """v0.2.2 routes exactly its twelve instructions; the global ones fail with 101 there."""
    names = {name for name, *_ in routes("v0.2.2").values()}
    assert names == {
        "initialize_channel_cumulative",
        "publish_cumulative_root",
        "claim_cumulative",
        "set_channel_merkle_root",
        "claim_channel_open",
        "stake_channel",
        "unstake_channel",
        "emergency_unstake_channel",
        "update_publisher",
        "set_paused",
        "update_channel_creator_fee",
        "admin_recover_root_seq",
    }
    assert {name for name, *_ in routes("deployed").values()} == {
        "publish_global_root",
        "claim_global",
        "claim_global_sponsored",
        "claim_global_v2",
        "claim_global_sponsored_v2",
        "stake_channel",
        "unstake_channel",
        "emergency_unstake_channel",
    }
    old = SimChain(dataclasses.replace(DEPLOYED, program="v0.2.2", claim_channels=()))
    assert custom(publish(old, 1, keccak(b"x"))) == 101
    assert custom(claim_v4(old, g.W0, 1, 1, [])) == 101


def test_deployed_profile_refuses_claim_channels() -> None:
    """Per-channel claim channels need v0.2.2."""
    with pytest.raises(ValueError, match=r"claim_channels need program v0\.2\.2"):
        SimConfig(program="deployed", claim_channels=("sim:claims",))
