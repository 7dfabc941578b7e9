"""Channel staking with soulbound receipt NFTs, as in the program's `staking.rs`.

One open position per (channel, user): `user_stake` = PDA ["channel_user", channel_config,
user], created by `stake_channel` and closed by `unstake_channel` (after the lock) or
`emergency_unstake_channel` (before it, 20 % penalty burned). The receipt NFT mint is the PDA
["stake_nft", stake_pool, user]; burning the receipt does not close that mint, so (as in the
real program) the same user cannot stake on the same channel twice: the second
`create_account` fails with System error 0x0 ("already in use").
"""

from __future__ import annotations

import dataclasses
import struct

from solders.pubkey import Pubkey

from aop.core.accounts import ChannelConfigV2
from aop.core.events import ChannelEmergencyUnstaked, ChannelStaked, ChannelUnstaked
from aop.core.program_ids import TOKEN_2022_PROGRAM_ID
from aop.simchain.errors import InstructionFailedError
from aop.simchain.invoke import InvokeContext
from aop.simchain.ledger import Account
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
from aop.simchain.program.common import load_protocol, store
from aop.simchain.program.state import ChannelStakePool, UserChannelStake
from aop.simchain.token import (
    burn,
    create_account,
    create_ata,
    decode_token_account,
    encode_mint,
    token_balance,
    transfer_checked,
)

__all__ = [
    "BOOST_PRECISION",
    "MAX_LOCK_SLOTS",
    "MIN_STAKE_AMOUNT",
    "SLOTS_PER_DAY",
    "boost_bps",
    "emergency_unstake_channel",
    "stake_channel",
    "unstake_channel",
]

MIN_STAKE_AMOUNT = 1_000_000_000
SLOTS_PER_DAY = 216_000
MAX_LOCK_SLOTS = 432_000 * 365
BOOST_PRECISION = 10_000
_NFT_MINT_LEN = 170


def boost_bps(lock_duration: int) -> int:
    """`calculate_boost_bps`: 1.0x under 7 days of lock, up to 3.0x for a year or more."""
    days = lock_duration // SLOTS_PER_DAY
    if days <= 6:
        return 10_000
    if days <= 29:
        return 12_500
    if days <= 89:
        return 15_000
    if days <= 179:
        return 20_000
    if days <= 364:
        return 25_000
    return 30_000


def _pool(ctx: InvokeContext, index: int, config_key: Pubkey) -> ChannelStakePool:
    require_pda(ctx, index, "stake_pool", [b"channel_pool", bytes(config_key)])
    require_writable(ctx, index, "stake_pool")
    return load(ctx, index, "stake_pool", ChannelStakePool.decode)


def _user_token_account(ctx: InvokeContext, index: int, user: Pubkey, mint: Pubkey) -> Pubkey:
    key = account_key(ctx, index)
    account = ctx.accounts.get(key)
    if account is None or account.owner != TOKEN_2022_PROGRAM_ID:
        fail(ctx, "AccountNotInitialized", account="user_token_account")
    token_mint, owner, _ = decode_token_account(account.data)
    if owner != user:
        fail(ctx, "Unauthorized", account="user_token_account")
    if token_mint != mint:
        fail(ctx, "InvalidMint", account="user_token_account")
    return key


def _nft_mint_data(pool: Pubkey) -> bytes:
    """A Token-2022 mint with the NonTransferable extension (before InitializeMint2)."""
    base = encode_mint(authority=pool, supply=0, decimals=0, freeze=pool)
    return base + bytes(165 - len(base)) + b"\x01" + struct.pack("<HH", 9, 0)


