"""Errors of the projections layer; all are `AopError`s (`aop` prints one line, exit 2)."""

from __future__ import annotations

from aop.runtime.errors import AopError

__all__ = [
    "LogStartAheadError",
    "ProjectionError",
    "RoleSetupError",
    "RootRejectedError",
    "SchemaNotCurrentError",
    "UnsafeSchemaNameError",
]


class ProjectionError(AopError):
    """The root of the projections errors."""


class UnsafeSchemaNameError(ProjectionError, ValueError):
    """Raised when AOP_DATABASE_SCHEMA is not a plain SQL identifier."""


class RoleSetupError(ProjectionError):
    """Raised when the service roles cannot be created or granted (`aop db roles`)."""


class SchemaNotCurrentError(ProjectionError):
    """Raised when the database schema is not migrated to this version's head revision."""


class RootRejectedError(ProjectionError, ValueError):
    """Raised when an EpochRoot and its LeafChunks do not verify; `reason` is machine-readable.

    The projector turns it into a DeadLetter (stage "projector") and writes nothing.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class LogStartAheadError(ProjectionError):
    """Raised when a partition's stored offset is below its log start offset: records were
    deleted before the projector read them (operator action: `aop rebuild`)."""
