"""Pieces every instruction of the program shares: the protocol state and channel checks."""

from __future__ import annotations

from solders.pubkey import Pubkey

from aop.core.accounts import ChannelConfigV2, ProtocolState
from aop.core.channel import subject_id
from aop.core.errors import InvalidChannelNameError
from aop.simchain.invoke import InvokeContext
from aop.simchain.ledger import Account
from aop.simchain.program.anchor import fail, load, require_pda
from aop.simchain.token import create_account

__all__ = [
    "channel_subject",
    "is_publish_authority",
    "load_channel_config",
    "load_protocol",
    "store",
]

_DEFAULT_KEY = bytes(32)


def is_publish_authority(protocol: ProtocolState, signer: bytes) -> bool:
    """May `signer` publish roots: the admin, or the allow-listed publisher when it is set (not
    the default key). The same rule for per-channel and global roots (reference §5, §G3.2)."""
    return signer == protocol.admin or (
        protocol.publisher != _DEFAULT_KEY and signer == protocol.publisher
    )


def load_protocol(ctx: InvokeContext, index: int) -> ProtocolState:
    """`protocol_state`: seeds ["protocol", protocol_state.mint], owned by the program."""
    state = load(ctx, index, "protocol_state", ProtocolState.decode)
    require_pda(ctx, index, "protocol_state", [b"protocol", state.mint])
    return state


def channel_subject(ctx: InvokeContext, channel: str) -> bytes:
    """The subject of `channel`, or InvalidChannelName (6049) as `cumulative.rs:28-35`."""
    try:
        return subject_id(channel)
    except InvalidChannelNameError:
        fail(ctx, "InvalidChannelName")


def load_channel_config(
    ctx: InvokeContext, index: int, protocol: ProtocolState, channel: str
) -> ChannelConfigV2:
    """`channel_config`: seeds ["channel_cfg_v2", mint, subject(channel)], then decoded."""
    subject = channel_subject(ctx, channel)
    require_pda(ctx, index, "channel_config", [b"channel_cfg_v2", protocol.mint, subject])
    return load(ctx, index, "channel_config", ChannelConfigV2.decode)


def store(ctx: InvokeContext, key: Pubkey, data: bytes) -> None:
    """Rewrite the data of an existing program-owned account (same size, same lamports)."""
    account = ctx.accounts.get(key)
    lamports = account.lamports if account is not None else 0
    ctx.accounts.put(key, Account(lamports, data, ctx.program_id))


def init_program_account(ctx: InvokeContext, *, payer: Pubkey, new: Pubkey, data: bytes) -> None:
    """Anchor's `init`: `new` becomes a program-owned account holding `data` (its size), its
    rent paid by `payer` (System CreateAccount, as `token.create_account`)."""
    create_account(ctx, payer=payer, new=new, space=len(data), owner=ctx.program_id, data=data)
