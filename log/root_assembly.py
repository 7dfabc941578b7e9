"""Assembles a root record with its LeafChunks, per partition of a roots topic (no I/O).

A root on the log is a header record, EpochRoot or AttentionRoot (aop.epoch.roots, the
fold's) or GlobalRoot (aop.global.roots, the combiner's), then its LeafChunks (same key, same
partition). The headers name the root account `channel_config` and carry `root_seq`, `format`
and `chunk_count`. EpochClosed and AttentionClosed markers (aop.epoch.roots) are not part of
any root: `add` returns nothing for them; their reader (the combiner) handles them itself.

The fold may write the same records again after a crash, so the assembler accepts:

* an EpochRoot for a key already being assembled: the assembly restarts from it;
* a LeafChunk repeated with the same bytes: ignored; with other bytes: the root is refused;
* roots of different channels interleaved on one partition.

`safe_offset` says how far a partition's offset may be committed: never past the EpochRoot of
an assembly still waiting for chunks, so a restart re-reads every record it needs.

A reader that starts a partition at a purged log start (`log.purge`: the log start offset is
above 0) calls `purged_start`. The purge point is a root boundary of the KEPT roots, but with
interleaved roots an older root's header may lie below it and some of its LeafChunks above:
those chunks have no header to join. They are a `PurgedRemainder` (counted, not a rejection)
while no header of their channel has been read on the partition since the start: one
channel's roots are written in root_seq order, each header before its chunks, so a chunk
whose header lies below the log start comes before every header of its channel read from
there. A headerless chunk after one is an `orphan_chunk` rejection, as on an unpurged topic.
(The other way, a purge point that never splits a root, needs the chunk extent of every root
below the point: a read of the purged range each time, or a stored last-chunk offset.)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aop.core.claims import RECORD_SIZES

__all__ = [
    "MARKERS",
    "ROOT_HEADERS",
    "CompleteRoot",
    "PurgedRemainder",
    "RejectedRecord",
    "RootAssembler",
]

Key = tuple[str, int]
#: the record types that open a root (its LeafChunks follow).
ROOT_HEADERS = frozenset({"EpochRoot", "AttentionRoot", "GlobalRoot"})
#: the markers of aop.epoch.roots (no rows of their own).
MARKERS = frozenset({"EpochClosed", "AttentionClosed"})


@dataclass(frozen=True, eq=False)
class CompleteRoot:
    """A root record (EpochRoot, AttentionRoot or GlobalRoot) and all its chunks' entries
    (chunk_index order), ready to verify."""

    partition: int
    offset: int
    record: Mapping[str, Any]
    chunks: list[bytes]
    payload: bytes
    record_type: str = "EpochRoot"


@dataclass(frozen=True)
class RejectedRecord:
    """A record (or a whole root, by its EpochRoot) to send to the DLQ instead of writing."""

    partition: int
    offset: int
    reason: str
    detail: str
    payload: bytes


@dataclass(frozen=True)
class PurgedRemainder:
    """A LeafChunk of a root whose header lies below the purged log start (module docstring):
    nothing to write and nothing to reject."""

    partition: int
    offset: int
    channel_config: str
    root_seq: int


@dataclass(eq=False)
class _Assembly:
    offset: int
    record: Mapping[str, Any]
    payload: bytes
    record_type: str
    chunks: dict[int, Mapping[str, Any]] = field(default_factory=dict)


class RootAssembler:
    """Collects records per partition; `add` returns whatever completed or failed."""

    def __init__(self) -> None:
        self._pending: dict[int, dict[Key, _Assembly]] = {}
        #: partition -> channels whose header was read since a purged start (absent: the
        #: partition was not started at a purged log start).
        self._headers_since_purge: dict[int, set[str]] = {}

    def purged_start(self, partition: int) -> None:
        """The next record `add` gets of `partition` is at its log start, which a purge moved
        above 0: headerless chunks of roots begun below it are a `PurgedRemainder`."""
        self._headers_since_purge[partition] = set()

    def add(
        self,
        partition: int,
        offset: int,
        record_type: str,
        value: Mapping[str, Any],
        payload: bytes,
    ) -> list[CompleteRoot | RejectedRecord | PurgedRemainder]:
        """Take one decoded record of aop.epoch.roots."""
        pending = self._pending.setdefault(partition, {})
        if record_type in MARKERS:
            return []
        if record_type in ROOT_HEADERS:
            key = (str(value["channel_config"]), int(value["root_seq"]))
            self._headers_since_purge.get(partition, set()).add(key[0])
            pending[key] = _Assembly(offset, value, payload, record_type)
            return list(self._maybe_complete(partition, key))
        if record_type != "LeafChunk":
            return [
                RejectedRecord(
                    partition,
                    offset,
                    "unexpected_record",
                    "a roots topic carries EpochRoot, AttentionRoot, GlobalRoot, LeafChunk, "
                    f"EpochClosed and AttentionClosed records (got {record_type})",
                    payload,
                )
            ]
        key = (str(value["channel_config"]), int(value["root_seq"]))
        assembly = pending.get(key)
        purged = self._headers_since_purge.get(partition)
        if assembly is None and purged is not None and key[0] not in purged:
            return [PurgedRemainder(partition, offset, key[0], key[1])]
        if assembly is None:
            return [
                RejectedRecord(
                    partition,
                    offset,
                    "orphan_chunk",
                    f"LeafChunk {value['chunk_index']} of {key[0]} root_seq {key[1]} has no "
                    "root record before it on this partition",
                    payload,
                )
            ]
        index, count = int(value["chunk_index"]), int(value["chunk_count"])
        expected = int(assembly.record["chunk_count"])
        problem = None
        if count != expected:
            problem = ("chunk_count_mismatch", f"chunk says {count} chunks, EpochRoot {expected}")
        elif not 0 <= index < expected:
            problem = ("bad_chunk_index", f"chunk_index must be in 0..{expected - 1} (got {index})")
        elif index in assembly.chunks and assembly.chunks[index] != value:
            problem = ("conflicting_chunk", f"chunk {index} arrived twice with different content")
        if problem is not None:
            del pending[key]
            return [self._reject(partition, assembly, *problem)]
        assembly.chunks[index] = value
        return list(self._maybe_complete(partition, key))

    def _reject(
        self, partition: int, assembly: _Assembly, reason: str, detail: str
    ) -> RejectedRecord:
        record = assembly.record
        where = f"{record['channel_config']} root_seq {record['root_seq']}"
        return RejectedRecord(
            partition, assembly.offset, reason, f"{where}: {detail}", assembly.payload
        )

    def _maybe_complete(self, partition: int, key: Key) -> list[CompleteRoot | RejectedRecord]:
        pending = self._pending[partition]
        assembly = pending[key]
        count = int(assembly.record["chunk_count"])
        if count < 0:
            del pending[key]
            return [self._reject(partition, assembly, "bad_chunk_count", f"chunk_count {count}")]
        if len(assembly.chunks) < count:
            return []
        del pending[key]
        size = RECORD_SIZES.get(str(assembly.record["format"]))
        chunks = [assembly.chunks[i] for i in range(count)]
        if size is not None:
            first = 0
            for chunk in chunks:
                if int(chunk["first_leaf"]) != first:
                    detail = (
                        f"chunk {chunk['chunk_index']} first_leaf must be {first} "
                        f"(got {chunk['first_leaf']})"
                    )
                    return [self._reject(partition, assembly, "bad_first_leaf", detail)]
                first += len(chunk["entries"]) // size
        return [
            CompleteRoot(
                partition,
                assembly.offset,
                assembly.record,
                [bytes(c["entries"]) for c in chunks],
                assembly.payload,
                assembly.record_type,
            )
        ]

    def safe_offset(self, partition: int, next_offset: int) -> int:
        """The offset `partition` may be committed at, given everything before `next_offset`
        was handed to `add`: the first EpochRoot still waiting for chunks, else `next_offset`."""
        starts = [a.offset for a in self._pending.get(partition, {}).values()]
        return min([*starts, next_offset])

    def pending_count(self, partition: int) -> int:
        return len(self._pending.get(partition, {}))

    def drop_partition(self, partition: int) -> None:
        """Forget a partition's assemblies (revoked, or re-seeked after a fencing conflict)."""
        self._pending.pop(partition, None)
        self._headers_since_purge.pop(partition, None)
