"""ring-v0 instructions of the program at v0.2.1-clean (reference §9). Neither emits events.

`set_channel_merkle_root` writes ring slot `epoch % 10` of the channel's ChannelState,
creating the account on first use; `claim_channel_open` spends bit `index` of that slot's
bitmap and pays `amount` from the treasury.
"""

from __future__ import annotations

import dataclasses

from solders.pubkey import Pubkey

from aop.core.accounts import CHANNEL_BITMAP_BYTES, CHANNEL_RING_SLOTS, ChannelSlot, ChannelState
from aop.core.claims.ring_v0 import MAX_CLAIMS, MAX_ID_BYTES, ring_leaf
from aop.core.merkle import MAX_PROOF_LEN, verify_proof
from aop.simchain._pda import find_pda
from aop.simchain.invoke import InvokeContext
from aop.simchain.program.anchor import (
    account_key,
    decode_args,
    load,
    require,
    require_ata,
    require_signer,
    require_writable,
)
from aop.simchain.program.common import (
    channel_subject,
    init_program_account,
    load_protocol,
    store,
)
from aop.simchain.token import create_ata, transfer_checked

__all__ = ["claim_channel_open", "set_channel_merkle_root"]

_DEFAULT = bytes(32)


def _channel_state_key(ctx: InvokeContext, mint: bytes, channel: str) -> tuple[Pubkey, int]:
    subject = channel_subject(ctx, channel)
    return find_pda([b"channel_state", mint, subject], ctx.program_id)


def set_channel_merkle_root(ctx: InvokeContext) -> None:
    """args (channel, epoch u64, root [32]); accounts payer, protocol_state (writable),
    channel_state (writable, auto-created), system_program."""
    channel, epoch, root = decode_args(ctx, lambda r: (r.string(), r.u64(), r.pubkey()))
    payer = require_signer(ctx, 0, "payer")
    protocol = load_protocol(ctx, 1)
    state_key = require_writable(ctx, 2, "channel_state")
    require(ctx, not protocol.paused, "ProtocolPaused")
    signer = bytes(payer)
    require(
        ctx,
        signer == protocol.admin
        or (protocol.publisher != _DEFAULT and signer == protocol.publisher),
        "Unauthorized",
    )
    expected, bump = _channel_state_key(ctx, protocol.mint, channel)
    require(ctx, state_key == expected, "InvalidChannelState")
    if not ctx.accounts.exists(state_key):
        empty = ChannelSlot(0, _DEFAULT, 0, bytes(CHANNEL_BITMAP_BYTES))
        fresh = ChannelState(
            1, bump, protocol.mint, channel_subject(ctx, channel), 0, (empty,) * CHANNEL_RING_SLOTS
        )
        init_program_account(ctx, payer=payer, new=state_key, data=fresh.encode())
    state = load(ctx, 2, "channel_state", ChannelState.decode)
    index = epoch % CHANNEL_RING_SLOTS
    existing = state.slots[index].epoch
    require(ctx, existing == 0 or epoch > existing, "EpochNotIncreasing")
    slots = list(state.slots)
    slots[index] = ChannelSlot(epoch, root, 0, bytes(CHANNEL_BITMAP_BYTES))
    updated = dataclasses.replace(
        state, slots=tuple(slots), latest_epoch=max(state.latest_epoch, epoch)
    )
    store(ctx, state_key, updated.encode())
    ctx.log(f"Channel root set: channel={channel}, epoch={epoch}")


def claim_channel_open(ctx: InvokeContext) -> None:
    """args (channel, epoch u64, index u32, amount u64, id String, proof); 9 accounts (see
    `core.claims.ring_v0.claim_channel_open_instruction`)."""
    channel, epoch, index, amount, claim_id, proof = decode_args(
        ctx, lambda r: (r.string(), r.u64(), r.u32(), r.u64(), r.string(), r.vec_bytes32())
    )
    claimer = require_signer(ctx, 0, "claimer")
    protocol = load_protocol(ctx, 1)
    protocol_key = account_key(ctx, 1)
    state_key = require_writable(ctx, 2, "channel_state")
    mint = account_key(ctx, 3)
    treasury = require_ata(ctx, 4, "treasury_ata", owner=protocol_key, mint=mint)
    claimer_ata = require_ata(ctx, 5, "claimer_ata", owner=claimer, mint=mint)
    create_ata(ctx, payer=claimer, owner=claimer, mint=mint)
    expected, _ = _channel_state_key(ctx, protocol.mint, channel)
    require(ctx, state_key == expected, "InvalidChannelState")
    require(ctx, bytes(mint) == protocol.mint, "InvalidMint")
    require(ctx, index < MAX_CLAIMS, "InvalidIndex")
    require(ctx, len(claim_id.encode("utf-8")) <= MAX_ID_BYTES, "InvalidInputLength")
    require(ctx, len(proof) <= MAX_PROOF_LEN, "InvalidProofLength")
    state = load(ctx, 2, "channel_state", ChannelState.decode)
    slot_index = epoch % CHANNEL_RING_SLOTS
    slot = state.slots[slot_index]
    require(ctx, slot.epoch == epoch, "SlotMismatch")
    require(ctx, not slot.is_claimed(index), "AlreadyClaimed")
    leaf = ring_leaf(bytes(claimer), index, amount, claim_id)
    require(ctx, verify_proof(leaf, proof, slot.root), "InvalidProof")
    bitmap = bytearray(slot.claimed_bitmap)
    bitmap[index // 8] |= 1 << (index % 8)
    slots = list(state.slots)
    slots[slot_index] = dataclasses.replace(
        slot, claimed_bitmap=bytes(bitmap), claim_count=slot.claim_count + 1
    )
    store(ctx, state_key, dataclasses.replace(state, slots=tuple(slots)).encode())
    transfer_checked(
        ctx,
        source=treasury,
        mint=mint,
        destination=claimer_ata,
        authority=protocol_key,
        amount=amount,
    )
