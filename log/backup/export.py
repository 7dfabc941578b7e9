"""`aop log export`: append what is new on the log's topics to an export directory.

`export_log` steps (the manifest layout is in `aop.log.backup.manifest`):

1. lock the directory (`.lock`, flock): one export at a time;
2. read the newest manifest and refuse one of another deployment (program id, mint, topic
   prefix, partitions); each partition's new range starts at its end (first run: at the
   first offset the broker still holds; a purgeable topic, the roots topics, whose log start
   moved past that end: at its log start, `TopicSpec.purgeable`);
3. remove leftovers of an interrupted run: `*.tmp` files and segment files the newest
   manifest does not reference;
4. find a consistent cut (`aop.log.backup.cut`): each partition's end, never inside a
   transaction of the listener; check the log still holds every offset from the start
   (a gap on a topic that is not purgeable: `LogGapError`, nothing written);
5. read each partition's new range read_committed (aborted records and transaction markers
   are skipped) and write it, in offset order, to one segment file (`<name>.tmp`, fsync,
   rename, fsync the directory);
6. write the next manifest, listing every earlier segment and the new ones (tmp, fsync,
   rename): this rename is the moment the export exists. No range moved: no manifest.

Common failure scenarios: a crash or an error (a full disk: ENOSPC) before step 6 leaves the
previous manifest the newest, referencing only files that are complete; the new run's files
are removed at once on an error, or by step 3 of the next run after a crash. Two exports of
one directory: the second fails at step 1. A topic deleted or recreated, or records expired
before they were exported: step 4 refuses, naming the partition and the missing offsets.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import Consumer, KafkaError, TopicPartition

from aop.log.backup.cut import OffsetReader, PartitionRef, consistent_cut
from aop.log.backup.errors import BackupError, LogGapError
from aop.log.backup.files import TMP_SUFFIX
from aop.log.backup.manifest import (
    Deployment,
    Manifest,
    PartitionCoverage,
    Segment,
    TopicCoverage,
    latest_manifest,
    log_schemas,
    pipeline_version,
    write_manifest,
)
from aop.log.backup.progress import Progress
from aop.log.backup.segment import SegmentWriter
from aop.log.kafka import TopicSpec, consumer_config, topic_specs
from aop.log.messages import position
from aop.runtime.settings import Settings

__all__ = ["ExportResult", "NewRange", "export_log"]

log = logging.getLogger(__name__)

LOCK_FILE = ".lock"
#: a read that brings nothing for this long while records are due fails the export.
_STALL_S = 60.0


@dataclass(frozen=True)
class NewRange:
    """Offsets [start, end) of a partition, read by this run, and its file (if it had records)."""

    topic: str
    partition: int
    start: int
    end: int
    segment: Segment | None = None

    @property
    def records(self) -> int:
        return self.segment.records if self.segment else 0

    @property
    def bytes(self) -> int:
        return self.segment.bytes if self.segment else 0


@dataclass
class ExportResult:
    """What one export run did."""

    directory: Path
    manifest: Manifest | None
    manifest_path: Path | None
    written: bool
    ranges: list[NewRange] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def records(self) -> int:
        return sum(r.records for r in self.ranges)

    @property
    def bytes(self) -> int:
        return sum(r.bytes for r in self.ranges)


@dataclass
class _Job:
    ref: PartitionRef
    name: str
    start: int
    end: int
    writer: SegmentWriter | None = None


def export_log(
    settings: Settings,
    directory: Path,
    *,
    codec: str = "snappy",
    cut_timeout_s: float = 120.0,
    progress: Progress | None = None,
) -> ExportResult:
    """Run the protocol of the module docstring.

    Raises:
        ForeignManifestError: the directory holds another deployment's export.
        ManifestError: its newest manifest is unreadable or corrupt.
        LogGapError: the log lost offsets the export must cover.
        CutTimeoutError: no consistent cut in `cut_timeout_s`.
        BackupError: the directory is locked, a write failed (full disk), the broker stalled.
    """
    started = time.perf_counter()
    with _locked(directory):  # step 1
        found = latest_manifest(directory)  # step 2
        previous = found[1] if found else None
        deployment = Deployment.of(settings)
        if found and previous:
            previous.deployment.refuse_other(deployment, source=str(found[0]), same_prefix=True)
        _remove_leftovers(directory, previous)  # step 3
        with OffsetReader(settings) as reader:
            specs = _existing(settings, topic_specs(settings), previous, reader.topics())
            jobs = _plan(settings, specs, previous, reader, cut_timeout_s)  # step 4
        result = ExportResult(directory, previous, found[0] if found else None, False)
        if all(j.end == j.start for j in jobs):
            log.info("nothing new to export", extra={"directory": str(directory)})
            result.seconds = time.perf_counter() - started
            return result
        try:
            ranges = _read(settings, directory, jobs, codec, progress)  # step 5
            manifest = _next_manifest(settings, specs, previous, deployment, ranges)
            result.manifest_path = write_manifest(directory, manifest)  # step 6
        except OSError as exc:  # the manifest's own write
            _remove_leftovers(directory, previous)
            raise BackupError(
                f"writing the manifest into {directory} failed: {exc}; the previous manifest "
                "stays the newest; operator action: free space and export again"
            ) from exc
        except BaseException:
            _remove_leftovers(directory, previous)
            raise
        result.manifest, result.written, result.ranges = manifest, True, ranges
        result.seconds = time.perf_counter() - started
        log.info(
            "export written",
            extra={"manifest": str(result.manifest_path), "records": result.records},
        )
        return result


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        lock = (directory / LOCK_FILE).open("a")
    except OSError as exc:
        raise BackupError(f"cannot use {directory} as an export directory: {exc}") from exc
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BackupError(
                f"{directory} is locked by another export (its {LOCK_FILE}); wait for it to end"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _remove_leftovers(directory: Path, manifest: Manifest | None) -> None:
    """Step 3: `*.tmp` files, and segment files the manifest does not reference."""
    keep = {s.path for s in manifest.segments} if manifest else set()
    for folder in ("topics", "manifests"):
        root = directory / folder
        if not root.is_dir():
            continue
        for path in root.rglob("*"):
            if not path.is_file():
                continue
            relative = path.relative_to(directory).as_posix()
            is_tmp = path.name.endswith(TMP_SUFFIX)
            if is_tmp or (folder == "topics" and relative not in keep):
                log.warning(
                    "removing a leftover of an interrupted export", extra={"file": relative}
                )
                path.unlink(missing_ok=True)


def _logical(settings: Settings, spec: TopicSpec) -> str:
    return spec.name.removeprefix(settings.topic_prefix)


def _existing(
    settings: Settings, specs: list[TopicSpec], previous: Manifest | None, topics: set[str]
) -> list[TopicSpec]:
    """The specs whose topic exists; a missing one the export covers is a lost topic.

    Raises:
        LogGapError: a topic with exported records is gone from the cluster.
    """
    found = []
    for spec in specs:
        if spec.name in topics:
            found.append(spec)
            continue
        covered = previous.topic(_logical(settings, spec)) if previous else None
        if covered and any(c.end > 0 for c in covered.coverage):
            raise LogGapError(
                f"{spec.name} does not exist any more, but the export covers its offsets up "
                f"to {max(c.end for c in covered.coverage)}: it was deleted; operator action: "
                "restore it from this export (`aop log import`), or export into a new directory"
            )
        log.warning("not exported: the topic does not exist yet", extra={"topic": spec.name})
    return found


def _plan(
    settings: Settings,
    specs: list[TopicSpec],
    previous: Manifest | None,
    reader: OffsetReader,
    cut_timeout_s: float,
) -> list[_Job]:
    """Step 4: each partition's [start, end), checked against what the broker holds."""
    refs = [
        PartitionRef(spec.name, p, spec.transactional)
        for spec in specs
        for p in range(spec.partitions)
    ]
    names = {spec.name: _logical(settings, spec) for spec in specs}
    purgeable = {spec.name for spec in specs if spec.purgeable}
    ends = consistent_cut(reader, refs, timeout_s=cut_timeout_s)
    jobs = []
    for ref in refs:
        covered = previous.topic(names[ref.topic]) if previous else None
        before = (
            next((c for c in covered.coverage if c.partition == ref.partition), None)
            if covered
            else None
        )
        low = reader.low(ref)
        start = before.end if before else low
        end = ends[ref]
        if end < start:
            raise LogGapError(
                f"{ref} ends at offset {end} but the export covers it up to {start}: the topic "
                "was deleted or recreated; operator action: restore it from this export "
                "(`aop log import`), or export into a new directory"
            )
        if low > start and ref.topic in purgeable:
            # a roots topic: the purge deleted what every reader had passed; export from the
            # log start (the manifest's coverage records it: an import restores the records
            # at their offsets, from there)
            start = low
        if low > start:
            raise LogGapError(
                f"{ref} no longer holds offsets {start}..{low - 1} (its first offset is {low}): "
                "they expired or were deleted before they were exported; operator action: "
                "check the topic's retention (it must be infinite), export into a new directory"
            )
        jobs.append(_Job(ref, names[ref.topic], start, end))
    return jobs