def stake_channel(ctx: InvokeContext) -> None:
    """args (amount u64, lock_duration u64); 15 accounts: user, payer, protocol_state,
    channel_config, mint, stake_pool, user_stake, vault, user_token_account, nft_mint, nft_ata,
    token_program, associated_token_program, system_program, rent."""
    amount, lock_duration = decode_args(ctx, lambda r: (r.u64(), r.u64()))
    user = require_signer(ctx, 0, "user")
    payer = require_signer(ctx, 1, "payer")
    protocol = load_protocol(ctx, 2)
    if protocol.paused:
        fail(ctx, "ProtocolPaused", account="protocol_state")
    config = load(ctx, 3, "channel_config", ChannelConfigV2.decode)
    config_key = account_key(ctx, 3)
    if config.mint != protocol.mint:
        fail(ctx, "InvalidMint", account="channel_config")
    mint = require_address(ctx, 4, "mint", Pubkey(protocol.mint), error="InvalidMint")
    pool = _pool(ctx, 5, config_key)
    pool_key = account_key(ctx, 5)
    stake_bump = require_pda(
        ctx, 6, "user_stake", [b"channel_user", bytes(config_key), bytes(user)]
    )
    stake_key = account_key(ctx, 6)
    create_account(
        ctx, payer=payer, new=stake_key, space=UserChannelStake.LEN, owner=ctx.program_id
    )
    vault = require_address(ctx, 7, "vault", Pubkey(pool.vault))
    source = _user_token_account(ctx, 8, user, mint)
    require_pda(ctx, 9, "nft_mint", [b"stake_nft", bytes(pool_key), bytes(user)])
    nft_mint = account_key(ctx, 9)
    require_writable(ctx, 10, "nft_ata")

    require(ctx, amount >= MIN_STAKE_AMOUNT, "StakeBelowMinimum")
    require(ctx, lock_duration <= MAX_LOCK_SLOTS, "LockPeriodTooLong")
    multiplier = boost_bps(lock_duration)
    weighted = amount * multiplier // BOOST_PRECISION
    lock_end = ctx.slot + lock_duration if lock_duration > 0 else 0
    transfer_checked(
        ctx, source=source, mint=mint, destination=vault, authority=user, amount=amount
    )
    create_account(ctx, payer=payer, new=nft_mint, space=_NFT_MINT_LEN, owner=TOKEN_2022_PROGRAM_ID)

    def init_non_transferable(token: InvokeContext) -> None:
        token.log("Instruction: InitializeNonTransferableMint")

    ctx.cpi(TOKEN_2022_PROGRAM_ID, [nft_mint], bytes([32]), init_non_transferable, units=1_120)

    def init_mint(token: InvokeContext) -> None:
        token.log("Instruction: InitializeMint2")
        account = token.accounts.get(nft_mint)
        lamports = account.lamports if account is not None else 0
        token.accounts.put(
            nft_mint, Account(lamports, _nft_mint_data(pool_key), TOKEN_2022_PROGRAM_ID)
        )

    ctx.cpi(
        TOKEN_2022_PROGRAM_ID,
        [nft_mint],
        bytes([20, 0]) + bytes(pool_key) + b"\x01" + bytes(pool_key),
        init_mint,
        units=2_930,
    )
    nft_ata = create_ata(ctx, payer=payer, owner=user, mint=nft_mint)

    def mint_to(token: InvokeContext) -> None:
        token.log("Instruction: MintTo")
        receipt = token.accounts.get(nft_ata)
        if receipt is None:
            raise InstructionFailedError.custom(0xD)  # UninitializedState
        data = bytearray(receipt.data)
        struct.pack_into("<Q", data, 64, 1)
        token.accounts.put(nft_ata, Account(receipt.lamports, bytes(data), TOKEN_2022_PROGRAM_ID))

    ctx.cpi(
        TOKEN_2022_PROGRAM_ID,
        [nft_mint, nft_ata, pool_key],
        bytes([7]) + struct.pack("<Q", 1),
        mint_to,
        units=4_492,
    )

    def revoke(token: InvokeContext) -> None:
        token.log("Instruction: SetAuthority")

    ctx.cpi(TOKEN_2022_PROGRAM_ID, [nft_mint, pool_key], bytes([6, 0, 0]), revoke, units=2_817)

    position = UserChannelStake(
        bump=stake_bump,
        user=bytes(user),
        channel=bytes(config_key),
        amount=amount,
        start_slot=ctx.slot,
        lock_end_slot=lock_end,
        multiplier_bps=multiplier,
        nft_mint=bytes(nft_mint),
    )
    store(ctx, stake_key, position.encode())
    pool = dataclasses.replace(
        pool,
        total_staked=pool.total_staked + amount,
        total_weighted=pool.total_weighted + weighted,
        staker_count=pool.staker_count + 1,
    )
    store(ctx, pool_key, pool.encode())
    event = ChannelStaked(
        user=bytes(user),
        channel=bytes(config_key),
        amount=amount,
        nft_mint=bytes(nft_mint),
        lock_duration=lock_duration,
        boost_bps=multiplier,
        timestamp=ctx.unix_timestamp,
    )
    ctx.emit(event.NAME, event.encode())
    ctx.log(
        f"Staked {amount} tokens, multiplier={multiplier}bps, lock_end={lock_end}, nft={nft_mint}"
    )


