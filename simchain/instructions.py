"""Instruction builders for the program's staking and admin instructions.

The cumulative-v2 and ring-v0 builders live in `core.claims`; these cover what only the
simulator's workload (and tests) send. Account order follows the program's
`#[derive(Accounts)]` structs.
"""

from __future__ import annotations

from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey
from solders.sysvar import RENT

from aop.core.anchor import instruction_discriminator
from aop.core.borsh import Writer
from aop.core.pda import channel_config_address, protocol_state_address
from aop.core.program_ids import (
    ASSOCIATED_TOKEN_PROGRAM_ID,
    SYSTEM_PROGRAM_ID,
    TOKEN_2022_PROGRAM_ID,
)
from aop.simchain._pda import find_ata, find_pda
from aop.simchain.genesis import stake_pool_address, stake_vault_address

__all__ = [
    "emergency_unstake_channel_instruction",
    "nft_mint_address",
    "set_paused_instruction",
    "stake_channel_instruction",
    "unstake_channel_instruction",
    "update_channel_creator_fee_instruction",
    "update_publisher_instruction",
    "user_stake_address",
]


def _meta(key: Pubkey, *, signer: bool = False, writable: bool = False) -> AccountMeta:
    return AccountMeta(key, is_signer=signer, is_writable=writable)


def user_stake_address(program_id: Pubkey, channel_config: Pubkey, user: Pubkey) -> Pubkey:
    return find_pda([b"channel_user", bytes(channel_config), bytes(user)], program_id)[0]


def nft_mint_address(program_id: Pubkey, stake_pool: Pubkey, user: Pubkey) -> Pubkey:
    return find_pda([b"stake_nft", bytes(stake_pool), bytes(user)], program_id)[0]


def stake_channel_instruction(
    *, program_id: Pubkey, mint: Pubkey, user: Pubkey, channel: str, amount: int, lock_duration: int
) -> Instruction:
    """`stake_channel(amount, lock_duration)`; the user pays rent for the new accounts."""
    config = channel_config_address(program_id=program_id, mint=mint, channel=channel).address
    pool = stake_pool_address(program_id, config)
    nft_mint = nft_mint_address(program_id, pool, user)
    data = (
        Writer().fixed(instruction_discriminator("stake_channel"), 8).u64(amount).u64(lock_duration)
    )
    return Instruction(
        program_id,
        data.to_bytes(),
        [
            _meta(user, signer=True),
            _meta(user, signer=True, writable=True),
            _meta(protocol_state_address(program_id=program_id, mint=mint).address),
            _meta(config),
            _meta(mint),
            _meta(pool, writable=True),
            _meta(user_stake_address(program_id, config, user), writable=True),
            _meta(stake_vault_address(program_id, pool), writable=True),
            _meta(find_ata(user, mint), writable=True),
            _meta(nft_mint, writable=True),
            _meta(find_ata(user, nft_mint), writable=True),
            _meta(TOKEN_2022_PROGRAM_ID),
            _meta(ASSOCIATED_TOKEN_PROGRAM_ID),
            _meta(SYSTEM_PROGRAM_ID),
            _meta(RENT),
        ],
    )


def _unstake(
    name: str, *, program_id: Pubkey, mint: Pubkey, user: Pubkey, channel: str
) -> Instruction:
    config = channel_config_address(program_id=program_id, mint=mint, channel=channel).address
    pool = stake_pool_address(program_id, config)
    nft_mint = nft_mint_address(program_id, pool, user)
    return Instruction(
        program_id,
        instruction_discriminator(name),
        [
            _meta(user, signer=True, writable=True),
            _meta(config),
            _meta(mint, writable=True),
            _meta(pool, writable=True),
            _meta(user_stake_address(program_id, config, user), writable=True),
            _meta(stake_vault_address(program_id, pool), writable=True),
            _meta(find_ata(user, mint), writable=True),
            _meta(nft_mint, writable=True),
            _meta(find_ata(user, nft_mint), writable=True),
            _meta(TOKEN_2022_PROGRAM_ID),
            _meta(ASSOCIATED_TOKEN_PROGRAM_ID),
        ],
    )


def unstake_channel_instruction(
    *, program_id: Pubkey, mint: Pubkey, user: Pubkey, channel: str
) -> Instruction:
    """`unstake_channel()`: closes the position once its lock has ended."""
    return _unstake("unstake_channel", program_id=program_id, mint=mint, user=user, channel=channel)


def emergency_unstake_channel_instruction(
    *, program_id: Pubkey, mint: Pubkey, user: Pubkey, channel: str
) -> Instruction:
    """`emergency_unstake_channel()`: closes the position before its lock, 20 % burned."""
    return _unstake(
        "emergency_unstake_channel", program_id=program_id, mint=mint, user=user, channel=channel
    )


def _admin(
    name: str,
    args: Writer,
    *,
    program_id: Pubkey,
    mint: Pubkey,
    admin: Pubkey,
    channel: str | None = None,
) -> Instruction:
    accounts = [
        _meta(admin, signer=True, writable=True),
        _meta(protocol_state_address(program_id=program_id, mint=mint).address, writable=True),
    ]
    if channel is not None:
        config = channel_config_address(program_id=program_id, mint=mint, channel=channel).address
        accounts.append(_meta(config, writable=True))
    return Instruction(program_id, instruction_discriminator(name) + args.to_bytes(), accounts)


def update_publisher_instruction(
    *, program_id: Pubkey, mint: Pubkey, admin: Pubkey, new_publisher: Pubkey
) -> Instruction:
    """`update_publisher(new_publisher)` (admin only); emits PublisherUpdated."""
    return _admin(
        "update_publisher",
        Writer().pubkey(bytes(new_publisher)),
        program_id=program_id,
        mint=mint,
        admin=admin,
    )


def set_paused_instruction(
    *, program_id: Pubkey, mint: Pubkey, admin: Pubkey, paused: bool
) -> Instruction:
    """`set_paused(paused)` (admin only); emits ProtocolPaused."""
    return _admin(
        "set_paused", Writer().boolean(paused), program_id=program_id, mint=mint, admin=admin
    )


def update_channel_creator_fee_instruction(
    *, program_id: Pubkey, mint: Pubkey, admin: Pubkey, channel: str, new_fee_bps: int
) -> Instruction:
    """`update_channel_creator_fee(channel, new_fee_bps)` (admin only); emits CreatorFeeUpdated."""
    return _admin(
        "update_channel_creator_fee",
        Writer().string(channel).u16(new_fee_bps),
        program_id=program_id,
        mint=mint,
        admin=admin,
        channel=channel,
    )
