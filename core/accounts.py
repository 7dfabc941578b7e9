"""Decoders and encoders of the program's accounts, byte for byte (reference §3.4, §9, §10, §G2).

Every account starts with its 8-byte Anchor discriminator, sha256("account:<Name>")[:8].
Decoders check the discriminator and the exact length of each known layout; encoders write
the same layout back (padding as zeros), so `encode(decode(x)) == x` for accounts the program
wrote. Public keys are raw 32-byte `bytes`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import ClassVar, Self

from aop.core.anchor import account_discriminator
from aop.core.borsh import Reader, Writer
from aop.core.errors import AccountDecodeError, BorshDecodeError, BorshEncodeError
from aop.core.validation import check_uint

__all__ = [
    "CHANNEL_BITMAP_BYTES",
    "CHANNEL_RING_SLOTS",
    "CUMULATIVE_ROOT_HISTORY",
    "ChannelConfigV2",
    "ChannelSlot",
    "ChannelState",
    "ClaimStateGlobal",
    "GlobalRootConfig",
    "ProtocolState",
    "RootEntry",
]

#: ChannelConfigV2 keeps the last 4 roots, entry `root_seq % 4`.
CUMULATIVE_ROOT_HISTORY = 4
#: v0.2.1-clean ChannelState: 10 ring slots (`epoch % 10`), 1024 claim bits each.
CHANNEL_RING_SLOTS = 10
CHANNEL_BITMAP_BYTES = 128


@contextmanager
def _decoding(name: str, data: bytes, lengths: tuple[int, ...]) -> Iterator[Reader]:
    """Check discriminator and length; yield a reader past the discriminator.

    On leaving, every byte must have been read; Borsh errors become `AccountDecodeError`.
    """
    expected = account_discriminator(name)
    if data[:8] != expected:
        raise AccountDecodeError(
            f"{name}: discriminator must be {expected.hex()} (got {data[:8].hex() or 'nothing'})"
        )
    if len(data) not in lengths:
        allowed = " or ".join(str(n) for n in lengths)
        raise AccountDecodeError(f"{name}: data must be {allowed} bytes (got {len(data)})")
    reader = Reader(data, offset=8)
    try:
        yield reader
        reader.finish()
    except BorshDecodeError as exc:
        raise AccountDecodeError(f"{name}: {exc}") from exc


def _writer(name: str) -> Writer:
    return Writer().fixed(account_discriminator(name), 8)


@dataclass(frozen=True)
class ProtocolState:
    """ProtocolState, PDA ["protocol", mint].

    Two layouts: Genesis (141 bytes) and HEAD (173 bytes, `oracle_authority` after treasury).
    `oracle_authority` is None exactly for the Genesis layout.
    """

    NAME: ClassVar[str] = "ProtocolState"
    GENESIS_LEN: ClassVar[int] = 141
    HEAD_LEN: ClassVar[int] = 173

    is_initialized: bool
    version: int
    admin: bytes
    publisher: bytes
    treasury: bytes
    mint: bytes
    paused: bool
    require_receipt: bool
    bump: int
    oracle_authority: bytes | None = None

    @classmethod
    def decode(cls, data: bytes) -> Self:
        """Decode either layout.

        Raises:
            AccountDecodeError: wrong discriminator, length, or a bool byte not 0/1.
        """

        with _decoding(cls.NAME, data, (cls.GENESIS_LEN, cls.HEAD_LEN)) as r:
            is_initialized, version = r.boolean(), r.u8()
            admin, publisher, treasury = r.pubkey(), r.pubkey(), r.pubkey()
            oracle_authority = r.pubkey() if len(data) == cls.HEAD_LEN else None
            return cls(
                is_initialized=is_initialized,
                version=version,
                admin=admin,
                publisher=publisher,
                treasury=treasury,
                oracle_authority=oracle_authority,
                mint=r.pubkey(),
                paused=r.boolean(),
                require_receipt=r.boolean(),
                bump=r.u8(),
            )

    def encode(self) -> bytes:
        """The account data (HEAD layout iff `oracle_authority` is set).

        Raises:
            BorshEncodeError: a field of the wrong type, range or length.
        """
        w = _writer(self.NAME).boolean(self.is_initialized).u8(self.version)
        w.pubkey(self.admin).pubkey(self.publisher).pubkey(self.treasury)
        if self.oracle_authority is not None:
            w.pubkey(self.oracle_authority)
        w.pubkey(self.mint).boolean(self.paused).boolean(self.require_receipt).u8(self.bump)
        return w.to_bytes()


@dataclass(frozen=True)
class RootEntry:
    """One of ChannelConfigV2's 4 root slots (80 bytes)."""

    seq: int
    root: bytes
    dataset_hash: bytes
    published_slot: int

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(seq=r.u64(), root=r.pubkey(), dataset_hash=r.pubkey(), published_slot=r.u64())

    def write(self, w: Writer) -> None:
        w.u64(self.seq).pubkey(self.root).pubkey(self.dataset_hash).u64(self.published_slot)


