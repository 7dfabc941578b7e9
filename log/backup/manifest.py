"""The manifest of a log export: what it covers, where each file is, and their checksums.

Layout of an export directory (each file is written once and never changed, so the same
names work as object-storage keys):

    manifests/00000001.json                          one per export run that wrote records
    topics/<topic>/<partition>/<start>-<end>.avro    offsets [start, end) of one partition
    .lock                                            held while an export runs

A manifest is cumulative: it lists the segment files of every earlier run as well, so the
newest one alone describes the whole backup. It carries its own sha256 (over its canonical
JSON without that field), the pipeline's version, the deployment it came from (program id,
mint, topic prefix, partitions) and the schemas: the Avro container files' record schema and
the schemas of the records on the log.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from aop.log.avro import RECORD_TYPES, SCHEMA_DIR
from aop.log.backup.errors import ForeignManifestError, ManifestError
from aop.log.backup.files import write_atomically
from aop.log.backup.segment import RECORD_SCHEMA
from aop.runtime.settings import Settings

__all__ = [
    "FORMAT",
    "MANIFEST_DIR",
    "Deployment",
    "Manifest",
    "PartitionCoverage",
    "Segment",
    "TopicCoverage",
    "latest_manifest",
    "log_schemas",
    "pipeline_version",
    "write_manifest",
]

FORMAT = "aop-log-export/1"
MANIFEST_DIR = "manifests"
_NAME = re.compile(r"^(\d{8})\.json$")


@dataclass(frozen=True)
class Segment:
    """One Avro container file: the records of offsets [start, end) of one partition."""

    path: str
    start: int
    end: int
    records: int
    bytes: int
    sha256: str


@dataclass(frozen=True)
class PartitionCoverage:
    """Offsets [start, end) of a partition are in the backup, in these segments, in order."""

    partition: int
    start: int
    end: int
    records: int
    segments: tuple[Segment, ...] = ()


@dataclass(frozen=True)
class TopicCoverage:
    """A topic by its name without the topic prefix, with its spec and each partition's range."""

    name: str
    partitions: int
    config: dict[str, str]
    transactional: bool
    coverage: tuple[PartitionCoverage, ...]


@dataclass(frozen=True)
class Deployment:
    """Whose log it is: an import into another pipeline is refused."""

    program_id: str
    mint: str
    topic_prefix: str
    chain_partitions: int

    @classmethod
    def of(cls, settings: Settings) -> Deployment:
        return cls(
            settings.program_id, settings.mint, settings.topic_prefix, settings.chain_partitions
        )

    def refuse_other(self, other: Deployment, *, source: str, same_prefix: bool) -> None:
        """Raise unless `other` (this pipeline's settings) is the same deployment.

        Raises:
            ForeignManifestError: program id, mint, partition count (or topic prefix when
                `same_prefix`) differ; the message names the manifest and both values.
        """
        fields = ["program_id", "mint", "chain_partitions"] + (
            ["topic_prefix"] if same_prefix else []
        )
        for name in fields:
            mine, theirs = getattr(other, name), getattr(self, name)
            if mine != theirs:
                raise ForeignManifestError(
                    f"{source} is from another pipeline: its {name} is {theirs!r}, this "
                    f"pipeline's is {mine!r}; operator action: use the settings of the "
                    "deployment that wrote it, or another directory"
                )


@dataclass(frozen=True)
class Manifest:
    seq: int
    created_at: str
    pipeline_version: str
    deployment: Deployment
    topics: tuple[TopicCoverage, ...]
    schemas: dict[str, Any] = field(default_factory=dict)

    def topic(self, name: str) -> TopicCoverage | None:
        return next((t for t in self.topics if t.name == name), None)

    @property
    def records(self) -> int:
        return sum(p.records for t in self.topics for p in t.coverage)

    @property
    def segments(self) -> list[Segment]:
        return [s for t in self.topics for p in t.coverage for s in p.segments]

    def to_json(self) -> bytes:
        body = {"format": FORMAT, **asdict(self)}
        body["sha256"] = _digest(body)
        return json.dumps(body, indent=1, sort_keys=True).encode() + b"\n"

    @classmethod
    def from_json(cls, data: bytes, *, source: str) -> Manifest:
        """Parse and check a manifest.

        Raises:
            ManifestError: not JSON, another format, a digest that does not match (the file
                was altered), or a field of the wrong type; the message names `source`.
        """
        try:
            body = json.loads(data)
        except ValueError as exc:
            raise ManifestError(f"{source} is not JSON: {exc}") from exc
        if not isinstance(body, dict) or body.get("format") != FORMAT:
            got = body.get("format") if isinstance(body, dict) else type(body).__name__
            raise ManifestError(f"{source}: format must be {FORMAT!r} (got {got!r})")
        stored = body.pop("sha256", None)
        if stored != _digest({k: v for k, v in body.items()}):
            raise ManifestError(
                f"{source} is corrupt: its sha256 field does not match its content; operator "
                "action: use an earlier manifest or another copy of the backup"
            )
        try:
            return _parse(body)
        except (KeyError, TypeError, ValueError) as exc:
            raise ManifestError(f"{source}: malformed ({exc!r})") from exc


def _digest(body: Mapping[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(canonical).hexdigest()


def _parse(body: dict[str, Any]) -> Manifest:
    topics = []
    for t in body["topics"]:
        coverage = tuple(
            PartitionCoverage(
                int(p["partition"]),
                int(p["start"]),
                int(p["end"]),
                int(p["records"]),
                tuple(
                    Segment(**{k: s[k] for k in Segment.__dataclass_fields__})
                    for s in p["segments"]
                ),
            )
            for p in t["coverage"]
        )
        topics.append(
            TopicCoverage(
                str(t["name"]),
                int(t["partitions"]),
                {str(k): str(v) for k, v in t["config"].items()},
                bool(t["transactional"]),
                coverage,
            )
        )
    return Manifest(
        int(body["seq"]),
        str(body["created_at"]),
        str(body["pipeline_version"]),
        Deployment(**body["deployment"]),
        tuple(topics),
        dict(body["schemas"]),
    )


def latest_manifest(directory: Path) -> tuple[Path, Manifest] | None:
    """The newest manifest of an export directory, parsed and checked; None if it has none.

    Raises:
        ManifestError: the newest manifest is unreadable or corrupt (an older one is not
            used silently in its place).
    """
    folder = directory / MANIFEST_DIR
    if not folder.is_dir():
        return None
    numbered = sorted((int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name)))
    if not numbered:
        return None
    seq, path = numbered[-1]
    manifest = Manifest.from_json(path.read_bytes(), source=str(path))
    if manifest.seq != seq:
        raise ManifestError(f"{path}: its seq is {manifest.seq}, its name says {seq}")
    return path, manifest


def write_manifest(directory: Path, manifest: Manifest) -> Path:
    """Write `manifest` as `manifests/<seq>.json`, atomically; returns its path."""
    folder = directory / MANIFEST_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{manifest.seq:08d}.json"
    if path.exists():
        raise ManifestError(f"{path} exists already; another export wrote it")
    write_atomically(path, manifest.to_json())
    return path


def log_schemas() -> dict[str, Any]:
    """The container files' record schema and every record schema of the log."""
    log = {name: json.loads((SCHEMA_DIR / f"{name}.avsc").read_text()) for name in RECORD_TYPES}
    return {"container_record": RECORD_SCHEMA, "log": log}


def pipeline_version() -> str:
    """The installed package's version ("unknown" in a checkout that was never installed)."""
    try:
        return metadata.version("attention-oracle-pipeline")
    except metadata.PackageNotFoundError:
        return "unknown"
