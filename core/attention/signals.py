"""The rules of attention signals every writer and reader applies: kinds, value ranges,
epochs, lateness and user identity. Pure: no I/O, no clock (callers pass the time).

Epochs. Attention epochs are wall-clock windows aligned to unix time. With
`E = AOP_ATTENTION_EPOCH_SECONDS`, epoch `e` (its id is the unix second of its start, a
multiple of E, as the legacy aggregator's) covers the milliseconds `[e*1000, (e+E)*1000)`.
A signal counts in the epoch it names (legacy `POST /ingest {epoch}`), else in the epoch
holding its `observed_at_ms`.

Windows and lateness. A signal's window is the span of time it claims: its `observed_at_ms`
alone, or the whole of the epoch it names. A writer's watermark `W` (unix ms) promises that
the writer will never again accept a signal whose window ends before `W`, so a signal is late
against `W` iff its window's last millisecond is before `W`, and it is from the future iff its
window's first millisecond is after the writer's clock plus the allowed skew. The ingest
refuses both; the fold dead-letters a late signal that reaches it anyway.

Users. A platform user is compared case-insensitively: `user_key` is the lower-cased name
(the legacy's `lowercase(username)`, whose keccak is its `user_hash`); the log keeps the name
as the collector sent it.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

from aop.core.errors import CoreError

__all__ = [
    "LEGACY_KINDS",
    "MAX_ID_LENGTH",
    "MAX_SIGNAL_VALUE",
    "MAX_USER_LENGTH",
    "SIGNAL_KINDS",
    "TEXT_PATTERN",
    "SignalKind",
    "SignalRuleError",
    "check_epoch",
    "epoch_of",
    "is_future",
    "is_late",
    "signal_epoch",
    "signal_window_ms",
    "user_key",
    "watermark_at",
]

#: what a collector observed (`schemas/avro/Signal.avsc`, enum SignalKind, in its order).
SignalKind = Literal[
    "presence", "chat", "sub", "resub", "gift", "bits", "raid", "listen_seconds", "view_seconds"
]
SIGNAL_KINDS: Final[tuple[SignalKind, ...]] = get_args(SignalKind)
#: the keys of the legacy `POST /ingest` event's `signals` object, in its order.
LEGACY_KINDS: Final[tuple[SignalKind, ...]] = ("presence", "sub", "resub", "gift", "bits", "raid")
#: a signal's count or duration is 1..this: a larger one is a collector's bug, and the bound
#: keeps a year of weighted sums far inside a u64.
MAX_SIGNAL_VALUE: Final = 1_000_000_000
#: the longest id (of a signal or a binding) and user name, in characters.
MAX_ID_LENGTH: Final = 128
MAX_USER_LENGTH: Final = 128
#: ids and user names: any characters but the C0 controls and DEL (one or more).
TEXT_PATTERN: Final = "^[^\\x00-\\x1f\\x7f]+$"


class SignalRuleError(CoreError, ValueError):
    """Raised when a signal breaks one of these rules; `reason` is its refusal code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _check_epoch_seconds(epoch_seconds: int) -> None:
    if type(epoch_seconds) is not int or epoch_seconds < 1:
        raise ValueError(f"epoch_seconds must be an int >= 1 (got {epoch_seconds!r})")


def epoch_of(at_ms: int, epoch_seconds: int) -> int:
    """The id of the epoch holding unix millisecond `at_ms` (>= 0): the unix second its window
    starts at. E.g. 3600 s epochs: 7_200_000 -> 7200 and 10_799_999 -> 7200."""
    _check_epoch_seconds(epoch_seconds)
    if at_ms < 0:
        raise SignalRuleError("bad_observed_at", f"time must be >= 0 unix ms (got {at_ms})")
    return at_ms // 1000 // epoch_seconds * epoch_seconds


def check_epoch(epoch: int, epoch_seconds: int) -> int:
    """`epoch` if it is an epoch id: >= 0 and a multiple of `epoch_seconds`.

    Raises:
        SignalRuleError: reason `bad_epoch`, naming the nearest epoch ids.
    """
    _check_epoch_seconds(epoch_seconds)
    if epoch < 0 or epoch % epoch_seconds:
        start = max(0, epoch) // epoch_seconds * epoch_seconds
        raise SignalRuleError(
            "bad_epoch",
            f"epoch must be the unix second an epoch starts at, a multiple of "
            f"{epoch_seconds} (got {epoch}; e.g. {start} or {start + epoch_seconds})",
        )
    return epoch


def signal_epoch(observed_at_ms: int, epoch: int | None, epoch_seconds: int) -> int:
    """The epoch a signal counts in: the one it names, else the one holding `observed_at_ms`."""
    return epoch_of(observed_at_ms, epoch_seconds) if epoch is None else epoch


def signal_window_ms(observed_at_ms: int, epoch: int | None, epoch_seconds: int) -> tuple[int, int]:
    """(first, last) unix millisecond of the span a signal claims: `observed_at_ms` alone, or
    every millisecond of the epoch it names. E.g. epoch 3600 of 3600 s epochs is
    (3_600_000, 7_199_999)."""
    if epoch is None:
        return observed_at_ms, observed_at_ms
    _check_epoch_seconds(epoch_seconds)
    return epoch * 1000, (epoch + epoch_seconds) * 1000 - 1


def is_late(window_last_ms: int, watermark_ms: int) -> bool:
    """Whether a signal whose window ends at `window_last_ms` comes after watermark
    `watermark_ms` has passed it (its window ends before the watermark)."""
    return window_last_ms < watermark_ms


def is_future(window_first_ms: int, now_ms: int, skew_ms: int) -> bool:
    """Whether a signal whose window starts at `window_first_ms` is from the future: after the
    writer's clock `now_ms` plus the allowed clock skew `skew_ms`."""
    return window_first_ms > now_ms + skew_ms


def watermark_at(now_ms: int, allowed_lateness_s: int) -> int:
    """The watermark a writer whose clock reads `now_ms` may write: `now_ms` minus the allowed
    lateness (AOP_ATTENTION_ALLOWED_LATENESS_S)."""
    return now_ms - allowed_lateness_s * 1000


def user_key(user: str) -> str:
    """How users compare: case-insensitively, by their lower-cased name."""
    return user.lower()
