"""Program-derived addresses of the attention-oracle accounts (seeds from reference §3.3, §9).

Every function takes the program id: it is a setting, not a constant. Results are cached,
since a derivation costs ~20 µs and the same channel's addresses are asked for repeatedly.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal, NamedTuple

from solders.pubkey import Pubkey
from solders.token.associated import get_associated_token_address

from aop.core.channel import subject_id
from aop.core.program_ids import TOKEN_2022_PROGRAM_ID

__all__ = [
    "GlobalProtocolSeeds",
    "Pda",
    "associated_token_address",
    "attention_root_key",
    "channel_config_address",
    "channel_state_address",
    "claim_state_address",
    "claim_state_addresses",
    "claim_state_global_address",
    "claim_state_global_addresses",
    "global_protocol_state_address",
    "global_root_config_address",
    "protocol_state_address",
]

#: Which ProtocolState the global instructions name (reference §G2.3, §G10.1): the singleton
#: `["protocol_state"]` of HEAD, the Pinocchio source and the SDK (the default), or the
#: mint-keyed `["protocol", mint]` of `385f929`. The treasury ATA follows from it.
GlobalProtocolSeeds = Literal["singleton", "mint"]


class Pda(NamedTuple):
    """A program-derived address and its bump seed."""

    address: Pubkey
    bump: int


@lru_cache(maxsize=4096)
def _find(program_id: Pubkey, *seeds: bytes) -> Pda:
    address, bump = Pubkey.find_program_address(list(seeds), program_id)
    return Pda(address, bump)


def attention_root_key(*, program_id: Pubkey, mint: Pubkey, channel: str) -> Pda:
    """The key of a channel's attention roots: seeds ["aop_attention", mint, subject_id].

    Not an account of the program (no instruction creates or reads it): an address derived
    like one, so attention roots have a root account of their own on `aop.epoch.roots` and in
    the projections, apart from the channel's stake-time roots (`docs/attention.md`).

    Raises:
        InvalidChannelNameError: `channel` is not 1-64 ASCII characters.
    """
    return _find(program_id, b"aop_attention", bytes(mint), subject_id(channel))


def protocol_state_address(*, program_id: Pubkey, mint: Pubkey) -> Pda:
    """ProtocolState: seeds ["protocol", mint]."""
    return _find(program_id, b"protocol", bytes(mint))


def channel_config_address(*, program_id: Pubkey, mint: Pubkey, channel: str) -> Pda:
    """ChannelConfigV2: seeds ["channel_cfg_v2", mint, subject_id(channel)].

    Raises:
        InvalidChannelNameError: `channel` is not 1-64 ASCII characters.
    """
    return _find(program_id, b"channel_cfg_v2", bytes(mint), subject_id(channel))


_CLAIM_STATE_SEED = b"claim_state_v2"


def claim_state_address(*, program_id: Pubkey, channel_config: Pubkey, wallet: Pubkey) -> Pda:
    """ClaimStateV2: seeds ["claim_state_v2", channel_config PDA, wallet]."""
    return _find(program_id, _CLAIM_STATE_SEED, bytes(channel_config), bytes(wallet))


def claim_state_addresses(
    *, program_id: Pubkey, channel_config: Pubkey, wallets: bytes, stride: int = 32
) -> bytes:
    """The ClaimStateV2 addresses of many wallets at once (a whole root's), uncached.

    Args:
        wallets: 32-byte wallets, one starting every `stride` bytes (e.g. the first 32 bytes
            of each fixed-size record).
    Returns:
        the addresses, 32 bytes each, in the wallets' order.
    """
    config = bytes(channel_config)
    find = Pubkey.find_program_address
    return b"".join(
        bytes(find([_CLAIM_STATE_SEED, config, wallets[at : at + 32]], program_id)[0])
        for at in range(0, len(wallets), stride)
    )


def channel_state_address(*, program_id: Pubkey, mint: Pubkey, channel: str) -> Pda:
    """v0.2.1-clean ring ChannelState: seeds ["channel_state", mint, streamer_key(channel)].

    Raises:
        InvalidChannelNameError: `channel` is not 1-64 ASCII characters.
    """
    return _find(program_id, b"channel_state", bytes(mint), subject_id(channel))


def associated_token_address(
    *, owner: Pubkey, mint: Pubkey, token_program: Pubkey = TOKEN_2022_PROGRAM_ID
) -> Pubkey:
    """The associated token account of `owner` for `mint` (Token-2022 unless told otherwise).

    The program's treasury is `associated_token_address(owner=<ProtocolState PDA>, mint=mint)`.
    """
    return get_associated_token_address(owner, mint, token_program)


def global_protocol_state_address(
    *, program_id: Pubkey, mint: Pubkey, seeds: GlobalProtocolSeeds = "singleton"
) -> Pda:
    """The ProtocolState the global instructions use: `["protocol_state"]` (singleton, the
    default) or `["protocol", mint]` (the `385f929` form); see `GlobalProtocolSeeds`."""
    if seeds == "singleton":
        return _find(program_id, b"protocol_state")
    return protocol_state_address(program_id=program_id, mint=mint)


def global_root_config_address(*, program_id: Pubkey, mint: Pubkey) -> Pda:
    """GlobalRootConfig: seeds ["global_root", mint] (one root ring per mint)."""
    return _find(program_id, b"global_root", bytes(mint))


_CLAIM_GLOBAL_SEED = b"claim_global"


def claim_state_global_address(*, program_id: Pubkey, mint: Pubkey, wallet: Pubkey) -> Pda:
    """ClaimStateGlobal: seeds ["claim_global", mint, wallet] (shared by V4 and V5 claims)."""
    return _find(program_id, _CLAIM_GLOBAL_SEED, bytes(mint), bytes(wallet))


def claim_state_global_addresses(
    *, program_id: Pubkey, mint: Pubkey, wallets: bytes, stride: int = 32
) -> bytes:
    """The ClaimStateGlobal addresses of many wallets at once (a whole root's), uncached.

    Args:
        wallets: 32-byte wallets, one starting every `stride` bytes.
    Returns:
        the addresses, 32 bytes each, in the wallets' order.
    """
    mint_bytes = bytes(mint)
    find = Pubkey.find_program_address
    return b"".join(
        bytes(find([_CLAIM_GLOBAL_SEED, mint_bytes, wallets[at : at + 32]], program_id)[0])
        for at in range(0, len(wallets), stride)
    )
