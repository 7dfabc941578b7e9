"""`aop log import`: restore an export into a cluster, each record at its old offset.

`import_log` steps:

1. read the export's newest manifest (its own sha256 checked) and refuse one of another
   pipeline: program id, mint or partition count differ (the topic prefix may differ);
2. check every segment file before writing anything: present, its size and sha256 as the
   manifest says, and the segments of each partition in order inside its range
   (`ChecksumError` naming the file);
3. check the target topics: each must be missing or empty (`NonEmptyTopicError`), unless
   `allow_non_empty`, and have the exported partition count;
4. create the missing topics with the pipeline's topic specs (`ensure_topics`);
5. restore the partitions (`aop.log.backup.partition_restore`): every record with its key,
   value, headers and timestamp, in order, at the offset it had (`allow_non_empty`: appended,
   new offsets): dense partitions each with a plain producer, a few at a time, beside one
   lock-step writer for all the others;
6. a purgeable topic (the roots topics) exported from a purged log start: move the restored
   partition's log start there (`log.purge.delete_below`; below it are only the import's
   aborted fillers), so its readers see the purge as on the source (`RootAssembler.purged_start`:
   chunks above the start whose header was purged are a remainder, not orphans);
7. report what was written per partition.

After an import the log reads as it did when exported, offsets included, so every offset
stored with a projection or in a root (`input_offsets`) still points at the same record.
Common failure scenarios: a bad file stops step 2, nothing is written; a crash in step 5
leaves some partitions (partly) written: delete the target topics and import again.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from aop.log.backup.cut import OffsetReader, PartitionRef
from aop.log.backup.errors import ChecksumError, ManifestError, NonEmptyTopicError
from aop.log.backup.files import file_sha256
from aop.log.backup.manifest import Deployment, Manifest, TopicCoverage, latest_manifest
from aop.log.backup.partition_restore import (
    LockstepRestore,
    PartitionJob,
    PlainRestore,
    RestoredPartition,
)
from aop.log.backup.progress import Progress
from aop.log.kafka import TopicSpec, ensure_topics, topic_specs
from aop.log.purge import delete_below
from aop.runtime.settings import Settings

__all__ = ["ImportResult", "import_log", "read_checked_manifest", "verify_files"]


@dataclass
class ImportResult:
    """What an import wrote."""

    directory: Path
    manifest_path: Path
    manifest: Manifest
    partitions: list[RestoredPartition] = field(default_factory=list)
    verify_seconds: float = 0.0
    seconds: float = 0.0

    @property
    def records(self) -> int:
        return sum(p.records for p in self.partitions)

    @property
    def bytes(self) -> int:
        return sum(p.bytes for p in self.partitions)


def read_checked_manifest(settings: Settings, directory: Path) -> tuple[Path, Manifest]:
    """Step 1: the newest manifest, refused when it is another pipeline's.

    Raises:
        ManifestError: no manifest, or an unreadable or corrupt one.
        ForeignManifestError: another program id, mint or partition count.
    """
    found = latest_manifest(directory)
    if found is None:
        raise ManifestError(f"{directory} holds no export (no manifests/*.json)")
    path, manifest = found
    manifest.deployment.refuse_other(Deployment.of(settings), source=str(path), same_prefix=False)
    return path, manifest


def verify_files(directory: Path, manifest: Manifest) -> int:
    """Step 2: every segment present, in place and intact; returns the bytes checked.

    Raises:
        ChecksumError: a file missing, of another size or sha256; the message names it.
        ManifestError: segments out of order or outside their partition's range.
    """
    checked = 0
    for topic in manifest.topics:
        for part in topic.coverage:
            at, records = part.start, 0
            for segment in part.segments:
                if segment.start < at or segment.end > part.end or segment.end <= segment.start:
                    raise ManifestError(
                        f"{segment.path}: offsets {segment.start}..{segment.end} do not follow "
                        f"{at} inside {topic.name}[{part.partition}] {part.start}..{part.end}"
                    )
                at, records = segment.end, records + segment.records
                path = directory / segment.path
                if not path.is_file():
                    raise ChecksumError(f"{path} is missing; nothing was written")
                sha256, size = file_sha256(path)
                if (sha256, size) != (segment.sha256, segment.bytes):
                    raise ChecksumError(
                        f"{path} is corrupt: sha256 {sha256} and {size} bytes, the manifest "
                        f"says {segment.sha256} and {segment.bytes}; nothing was written; "
                        "operator action: use another copy of the file"
                    )
                checked += size
            if records != part.records:
                raise ManifestError(
                    f"{topic.name}[{part.partition}]: segments hold {records} records, the "
                    f"manifest says {part.records}"
                )
    return checked


def _target_specs(settings: Settings, manifest: Manifest) -> list[tuple[TopicCoverage, TopicSpec]]:
    """Each exported topic with the spec it is restored into (this pipeline's, else the
    manifest's own for a topic this pipeline no longer has)."""
    ours = {s.name: s for s in topic_specs(settings)}
    pairs = []
    for topic in manifest.topics:
        name = settings.topic(topic.name)
        spec = ours.get(name) or TopicSpec(
            name, topic.partitions, topic.config, transactional=topic.transactional
        )
        if spec.partitions != topic.partitions:
            raise ManifestError(
                f"{topic.name} was exported with {topic.partitions} partitions, this pipeline "
                f"has {spec.partitions} (AOP_CHAIN_PARTITIONS)"
            )
        pairs.append((topic, spec))
    return pairs


def _restore_purged_starts(
    settings: Settings, pairs: list[tuple[TopicCoverage, TopicSpec]]
) -> None:
    """Step 6: each purgeable partition whose export starts above 0 starts there again."""
    for topic, spec in pairs:
        starts = {c.partition: c.start for c in topic.coverage if 0 < c.start < c.end}
        if spec.purgeable and starts:
            delete_below(settings, spec.name, starts)


def import_log(
    settings: Settings,
    directory: Path,
    *,
    allow_non_empty: bool = False,
    parallel: int = 4,
    progress: Progress | None = None,
) -> ImportResult:
    """Run the protocol of the module docstring.

    Raises:
        ManifestError, ForeignManifestError, ChecksumError: steps 1-2 (nothing written).
        NonEmptyTopicError: step 3 (nothing written).
        OffsetDriftError, BackupError: step 5.
        LogReadError: step 6, the broker refused to move a log start.
    """
    started = time.perf_counter()
    path, manifest = read_checked_manifest(settings, directory)  # step 1
    verify_files(directory, manifest)  # step 2
    result = ImportResult(directory, path, manifest, verify_seconds=time.perf_counter() - started)
    pairs = _target_specs(settings, manifest)
    with OffsetReader(settings) as reader:  # step 3
        existing = reader.topics()
        for _topic, spec in pairs:
            if spec.name not in existing:
                continue
            for p in range(spec.partitions):
                high = reader.high(PartitionRef(spec.name, p))
                if high > 0 and not allow_non_empty:
                    raise NonEmptyTopicError(
                        f"{spec.name}[{p}] is not empty (it ends at offset {high}); nothing "
                        "was written; operator action: import into an empty cluster or topic "
                        "prefix, or pass --allow-non-empty to append (offsets then change)"
                    )
    ensure_topics(settings, [spec for _, spec in pairs])  # step 4
    with OffsetReader(settings) as reader:
        jobs = [
            PartitionJob(ref, part, directory, reader.high(ref))
            for topic, spec in pairs
            for part in topic.coverage
            if part.end > part.start
            for ref in [PartitionRef(spec.name, part.partition)]
        ]
    advance = progress.advance if progress else (lambda _n: None)
    plain = [j for j in jobs if j.dense or allow_non_empty]
    tasks: list[PlainRestore | LockstepRestore] = [
        PlainRestore(settings, j, preserve_offsets=not allow_non_empty, advance=advance)
        for j in plain
    ]
    tasks.append(LockstepRestore(settings, [j for j in jobs if j not in plain], advance=advance))
    if progress:
        progress.start("import", manifest.records)
    try:
        with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:  # step 5
            for done in pool.map(lambda task: task.run(), tasks):
                result.partitions.extend(done)
    finally:
        if progress:
            progress.finish()
    if not allow_non_empty:
        _restore_purged_starts(settings, pairs)  # step 6
    result.seconds = time.perf_counter() - started
    return result
