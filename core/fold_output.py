"""What the fold produces: roots with their leaf chunks, dead letters, per-record results."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aop.core.claims import ClaimTree

__all__ = [
    "LEAF_CHUNK_ENTRIES",
    "AttentionClosed",
    "BatchResult",
    "EpochClosed",
    "Rejection",
    "RootOutput",
    "leaf_chunks",
]

#: entries per LeafChunk record: 16384 x 44 bytes (ring-v0) = 704 KiB, under the 1 MB limit.
LEAF_CHUNK_ENTRIES = 16384


@dataclass(frozen=True)
class RootOutput:
    """One root for `aop.epoch.roots`: the EpochRoot (or AttentionRoot) record, then its
    LeafChunk records.

    Records are Avro-ready dicts (schemas/avro/EpochRoot.avsc, AttentionRoot.avsc,
    LeafChunk.avsc); `key` is the record key and `partition` the roots partition (= the
    source partition).
    """

    partition: int
    #: the base58 root account (EpochRoot.channel_config), UTF-8.
    key: bytes
    epoch_root: dict[str, Any]
    chunks: tuple[dict[str, Any], ...]
    tree: ClaimTree = field(repr=False, compare=False)
    #: time spent building the tree (informational; not part of the records).
    build_seconds: float = field(default=0.0, compare=False)
    #: the header's record type: "EpochRoot" (stake-time) or "AttentionRoot".
    record_type: str = "EpochRoot"

    @property
    def channel(self) -> str:
        return str(self.epoch_root["channel"])

    @property
    def epoch(self) -> int:
        return int(self.epoch_root["epoch"])

    @property
    def root_seq(self) -> int:
        return int(self.epoch_root["root_seq"])


@dataclass(frozen=True)
class Rejection:
    """Input the fold could not use, for `aop.dlq` (a DeadLetter with stage "fold")."""

    reason: str
    detail: str
    #: `<topic>/<partition>/<offset>`, plus `#<event id>` for one event.
    source: str
    payload: bytes

    def dead_letter(self, at_ms: int) -> dict[str, Any]:
        """The DeadLetter record (`at_ms`: wall-clock time, informational)."""
        return {
            "stage": "fold",
            "reason": self.reason,
            "detail": self.detail,
            "source": self.source,
            "payload": self.payload,
            "at_ms": at_ms,
        }


@dataclass(frozen=True)
class EpochClosed:
    """Every epoch <= `epoch` is closed for every channel of `partition` (schemas/avro/
    EpochClosed.avsc): the fold writes it to the same partition of aop.epoch.roots after the
    roots of the record at `source_offset`, whose watermark `closed_at_slot` closed them."""

    partition: int
    epoch: int
    closed_at_slot: int
    source_offset: int
    #: the closing SlotBatch's `last_block_time` (unix seconds; None: unknown).
    closed_at_time: int | None = None
    record_type = "EpochClosed"

    @property
    def key(self) -> bytes:
        """The record key: `partition:<n>` (roots are keyed by their root account)."""
        return f"partition:{self.partition}".encode()

    @property
    def record(self) -> dict[str, Any]:
        """The EpochClosed Avro value."""
        return {
            "partition": self.partition,
            "epoch": self.epoch,
            "closed_at_slot": self.closed_at_slot,
            "source_offset": self.source_offset,
            "closed_at_time": self.closed_at_time,
        }


@dataclass(frozen=True)
class AttentionClosed:
    """Every attention epoch starting at or before `epoch` is closed for every channel of
    `partition` (schemas/avro/AttentionClosed.avsc): the fold writes it to the same partition
    of aop.epoch.roots after the attention roots of the aop.attention.signals record at
    `source_offset`, whose watermark `watermark_ms` closed them."""

    partition: int
    #: unix seconds: the start of the newest closed attention epoch.
    epoch: int
    epoch_seconds: int
    watermark_ms: int
    source_offset: int
    record_type = "AttentionClosed"

    @property
    def key(self) -> bytes:
        """The record key: `attention:<n>`."""
        return f"attention:{self.partition}".encode()

    @property
    def record(self) -> dict[str, Any]:
        """The AttentionClosed Avro value."""
        return {
            "partition": self.partition,
            "epoch": self.epoch,
            "epoch_seconds": self.epoch_seconds,
            "watermark_ms": self.watermark_ms,
            "source_offset": self.source_offset,
        }


@dataclass
class BatchResult:
    """What folding one SlotBatch (or SignalBatch) record produced."""

    partition: int
    offset: int
    #: the record was at or below the folded offset and changed nothing.
    skipped: bool = False
    roots: list[RootOutput] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    #: events by name when applied; `skipped_<reason>` and `rejected_<reason>` otherwise.
    counts: Counter[str] = field(default_factory=Counter)
    #: the epochs closed with some weight (idle ones are passed over silently).
    closed_epochs: list[int] = field(default_factory=list)
    #: set when the partition's open epoch advanced: the marker written after `roots`.
    closed: EpochClosed | None = None
    #: a SignalBatch's: set when the partition's open attention epoch advanced.
    attention_closed: AttentionClosed | None = None

    def reject(
        self, topic: str, reason: str, detail: str, item_id: str | None, payload: bytes
    ) -> None:
        """Add a Rejection of this record (or of its item `item_id`), counted as
        `rejected_<reason>`; its source is `<topic>/<partition>/<offset>[#<item id>]`."""
        source = f"{topic}/{self.partition}/{self.offset}"
        if item_id is not None:
            source = f"{source}#{item_id}"
        self.rejections.append(Rejection(reason, detail, source, payload))
        self.counts[f"rejected_{reason}"] += 1


def leaf_chunks(tree: ClaimTree, key: str, root_seq: int) -> tuple[dict[str, Any], ...]:
    """The LeafChunk records of `tree`, in order (entries packed as LeafChunk.avsc says).

    cumulative-v2 entries are wallet(32) || total(u64 LE); ring-v0 entries are wallet(32) ||
    index(u32 LE) || amount(u64 LE): each format's dataset record, so a chunk's entries are a
    slice of `tree.dataset`. A chunk holds `LEAF_CHUNK_ENTRIES` entries (the last fewer); an
    empty tree has one empty chunk.
    """
    size, leaves = tree.layout.record_size, tree.leaf_count
    count = max(1, -(-leaves // LEAF_CHUNK_ENTRIES))
    chunks = []
    for chunk_index in range(count):
        lo = chunk_index * LEAF_CHUNK_ENTRIES
        hi = min(lo + LEAF_CHUNK_ENTRIES, leaves)
        chunks.append(
            {
                "channel_config": key,
                "root_seq": root_seq,
                "chunk_index": chunk_index,
                "chunk_count": count,
                "first_leaf": lo,
                "entries": tree.dataset[lo * size : hi * size],
            }
        )
    return tuple(chunks)
