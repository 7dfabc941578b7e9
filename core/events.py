"""The program's Anchor events: frozen dataclasses that encode and decode byte for byte.

Anchor's `emit!` logs `Program data: base64(discriminator || borsh(event))`, with
discriminator = sha256("event:<Name>")[:8] and the fields in declaration order. Every event
here has only fixed-size fields, so a payload's length is fixed too. Public keys are raw
32-byte `bytes`; a field's Borsh type is in its annotation (`U64`, `I64`, `U16`, `Bool`,
`PubkeyBytes`), which drives the codec.

`decode_event(data)` dispatches on the discriminator and returns `UnknownEvent` for events
this module does not know (another program version may emit more kinds).
"""

from __future__ import annotations

import dataclasses
import struct
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Self, get_type_hints

from aop.core.anchor import event_discriminator
from aop.core.errors import BorshEncodeError, EventDecodeError

__all__ = [
    "EVENT_TYPES",
    "I64",
    "U16",
    "U64",
    "AdminTransferred",
    "Bool",
    "ChannelClosed",
    "ChannelEmergencyUnstaked",
    "ChannelStaked",
    "ChannelUnstaked",
    "CreatorFeeUpdated",
    "CumulativeRewardsClaimed",
    "Event",
    "FeesHarvested",
    "GlobalRewardsClaimed",
    "GlobalRootPublished",
    "ProtocolPaused",
    "PubkeyBytes",
    "PublisherUpdated",
    "RootSeqRecovered",
    "UnknownEvent",
    "decode_event",
]

# Field annotations: the struct code of each Borsh type ("?" marks a bool, stored as a byte).
PubkeyBytes = Annotated[bytes, "32s"]
U16 = Annotated[int, "H"]
U64 = Annotated[int, "Q"]
I64 = Annotated[int, "q"]
Bool = Annotated[bool, "?"]

_INT_RANGES = {"H": (0, 2**16 - 1), "Q": (0, 2**64 - 1), "q": (-(2**63), 2**63 - 1)}


@dataclass(frozen=True)
class _Layout:
    codec: struct.Struct
    names: tuple[str, ...]
    codes: tuple[str, ...]


class Event:
    """Base of the known events; subclasses are frozen dataclasses with `NAME` set."""

    NAME: ClassVar[str]
    DISCRIMINATOR: ClassVar[bytes]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.DISCRIMINATOR = event_discriminator(cls.NAME)

    @classmethod
    def size(cls) -> int:
        """The payload length, discriminator included."""
        return 8 + _layout(cls).codec.size

    def encode(self) -> bytes:
        """discriminator || borsh(fields): the bytes behind a `Program data:` line.

        Raises:
            BorshEncodeError: a field of the wrong type, range or length (named).
        """
        layout = _layout(type(self))
        values = []
        for name, code in zip(layout.names, layout.codes, strict=True):
            value = getattr(self, name)
            values.append(_check_field(self.NAME, name, code, value))
        return self.DISCRIMINATOR + layout.codec.pack(*values)

    @classmethod
    def decode(cls, payload: bytes) -> Self:
        """Decode a payload (discriminator included).

        Raises:
            EventDecodeError: wrong discriminator, wrong length (short or trailing bytes), or
                a bool byte that is not 0/1.
        """
        layout = _layout(cls)
        if payload[:8] != cls.DISCRIMINATOR:
            raise EventDecodeError(
                f"{cls.NAME}: discriminator must be {cls.DISCRIMINATOR.hex()} "
                f"(got {bytes(payload[:8]).hex() or 'nothing'})"
            )
        expected = 8 + layout.codec.size
        if len(payload) != expected:
            problem = "short" if len(payload) < expected else "trailing bytes"
            raise EventDecodeError(
                f"{cls.NAME}: payload must be {expected} bytes (got {len(payload)}: {problem})"
            )
        values = list(layout.codec.unpack_from(payload, 8))
        for i, code in enumerate(layout.codes):
            if code == "?":
                if values[i] > 1:
                    raise EventDecodeError(
                        f"{cls.NAME}: bool field {layout.names[i]} must be 0 or 1 (got {values[i]})"
                    )
                values[i] = values[i] == 1
        return cls(*values)


_LAYOUTS: dict[type[Event], _Layout] = {}


def _layout(cls: type[Event]) -> _Layout:
    """The codec of `cls`, read from its field annotations on first use."""
    layout = _LAYOUTS.get(cls)
    if layout is None:
        layout = _LAYOUTS[cls] = _read_layout(cls)
    return layout


def _read_layout(cls: type[Event]) -> _Layout:
    hints = get_type_hints(cls, include_extras=True)
    names = tuple(field.name for field in dataclasses.fields(cls))  # type: ignore[arg-type]
    codes = tuple(str(hints[name].__metadata__[0]) for name in names)
    fmt = "<" + "".join("B" if code == "?" else code for code in codes)
    return _Layout(struct.Struct(fmt), names, codes)


def _check_field(event: str, name: str, code: str, value: object) -> object:
    if code == "32s":
        if type(value) is not bytes or len(value) != 32:
            raise BorshEncodeError(f"{event}.{name} must be 32 bytes (got {value!r})")
    elif code == "?":
        if type(value) is not bool:
            raise BorshEncodeError(f"{event}.{name} must be a bool (got {value!r})")
    else:
        low, high = _INT_RANGES[code]
        if type(value) is not int or not low <= value <= high:
            raise BorshEncodeError(
                f"{event}.{name} must be an int in {low}..{high} (got {value!r})"
            )
    return value


@dataclass(frozen=True)
class UnknownEvent:
    """A `Program data:` payload whose discriminator is not a known event."""

    discriminator: bytes
    data: bytes  # the bytes after the discriminator

    def encode(self) -> bytes:
        return self.discriminator + self.data


