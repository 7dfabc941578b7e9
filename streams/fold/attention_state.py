"""The attention fold's state as bucketed table keys (beside the stake-time keys).

Keys (bytes; `<cfg>` = the channel's ChannelConfigV2 PDA in base58, `<p>` the partition,
`<e>` an attention epoch's unix start, `<b>` a bucket number):

| key | entries |
|---|---|
| `ap|<p>` | `m`: AttentionMeta (offset, watermark_ms, open_epoch, open epochs) |
| `ah|<p>` | bucket bits of the partition's maps: `g` bindings, ("s", e) seen signals of e |
| `ag|<p>|<b>` | user -> binding history ((observed_at_ms, id, wallet), ...) |
| `as|<p>|<e>|<b>` | `source\\x00id` -> 1: the signals counted in epoch e |
| `ac|<cfg>` | `m`: the channel's last attention root_seq; bucket bits: `t` totals, ("u", e) users |
| `at|<cfg>|<b>` | wallet -> cumulative attention total |
| `au|<cfg>|<e>|<b>` | user -> [weight in hundredths, first_seen ms] in epoch e |

Each map starts with one bucket and doubles (bits + 1) when a bucket passes `max_entries`:
bucket = crc32(member) & (2^bits - 1), as the stake-time wallet buckets (`table_state`).
Values and crash consistency are those of `table_state.KeyChunk`, with `ap|<p>` written LAST:
the attention keys hold offsets of aop.attention.signals and never mix with the stake-time
keys, so each side recovers on its own. A closed epoch's buckets are emptied, not deleted
(an undo cannot bring back a deleted key); an empty value per bucket and closed epoch stays.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from typing import Any

from solders.pubkey import Pubkey

from aop.core.attention.bindings import BindingEntry
from aop.core.attention.state import AttentionMeta
from aop.streams.fold.table_state import KeyChunk, TableState

__all__ = ["AttentionChunkStore"]

_META = "m"
_MAX_BITS = 20
_BINDINGS = "g"


class AttentionChunkStore(KeyChunk):
    """A `core.attention.state.AttentionStore` over the attention keys of one partition for
    one chunk of aop.attention.signals records (the steps of `KeyChunk`, meta `ap|<p>`)."""

    def __init__(self, state: TableState, partition: int) -> None:
        super().__init__(state, b"ap|%d" % partition)
        self._partition = b"%d" % partition
        self._header = b"ah|" + self._partition
        self._names: dict[bytes, bytes] = {}

    def _name(self, channel: bytes) -> bytes:
        name = self._names.get(channel)
        if name is None:
            name = self._names[channel] = str(Pubkey.from_bytes(channel)).encode()
        return name

    # -- bucketed maps --------------------------------------------------------------------

    def _bits(self, header: bytes, field: Any) -> int:
        return int(self._load(header).get(field, 0))

    def _bucket(self, prefix: bytes, bits: int, member: bytes) -> bytes:
        return b"%s|%d" % (prefix, zlib.crc32(member) & ((1 << bits) - 1))

    def _buckets(self, header: bytes, field: Any, prefix: bytes) -> list[bytes]:
        return [b"%s|%d" % (prefix, i) for i in range(1 << self._bits(header, field))]

    def _get(self, header: bytes, field: Any, prefix: bytes, member: bytes, name: Any) -> Any:
        key = self._bucket(prefix, self._bits(header, field), member)
        return self._load(key).get(name)

    def _put(
        self, header: bytes, field: Any, prefix: bytes, member: bytes, name: Any, value: Any
    ) -> None:
        key = self._bucket(prefix, self._bits(header, field), member)
        self._set(key, name, value)
        while len(self._load(key)) > self._max_entries and self._bits(header, field) < _MAX_BITS:
            self._split(header, field, prefix)
            key = self._bucket(prefix, self._bits(header, field), member)

    def _split(self, header: bytes, field: Any, prefix: bytes) -> None:
        """Double the map's buckets: bucket b splits into b and b + 2^bits."""
        bits = self._bits(header, field)
        old = 1 << bits
        mask = (old << 1) - 1
        for index in range(old):
            key, sibling = b"%s|%d" % (prefix, index), b"%s|%d" % (prefix, index + old)
            moving = [
                (n, v) for n, v in self._load(key).items() if zlib.crc32(_member(n)) & mask != index
            ]
            for name, value in moving:
                self._set(key, name, None)
                # a copy: the moved entry counts as new in its bucket, where it may then be
                # changed in place (participant_for_update), and `key`'s undo holds the original
                self._set(sibling, name, list(value) if isinstance(value, list) else value)
        self._set(header, field, bits + 1)

    def _items(self, header: bytes, field: Any, prefix: bytes) -> list[tuple[Any, Any]]:
        out: list[tuple[Any, Any]] = []
        for key in self._buckets(header, field, prefix):
            out.extend(self._load(key).items())
        return out

    def _clear(self, header: bytes, field: Any, prefix: bytes) -> None:
        for key in self._buckets(header, field, prefix):
            for name in list(self._load(key)):
                self._set(key, name, None)
        self._set(header, field, None)

    def _users(self, channel: bytes, epoch: int) -> tuple[bytes, Any, bytes]:
        name = self._name(channel)
        return b"ac|" + name, ("u", epoch), b"au|%s|%d" % (name, epoch)

    def _seen(self, epoch: int) -> tuple[bytes, Any, bytes]:
        return self._header, ("s", epoch), b"as|%s|%d" % (self._partition, epoch)

    # -- AttentionStore -------------------------------------------------------------------

    def meta(self) -> AttentionMeta | None:
        meta = self._load(self._meta_key).get(_META)
        if meta is None:
            return None
        offset, watermark, open_epoch, epochs = meta
        return AttentionMeta(offset, watermark, open_epoch, tuple(tuple(e) for e in epochs))

    def put_meta(self, meta: AttentionMeta) -> None:
        self._set(self._meta_key, _META, (meta[0], meta[1], meta[2], tuple(meta[3])))

    def root_seq(self, channel: bytes) -> int | None:
        value = self._load(b"ac|" + self._name(channel)).get(_META)
        return None if value is None else int(value)

    def put_root_seq(self, channel: bytes, root_seq: int) -> None:
        self._set(b"ac|" + self._name(channel), _META, root_seq)

    def seen(self, epoch: int, signal_key: str) -> bool:
        header, field, prefix = self._seen(epoch)
        return self._get(header, field, prefix, signal_key.encode(), signal_key) is not None

    def add_seen(self, epoch: int, signal_key: str) -> None:
        header, field, prefix = self._seen(epoch)
        self._put(header, field, prefix, signal_key.encode(), signal_key, 1)

    def participant(self, channel: bytes, epoch: int, user: str) -> list[int] | None:
        header, field, prefix = self._users(channel, epoch)
        value = self._get(header, field, prefix, user.encode(), user)
        return None if value is None else list(value)

    def participant_for_update(self, channel: bytes, epoch: int, user: str) -> list[int]:
        header, field, prefix = self._users(channel, epoch)
        key = self._bucket(prefix, self._bits(header, field), user.encode())
        entries = self._load(key)
        undo = self._undo[key]
        if user in undo and entries.get(user) is not None:
            return entries[user]  # type: ignore[no-any-return]
        current = entries.get(user)
        fresh = [0, -1] if current is None else list(current)
        self._put(header, field, prefix, user.encode(), user, fresh)
        # a split moved a copy of it: return the list now stored
        stored: list[int] = self._load(
            self._bucket(prefix, self._bits(header, field), user.encode())
        )[user]
        return stored

    def participants(self, channel: bytes, epoch: int) -> Iterable[tuple[str, list[int]]]:
        return self._items(*self._users(channel, epoch))

    def bindings(self, user: str) -> tuple[BindingEntry, ...]:
        prefix = b"ag|" + self._partition
        value = self._get(self._header, _BINDINGS, prefix, user.encode(), user)
        if value is None:
            return ()
        return tuple((int(at), str(bid), bytes(wallet)) for at, bid, wallet in value)

    def put_bindings(self, user: str, history: tuple[BindingEntry, ...]) -> None:
        prefix = b"ag|" + self._partition
        self._put(self._header, _BINDINGS, prefix, user.encode(), user, tuple(history))

    def totals(self, channel: bytes) -> Iterable[tuple[bytes, int]]:
        name = self._name(channel)
        return self._items(b"ac|" + name, "t", b"at|" + name)

    def put_totals(self, channel: bytes, totals: Mapping[bytes, int]) -> None:
        name = self._name(channel)
        for wallet, total in totals.items():
            self._put(b"ac|" + name, "t", b"at|" + name, wallet, wallet, total)

    def drop_epoch(self, epoch: int, channels: Iterable[bytes]) -> None:
        self._clear(*self._seen(epoch))
        for channel in channels:
            self._clear(*self._users(channel, epoch))


def _member(name: Any) -> bytes:
    """The bytes a map member is bucketed by (users and signal keys are str, wallets bytes)."""
    return name if isinstance(name, bytes) else str(name).encode()
