"""The program's rules run in-process (no RPC): staking, pause, ring-v0, fees, limits."""

from __future__ import annotations

import pytest
from solders.instruction import Instruction
from solders.keypair import Keypair

from aop.core.accounts import ChannelState
from aop.core.claims import ClaimInput, ClaimTree, TreeScope, get_claim_format
from aop.core.claims.cumulative_v2 import (
    claim_cumulative_instruction,
    publish_cumulative_root_instruction,
)
from aop.core.claims.ring_v0 import (
    claim_channel_open_instruction,
    ring_claim_id,
    set_channel_merkle_root_instruction,
)
from aop.core.events import (
    ChannelEmergencyUnstaked,
    ChannelStaked,
    CumulativeRewardsClaimed,
    ProtocolPaused,
    decode_event,
)
from aop.core.pda import associated_token_address, channel_state_address
from aop.simchain import SimChain, SimConfig
from aop.simchain.errors import SimChainError
from aop.simchain.instructions import (
    emergency_unstake_channel_instruction,
    set_paused_instruction,
    stake_channel_instruction,
    unstake_channel_instruction,
    update_channel_creator_fee_instruction,
)
from aop.simchain.keys import public_key
from aop.simchain.ledger import TxRecord
from aop.simchain.token import decode_token_account
from tests.unit.simchain.landing import custom, send

CONFIG = SimConfig(
    seed=3, slot_ms=0, rate=0, workload=False, wallets=4, channels=("twitch:x",), claim_channels=()
)


@pytest.fixture
def chain() -> SimChain:
    return SimChain(CONFIG)


def tokens(chain: SimChain, owner: Keypair) -> int:
    """The amount in `owner`'s ATA (the newest state)."""
    ata = associated_token_address(owner=owner.pubkey(), mint=chain.mint)
    account = chain.ledger.accounts.get(ata)
    return 0 if account is None else decode_token_account(account.data)[2]


def stake(chain: SimChain, user: Keypair, amount: int, lock: int) -> Instruction:
    return stake_channel_instruction(
        program_id=chain.program_id,
        mint=chain.mint,
        user=user.pubkey(),
        channel="twitch:x",
        amount=amount,
        lock_duration=lock,
    )


def test_stake_then_unstake_moves_tokens_and_emits_both_events(chain: SimChain) -> None:
    """Stake locks tokens in the vault; unstake (no lock) returns them; restake fails 0x0."""
    user = chain.keys.wallet(0)
    before = tokens(chain, user)
    staked = send(chain, [stake(chain, user, 5 * 10**9, 0)], [user])
    assert staked.err is None
    event = decode_event(staked.events[0].data)
    assert isinstance(event, ChannelStaked)
    assert (event.amount, event.lock_duration, event.boost_bps) == (5 * 10**9, 0, 10_000)
    assert tokens(chain, user) == before - 5 * 10**9
    ix = unstake_channel_instruction(
        program_id=chain.program_id, mint=chain.mint, user=user.pubkey(), channel="twitch:x"
    )
    closed = send(chain, [ix], [user])
    assert [e.name for e in closed.events] == ["ChannelUnstaked"]
    assert tokens(chain, user) == before
    again = send(chain, [stake(chain, user, 5 * 10**9, 0)], [user])
    assert custom(again) == 0  # the receipt mint PDA still exists: System "already in use"
    assert any("already in use" in line for line in again.logs)


def test_locked_position_needs_emergency_unstake(chain: SimChain) -> None:
    """Before the lock ends: unstake fails 6052, emergency unstake burns 20 %."""
    user = chain.keys.wallet(1)
    lock = 30 * 216_000
    opened = send(chain, [stake(chain, user, 10 * 10**9, lock)], [user])
    assert decode_event(opened.events[0].data).boost_bps == 15_000  # type: ignore[union-attr]
    args = {
        "program_id": chain.program_id,
        "mint": chain.mint,
        "user": user.pubkey(),
        "channel": "twitch:x",
    }
    assert custom(send(chain, [unstake_channel_instruction(**args)], [user])) == 6052
    record = send(chain, [emergency_unstake_channel_instruction(**args)], [user])
    event = decode_event(record.events[0].data)
    assert isinstance(event, ChannelEmergencyUnstaked)
    assert (event.penalty_amount, event.returned_amount) == (2 * 10**9, 8 * 10**9)
    assert event.remaining_lock_slots == opened.slot + lock - record.slot