def _close_position(
    ctx: InvokeContext,
) -> tuple[
    Pubkey,
    Pubkey,
    Pubkey,
    Pubkey,
    ChannelStakePool,
    UserChannelStake,
    Pubkey,
    Pubkey,
    Pubkey,
    Pubkey,
]:
    """The accounts shared by both unstakes, validated; closes nothing yet."""
    user = require_signer(ctx, 0, "user")
    require_writable(ctx, 0, "user")
    load(ctx, 1, "channel_config", ChannelConfigV2.decode)
    config_key = account_key(ctx, 1)
    mint = account_key(ctx, 2)
    pool = _pool(ctx, 3, config_key)
    pool_key = account_key(ctx, 3)
    if pool.mint != bytes(mint):
        fail(ctx, "InvalidMint", account="stake_pool")
    require_pda(ctx, 4, "user_stake", [b"channel_user", bytes(config_key), bytes(user)])
    require_writable(ctx, 4, "user_stake")
    position = load(ctx, 4, "user_stake", UserChannelStake.decode)
    if position.user != bytes(user):
        fail(ctx, "Unauthorized", account="user_stake")
    vault = require_address(ctx, 5, "vault", Pubkey(pool.vault))
    destination = _user_token_account(ctx, 6, user, mint)
    nft_mint = require_address(ctx, 7, "nft_mint", Pubkey(position.nft_mint))
    nft_ata = require_ata(ctx, 8, "nft_ata", owner=user, mint=nft_mint)
    if token_balance(ctx.accounts, nft_ata) != 1:
        fail(ctx, "NftHolderMismatch", account="nft_ata")
    return user, config_key, mint, pool_key, pool, position, vault, destination, nft_mint, nft_ata


def _finish(
    ctx: InvokeContext,
    pool_key: Pubkey,
    pool: ChannelStakePool,
    position: UserChannelStake,
    user: Pubkey,
) -> None:
    weighted = position.amount * position.multiplier_bps // BOOST_PRECISION
    store(
        ctx,
        pool_key,
        dataclasses.replace(
            pool,
            total_staked=pool.total_staked - position.amount,
            total_weighted=pool.total_weighted - weighted,
            staker_count=pool.staker_count - 1,
        ).encode(),
    )
    stake_key = account_key(ctx, 4)
    closed = ctx.accounts.get(stake_key)
    refund = closed.lamports if closed is not None else 0
    ctx.accounts.put(stake_key, None)
    owner = ctx.accounts.get(user)
    if owner is not None:
        ctx.accounts.put(
            user, Account(owner.lamports + refund, owner.data, owner.owner, owner.executable)
        )


def unstake_channel(ctx: InvokeContext) -> None:
    """No args; 11 accounts: user, channel_config, mint, stake_pool, user_stake, vault,
    user_token_account, nft_mint, nft_ata, token_program, associated_token_program."""
    user, config_key, mint, pool_key, pool, position, vault, destination, nft_mint, nft_ata = (
        _close_position(ctx)
    )
    if position.lock_end_slot > 0:
        require(ctx, ctx.slot >= position.lock_end_slot, "LockNotExpired")
    burn(ctx, account=nft_ata, mint=nft_mint, authority=user, amount=1)
    transfer_checked(
        ctx,
        source=vault,
        mint=mint,
        destination=destination,
        authority=pool_key,
        amount=position.amount,
    )
    _finish(ctx, pool_key, pool, position, user)
    event = ChannelUnstaked(
        user=bytes(user),
        channel=bytes(config_key),
        amount=position.amount,
        nft_mint=bytes(nft_mint),
        timestamp=ctx.unix_timestamp,
    )
    ctx.emit(event.NAME, event.encode())
    ctx.log(f"Unstaked {position.amount} tokens, user={user}")


def emergency_unstake_channel(ctx: InvokeContext) -> None:
    """No args; the accounts of `unstake_channel`. Only before the lock ends; burns 20 %."""
    user, config_key, mint, pool_key, pool, position, vault, destination, nft_mint, nft_ata = (
        _close_position(ctx)
    )
    require(ctx, position.lock_end_slot > ctx.slot, "LockExpiredUseStandardUnstake")
    penalty = position.amount * 20 // 100
    returned = position.amount - penalty
    remaining = position.lock_end_slot - ctx.slot
    burn(ctx, account=nft_ata, mint=nft_mint, authority=user, amount=1)
    if returned > 0:
        transfer_checked(
            ctx,
            source=vault,
            mint=mint,
            destination=destination,
            authority=pool_key,
            amount=returned,
        )
    if penalty > 0:
        burn(ctx, account=vault, mint=mint, authority=pool_key, amount=penalty)
    _finish(ctx, pool_key, pool, position, user)
    event = ChannelEmergencyUnstaked(
        user=bytes(user),
        channel=bytes(config_key),
        staked_amount=position.amount,
        penalty_amount=penalty,
        returned_amount=returned,
        nft_mint=bytes(nft_mint),
        remaining_lock_slots=remaining,
        timestamp=ctx.unix_timestamp,
    )
    ctx.emit(event.NAME, event.encode())
    ctx.log(
        f"Emergency unstake: {returned} returned, {penalty} penalty burned, {remaining} slots early"
    )
