"""The shared rules of an attention signal: its kinds, the epoch of a time, the user's name.

`aop ingest` (which refuses a bad signal before it reaches the log) and the fold (which
dead-letters one that got there anyway) both apply these, so they cannot disagree.

Attention epochs are wall-clock windows aligned to unix time: the epoch of a time t (unix
milliseconds) with L-second epochs is the unix second its window starts, `(t // 1000 // L) *
L`, as the legacy aggregator named its hourly epochs.
"""

from __future__ import annotations

__all__ = ["SIGNAL_KINDS", "epoch_of", "normalise_user"]

#: the kinds of signal (schemas/avro/Signal.avsc `SignalKind`, in its order).
SIGNAL_KINDS = (
    "presence",
    "chat",
    "sub",
    "resub",
    "gift",
    "bits",
    "raid",
    "listen_seconds",
    "view_seconds",
)


def epoch_of(observed_at_ms: int, epoch_seconds: int) -> int:
    """The attention epoch holding `observed_at_ms`: unix seconds of its window's start.

    Raises:
        ValueError: `epoch_seconds` is not positive.
    """
    if epoch_seconds < 1:
        raise ValueError(f"epoch_seconds must be >= 1 (got {epoch_seconds})")
    return observed_at_ms // 1000 // epoch_seconds * epoch_seconds


def normalise_user(user: str) -> str:
    """The user as the policy compares it: lower-cased (a Twitch login is case-insensitive)."""
    return user.lower()
