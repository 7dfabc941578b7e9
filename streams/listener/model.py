"""The listener's values: what the chain told us and what goes on the log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

__all__ = ["DeadLetter", "RoutedEvent", "SignatureInfo", "TxLogs"]


@dataclass(frozen=True, slots=True)
class SignatureInfo:
    """One entry of getSignaturesForAddress: a program transaction at the chosen commitment."""

    signature: str
    slot: int
    block_time: int | None
    err: str | None
    """The transaction error as text, None when the transaction succeeded."""


@dataclass(frozen=True, slots=True)
class TxLogs:
    """A program transaction with its log messages (None when the RPC kept none)."""

    signature: str
    slot: int
    block_time: int | None
    err: str | None
    logs: tuple[str, ...] | None
    position: int = 0
    """Its place among the program's transactions of its slot, in block order (0 first)."""


class RoutedEvent(NamedTuple):
    """A decoded event and the partition it belongs to (a tuple: cheap to build)."""

    partition: int
    slot: int
    signature: str
    event_index: int
    name: str
    block_time: int | None
    program_id: str
    data: bytes
    fields: dict[str, str]
    position: int = 0
    """The transaction's place among the program's transactions of the slot (block order)."""

    @property
    def id(self) -> str:
        """`signature:event_index`, the dedupe key."""
        return f"{self.signature}:{self.event_index}"

    @property
    def order(self) -> tuple[int, int, str, int]:
        """Place in a SlotBatch: slot, transaction position, (signature), event index."""
        return (self.slot, self.position, self.signature, self.event_index)

    @property
    def record(self) -> dict[str, Any]:
        """The ChainEvent Avro value."""
        return {
            "id": self.id,
            "signature": self.signature,
            "slot": self.slot,
            "block_time": self.block_time,
            "event_index": self.event_index,
            "program_id": self.program_id,
            "name": self.name,
            "data": self.data,
            "fields": self.fields,
        }


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Input the listener could not use; becomes a DeadLetter record on `aop.dlq`."""

    reason: str
    detail: str
    source: str
    payload: bytes
    slot: int

    def to_avro(self, at_ms: int) -> dict[str, Any]:
        return {
            "stage": "listener",
            "reason": self.reason,
            "detail": self.detail,
            "source": self.source,
            "payload": self.payload,
            "at_ms": at_ms,
        }