@dataclass(frozen=True)
class ChannelConfigV2:
    """ChannelConfigV2, PDA ["channel_cfg_v2", mint, subject].

    Two layouts: current (482 bytes, with creator_wallet, creator_fee_bps and 6 padding bytes
    before the roots at 162) and pre-migration (442 bytes, no creator fields, roots at 122).
    `creator_wallet` and `creator_fee_bps` are None exactly for the pre-migration layout.
    """

    NAME: ClassVar[str] = "ChannelConfigV2"
    LEN: ClassVar[int] = 482
    LEGACY_LEN: ClassVar[int] = 442

    version: int
    bump: int
    mint: bytes
    subject: bytes
    authority: bytes
    latest_root_seq: int
    cutover_epoch: int
    creator_wallet: bytes | None
    creator_fee_bps: int | None
    roots: tuple[RootEntry, ...]

    @classmethod
    def decode(cls, data: bytes) -> Self:
        """Decode either layout.

        Raises:
            AccountDecodeError: wrong discriminator or length.
        """

        with _decoding(cls.NAME, data, (cls.LEN, cls.LEGACY_LEN)) as r:
            version, bump = r.u8(), r.u8()
            mint, subject, authority = r.pubkey(), r.pubkey(), r.pubkey()
            latest_root_seq, cutover_epoch = r.u64(), r.u64()
            creator_wallet = creator_fee_bps = None
            if len(data) == cls.LEN:
                creator_wallet, creator_fee_bps = r.pubkey(), r.u16()
                r.fixed(6)
            return cls(
                version=version,
                bump=bump,
                mint=mint,
                subject=subject,
                authority=authority,
                latest_root_seq=latest_root_seq,
                cutover_epoch=cutover_epoch,
                creator_wallet=creator_wallet,
                creator_fee_bps=creator_fee_bps,
                roots=tuple(RootEntry.read(r) for _ in range(CUMULATIVE_ROOT_HISTORY)),
            )

    def encode(self) -> bytes:
        """The account data (pre-migration layout iff both creator fields are None).

        Raises:
            BorshEncodeError: a field of the wrong type, range or length, only one creator
                field set, or not exactly 4 roots.
        """
        if (self.creator_wallet is None) != (self.creator_fee_bps is None):
            raise BorshEncodeError(
                "creator_wallet and creator_fee_bps must both be set (482-byte layout) or both "
                f"be None (442-byte layout) (got {self.creator_wallet!r}, {self.creator_fee_bps!r})"
            )
        if len(self.roots) != CUMULATIVE_ROOT_HISTORY:
            raise BorshEncodeError(
                f"roots must have {CUMULATIVE_ROOT_HISTORY} entries (got {len(self.roots)})"
            )
        w = _writer(self.NAME).u8(self.version).u8(self.bump)
        w.pubkey(self.mint).pubkey(self.subject).pubkey(self.authority)
        w.u64(self.latest_root_seq).u64(self.cutover_epoch)
        if self.creator_wallet is not None and self.creator_fee_bps is not None:
            w.pubkey(self.creator_wallet).u16(self.creator_fee_bps).fixed(bytes(6), 6)
        for entry in self.roots:
            entry.write(w)
        return w.to_bytes()

    def root_entry(self, root_seq: int) -> RootEntry | None:
        """The stored entry of `root_seq` (slot `root_seq % 4`), or None if it was replaced."""
        entry = self.roots[root_seq % CUMULATIVE_ROOT_HISTORY]
        return entry if entry.seq == root_seq and root_seq != 0 else None