def test_failed_instruction_rolls_back_the_whole_transaction(chain: SimChain) -> None:
    """A stake then a stake below the minimum: err [1, 6050], no event, no tokens moved."""
    user = chain.keys.wallet(2)
    before = tokens(chain, user)
    record = send(
        chain,
        [stake(chain, user, 2 * 10**9, 0), stake(chain, chain.keys.wallet(3), 1, 0)],
        [user, chain.keys.wallet(3)],
    )
    assert record.err == {"InstructionError": [1, {"Custom": 6050}]}
    assert record.events == ()
    assert sum(line.startswith("Program data: ") for line in record.logs) == 1
    assert tokens(chain, user) == before


def test_sign_orders_signatures_as_the_message_requires(chain: SimChain) -> None:
    """Signers in any order sign the message in its own order; a missing signer is refused."""
    user, other = chain.keys.wallet(2), chain.keys.wallet(3)
    ixs = [stake(chain, user, 2 * 10**9, 0), stake(chain, other, 2 * 10**9, 0)]
    tx = chain.sign(ixs, [user, other])
    assert tx.verify_with_results() == [True, True]
    assert chain.sign(list(reversed(ixs)), [other, user]).verify_with_results() == [True, True]
    assert [public_key(user), public_key(other)] == [user.pubkey(), other.pubkey()]
    with pytest.raises(SimChainError, match="are not the message's required signers"):
        chain.sign(ixs, [user])


def publish_tree(
    chain: SimChain, channel: str, seq: int, totals: dict[Keypair, int], payer: Keypair
) -> tuple[ClaimTree, TxRecord]:
    scope = TreeScope(chain.program_id, chain.mint, channel, seq, 0)
    tree = get_claim_format("cumulative-v2").build(
        scope, [ClaimInput(bytes(k.pubkey()), t) for k, t in totals.items()]
    )
    ix = publish_cumulative_root_instruction(
        program_id=chain.program_id,
        mint=chain.mint,
        payer=payer.pubkey(),
        channel=channel,
        root_seq=seq,
        root=tree.root,
        dataset_hash=tree.dataset_hash,
    )
    return tree, send(chain, [ix], [payer])


def claim(
    chain: SimChain, tree: ClaimTree, claimer: Keypair, total: int, proof: list[bytes] | None = None
) -> TxRecord:
    creator = chain.keys.creator(tree.scope.channel).pubkey()
    ix = claim_cumulative_instruction(
        program_id=chain.program_id,
        mint=chain.mint,
        claimer=claimer.pubkey(),
        channel=tree.scope.channel,
        root_seq=tree.scope.root_seq,
        cumulative_total=total,
        proof=tree.proof_for(bytes(claimer.pubkey())) if proof is None else proof,
        creator_wallet=creator,
        creator_ata=associated_token_address(owner=creator, mint=chain.mint),
    )
    return send(chain, [ix], [claimer])


def test_pause_blocks_the_publisher_but_not_the_admin(chain: SimChain) -> None:
    """set_paused(true) emits ProtocolPaused; the publisher then gets 6002, the admin publishes."""
    admin, publisher = chain.keys.admin, chain.keys.publisher
    paused = send(
        chain,
        [
            set_paused_instruction(
                program_id=chain.program_id, mint=chain.mint, admin=admin.pubkey(), paused=True
            )
        ],
        [admin],
    )
    assert decode_event(paused.events[0].data) == ProtocolPaused(
        admin=bytes(admin.pubkey()),
        paused=True,
        mint=bytes(chain.mint),
        timestamp=chain.block_time(paused.slot),
    )
    _, by_publisher = publish_tree(chain, "twitch:x", 1, {publisher: 1}, publisher)
    assert custom(by_publisher) == 6002
    _, by_admin = publish_tree(chain, "twitch:x", 1, {publisher: 1}, admin)
    assert by_admin.err is None


