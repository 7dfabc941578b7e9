"""Cumulative-v2 instructions of the program at Genesis (reference §3.5), rule for rule.

`initialize_channel_cumulative`, `publish_cumulative_root` and `claim_cumulative`. Checks
run in the program's order and fail with its error numbers; effects write the accounts with
`core.accounts` encoders, so their bytes are what the real program stores.
"""

from __future__ import annotations

import dataclasses

from solders.pubkey import Pubkey

from aop.core.accounts import ChannelConfigV2, RootEntry
from aop.core.borsh import Reader
from aop.core.claims.cumulative_v2 import cumulative_leaf
from aop.core.events import CumulativeRewardsClaimed
from aop.core.merkle import MAX_PROOF_LEN, verify_proof
from aop.core.program_ids import TOKEN_2022_PROGRAM_ID
from aop.simchain.invoke import InvokeContext
from aop.simchain.program.anchor import (
    account_key,
    decode_args,
    fail,
    load,
    require,
    require_address,
    require_ata,
    require_pda,
    require_signer,
    require_writable,
)
from aop.simchain.program.common import (
    channel_subject,
    init_program_account,
    is_publish_authority,
    load_channel_config,
    load_protocol,
    store,
)
from aop.simchain.program.state import ClaimStateV2
from aop.simchain.token import create_ata, transfer_checked

__all__ = ["claim_cumulative", "initialize_channel_cumulative", "publish_cumulative_root"]

_DEFAULT = bytes(32)
MAX_CREATOR_FEE_BPS = 5000


def initialize_channel_cumulative(ctx: InvokeContext) -> None:
    """args (channel, cutover_epoch u64, creator_wallet, creator_fee_bps u16); accounts payer,
    protocol_state, channel_config (init_if_needed, 482 bytes), system_program."""
    channel, cutover, creator, fee = decode_args(
        ctx, lambda r: (r.string(), r.u64(), r.pubkey(), r.u16())
    )
    payer = require_signer(ctx, 0, "payer")
    require_writable(ctx, 0, "payer")
    protocol = load_protocol(ctx, 1)
    subject = channel_subject(ctx, channel)
    bump = require_pda(ctx, 2, "channel_config", [b"channel_cfg_v2", protocol.mint, subject])
    config_key = require_writable(ctx, 2, "channel_config")
    require(ctx, is_publish_authority(protocol, bytes(payer)), "Unauthorized")
    require(ctx, fee <= MAX_CREATOR_FEE_BPS, "CreatorFeeTooHigh")
    if ctx.accounts.exists(config_key):
        config = load(ctx, 2, "channel_config", ChannelConfigV2.decode)
        require(
            ctx, config.mint == protocol.mint and config.subject == subject, "InvalidChannelState"
        )
        return
    empty = RootEntry(0, _DEFAULT, _DEFAULT, 0)
    config = ChannelConfigV2(
        version=1,
        bump=bump,
        mint=protocol.mint,
        subject=subject,
        authority=bytes(payer),
        latest_root_seq=0,
        cutover_epoch=cutover,
        creator_wallet=creator,
        creator_fee_bps=fee,
        roots=(empty,) * 4,
    )
    init_program_account(ctx, payer=payer, new=config_key, data=config.encode())


def publish_cumulative_root(ctx: InvokeContext) -> None:
    """args (channel, root_seq u64, root [32], dataset_hash [32]); accounts payer (signer,
    writable), protocol_state (read-only), channel_config (writable). No event."""
    channel, root_seq, root, dataset_hash = decode_args(
        ctx, lambda r: (r.string(), r.u64(), r.pubkey(), r.pubkey())
    )
    payer = require_signer(ctx, 0, "payer")
    require_writable(ctx, 0, "payer")
    protocol = load_protocol(ctx, 1)
    config = load_channel_config(ctx, 2, protocol, channel)
    config_key = require_writable(ctx, 2, "channel_config")
    signer = bytes(payer)
    require(ctx, is_publish_authority(protocol, signer), "Unauthorized")
    require(ctx, not protocol.paused or signer == protocol.admin, "ProtocolPaused")
    require(
        ctx,
        config.version == 1
        and config.mint == protocol.mint
        and config.subject == channel_subject(ctx, channel),
        "InvalidChannelState",
    )
    require(ctx, root_seq == config.latest_root_seq + 1, "InvalidRootSeq")
    roots = list(config.roots)
    roots[root_seq % 4] = RootEntry(root_seq, root, dataset_hash, ctx.slot)
    updated = dataclasses.replace(config, roots=tuple(roots), latest_root_seq=root_seq)
    store(ctx, config_key, updated.encode())
    ctx.consume(2_100)


def _claim_args(r: Reader) -> tuple[str, int, int, list[bytes]]:
    return r.string(), r.u64(), r.u64(), r.vec_bytes32()


