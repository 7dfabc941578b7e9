"""Errors of reading and writing the log; all are `AopError`s (`aop` prints one line, exit 2)."""

from __future__ import annotations

from aop.runtime.errors import AopError

__all__ = ["LogReadError", "ReadStalledError"]


class LogReadError(AopError):
    """Raised when the broker does not answer a read, or a topic or partition does not exist."""


class ReadStalledError(LogReadError):
    """Raised when a partition read makes no progress towards its stop offset in time."""