def _read(
    settings: Settings,
    directory: Path,
    jobs: list[_Job],
    codec: str,
    progress: Progress | None,
) -> list[NewRange]:
    """Step 5: every job's range into its segment file (none for a range without records)."""
    due = {(j.ref.topic, j.ref.partition): j for j in jobs if j.end > j.start}
    current = directory
    consumer = Consumer(
        consumer_config(
            settings,
            f"{settings.topic_prefix}aop.log.export.{uuid.uuid4().hex[:8]}",
            **{
                "enable.partition.eof": True,
                "fetch.wait.max.ms": 50,
                # large fetches and a deep queue: the broker's fetcher keeps reading while
                # this thread compresses, hashes and writes (measured: 2.3 s -> see BENCHMARKS)
                "fetch.max.bytes": 64 * 1024 * 1024,
                "max.partition.fetch.bytes": 16 * 1024 * 1024,
                "queued.max.messages.kbytes": 256 * 1024,
            },
        )
    )
    if progress:
        progress.start("export", sum(j.end - j.start for j in due.values()))
    try:
        for job in due.values():
            job.writer = SegmentWriter(
                directory, job.name, job.ref.partition, job.start, job.end, codec=codec
            )
            current = job.writer.tmp
        consumer.assign([TopicPartition(t, p, j.start) for (t, p), j in due.items()])
        pending = dict(due)
        last_read = time.monotonic()
        while pending:
            messages = consumer.consume(64, timeout=1.0)
            if not messages and time.monotonic() - last_read > _STALL_S:
                raise BackupError(
                    f"nothing read for {_STALL_S:.0f} s from "
                    f"{', '.join(str(j.ref) for j in pending.values())}; is the broker up?"
                )
            for message in messages:
                topic, partition, offset = position(message)
                key = (topic, partition)
                found = pending.get(key)
                writer = None if found is None else found.writer
                if found is None or writer is None:
                    continue
                job = found
                error = message.error()
                if error is not None and error.code() != KafkaError._PARTITION_EOF:
                    raise BackupError(f"reading {job.ref}: {error}")
                if error is None and offset < job.end:
                    current = writer.tmp
                    writer.append(message)
                    if progress:
                        progress.advance(offset + 1 - job.start - writer.done)
                    writer.done = offset + 1 - job.start
                    last_read = time.monotonic()
                if offset >= job.end - (0 if error is not None else 1):
                    del pending[key]
                    if progress:  # the markers after its last record
                        progress.advance(job.end - job.start - writer.done)
        ranges = []
        for job in jobs:
            writer, job.writer = job.writer, None
            if writer is None or writer.records == 0:
                if writer is not None:
                    writer.discard()
                ranges.append(NewRange(job.name, job.ref.partition, job.start, job.end))
                continue
            current = writer.tmp
            sha256, size = writer.finish()
            ranges.append(
                NewRange(
                    job.name,
                    job.ref.partition,
                    job.start,
                    job.end,
                    Segment(writer.relative, job.start, job.end, writer.records, size, sha256),
                )
            )
        return ranges
    except OSError as exc:
        raise BackupError(
            f"writing {current} failed: {exc}; the previous manifest stays the newest, this "
            "run's files are removed; operator action: free space (or fix the directory) and "
            "export again"
        ) from exc
    finally:
        for job in due.values():
            if job.writer is not None:
                job.writer.discard()
                job.writer = None
        consumer.close()
        if progress:
            progress.finish()


