"""The listener's values: what the chain told us and what goes on the log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["DeadLetter", "SignatureInfo", "TxLogs"]


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