@dataclass(frozen=True)
class ChannelSlot:
    """One ring slot of the v0.2.1-clean ChannelState (176 bytes with its 6 padding bytes)."""

    epoch: int
    root: bytes
    claim_count: int
    claimed_bitmap: bytes

    @classmethod
    def read(cls, r: Reader) -> Self:
        slot = cls(
            epoch=r.u64(),
            root=r.pubkey(),
            claim_count=r.u16(),
            claimed_bitmap=r.fixed(CHANNEL_BITMAP_BYTES),
        )
        r.fixed(6)
        return slot

    def write(self, w: Writer) -> None:
        w.u64(self.epoch).pubkey(self.root).u16(self.claim_count)
        w.fixed(self.claimed_bitmap, CHANNEL_BITMAP_BYTES).fixed(bytes(6), 6)

    def is_claimed(self, index: int) -> bool:
        """Whether claim `index` is spent: bit `index % 8` (LSB first) of byte `index // 8`.

        Raises:
            InvalidIntegerError: `index` is not in 0..1023.
        """
        check_uint("index", index, bits=10)
        return bool(self.claimed_bitmap[index // 8] >> (index % 8) & 1)


@dataclass(frozen=True)
class ChannelState:
    """v0.2.1-clean ChannelState, PDA ["channel_state", mint, streamer_key], 1848 bytes.

    The program declares it `#[account(zero_copy)] #[repr(C)]`; this is the plain repr(C)
    layout: disc 0..8, version 8, bump 9, mint 10..42, streamer 42..74, padding 74..80,
    latest_epoch 80..88, slot k at 88 + 176k. (An earlier deployment was `repr(C, packed)`, with
    other offsets and 1782 bytes; that layout is rejected by length.)
    """

    NAME: ClassVar[str] = "ChannelState"
    LEN: ClassVar[int] = 8 + 80 + CHANNEL_RING_SLOTS * 176

    version: int
    bump: int
    mint: bytes
    streamer: bytes
    latest_epoch: int
    slots: tuple[ChannelSlot, ...]

    @classmethod
    def decode(cls, data: bytes) -> Self:
        """Decode the repr(C) layout.

        Raises:
            AccountDecodeError: wrong discriminator or length.
        """

        with _decoding(cls.NAME, data, (cls.LEN,)) as r:
            version, bump, mint, streamer = r.u8(), r.u8(), r.pubkey(), r.pubkey()
            r.fixed(6)
            return cls(
                version=version,
                bump=bump,
                mint=mint,
                streamer=streamer,
                latest_epoch=r.u64(),
                slots=tuple(ChannelSlot.read(r) for _ in range(CHANNEL_RING_SLOTS)),
            )

    def encode(self) -> bytes:
        """The account data.

        Raises:
            BorshEncodeError: a field of the wrong type, range or length, or not 10 slots.
        """
        if len(self.slots) != CHANNEL_RING_SLOTS:
            raise BorshEncodeError(
                f"slots must have {CHANNEL_RING_SLOTS} entries (got {len(self.slots)})"
            )
        w = _writer(self.NAME).u8(self.version).u8(self.bump)
        w.pubkey(self.mint).pubkey(self.streamer).fixed(bytes(6), 6).u64(self.latest_epoch)
        for slot in self.slots:
            slot.write(w)
        return w.to_bytes()

    def slot_for(self, epoch: int) -> ChannelSlot | None:
        """The slot holding `epoch` (slot `epoch % 10`), or None if it holds another epoch."""
        slot = self.slots[epoch % CHANNEL_RING_SLOTS]
        return slot if slot.epoch == epoch and slot.root != bytes(32) else None


def _root_entries(roots: tuple[RootEntry, ...]) -> tuple[RootEntry, ...]:
    if len(roots) != CUMULATIVE_ROOT_HISTORY:
        raise BorshEncodeError(
            f"roots must have {CUMULATIVE_ROOT_HISTORY} entries (got {len(roots)})"
        )
    return roots


@dataclass(frozen=True)
class GlobalRootConfig:
    """GlobalRootConfig, PDA ["global_root", mint]: one 4-root ring per mint (370 bytes).

    Layout (reference §G2.1): discriminator, version u8 (1), bump u8, mint, latest_root_seq
    u64, then 4 x RootEntry at 50, 130, 210, 290; entry `root_seq % 4` holds a root.
    """

    NAME: ClassVar[str] = "GlobalRootConfig"
    LEN: ClassVar[int] = 370

    version: int
    bump: int
    mint: bytes
    latest_root_seq: int
    roots: tuple[RootEntry, ...]

    @classmethod
    def decode(cls, data: bytes) -> Self:
        """Raises:
        AccountDecodeError: wrong discriminator or length."""
        with _decoding(cls.NAME, data, (cls.LEN,)) as r:
            version, bump, mint, latest = r.u8(), r.u8(), r.pubkey(), r.u64()
            roots = tuple(RootEntry.read(r) for _ in range(CUMULATIVE_ROOT_HISTORY))
            return cls(version=version, bump=bump, mint=mint, latest_root_seq=latest, roots=roots)

    def encode(self) -> bytes:
        """Raises:
        BorshEncodeError: a field of the wrong type, range or length, or not 4 roots."""
        w = _writer(self.NAME).u8(self.version).u8(self.bump).pubkey(self.mint)
        w.u64(self.latest_root_seq)
        for entry in _root_entries(self.roots):
            entry.write(w)
        return w.to_bytes()

    def root_entry(self, root_seq: int) -> RootEntry | None:
        """The stored entry of `root_seq` (slot `root_seq % 4`), or None if it was replaced."""
        entry = self.roots[root_seq % CUMULATIVE_ROOT_HISTORY]
        return entry if entry.seq == root_seq and root_seq != 0 else None


@dataclass(frozen=True)
class ClaimStateGlobal:
    """ClaimStateGlobal, PDA ["claim_global", mint, wallet]: what a wallet has claimed from the
    global roots, V4 and V5 alike (90 bytes, reference §G2.2)."""

    NAME: ClassVar[str] = "ClaimStateGlobal"
    LEN: ClassVar[int] = 90

    version: int
    bump: int
    mint: bytes
    wallet: bytes
    claimed_total: int
    last_claim_seq: int

    @classmethod
    def decode(cls, data: bytes) -> Self:
        """Raises:
        AccountDecodeError: wrong discriminator or length."""
        with _decoding(cls.NAME, data, (cls.LEN,)) as r:
            return cls(
                version=r.u8(),
                bump=r.u8(),
                mint=r.pubkey(),
                wallet=r.pubkey(),
                claimed_total=r.u64(),
                last_claim_seq=r.u64(),
            )

    def encode(self) -> bytes:
        """Raises:
        BorshEncodeError: a field of the wrong type, range or length."""
        w = _writer(self.NAME).u8(self.version).u8(self.bump)
        w.pubkey(self.mint).pubkey(self.wallet).u64(self.claimed_total).u64(self.last_claim_seq)
        return w.to_bytes()
