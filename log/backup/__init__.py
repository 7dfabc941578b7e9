"""Backups of the log: `aop log export` writes the pipeline's topics to Avro container files
with a manifest, incrementally; `aop log import` restores them, every record at its offset.

Modules: `manifest` (layout, checks), `segment` (the container files), `files` (durable
writes), `cut` (where an export may end), `export`, `placement` (the transactions that put
records back at their offsets), `partition_restore`, `restore` (the import), `metrics`.
"""

from aop.log.backup.errors import (
    BackupError,
    ChecksumError,
    CutTimeoutError,
    ForeignManifestError,
    LogGapError,
    ManifestError,
    NonEmptyTopicError,
    OffsetDriftError,
)
from aop.log.backup.export import ExportResult, export_log
from aop.log.backup.manifest import Manifest, latest_manifest
from aop.log.backup.metrics import write_export_metrics
from aop.log.backup.restore import ImportResult, import_log, read_checked_manifest, verify_files

__all__ = [
    "BackupError",
    "ChecksumError",
    "CutTimeoutError",
    "ExportResult",
    "ForeignManifestError",
    "ImportResult",
    "LogGapError",
    "Manifest",
    "ManifestError",
    "NonEmptyTopicError",
    "OffsetDriftError",
    "export_log",
    "import_log",
    "latest_manifest",
    "read_checked_manifest",
    "verify_files",
    "write_export_metrics",
]
