"""Errors of the simulated chain: one root, the chain's own typed errors, and the wire's.

The chain (`SimChain`, `Runtime`) raises typed errors and knows nothing of JSON-RPC:

* `InstructionFailedError` is raised by the program rules and becomes a failed transaction
  (`{"InstructionError": [i, {"Custom": code}]}`), never an RPC error, unless preflight
  simulation turns it into one;
* `TransactionRejectedError` is a transaction that cannot land at all;
* a `ChainRequestError` is a request the chain refuses (a bad commitment, a transaction that
  fails its checks, ...); `aop.simchain.rpc.rpc_error` answers each kind with the JSON-RPC
  error a real Solana node (Agave) sends.

`RpcError` is that JSON-RPC error object (code, message, data); the RPC layer answers it
verbatim.
"""

from __future__ import annotations

from typing import Any

from solders.pubkey import Pubkey

__all__ = [
    "AirdropFailedError",
    "ChainRequestError",
    "InstructionFailedError",
    "InvalidTransactionError",
    "PreflightFailedError",
    "ProtocolNotSetUpError",
    "RpcError",
    "SignatureVerificationError",
    "SimChainError",
    "TransactionRejectedError",
    "UnknownCommitmentError",
]


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


class TransactionRejectedError(SimChainError):
    """Raised when a transaction cannot land at all (bad blockhash, unfunded fee payer, ...).

    `err` is the transaction error as Solana serialises it (e.g. "BlockhashNotFound");
    `message` is the node's text for it.
    """

    def __init__(self, err: Any, message: str) -> None:
        super().__init__(message)
        self.err = err
        self.message = message


class InstructionFailedError(SimChainError):
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
    def custom(cls, code: int) -> InstructionFailedError:
        """A program's custom error: `custom program error: 0x1778` for 6008."""
        return cls({"Custom": code}, f"custom program error: {code:#x}")


class ChainRequestError(SimChainError):
    """Raised when the chain refuses a request; `rpc.rpc_error` gives its JSON-RPC error."""


class UnknownCommitmentError(ChainRequestError):
    """Raised when a read names a commitment level Solana does not know."""

    def __init__(self, commitment: str | None) -> None:
        super().__init__(f"unknown commitment `{commitment}`")
        self.commitment = commitment


class InvalidTransactionError(ChainRequestError):
    """Raised when a transaction's message does not sanitize (e.g. an account index out of
    range); `detail` is solders' text."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"invalid transaction: {detail}")
        self.detail = detail


class SignatureVerificationError(ChainRequestError):
    """Raised when a signature of a transaction does not verify."""

    def __init__(self) -> None:
        super().__init__("Transaction signature verification failure")


class PreflightFailedError(ChainRequestError):
    """Raised by `sendTransaction`'s preflight when the simulation rejects or fails the
    transaction; it is not sent.

    Args:
        reason: the node's text, e.g. "Blockhash not found" or
            "Error processing Instruction 0: custom program error: 0x1778".
        err: the transaction error as Solana serialises it.
        logs: the simulation's log lines (none for a rejection).
        units: the compute units the simulation used.
    """

    def __init__(self, reason: str, *, err: Any, logs: list[str], units: int) -> None:
        super().__init__(f"Transaction simulation failed: {reason}")
        self.reason = reason
        self.err = err
        self.logs = logs
        self.units = units


class AirdropFailedError(ChainRequestError):
    """Raised when the faucet's transfer is rejected (it should never be)."""

    def __init__(self) -> None:
        super().__init__("airdrop failed")


class ProtocolNotSetUpError(ChainRequestError):
    """Raised when a channel is set up for a mint that has no ProtocolState yet."""

    def __init__(self, mint: Pubkey) -> None:
        super().__init__(f"no ProtocolState for mint {mint}; set up the protocol first")
        self.mint = mint
