"""What the ingest takes and answers, declared once: one `msgspec.Struct` per shape.

The request items' limits come from `core.attention.signals` (id and user lengths, value
range, kinds), the channel name's from `api.shapes`. The decoders (`api.ingest.items`) and
the OpenAPI document (`api.ingest.app`) both derive from these declarations.

Times are unix milliseconds, as JSON integers (`observed_at`): no time zone or leap-second
ambiguity, and what the log stores (`observed_at_ms`).
"""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta, Struct

from aop.api.params import I64_MAX
from aop.api.shapes import Answer, ChannelName, Key
from aop.core.attention.signals import (
    MAX_ID_LENGTH,
    MAX_SIGNAL_VALUE,
    MAX_USER_LENGTH,
    TEXT_PATTERN,
    SignalKind,
)

__all__ = [
    "Accepted",
    "BindingItem",
    "BindingLine",
    "BindingsRequest",
    "LegacyEvent",
    "LegacyRequest",
    "LegacySignals",
    "SignalItem",
    "SignalLine",
    "SignalsRequest",
]

Id = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=MAX_ID_LENGTH,
        pattern=TEXT_PATTERN,
        description="the source's id of the item, unique per source: a retry with the same id "
        "counts once",
    ),
]
User = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=MAX_USER_LENGTH,
        pattern=TEXT_PATTERN,
        description="the platform user (e.g. a Twitch login), compared case-insensitively",
    ),
]
UnixMs = Annotated[int, Meta(ge=0, le=I64_MAX, description="unix milliseconds (an integer)")]
Count = Annotated[int, Meta(ge=0)]


class SignalItem(Struct, forbid_unknown_fields=True):
    """One attention signal (`POST /v1/signals`)."""

    id: Id
    channel: Annotated[ChannelName, Meta(description="a served channel (AOP_CHANNELS)")]
    user: User
    kind: SignalKind
    value: Annotated[
        int,
        Meta(
            ge=1,
            le=MAX_SIGNAL_VALUE,
            description="a count (bits: the bits), or seconds for *_seconds kinds",
        ),
    ]
    observed_at: UnixMs


class SignalsRequest(Struct, forbid_unknown_fields=True):
    """`POST /v1/signals`: at most AOP_INGEST_MAX_ITEMS signals, all or nothing."""

    items: list[SignalItem]


class BindingItem(Struct, forbid_unknown_fields=True):
    """A platform user bound to a wallet from the next attention epoch on (`POST /v1/bindings`)."""

    id: Id
    user: User
    wallet: Annotated[Key, Meta(description="base58 public key (32 bytes)")]
    observed_at: UnixMs


class BindingsRequest(Struct, forbid_unknown_fields=True):
    """`POST /v1/bindings`: at most AOP_INGEST_MAX_ITEMS bindings, all or nothing."""

    items: list[BindingItem]


LegacyCount = Annotated[int, Meta(ge=0, le=MAX_SIGNAL_VALUE)]


class LegacySignals(Struct, forbid_unknown_fields=True):
    """The legacy event's counts; each non-zero one becomes a signal of that kind."""

    presence: LegacyCount = 0
    sub: LegacyCount = 0
    resub: LegacyCount = 0
    gift: LegacyCount = 0
    bits: LegacyCount = 0
    raid: LegacyCount = 0


class LegacyEvent(Struct):
    """One (channel, user) of a legacy request (other fields are ignored)."""

    channel: ChannelName
    user: User
    signals: LegacySignals


class LegacyRequest(Struct):
    """The legacy aggregator's `POST /ingest`, unchanged (other fields are ignored)."""

    epoch: Annotated[
        int,
        Meta(ge=0, le=I64_MAX, description="the attention epoch: the unix second it starts at"),
    ]
    events: list[LegacyEvent]


class Accepted(Answer):
    """202: every item is on the log (acknowledged by the brokers), as new or as a duplicate."""

    accepted: Annotated[Count, Meta(description="items written by this request")]
    duplicates: Annotated[
        Count, Meta(description="items whose (source, id) was already on the log: not written")
    ]
    request_id: Annotated[str, Meta(description="names the request on the log (SignalBatch)")]


class SignalLine(SignalItem, tag="signal", tag_field="type"):
    """A line of a backfill file (`aop ingest --file`): `{"type": "signal", ...}` and the
    fields of a `SignalItem`."""


class BindingLine(BindingItem, tag="binding", tag_field="type"):
    """A line of a backfill file: `{"type": "binding", ...}` and the fields of a
    `BindingItem`."""
