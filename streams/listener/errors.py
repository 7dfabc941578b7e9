"""Errors of the listener; all refine `aop.runtime.errors.AopError` so `aop listen` reports
them. A failed JSON-RPC call raises `aop.runtime.errors.RpcUnavailableError`, shared with
settlement and the replay."""

from __future__ import annotations

from aop.runtime.errors import AopError

__all__ = ["HistoryPrunedError", "ListenerError", "SinkError", "SinkFencedError"]


class ListenerError(AopError):
    """The root of the listener's errors."""


class SinkError(ListenerError):
    """Raised when a slot range could not be committed to Kafka; nothing of it is visible to
    read_committed consumers and the range is retried."""


class SinkFencedError(SinkError):
    """Raised when another listener with the same transactional id took over (or the producer
    hit a fatal error). Operator action: run one listener per transactional id."""


class HistoryPrunedError(ListenerError):
    """Raised when the RPC node no longer holds a slot the listener still needs: its first
    available block is above the slot the listener resumes from, so the events in between
    cannot be listed (a node with a limited ledger lists only what it kept, without error).
    Nothing is written. Operator action: point AOP_RPC_URL at a node that still holds the
    resume slot (a longer ledger, or one backed by long-term storage)."""

    def __init__(self, *, resume_slot: int, first_available: int) -> None:
        super().__init__(
            f"the RPC node's first available block is {first_available}, above slot "
            f"{resume_slot} the listener resumes from: slots {resume_slot}..{first_available - 1}"
            " were pruned there and their events cannot be listed. Operator action: point "
            f"AOP_RPC_URL at a node that still holds slot {resume_slot} (a longer ledger, or "
            "one backed by long-term storage), then restart the listener"
        )
        self.resume_slot = resume_slot
        self.first_available = first_available
