"""Errors of the listener; all refine `aop.runtime.errors.AopError` so `aop listen` reports
them. A failed JSON-RPC call raises `aop.runtime.errors.RpcUnavailableError`, shared with
settlement and the replay."""

from __future__ import annotations

from aop.runtime.errors import AopError

__all__ = ["ListenerError", "SinkError", "SinkFencedError"]


class ListenerError(AopError):
    """The root of the listener's errors."""


class SinkError(ListenerError):
    """Raised when a slot range could not be committed to Kafka; nothing of it is visible to
    read_committed consumers and the range is retried."""


class SinkFencedError(SinkError):
    """Raised when another listener with the same transactional id took over (or the producer
    hit a fatal error). Operator action: run one listener per transactional id."""
