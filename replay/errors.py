"""Errors of replay, parity and rebuild; all are `AopError`s (`aop` prints one line, exit 2)."""

from __future__ import annotations

from aop.runtime.errors import AopError

__all__ = [
    "LegacyParityError",
    "LogTruncatedError",
    "NothingToReplayError",
    "RebuildError",
    "ReplayError",
    "UnknownChannelError",
]


class ReplayError(AopError):
    """The root of the replay errors."""


class UnknownChannelError(ReplayError, ValueError):
    """Raised when a channel asked for is not one of AOP_CHANNELS (the fold knows no policy
    for it, so it cannot be replayed)."""


class NothingToReplayError(ReplayError, LookupError):
    """Raised when the root asked for is neither stored nor produced by the log."""


class LogTruncatedError(ReplayError):
    """Raised when a partition of aop.chain.events no longer starts at offset 0 (records
    were deleted), so the fold cannot be rebuilt from the start."""


class RebuildError(ReplayError):
    """Raised when `aop rebuild` cannot build, verify or switch the fresh schema."""


class LegacyParityError(ReplayError):
    """Raised when the comparison with the legacy aggregator cannot run: a bad connection-string
    file or query, the legacy database unreachable or answering what is not a root, a channel
    that is not ring-v0-legacy."""
