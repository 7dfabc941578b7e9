"""Errors of the listener; all refine `aop.errors.AopError` so `aop listen` reports them."""

from __future__ import annotations

from aop.runtime.errors import AopError

__all__ = ["ListenerError", "RpcUnavailableError", "SinkError", "SinkFencedError"]


class ListenerError(AopError):
    """The root of the listener's errors."""


class RpcUnavailableError(ListenerError):
    """Raised when a JSON-RPC call fails (HTTP, websocket, timeout, RPC error, or a missing
    transaction); the caller backs off and retries the whole step, never skipping it."""


class SinkError(ListenerError):
    """Raised when a slot range could not be committed to Kafka; nothing of it is visible to
    read_committed consumers and the range is retried."""


class SinkFencedError(SinkError):
    """Raised when another listener with the same transactional id took over (or the producer
    hit a fatal error). Operator action: run one listener per transactional id."""
