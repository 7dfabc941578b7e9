"""Admin instructions that emit events: publisher, pause, creator fee, root-seq recovery.

Accounts are (admin signer, protocol_state writable[, channel_config writable]); only the
protocol admin may call them (Unauthorized, 6000, otherwise).
"""

from __future__ import annotations

import dataclasses

from solders.pubkey import Pubkey

from aop.core.accounts import ProtocolState
from aop.core.events import CreatorFeeUpdated, ProtocolPaused, PublisherUpdated, RootSeqRecovered
from aop.simchain.invoke import InvokeContext
from aop.simchain.program.anchor import (
    account_key,
    decode_args,
    require,
    require_signer,
    require_writable,
)
from aop.simchain.program.common import load_channel_config, load_protocol, store
from aop.simchain.program.cumulative import MAX_CREATOR_FEE_BPS

__all__ = ["admin_recover_root_seq", "set_paused", "update_channel_creator_fee", "update_publisher"]


def _admin(ctx: InvokeContext) -> tuple[Pubkey, ProtocolState]:
    """The signing admin (account 0) and the protocol state (account 1)."""
    admin = require_signer(ctx, 0, "admin")
    protocol = load_protocol(ctx, 1)
    require(ctx, bytes(admin) == protocol.admin, "Unauthorized")
    return admin, protocol


def update_publisher(ctx: InvokeContext) -> None:
    """args (new_publisher: Pubkey); emits PublisherUpdated."""
    new_publisher = decode_args(ctx, lambda r: r.pubkey())
    admin, protocol = _admin(ctx)
    key = require_writable(ctx, 1, "protocol_state")
    store(ctx, key, dataclasses.replace(protocol, publisher=new_publisher).encode())
    event = PublisherUpdated(
        admin=bytes(admin),
        old_publisher=protocol.publisher,
        new_publisher=new_publisher,
        mint=protocol.mint,
        timestamp=ctx.unix_timestamp,
    )
    ctx.emit(event.NAME, event.encode())


def set_paused(ctx: InvokeContext) -> None:
    """args (paused: bool); emits ProtocolPaused."""
    paused = decode_args(ctx, lambda r: r.boolean())
    admin, protocol = _admin(ctx)
    key = require_writable(ctx, 1, "protocol_state")
    store(ctx, key, dataclasses.replace(protocol, paused=paused).encode())
    event = ProtocolPaused(
        admin=bytes(admin), paused=paused, mint=protocol.mint, timestamp=ctx.unix_timestamp
    )
    ctx.emit(event.NAME, event.encode())


def update_channel_creator_fee(ctx: InvokeContext) -> None:
    """args (channel: String, new_fee_bps: u16); emits CreatorFeeUpdated."""
    channel, fee = decode_args(ctx, lambda r: (r.string(), r.u16()))
    admin, protocol = _admin(ctx)
    config = load_channel_config(ctx, 2, protocol, channel)
    key = require_writable(ctx, 2, "channel_config")
    require(ctx, fee <= MAX_CREATOR_FEE_BPS, "CreatorFeeTooHigh")
    store(ctx, key, dataclasses.replace(config, creator_fee_bps=fee).encode())
    event = CreatorFeeUpdated(
        admin=bytes(admin),
        channel_config=bytes(account_key(ctx, 2)),
        old_fee_bps=config.creator_fee_bps or 0,
        new_fee_bps=fee,
        timestamp=ctx.unix_timestamp,
    )
    ctx.emit(event.NAME, event.encode())


def admin_recover_root_seq(ctx: InvokeContext) -> None:
    """args (channel: String, new_seq: u64); jumps latest_root_seq forward; RootSeqRecovered."""
    channel, new_seq = decode_args(ctx, lambda r: (r.string(), r.u64()))
    admin, protocol = _admin(ctx)
    config = load_channel_config(ctx, 2, protocol, channel)
    key = require_writable(ctx, 2, "channel_config")
    require(ctx, new_seq > config.latest_root_seq, "InvalidRootSeq")
    store(ctx, key, dataclasses.replace(config, latest_root_seq=new_seq).encode())
    event = RootSeqRecovered(
        admin=bytes(admin),
        channel_config=bytes(key),
        old_seq=config.latest_root_seq,
        new_seq=new_seq,
        timestamp=ctx.unix_timestamp,
    )
    ctx.emit(event.NAME, event.encode())
