"""The attention policy: stake-time weights and the pro-rata split of an epoch's emission.

Weight. A position is opened by `ChannelStaked` (keyed by channel + `nft_mint`; wallet =
`user`) and closed by `ChannelUnstaked` or `ChannelEmergencyUnstaked` of the same `nft_mint`.
It holds the slots [open_slot, close_slot) (to infinity while open). A wallet's weight in
epoch e is

    Σ over its positions of amount × boost_bps × |held slots ∩ epoch e|

in exact integers. The program's `/ 10000` on `boost_bps` multiplies every weight of a channel
by the same constant, which cancels in the pro-rata split below, so it is left out (no
rounding is ever done on weights). Slots before genesis belong to no epoch and earn nothing;
a position opened before genesis starts earning at genesis.

Order inside a slot. Within one slot, opens apply before closes (a position opened and closed
in the same slot holds zero slots), ties broken by event id; a claim only raises a maximum, so
its place does not matter. Hence results never depend on the order of a slot's events.

Split. With E the channel's emission and W the total weight (both > 0):
share_i = floor(E × w_i / W); the remainder R = E - Σ share_i goes one unit each to the R
wallets with the largest (E × w_i mod W), ties by wallet bytes ascending. Σ share_i = E.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable, Mapping
from functools import partial
from itertools import compress, repeat
from operator import eq, ge, gt, itemgetter, mul
from typing import Any, NamedTuple, get_type_hints

from aop.core.errors import CoreError, EventDecodeError
from aop.core.events import (
    ChannelEmergencyUnstaked,
    ChannelStaked,
    ChannelUnstaked,
    CumulativeRewardsClaimed,
    Event,
    UnknownEvent,
)
from aop.core.validation import U64_MAX

__all__ = [
    "CLAIM",
    "CLOSE",
    "OPEN",
    "PolicyEvent",
    "PolicyRefusedError",
    "check_cumulative_totals",
    "check_epoch_amounts",
    "policy_event",
    "policy_event_from_payload",
    "split_emission",
]

#: event kinds, numbered in the order they apply inside one slot.
OPEN = 0
CLOSE = 1
CLAIM = 2


class PolicyEvent(NamedTuple):
    """The part of a program event the policy uses."""

    kind: int
    #: the event name (ChannelStaked, ...).
    name: str
    #: the channel's ChannelConfigV2 PDA.
    channel: bytes
    #: OPEN: the staker; CLOSE: the unstaker (the position's own wallet counts); CLAIM: claimer.
    wallet: bytes
    #: OPEN/CLOSE: the position's key; CLAIM: b"".
    nft_mint: bytes = b""
    #: OPEN: the staked amount and boost; CLAIM: the claimed cumulative_total (in `amount`).
    amount: int = 0
    boost_bps: int = 0


class PolicyRefusedError(CoreError, ValueError):
    """Raised when an epoch's allocation breaks an invariant, so no root may be emitted.

    `reason` is short and machine-readable (a DLQ reason, a metric label): `sum_mismatch`,
    `total_decreased`, `total_overflow`, `duplicate_wallet`, `too_many_claims`, ...
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def policy_event(event: Event | UnknownEvent) -> PolicyEvent | None:
    """The policy's view of `event`; None for events the policy does not use."""
    if isinstance(event, ChannelStaked):
        return PolicyEvent(
            OPEN,
            event.NAME,
            event.channel,
            event.user,
            event.nft_mint,
            event.amount,
            event.boost_bps,
        )
    if isinstance(event, ChannelUnstaked | ChannelEmergencyUnstaked):
        return PolicyEvent(CLOSE, event.NAME, event.channel, event.user, event.nft_mint)
    if isinstance(event, CumulativeRewardsClaimed):
        return PolicyEvent(
            CLAIM, event.NAME, event.channel, event.claimer, amount=event.cumulative_total
        )
    return None


def _field_layout(cls: type[Event]) -> tuple[struct.Struct, dict[str, int]]:
    """A struct over `cls`'s payload, read from its Borsh field annotations, and field indexes."""
    hints = get_type_hints(cls, include_extras=True)
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    codes = "".join(str(hints[name].__metadata__[0]) for name in names)
    if "?" in codes:  # bools need a 0/1 check: not on the fast path
        raise TypeError(f"{cls.NAME} has a bool field")
    return struct.Struct("<" + codes), {name: i for i, name in enumerate(names)}


class _Decoder(NamedTuple):
    name: str
    size: int
    codec: struct.Struct
    #: the PolicyEvent's leading (kind, name).
    head: tuple[int, str]
    #: picks (channel, wallet, nft_mint, amount, boost_bps) from the unpacked fields followed
    #: by `_ABSENT` (the defaults of fields the event does not have).
    pick: Callable[[tuple[Any, ...]], tuple[Any, ...]]


#: appended to an event's unpacked fields: the values of PolicyEvent fields it lacks.
_ABSENT: tuple[bytes, int] = (b"", 0)


def _decoder(cls: type[Event], kind: int, wallet: str, amount: str, boost: str) -> _Decoder:
    codec, index = _field_layout(cls)
    fields = len(index)
    nft_at, zero_at = fields, fields + 1  # where `_ABSENT`'s values land
    picked = (
        index["channel"],
        index[wallet],
        index.get("nft_mint", nft_at),
        index.get(amount, zero_at),
        index.get(boost, zero_at),
    )
    return _Decoder(cls.NAME, 8 + codec.size, codec, (kind, cls.NAME), itemgetter(*picked))