def test_old_roots_long_proofs_and_creator_fee(chain: SimChain) -> None:
    """Only the last 4 roots are claimable (6009); > 32 proof nodes is 6006; the creator fee
    splits the delta (floor for the creator)."""
    admin, wallet = chain.keys.admin, chain.keys.wallet(0)
    fee = update_channel_creator_fee_instruction(
        program_id=chain.program_id,
        mint=chain.mint,
        admin=admin.pubkey(),
        channel="twitch:x",
        new_fee_bps=1_234,
    )
    assert [e.name for e in send(chain, [fee], [admin]).events] == ["CreatorFeeUpdated"]
    trees = [
        publish_tree(chain, "twitch:x", seq, {wallet: 1_000 * seq + 7}, admin)[0]
        for seq in range(1, 6)
    ]
    assert custom(claim(chain, trees[0], wallet, 1_007)) == 6009
    assert custom(claim(chain, trees[4], wallet, 5_007, [bytes(32)] * 33)) == 6006
    paid = claim(chain, trees[4], wallet, 5_007)
    event = decode_event(paid.events[0].data)
    assert event == CumulativeRewardsClaimed(
        channel=bytes(chain.channel_config("twitch:x")),
        claimer=bytes(wallet.pubkey()),
        user_amount=5_007 - 5_007 * 1_234 // 10_000,
        creator_amount=5_007 * 1_234 // 10_000,
        cumulative_total=5_007,
        root_seq=5,
    )


def test_ring_v0_root_claim_and_bitmap(chain: SimChain) -> None:
    """set_channel_merkle_root creates the ChannelState; a claim pays once, then AlreadyClaimed;
    an older epoch in the same ring slot is EpochNotIncreasing."""
    publisher, wallet = chain.keys.publisher, chain.keys.wallet(1)
    scope = TreeScope(chain.program_id, chain.mint, "twitch:x", 0, 12)
    tree = get_claim_format("ring-v0").build(
        scope, [ClaimInput(bytes(wallet.pubkey()), 777, 1), ClaimInput(bytes(32), 5, 2)]
    )
    root_ix = set_channel_merkle_root_instruction(
        program_id=chain.program_id,
        mint=chain.mint,
        payer=publisher.pubkey(),
        channel="twitch:x",
        epoch=12,
        root=tree.root,
    )
    assert send(chain, [root_ix], [publisher]).err is None
    state_key = channel_state_address(
        program_id=chain.program_id, mint=chain.mint, channel="twitch:x"
    ).address
    state = ChannelState.decode(chain.ledger.accounts.get(state_key).data)  # type: ignore[union-attr]
    assert (state.latest_epoch, state.slots[2].epoch, state.slots[2].root) == (12, 12, tree.root)
    before = tokens(chain, wallet)
    claim_ix = claim_channel_open_instruction(
        program_id=chain.program_id,
        mint=chain.mint,
        claimer=wallet.pubkey(),
        channel="twitch:x",
        epoch=12,
        index=0,
        amount=777,
        claim_id=ring_claim_id("twitch:x", 12),
        proof=tree.proof(0),
    )
    assert send(chain, [claim_ix], [wallet]).err is None
    assert tokens(chain, wallet) == before + 777
    assert custom(chain.submit(chain.sign([claim_ix, _memo()], [wallet]))) == 6057  # type: ignore[arg-type]
    older = set_channel_merkle_root_instruction(
        program_id=chain.program_id,
        mint=chain.mint,
        payer=publisher.pubkey(),
        channel="twitch:x",
        epoch=2,
        root=tree.root,
    )
    assert custom(send(chain, [older], [publisher])) == 6055


def _memo() -> Instruction:
    from aop.simchain.runtime import MEMO_PROGRAM_ID

    return Instruction(MEMO_PROGRAM_ID, b"again", [])