def claim_cumulative(ctx: InvokeContext) -> None:
    """args (channel, root_seq, cumulative_total, proof Vec<[u8;32]>); 12 accounts (see
    `core.claims.cumulative_v2.claim_cumulative_instruction`). Pays the delta; emits
    `CumulativeRewardsClaimed` only when the delta is positive."""
    channel, root_seq, total, proof = decode_args(ctx, _claim_args)
    claimer = require_signer(ctx, 0, "claimer")
    require_writable(ctx, 0, "claimer")
    protocol = load_protocol(ctx, 1)
    config = load_channel_config(ctx, 2, protocol, channel)
    config_key = account_key(ctx, 2)
    claim_bump = require_pda(
        ctx, 3, "claim_state", [b"claim_state_v2", bytes(config_key), bytes(claimer)]
    )
    claim_key = require_writable(ctx, 3, "claim_state")
    mint = account_key(ctx, 4)
    treasury = account_key(ctx, 5)
    claimer_ata = account_key(ctx, 6)
    creator_wallet = account_key(ctx, 7)
    creator_ata_key = account_key(ctx, 8)
    protocol_key = account_key(ctx, 1)
    require_address(ctx, 9, "token_program", TOKEN_2022_PROGRAM_ID, error="InvalidTokenProgram")
    creator_ata = None if creator_ata_key == ctx.program_id else creator_ata_key
    require_ata(ctx, 5, "treasury_ata", owner=protocol_key, mint=mint)
    require_ata(ctx, 6, "claimer_ata", owner=claimer, mint=mint)
    if creator_ata is not None:
        require_ata(ctx, 8, "creator_ata", owner=creator_wallet, mint=mint)
    # Anchor's init_if_needed accounts are created while the accounts are validated, before
    # the handler runs (a failing handler rolls them back with the transaction).
    if not ctx.accounts.exists(claim_key):
        fresh = ClaimStateV2(1, claim_bump, bytes(config_key), bytes(claimer), 0, 0)
        init_program_account(ctx, payer=claimer, new=claim_key, data=fresh.encode())
    create_ata(ctx, payer=claimer, owner=claimer, mint=mint)
    if creator_ata is not None:
        create_ata(ctx, payer=claimer, owner=creator_wallet, mint=mint)

    # Handler, in the order of cumulative.rs:263-391.
    require(ctx, not protocol.paused, "ProtocolPaused")
    require(ctx, bytes(mint) == protocol.mint, "InvalidMint")
    require(ctx, len(proof) <= MAX_PROOF_LEN, "InvalidProofLength")
    require(
        ctx,
        config.version == 1
        and config.mint == protocol.mint
        and config.subject == channel_subject(ctx, channel),
        "InvalidChannelState",
    )
    if config.creator_wallet is not None and bytes(creator_wallet) != config.creator_wallet:
        require_address(ctx, 7, "creator_wallet", Pubkey(config.creator_wallet))
    fee_bps = config.creator_fee_bps or 0
    if fee_bps > 0 and creator_ata is None:
        fail(ctx, "MissingCreatorAta")
    entry = config.roots[root_seq % 4]
    require(ctx, entry.seq == root_seq, "RootTooOldOrMissing")
    leaf = cumulative_leaf(
        channel_config=config_key,
        mint=Pubkey(protocol.mint),
        root_seq=root_seq,
        wallet=bytes(claimer),
        cumulative_total=total,
    )
    require(ctx, verify_proof(leaf, proof, entry.root), "InvalidProof")
    ctx.consume(1_800 * (len(proof) + 1))
    state = load(ctx, 3, "claim_state", ClaimStateV2.decode)
    require(
        ctx,
        state.channel == bytes(config_key) and state.wallet == bytes(claimer),
        "InvalidClaimState",
    )
    if total <= state.claimed_total:
        return
    delta = total - state.claimed_total
    creator_amount = delta * fee_bps // 10_000
    user_amount = delta - creator_amount
    transfer_checked(
        ctx,
        source=treasury,
        mint=mint,
        destination=claimer_ata,
        authority=protocol_key,
        amount=user_amount,
    )
    if creator_amount > 0 and creator_ata is not None:
        transfer_checked(
            ctx,
            source=treasury,
            mint=mint,
            destination=creator_ata,
            authority=protocol_key,
            amount=creator_amount,
        )
    store(
        ctx,
        claim_key,
        dataclasses.replace(state, claimed_total=total, last_claim_seq=root_seq).encode(),
    )
    event = CumulativeRewardsClaimed(
        channel=bytes(config_key),
        claimer=bytes(claimer),
        user_amount=user_amount,
        creator_amount=creator_amount,
        cumulative_total=total,
        root_seq=root_seq,
    )
    ctx.emit(event.NAME, event.encode())
