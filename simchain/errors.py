"""Errors of the simulated chain: one root, and the two shapes a failure takes on the wire.

`RpcError` is a JSON-RPC error object (code, message, data) as a real Solana node sends it;
the RPC layer answers it verbatim. `InstructionFailed` is raised by the program rules and
becomes a failed transaction (`{"InstructionError": [i, {"Custom": code}]}`), never an RPC
error, unless preflight simulation turns it into one.
"""

from __future__ import annotations

from typing import Any

__all__ = ["InstructionFailed", "RpcError", "SimChainError", "TransactionRejected"]


class SimChainError(Exception):
    """The root of every error raised by `simchain`."""


class RpcError(SimChainError):
    """Raised by an RPC handler to answer a JSON-RPC error object (Solana's codes and texts)."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            body["data"] = self.data
        return body


class TransactionRejected(SimChainError):
    """Raised when a transaction cannot land at all (bad blockhash, unfunded fee payer, ...).

    `err` is the transaction error as Solana serialises it (e.g. "BlockhashNotFound");
    `message` is the node's text for it.
    """

    def __init__(self, err: Any, message: str) -> None:
        super().__init__(message)
        self.err = err
        self.message = message


class InstructionFailed(SimChainError):
    """Raised by a program when an instruction fails; the transaction lands as failed.

    Args:
        error: the instruction error as Solana serialises it, e.g. {"Custom": 6008}.
        reason: the tail of the `Program <id> failed: <reason>` log line.
    """

    def __init__(self, error: Any, reason: str) -> None:
        super().__init__(reason)
        self.error = error
        self.reason = reason

    @classmethod
    def custom(cls, code: int) -> InstructionFailed:
        """A program's custom error: `custom program error: 0x1778` for 6008."""
        return cls({"Custom": code}, f"custom program error: {code:#x}")