def _next_manifest(
    settings: Settings,
    specs: list[TopicSpec],
    previous: Manifest | None,
    deployment: Deployment,
    ranges: list[NewRange],
) -> Manifest:
    """Step 6's manifest: the previous coverage extended by this run's ranges."""
    new = {(r.topic, r.partition): r for r in ranges}
    topics = []
    names = [_logical(settings, s) for s in specs]
    for spec, name in zip(specs, names, strict=True):
        before = previous.topic(name) if previous else None
        coverage = []
        for p in range(spec.partitions):
            old = next((c for c in before.coverage if c.partition == p), None) if before else None
            step = new[(name, p)]
            segments = (old.segments if old else ()) + ((step.segment,) if step.segment else ())
            records = (old.records if old else 0) + (step.segment.records if step.segment else 0)
            coverage.append(
                PartitionCoverage(p, old.start if old else step.start, step.end, records, segments)
            )
        topics.append(
            TopicCoverage(
                name, spec.partitions, dict(spec.config), spec.transactional, tuple(coverage)
            )
        )
    if previous:  # topics an earlier deployment exported and this one no longer has
        topics.extend(t for t in previous.topics if t.name not in names)
    return Manifest(
        seq=(previous.seq if previous else 0) + 1,
        created_at=dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
        pipeline_version=pipeline_version(),
        deployment=deployment,
        topics=tuple(topics),
        schemas=log_schemas(),
    )
