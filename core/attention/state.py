"""The attention fold's state, the store interface it runs against, and an in-memory store.

Like the stake-time fold (`core.fold_state`), one store per partition of the signals topic,
its records apart from the stake-time ones, so the interleaving of the two topics never
changes either fold:

* `AttentionMeta` — how far the partition's signals are folded: the offset, the attention
  watermark (the max `watermark_ms` seen), the first epoch not closed, and the open epochs
  holding signals with the offset of the first record that counted one;
* per channel: the root_seq of its last attention root, and its wallets' cumulative totals
  (cumulative-v2 channels);
* per (channel, open epoch, user): [weight in hundredths, first_seen ms];
* per open epoch: the (source, id) of every signal counted (duplicates count once);
* per user: its binding history (`core.attention.bindings`), bindings being written to every
  partition.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple, Protocol

from aop.core.attention.bindings import BindingEntry

__all__ = ["NO_EPOCH", "AttentionMeta", "AttentionStore", "MemoryAttentionStore"]

#: `AttentionMeta.open_epoch` before any watermark: no epoch is closed.
NO_EPOCH = -1


class AttentionMeta(NamedTuple):
    """How far one partition's signals have been folded."""

    #: the last source offset applied (-1: none).
    offset: int = -1
    #: the partition's attention watermark: the max `watermark_ms` seen (-1: none).
    watermark_ms: int = -1
    #: epochs starting before it are closed (the epoch holding the watermark; `NO_EPOCH`).
    open_epoch: int = NO_EPOCH
    #: (epoch, offset of the first record that counted a signal of it), ascending.
    epochs: tuple[tuple[int, int], ...] = ()


class AttentionStore(Protocol):
    """The attention state of one partition (keys: channel config bytes, users lower-cased)."""

    def meta(self) -> AttentionMeta | None: ...

    def put_meta(self, meta: AttentionMeta) -> None: ...

    def root_seq(self, channel: bytes) -> int | None: ...

    def put_root_seq(self, channel: bytes, root_seq: int) -> None: ...

    def seen(self, epoch: int, signal_key: str) -> bool:
        """Whether a signal with this `source\\x00id` was counted in `epoch`."""
        ...

    def add_seen(self, epoch: int, signal_key: str) -> None: ...

    def participant_for_update(self, channel: bytes, epoch: int, user: str) -> list[int]:
        """[weight, first_seen_ms] of the user to change in place ([0, -1] when new)."""
        ...

    def participant(self, channel: bytes, epoch: int, user: str) -> list[int] | None:
        """[weight, first_seen_ms] of the user in (channel, epoch), read-only, or None."""
        ...

    def participants(self, channel: bytes, epoch: int) -> Iterable[tuple[str, list[int]]]:
        """Every user of (channel, epoch), read-only, in any order."""
        ...

    def bindings(self, user: str) -> tuple[BindingEntry, ...]: ...

    def put_bindings(self, user: str, history: tuple[BindingEntry, ...]) -> None: ...

    def totals(self, channel: bytes) -> Iterable[tuple[bytes, int]]:
        """Every wallet's cumulative attention total in `channel`, read-only."""
        ...

    def put_totals(self, channel: bytes, totals: Mapping[bytes, int]) -> None:
        """Set these wallets' totals (the others keep theirs)."""
        ...

    def drop_epoch(self, epoch: int, channels: Iterable[bytes]) -> None:
        """Forget `epoch`'s seen signals and its participants in `channels` (it is closed)."""
        ...


class MemoryAttentionStore:
    """An `AttentionStore` in plain dictionaries (the reference fold, tests)."""

    def __init__(self) -> None:
        self.state: AttentionMeta | None = None
        self.root_seqs: dict[bytes, int] = {}
        self.seen_ids: dict[int, set[str]] = {}
        self.users: dict[tuple[bytes, int], dict[str, list[int]]] = {}
        self.histories: dict[str, tuple[BindingEntry, ...]] = {}
        self.wallet_totals: dict[bytes, dict[bytes, int]] = {}

    def meta(self) -> AttentionMeta | None:
        return self.state

    def put_meta(self, meta: AttentionMeta) -> None:
        self.state = meta

    def root_seq(self, channel: bytes) -> int | None:
        return self.root_seqs.get(channel)

    def put_root_seq(self, channel: bytes, root_seq: int) -> None:
        self.root_seqs[channel] = root_seq

    def seen(self, epoch: int, signal_key: str) -> bool:
        return signal_key in self.seen_ids.get(epoch, ())

    def add_seen(self, epoch: int, signal_key: str) -> None:
        self.seen_ids.setdefault(epoch, set()).add(signal_key)

    def participant_for_update(self, channel: bytes, epoch: int, user: str) -> list[int]:
        users = self.users.setdefault((channel, epoch), {})
        entry = users.get(user)
        if entry is None:
            entry = users[user] = [0, -1]
        return entry

    def participant(self, channel: bytes, epoch: int, user: str) -> list[int] | None:
        return self.users.get((channel, epoch), {}).get(user)

    def participants(self, channel: bytes, epoch: int) -> Iterable[tuple[str, list[int]]]:
        return list(self.users.get((channel, epoch), {}).items())

    def bindings(self, user: str) -> tuple[BindingEntry, ...]:
        return self.histories.get(user, ())

    def put_bindings(self, user: str, history: tuple[BindingEntry, ...]) -> None:
        self.histories[user] = history

    def totals(self, channel: bytes) -> Iterable[tuple[bytes, int]]:
        return list(self.wallet_totals.get(channel, {}).items())

    def put_totals(self, channel: bytes, totals: Mapping[bytes, int]) -> None:
        self.wallet_totals.setdefault(channel, {}).update(totals)

    def drop_epoch(self, epoch: int, channels: Iterable[bytes]) -> None:
        self.seen_ids.pop(epoch, None)
        for channel in channels:
            self.users.pop((channel, epoch), None)