@dataclass(frozen=True)
class CumulativeRewardsClaimed(Event):
    """A V2 claim paid `user_amount + creator_amount`; `channel` is the ChannelConfigV2 PDA."""

    NAME: ClassVar[str] = "CumulativeRewardsClaimed"
    channel: PubkeyBytes
    claimer: PubkeyBytes
    user_amount: U64
    creator_amount: U64
    cumulative_total: U64
    root_seq: U64


@dataclass(frozen=True)
class CreatorFeeUpdated(Event):
    NAME: ClassVar[str] = "CreatorFeeUpdated"
    admin: PubkeyBytes
    channel_config: PubkeyBytes
    old_fee_bps: U16
    new_fee_bps: U16
    timestamp: I64


@dataclass(frozen=True)
class RootSeqRecovered(Event):
    NAME: ClassVar[str] = "RootSeqRecovered"
    admin: PubkeyBytes
    channel_config: PubkeyBytes
    old_seq: U64
    new_seq: U64
    timestamp: I64


@dataclass(frozen=True)
class ChannelClosed(Event):
    NAME: ClassVar[str] = "ChannelClosed"
    channel_config: PubkeyBytes
    admin: PubkeyBytes
    lamports_returned: U64
    timestamp: I64


@dataclass(frozen=True)
class PublisherUpdated(Event):
    NAME: ClassVar[str] = "PublisherUpdated"
    admin: PubkeyBytes
    old_publisher: PubkeyBytes
    new_publisher: PubkeyBytes
    mint: PubkeyBytes
    timestamp: I64


@dataclass(frozen=True)
class ProtocolPaused(Event):
    NAME: ClassVar[str] = "ProtocolPaused"
    admin: PubkeyBytes
    paused: Bool
    mint: PubkeyBytes
    timestamp: I64


@dataclass(frozen=True)
class AdminTransferred(Event):
    NAME: ClassVar[str] = "AdminTransferred"
    old_admin: PubkeyBytes
    new_admin: PubkeyBytes
    mint: PubkeyBytes
    timestamp: I64


@dataclass(frozen=True)
class FeesHarvested(Event):
    NAME: ClassVar[str] = "FeesHarvested"
    mint: PubkeyBytes
    withheld_amount: U64
    treasury_share: U64
    creator_pool_share: U64
    timestamp: I64


@dataclass(frozen=True)
class ChannelStaked(Event):
    """A stake position opened on a channel (`channel` = ChannelConfigV2 PDA)."""

    NAME: ClassVar[str] = "ChannelStaked"
    user: PubkeyBytes
    channel: PubkeyBytes
    amount: U64
    nft_mint: PubkeyBytes
    lock_duration: U64
    boost_bps: U64
    timestamp: I64


@dataclass(frozen=True)
class ChannelUnstaked(Event):
    """A stake position closed after its lock (`channel` = ChannelConfigV2 PDA)."""

    NAME: ClassVar[str] = "ChannelUnstaked"
    user: PubkeyBytes
    channel: PubkeyBytes
    amount: U64
    nft_mint: PubkeyBytes
    timestamp: I64


@dataclass(frozen=True)
class ChannelEmergencyUnstaked(Event):
    """A stake position closed before its lock, with a penalty (`channel` = config PDA)."""

    NAME: ClassVar[str] = "ChannelEmergencyUnstaked"
    user: PubkeyBytes
    channel: PubkeyBytes
    staked_amount: U64
    penalty_amount: U64
    returned_amount: U64
    nft_mint: PubkeyBytes
    remaining_lock_slots: U64
    timestamp: I64


@dataclass(frozen=True)
class GlobalRootPublished(Event):
    """`publish_global_root` stored a root in the mint's GlobalRootConfig (reference §G4)."""

    NAME: ClassVar[str] = "GlobalRootPublished"
    mint: PubkeyBytes
    root_seq: U64
    root: PubkeyBytes
    dataset_hash: PubkeyBytes
    publisher: PubkeyBytes
    slot: U64


@dataclass(frozen=True)
class GlobalRewardsClaimed(Event):
    """A global claim (V4 or V5) paid `amount` (the delta); the claimer's ClaimStateGlobal now
    holds `cumulative_total` (V5: base_yield + attention_bonus)."""

    NAME: ClassVar[str] = "GlobalRewardsClaimed"
    claimer: PubkeyBytes
    amount: U64
    cumulative_total: U64
    root_seq: U64


#: every known event class by its Anchor name.
EVENT_TYPES: dict[str, type[Event]] = {
    cls.NAME: cls
    for cls in (
        CumulativeRewardsClaimed,
        CreatorFeeUpdated,
        RootSeqRecovered,
        ChannelClosed,
        PublisherUpdated,
        ProtocolPaused,
        AdminTransferred,
        FeesHarvested,
        ChannelStaked,
        ChannelUnstaked,
        ChannelEmergencyUnstaked,
        GlobalRootPublished,
        GlobalRewardsClaimed,
    )
}
_BY_DISCRIMINATOR = {cls.DISCRIMINATOR: cls for cls in EVENT_TYPES.values()}


def decode_event(data: bytes) -> Event | UnknownEvent:
    """Decode one `Program data:` payload by its discriminator.

    Returns:
        The known event, or `UnknownEvent` for an unknown discriminator.
    Raises:
        EventDecodeError: fewer than 8 bytes, or a known event's payload is garbled.
    """
    if len(data) < 8:
        raise EventDecodeError(
            f"event payload must start with an 8-byte discriminator (got {len(data)} bytes)"
        )
    cls = _BY_DISCRIMINATOR.get(bytes(data[:8]))
    if cls is None:
        return UnknownEvent(bytes(data[:8]), bytes(data[8:]))
    return cls.decode(data)
