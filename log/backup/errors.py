"""Errors of `aop log export` and `aop log import`; each names the file, topic or partition."""

from __future__ import annotations

from aop.runtime.errors import AopError

__all__ = [
    "BackupError",
    "ChecksumError",
    "CutTimeoutError",
    "ForeignManifestError",
    "LogGapError",
    "ManifestError",
    "NonEmptyTopicError",
    "OffsetDriftError",
]


class BackupError(AopError):
    """Raised when an export or an import cannot go on; nothing half-done is left referenced."""


class ManifestError(BackupError, ValueError):
    """Raised when a manifest is unreadable, corrupt, or inconsistent with its files."""


class ChecksumError(BackupError, ValueError):
    """Raised when a segment file is missing or its size or sha256 differs from the manifest."""


class ForeignManifestError(BackupError, ValueError):
    """Raised when a manifest belongs to another pipeline (program id, mint, partitions)."""


class NonEmptyTopicError(BackupError):
    """Raised when an import would write into a topic that already holds records."""


class LogGapError(BackupError):
    """Raised when the log no longer holds records an export must cover (retention, a deleted
    or recreated topic)."""


class CutTimeoutError(BackupError):
    """Raised when no moment without a half-visible transaction was found in time."""


class OffsetDriftError(BackupError):
    """Raised when an imported record did not land at the offset it had when exported."""
