"""Account layouts the program writes that `core.accounts` does not cover.

`ClaimStateV2` is the Genesis layout (reference §3.4, 90 bytes). `ChannelStakePool` (162 bytes)
and `UserChannelStake` (161 bytes) follow the program's channel-staking source (`state.rs`,
feature `channel_staking`): Anchor accounts with an 8-byte discriminator and Borsh fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self

from aop.core.anchor import account_discriminator
from aop.core.borsh import Reader, Writer
from aop.core.errors import AccountDecodeError

__all__ = ["ChannelStakePool", "ClaimStateV2", "UserChannelStake"]


def _reader(name: str, data: bytes, length: int) -> Reader:
    if data[:8] != account_discriminator(name) or len(data) != length:
        raise AccountDecodeError(
            f"{name}: expected {length} bytes starting {account_discriminator(name).hex()} "
            f"(got {len(data)} bytes starting {bytes(data[:8]).hex()})"
        )
    return Reader(data, offset=8)


def _writer(name: str) -> Writer:
    return Writer().fixed(account_discriminator(name), 8)


@dataclass(frozen=True)
class ClaimStateV2:
    """ClaimStateV2, PDA ["claim_state_v2", channel_config, wallet]."""

    NAME: ClassVar[str] = "ClaimStateV2"
    LEN: ClassVar[int] = 90

    version: int
    bump: int
    channel: bytes
    wallet: bytes
    claimed_total: int
    last_claim_seq: int

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = _reader(cls.NAME, data, cls.LEN)
        return cls(r.u8(), r.u8(), r.pubkey(), r.pubkey(), r.u64(), r.u64())

    def encode(self) -> bytes:
        w = _writer(self.NAME).u8(self.version).u8(self.bump)
        w.pubkey(self.channel).pubkey(self.wallet).u64(self.claimed_total).u64(self.last_claim_seq)
        return w.to_bytes()


@dataclass(frozen=True)
class ChannelStakePool:
    """ChannelStakePool, PDA ["channel_pool", channel_config]."""

    NAME: ClassVar[str] = "ChannelStakePool"
    LEN: ClassVar[int] = 162

    bump: int
    channel: bytes
    mint: bytes
    vault: bytes
    total_staked: int
    total_weighted: int
    staker_count: int
    acc_reward_per_share: int = 0
    last_reward_slot: int = 0
    reward_per_slot: int = 0
    is_shutdown: bool = False

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = _reader(cls.NAME, data, cls.LEN)
        bump, channel, mint, vault = r.u8(), r.pubkey(), r.pubkey(), r.pubkey()
        staked, weighted, count = r.u64(), r.u64(), r.u64()
        acc = int.from_bytes(r.fixed(16), "little")
        return cls(
            bump, channel, mint, vault, staked, weighted, count, acc, r.u64(), r.u64(), r.boolean()
        )

    def encode(self) -> bytes:
        w = (
            _writer(self.NAME)
            .u8(self.bump)
            .pubkey(self.channel)
            .pubkey(self.mint)
            .pubkey(self.vault)
        )
        w.u64(self.total_staked).u64(self.total_weighted).u64(self.staker_count)
        w.fixed(self.acc_reward_per_share.to_bytes(16, "little"), 16)
        w.u64(self.last_reward_slot).u64(self.reward_per_slot).boolean(self.is_shutdown)
        return w.to_bytes()


@dataclass(frozen=True)
class UserChannelStake:
    """UserChannelStake, PDA ["channel_user", channel_config, user]: one open position."""

    NAME: ClassVar[str] = "UserChannelStake"
    LEN: ClassVar[int] = 161

    bump: int
    user: bytes
    channel: bytes
    amount: int
    start_slot: int
    lock_end_slot: int
    multiplier_bps: int
    nft_mint: bytes
    reward_debt: int = 0
    pending_rewards: int = 0

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = _reader(cls.NAME, data, cls.LEN)
        bump, user, channel = r.u8(), r.pubkey(), r.pubkey()
        amount, start, lock_end, mult = r.u64(), r.u64(), r.u64(), r.u64()
        nft_mint = r.pubkey()
        debt = int.from_bytes(r.fixed(16), "little")
        return cls(bump, user, channel, amount, start, lock_end, mult, nft_mint, debt, r.u64())

    def encode(self) -> bytes:
        w = _writer(self.NAME).u8(self.bump).pubkey(self.user).pubkey(self.channel)
        w.u64(self.amount).u64(self.start_slot).u64(self.lock_end_slot).u64(self.multiplier_bps)
        w.pubkey(self.nft_mint).fixed(self.reward_debt.to_bytes(16, "little"), 16)
        w.u64(self.pending_rewards)
        return w.to_bytes()
