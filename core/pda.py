"""Program-derived addresses of the attention-oracle accounts (seeds from reference §3.3, §9).

Every function takes the program id: it is a setting, not a constant. Results are cached,
since a derivation costs ~20 µs and the same channel's addresses are asked for repeatedly.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

from solders.pubkey import Pubkey
from solders.token.associated import get_associated_token_address

from aop.core.channel import subject_id
from aop.core.program_ids import TOKEN_2022_PROGRAM_ID

__all__ = [
    "Pda",
    "associated_token_address",
    "channel_config_address",
    "channel_state_address",
    "claim_state_address",
    "claim_state_addresses",
    "protocol_state_address",
]


class Pda(NamedTuple):
    """A program-derived address and its bump seed."""

    address: Pubkey
    bump: int


@lru_cache(maxsize=4096)
def _find(program_id: Pubkey, *seeds: bytes) -> Pda:
    address, bump = Pubkey.find_program_address(list(seeds), program_id)
    return Pda(address, bump)


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