_DECODERS = {
    ChannelStaked.DISCRIMINATOR: _decoder(ChannelStaked, OPEN, "user", "amount", "boost_bps"),
    ChannelUnstaked.DISCRIMINATOR: _decoder(ChannelUnstaked, CLOSE, "user", "", ""),
    ChannelEmergencyUnstaked.DISCRIMINATOR: _decoder(
        ChannelEmergencyUnstaked, CLOSE, "user", "", ""
    ),
    CumulativeRewardsClaimed.DISCRIMINATOR: _decoder(
        CumulativeRewardsClaimed, CLAIM, "claimer", "cumulative_total", ""
    ),
}

#: PolicyEvent from a tuple of its fields, in C (`PolicyEvent(...)` runs a Python `__new__`:
#: ~40% of decoding one event).
_policy_event: Callable[[tuple[Any, ...]], PolicyEvent] = partial(tuple.__new__, PolicyEvent)


def policy_event_from_payload(data: bytes) -> PolicyEvent | None:
    """`policy_event(decode_event(data))` without building the event object (the hot path).

    Field layouts come from `core.events`' annotations, so both decoders read the same bytes.

    Returns:
        The policy's view, or None when `data` is not one of the four events the policy uses
        (decode it with `core.events.decode_event` to know what it is).
    Raises:
        EventDecodeError: a policy event's payload has the wrong length.
    """
    decoder = _DECODERS.get(data[:8])
    if decoder is None:
        return None
    if len(data) != decoder.size:
        problem = "short" if len(data) < decoder.size else "trailing bytes"
        raise EventDecodeError(
            f"{decoder.name}: payload must be {decoder.size} bytes (got {len(data)}: {problem})"
        )
    return _policy_event(decoder.head + decoder.pick(decoder.codec.unpack_from(data, 8) + _ABSENT))


def split_emission(emission: int, weights: Mapping[bytes, int]) -> dict[bytes, int]:
    """Split `emission` pro rata over `weights` (module docstring); zero weights get nothing.

    Each pass over the wallets runs in C (`map`, `divmod`): an epoch close splits over every
    wallet of the channel.

    Returns:
        wallet -> share for every wallet with a positive weight; {} when the total is 0.
    Raises:
        ValueError: a negative weight or emission.
    """
    if emission < 0:
        raise ValueError(f"emission must be >= 0 (got {emission})")
    if weights and min(weights.values()) < 0:
        wallet, weight = next((w, x) for w, x in weights.items() if x < 0)
        raise ValueError(f"weight of {wallet.hex()} must be >= 0 (got {weight})")
    total = sum(weights.values())
    if total == 0:
        return {}
    positive = weights if all(weights.values()) else {w: x for w, x in weights.items() if x}
    wallets = list(positive)
    # (share, remainder) of each wallet: divmod(emission * weight, total)
    splits = list(map(divmod, map(mul, repeat(emission), positive.values()), repeat(total)))
    shares = dict(zip(wallets, map(_FIRST, splits), strict=True))
    left = emission - sum(shares.values())
    if left:
        # the left-th largest remainder; every larger one wins, ties go by wallet bytes
        remainders = list(map(_SECOND, splits))
        threshold = sorted(remainders, reverse=True)[left - 1]
        above = list(compress(wallets, map(gt, remainders, repeat(threshold))))
        tied = sorted(compress(wallets, map(eq, remainders, repeat(threshold))))
        for wallet in above + tied[: left - len(above)]:
            shares[wallet] += 1
    return shares


_FIRST, _SECOND = itemgetter(0), itemgetter(1)


def check_epoch_amounts(emission: int, shares: Mapping[bytes, int]) -> None:
    """Refuse an epoch whose shares do not sum to the emission or do not fit a u64.

    Raises:
        PolicyRefusedError: `sum_mismatch` or `amount_overflow`.
    """
    total = sum(shares.values())
    if total != emission:
        raise PolicyRefusedError(
            "sum_mismatch", f"allocations sum to {total}, the emission is {emission}"
        )
    if shares and not (min(shares.values()) >= 0 and max(shares.values()) <= U64_MAX):
        for wallet, share in shares.items():
            if not 0 <= share <= U64_MAX:
                raise PolicyRefusedError(
                    "amount_overflow",
                    f"wallet {wallet.hex()} gets {share}, outside 0..{U64_MAX}",
                )


def check_cumulative_totals(previous: Mapping[bytes, int], current: Mapping[bytes, int]) -> None:
    """Refuse new cumulative totals where a wallet went down, vanished, or overflowed a u64.

    Args:
        previous: every wallet's total before the epoch (wallets with 0 may be absent).
        current: every wallet's total after the epoch.
    Raises:
        PolicyRefusedError: `total_decreased` or `total_overflow`.
    """
    # the common case, checked in C; the loops below name the first offending wallet
    afters = map(current.get, previous, repeat(0))
    if all(map(ge, afters, previous.values())) and (
        not current or max(current.values()) <= U64_MAX
    ):
        return
    for wallet, before in previous.items():
        after = current.get(wallet, 0)
        if after < before:
            raise PolicyRefusedError(
                "total_decreased", f"wallet {wallet.hex()} would go from {before} to {after}"
            )
    for wallet, after in current.items():
        if after > U64_MAX:
            raise PolicyRefusedError(
                "total_overflow",
                f"wallet {wallet.hex()} would reach {after}, above the u64 maximum {U64_MAX}",
            )
