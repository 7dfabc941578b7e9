"""The fold's state records, the store interface the fold runs against, and an in-memory store.

The fold (`core.fold`) keeps one store per partition of `aop.chain.events`: the channels of a
partition never share state with another partition's. A store holds four kinds of record:

* `PartitionMeta` — how far the partition's log has been folded (offset, slot watermark, the
  open epoch and the offset of the first batch that reached it);
* `ChannelMeta` — per channel: the last root_seq used and the sums of its wallets' rates and
  open-epoch weights (so an idle channel closes an epoch without reading its wallets);
* `WalletState` — per (channel, wallet): stake rate, open-epoch weight, cumulative total,
  first slot staked, claimed total;
* `Position` — per (channel, nft_mint): an open stake position.

`MemoryFoldStore` is the plain-dict store of the reference fold; `streams/fold` implements the
same interface over bucketed, changelog-backed Faust table keys.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple, Protocol

__all__ = [
    "CLAIMED",
    "FIRST_SEEN",
    "RATE",
    "TOTAL",
    "WEIGHT",
    "ChannelMeta",
    "FoldStore",
    "MemoryFoldStore",
    "PartitionMeta",
    "Position",
    "WalletState",
    "new_wallet",
]


class PartitionMeta(NamedTuple):
    """How far one partition of the log has been folded."""

    #: the last source offset applied (-1: none).
    offset: int = -1
    #: the `last_slot` of the last batch applied: the partition is complete up to it (-1: none).
    watermark: int = -1
    #: the first epoch not closed yet.
    open_epoch: int = 0
    #: the offset of the first batch whose range reached the open epoch (-1: none yet).
    epoch_first_offset: int = -1


class ChannelMeta(NamedTuple):
    """Per channel: its root sequence and the sums of its wallets' rates and weights."""

    #: the root_seq of the channel's last root (first_root_seq - 1 before the first).
    root_seq: int
    #: Σ WalletState.rate over the channel's wallets.
    rate: int = 0
    #: Σ WalletState.weight over the channel's wallets.
    weight: int = 0


class WalletState(NamedTuple):
    """One wallet of one channel (stores keep it as a 5-item list in this order)."""

    #: Σ amount × boost_bps over the wallet's open positions (weight per slot held).
    rate: int = 0
    #: its weight in the open epoch, counting open positions as held to the epoch's end.
    weight: int = 0
    #: its cumulative total: the sum of its allocations over all closed epochs.
    total: int = 0
    #: the first slot it ever staked in the channel (-1: never).
    first_seen: int = -1
    #: the highest cumulative_total of its CumulativeRewardsClaimed events.
    claimed: int = 0


#: indexes into a wallet's list (the fields of `WalletState`).
RATE, WEIGHT, TOTAL, FIRST_SEEN, CLAIMED = range(5)


def new_wallet() -> list[int]:
    """The list of a wallet never seen before."""
    return [0, 0, 0, -1, 0]


class Position(NamedTuple):
    """An open stake position (keyed by channel + nft_mint)."""

    wallet: bytes
    amount: int
    boost_bps: int
    open_slot: int


class FoldStore(Protocol):
    """The state of one partition, as the fold reads and writes it (32-byte keys are raw).

    A wallet is a 5-item list (`WalletState` order). Lists a store returns from `wallets()`
    are read-only; `wallet_for_update()` returns one the caller changes in place.
    """

    def partition_meta(self) -> PartitionMeta | None: ...

    def put_partition_meta(self, meta: PartitionMeta) -> None: ...

    def channel(self, channel: bytes) -> ChannelMeta | None: ...

    def put_channel(self, channel: bytes, meta: ChannelMeta) -> None: ...

    def wallet(self, channel: bytes, wallet: bytes) -> WalletState | None: ...

    def wallet_for_update(self, channel: bytes, wallet: bytes) -> list[int]:
        """The wallet's list to change in place (a new wallet's if it has none)."""
        ...

    def wallets(self, channel: bytes) -> Iterable[tuple[bytes, list[int]]]:
        """Every wallet of `channel`, read-only (any order; the fold never depends on it)."""
        ...

    def close_epoch(self, channel: bytes, shares: Mapping[bytes, int], epoch_slots: int) -> None:
        """Start the next epoch for every wallet of `channel` that has a rate or a weight:
        weight = rate × epoch_slots, total += shares.get(wallet, 0). (`shares` only names
        wallets that had a weight.)"""
        ...

    def position(self, channel: bytes, nft_mint: bytes) -> Position | None: ...

    def open_position(self, channel: bytes, nft_mint: bytes, position: Position) -> bool:
        """Store a new position; False (nothing stored) if `nft_mint` is already open."""
        ...

    def close_position(self, channel: bytes, nft_mint: bytes) -> Position | None:
        """Remove and return the open position of `nft_mint` (None if there is none)."""
        ...


class MemoryFoldStore:
    """A `FoldStore` in plain dictionaries (the reference fold, tests, benchmarks)."""

    def __init__(self) -> None:
        self.meta: PartitionMeta | None = None
        self.channels: dict[bytes, ChannelMeta] = {}
        self.wallet_states: dict[bytes, dict[bytes, list[int]]] = {}
        self.positions: dict[bytes, dict[bytes, Position]] = {}

    def partition_meta(self) -> PartitionMeta | None:
        return self.meta

    def put_partition_meta(self, meta: PartitionMeta) -> None:
        self.meta = meta

    def channel(self, channel: bytes) -> ChannelMeta | None:
        return self.channels.get(channel)

    def put_channel(self, channel: bytes, meta: ChannelMeta) -> None:
        self.channels[channel] = meta

    def wallet(self, channel: bytes, wallet: bytes) -> WalletState | None:
        state = self.wallet_states.get(channel, {}).get(wallet)
        return None if state is None else WalletState(*state)

    def wallet_for_update(self, channel: bytes, wallet: bytes) -> list[int]:
        states = self.wallet_states.get(channel)
        if states is None:
            states = self.wallet_states[channel] = {}
        state = states.get(wallet)
        if state is None:
            state = states[wallet] = new_wallet()
        return state

    def wallets(self, channel: bytes) -> Iterable[tuple[bytes, list[int]]]:
        return list(self.wallet_states.get(channel, {}).items())

    def close_epoch(self, channel: bytes, shares: Mapping[bytes, int], epoch_slots: int) -> None:
        for wallet, state in self.wallet_states.get(channel, {}).items():
            if state[RATE] or state[WEIGHT]:
                state[WEIGHT] = state[RATE] * epoch_slots
                state[TOTAL] += shares.get(wallet, 0)

    def position(self, channel: bytes, nft_mint: bytes) -> Position | None:
        positions = self.positions.get(channel)
        return None if positions is None else positions.get(nft_mint)

    def open_position(self, channel: bytes, nft_mint: bytes, position: Position) -> bool:
        positions = self.positions.get(channel)
        if positions is None:
            positions = self.positions[channel] = {}
        if nft_mint in positions:
            return False
        positions[nft_mint] = position
        return True

    def close_position(self, channel: bytes, nft_mint: bytes) -> Position | None:
        positions = self.positions.get(channel)
        return None if positions is None else positions.pop(nft_mint, None)
