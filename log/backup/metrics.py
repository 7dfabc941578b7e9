"""The export's Prometheus textfile (for node_exporter's textfile collector), written atomically.

Gauges, about the last run of `aop log export`:

* `aop_backup_last_run_timestamp_seconds` — when it finished (also when it failed);
* `aop_backup_last_run_success` — 1 if it completed, else 0;
* `aop_backup_last_success_timestamp_seconds` — when an export last completed (after a failed
  run: the newest manifest's time);
* `aop_backup_run_seconds`, `aop_backup_records` — its duration and the records it wrote;
* `aop_backup_manifest_seq` — the newest manifest's number;
* `aop_backup_end_offset{topic,partition}` — the offset each partition is backed up to.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

from aop.log.backup.manifest import Manifest

__all__ = ["write_export_metrics"]


def write_export_metrics(
    path: Path,
    manifest: Manifest | None,
    *,
    success: bool,
    seconds: float,
    records: int,
    now: float | None = None,
) -> None:
    """Write the gauges of the module docstring to `path` (temp file + rename)."""
    now = time.time() if now is None else now
    registry = CollectorRegistry(auto_describe=True)

    def gauge(name: str, doc: str, value: float) -> None:
        Gauge(name, doc, registry=registry).set(value)

    gauge("aop_backup_last_run_timestamp_seconds", "Unix time the last export finished", now)
    gauge("aop_backup_last_run_success", "1 if the last export completed, else 0", success)
    last_success = now if success else _created(manifest)
    if last_success is not None:
        gauge(
            "aop_backup_last_success_timestamp_seconds",
            "Unix time an export last completed",
            last_success,
        )
    gauge("aop_backup_run_seconds", "Duration of the last export", seconds)
    gauge("aop_backup_records", "Records the last export wrote", records)
    if manifest is not None:
        gauge("aop_backup_manifest_seq", "Number of the newest manifest", manifest.seq)
        ends = Gauge(
            "aop_backup_end_offset",
            "Offset (exclusive) each partition is backed up to",
            ["topic", "partition"],
            registry=registry,
        )
        for topic in manifest.topics:
            for part in topic.coverage:
                ends.labels(topic.name, str(part.partition)).set(part.end)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), registry)


def _created(manifest: Manifest | None) -> float | None:
    if manifest is None:
        return None
    return dt.datetime.fromisoformat(manifest.created_at).timestamp()
