"""Errors of settlement; all are `AopError`s (`aop` prints one line, exit 2). A failed RPC
call worth retrying raises `aop.runtime.errors.RpcUnavailableError`, shared with the
listener and the replay."""

from __future__ import annotations

from aop.runtime.errors import AopError

__all__ = [
    "PublisherKeypairError",
    "SettlementError",
    "TransactionRejectedError",
]


class SettlementError(AopError):
    """The root of the settlement errors."""


class PublisherKeypairError(SettlementError, ValueError):
    """Raised when AOP_PUBLISHER_KEYPAIR is unset, missing, unreadable, malformed or too open."""


class TransactionRejectedError(SettlementError):
    """Raised when the RPC refuses a transaction at send time (preflight).

    `kind` is "blockhash_not_found", "already_processed" or "program_error" (then `code` is the
    program's custom error code when there is one) or "rejected".
    """

    def __init__(self, kind: str, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.code = code
