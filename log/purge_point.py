"""The purge point of a roots topic: the offset below which no reader and no recovery needs a
record (no I/O; `projections.purge` gathers the inputs and moves the log start offset).

aop.epoch.roots and aop.global.roots are derived from the source of truth and grow by
(wallets ever x roots). Like Kafka Streams' repartition topics, they are purged by deleting
records below an offset every reader has durably passed. For each partition p the point is
the minimum of:

(a) the projector's committed next offset on p (`consumer_offsets`, written in the
    transaction of the rows: durable);
(b) on aop.epoch.roots, when global roots are in use, what the combiner's recovery reads: the
    smallest `sources[].offset` on p and the `resume[].first_offset` of p of the NEWEST
    GlobalRoot (`streams.combiner.recovery`). Global roots expected but none written yet:
    every point is 0 (the combiner will combine from the start);
(c) the header offset of the oldest of the newest K roots (K = AOP_PROOF_ROOTS_KEPT) of each
    root account on p, so a rebuild restores exactly the proofs PostgreSQL keeps.

Only whole roots go: each term is a root boundary. Header offsets are where roots start; the
projector commits at most to the header of a root still waiting for chunks
(`RootAssembler.safe_offset`); the combiner's `resume` offsets are its next unread record and
`sources` are headers. The fold writes a root's header and chunks in order from one agent per
partition, so a root is contiguous and a boundary is never inside one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["KeptRoot", "combiner_floor", "kept_floor", "purge_points"]


@dataclass(frozen=True)
class KeptRoot:
    """A stored root: its account, root_seq and where its header is on the roots topic."""

    channel_config: str
    root_seq: int
    partition: int
    offset: int


def kept_floor(roots: Iterable[KeptRoot], *, kept: int) -> dict[int, int]:
    """Rule (c): per partition, the smallest header offset among the newest `kept` roots (by
    root_seq) of each account. Partitions without a root are absent (no bound).

    Raises:
        ValueError: `kept` is below 1.
    """
    if kept < 1:
        raise ValueError(f"kept must be at least 1 (got {kept})")
    by_account: dict[str, list[KeptRoot]] = {}
    for root in roots:
        by_account.setdefault(root.channel_config, []).append(root)
    floor: dict[int, int] = {}
    for account_roots in by_account.values():
        newest = sorted(account_roots, key=lambda r: r.root_seq, reverse=True)[:kept]
        for root in newest:
            floor[root.partition] = min(floor.get(root.partition, root.offset), root.offset)
    return floor


def combiner_floor(global_root: Mapping[str, Any]) -> dict[int, int]:
    """Rule (b): per partition of aop.epoch.roots, the smallest offset the combiner reads when
    it recovers from `global_root` (a GlobalRoot record): its sources' headers and the
    `resume` first offsets. Partitions it names nowhere are absent (no bound)."""
    floor: dict[int, int] = {}
    offsets = [(int(s["partition"]), int(s["offset"])) for s in global_root["sources"]]
    offsets += [(int(r["partition"]), int(r["first_offset"])) for r in global_root["resume"]]
    for part, offset in offsets:
        floor[part] = min(floor.get(part, offset), offset)
    return floor


def purge_points(
    partitions: Iterable[int],
    *,
    committed: Mapping[int, int],
    kept: Mapping[int, int],
    combiner: Mapping[int, int] | None = None,
    combiner_pending: bool = False,
) -> dict[int, int]:
    """The purge point of each partition: min((a), (b), (c)) (module docstring).

    Args:
        committed: (a) the projector's committed next offset per partition (absent: 0).
        kept: (c) `kept_floor` of the stored roots.
        combiner: (b) `combiner_floor` of the newest GlobalRoot, None when there is none or
            the topic is not the combiner's input.
        combiner_pending: global roots are expected but none exists yet: nothing goes.
    """
    out = {}
    for part in sorted(set(partitions)):
        bounds = [committed.get(part, 0)]
        if part in kept:
            bounds.append(kept[part])
        if combiner_pending:
            bounds.append(0)
        elif combiner is not None and part in combiner:
            bounds.append(combiner[part])
        out[part] = max(min(bounds), 0)
    return out
