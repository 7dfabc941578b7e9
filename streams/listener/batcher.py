"""Slot ranges → SlotBatches, one or more per partition (pure).

Invariants of `plan_range`'s output, for each partition p:

1. Its batches cover `[max(first_slot, next_slot[p]), last_slot]` exactly: contiguous, in
   order, non-overlapping. A partition already at or past `last_slot` gets nothing.
2. Every event of p with a slot in that span is in exactly one batch (duplicates by id are
   dropped), ordered by slot, then the transaction's position in the block, then event index
   (the signature breaks ties, so the order never depends on delivery order).
3. A batch holds at most `max_events` events unless a single slot has more (slots are never
   split: nothing of a batch's range may come later).

The result depends only on the set of event ids delivered, not on their order or repetition.
"""

from __future__ import annotations

import bisect
import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from aop.log.chain_event import RoutedEvent
from aop.streams.listener.model import SignatureInfo

__all__ = [
    "PlannedBatch",
    "RangeChoice",
    "choose_range",
    "cursor_at",
    "cut_at_epoch_end",
    "plan_range",
]


@dataclass(frozen=True, slots=True)
class PlannedBatch:
    """One SlotBatch to append to partition `partition`."""

    partition: int
    first_slot: int
    last_slot: int
    events: tuple[RoutedEvent, ...]
    cursor: str | None
    #: the block time of `last_slot` (set on the batches that end the range; None: unknown).
    last_block_time: int | None = None

    def to_avro(self) -> dict[str, Any]:
        """The SlotBatch Avro value (the sink encodes faster, to the same bytes)."""
        return {
            "partition": self.partition,
            "first_slot": self.first_slot,
            "last_slot": self.last_slot,
            "events": [e.record for e in self.events],
            "cursor": self.cursor,
            "last_block_time": self.last_block_time,
        }


@dataclass(frozen=True, slots=True)
class RangeChoice:
    """The slot range a step writes, its transactions, and those left for later steps."""

    last_slot: int
    in_range: list[SignatureInfo]
    later: list[SignatureInfo]


def choose_range(
    signatures: Sequence[SignatureInfo], *, final_slot: int, max_txs: int
) -> RangeChoice:
    """Cut the range ending at `final_slot` so it holds at most `max_txs` transactions.

    Args:
        signatures: every program transaction of the range, newest first.
        final_slot: the newest slot known complete.
        max_txs: the cap; whole slots only, so a single slot may exceed it.
    Returns:
        The last slot to write now (`final_slot` when under the cap), the transactions up to
        it and the rest (both newest first, as given).
    """
    if len(signatures) <= max_txs:
        return RangeChoice(final_slot, list(signatures), [])
    ascending = sorted(signatures, key=lambda info: info.slot)
    first_out = ascending[max_txs].slot
    last = first_out - 1 if first_out > ascending[0].slot else first_out
    return RangeChoice(
        last,
        [info for info in signatures if info.slot <= last],
        [info for info in signatures if info.slot > last],
    )


def cut_at_epoch_end(choice: RangeChoice, epoch_end: int) -> RangeChoice:
    """`choice` ending at `epoch_end` at most: a range never crosses an epoch's end, so the
    SlotBatches that close an epoch end at its last slot and carry that slot's block time
    (the combiner's T(e)). The transactions after it are left for the next step."""
    if choice.last_slot <= epoch_end:
        return choice
    return RangeChoice(
        epoch_end,
        [info for info in choice.in_range if info.slot <= epoch_end],
        [info for info in choice.in_range if info.slot > epoch_end] + choice.later,
    )


def cursor_at(newest: Sequence[tuple[int, str]], slot: int, previous: str | None) -> str | None:
    """The newest program signature at or below `slot`.

    Args:
        newest: (slot, signature) ascending by slot, the RPC's newest signature of each slot.
        slot: the batch's last slot.
        previous: the cursor before this range (used when no signature is at or below `slot`).
    """
    at = bisect.bisect_right(newest, slot, key=lambda item: item[0])
    return newest[at - 1][1] if at else previous


def plan_range(
    *,
    first_slot: int,
    last_slot: int,
    events: Iterable[RoutedEvent],
    next_slot: Sequence[int],
    max_events: int,
    newest: Sequence[tuple[int, str]] = (),
    previous_cursor: str | None = None,
    last_block_time: int | None = None,
) -> list[PlannedBatch]:
    """Plan the SlotBatches that put slots `[first_slot, last_slot]` on every partition.

    Args:
        first_slot: first slot of the range (the lowest `next_slot`).
        last_slot: last slot of the range (every program transaction up to it is known).
        events: every event of the range, in any order, possibly repeated.
        next_slot: per partition, the first slot not yet on the log (len = partition count).
        max_events: split a partition's span so a batch holds at most this many events.
        newest: see `cursor_at`.
        previous_cursor: the checkpoint's cursor.
        last_block_time: the block time of `last_slot`, put on each batch ending there.
    Returns:
        Batches ordered by partition, then slot.
    Raises:
        ValueError: an event outside the range or of an unknown partition, or a bad bound.
    """
    if last_slot < first_slot:
        raise ValueError(f"last_slot must be >= first_slot (got {last_slot} < {first_slot})")
    if max_events < 1:
        raise ValueError(f"max_events must be >= 1 (got {max_events})")
    partitions = len(next_slot)
    events = list(events)
    _check_events(events, first_slot, last_slot, partitions)
    # Dedupe: the first delivery of each (partition, signature, event_index) wins (built from
    # the reversed list, so the first one is the last written). Then one sort by partition
    # and order; slices of it are each partition's events.
    backwards = events[::-1]
    unique = list(dict(zip(map(_identity, backwards), backwards, strict=True)).values())
    unique.sort(key=_partition_order)
    bounds = [bisect.bisect_left(unique, p, key=_partition) for p in range(partitions + 1)]
    batches: list[PlannedBatch] = []
    for partition in range(partitions):
        start = max(first_slot, next_slot[partition])
        if start > last_slot:
            continue
        ordered = unique[bounds[partition] : bounds[partition + 1]]
        if ordered and ordered[0].slot < start:
            ordered = [e for e in ordered if e.slot >= start]
        if len(ordered) <= max_events:  # one batch: what `_split` gives, without its loop
            cursor = cursor_at(newest, last_slot, previous_cursor)
            batches.append(
                PlannedBatch(partition, start, last_slot, tuple(ordered), cursor, last_block_time)
            )
            continue
        for lo, hi, chunk in _split(ordered, start, last_slot, max_events):
            cursor = cursor_at(newest, hi, previous_cursor)
            time = last_block_time if hi == last_slot else None
            batches.append(PlannedBatch(partition, lo, hi, chunk, cursor, time))
    return batches


def _check_events(
    events: list[RoutedEvent], first_slot: int, last_slot: int, partitions: int
) -> None:
    """Raise for the first event of an unknown partition or outside the range."""
    if not events:
        return
    slots = list(map(_slot, events))
    owners = list(map(_partition, events))
    if (
        min(owners) >= 0
        and max(owners) < partitions
        and first_slot <= min(slots)
        and max(slots) <= last_slot
    ):
        return
    for event in events:
        if not 0 <= event.partition < partitions:
            raise ValueError(f"event {event.id} has partition {event.partition} (of {partitions})")
        if not first_slot <= event.slot <= last_slot:
            raise ValueError(
                f"event {event.id} has slot {event.slot}, outside [{first_slot}, {last_slot}]"
            )


_partition = operator.itemgetter(0)
_slot = operator.itemgetter(1)
#: what makes an event unique within its partition: (partition, signature, event_index).
_identity = operator.itemgetter(0, 2, 3)
#: partition, then `RoutedEvent.order` (slot, position, signature, event_index), at C speed.
_partition_order = operator.itemgetter(0, 1, 9, 2, 3)


def _split(
    ordered: list[RoutedEvent], start: int, end: int, max_events: int
) -> Iterable[tuple[int, int, tuple[RoutedEvent, ...]]]:
    """Cut `ordered` (all in [start, end]) into chunks of whole slots, ≤ max_events if possible."""
    lo = start
    chunk: list[RoutedEvent] = []
    i = 0
    while i < len(ordered):
        slot = ordered[i].slot
        j = i
        while j < len(ordered) and ordered[j].slot == slot:
            j += 1
        if chunk and len(chunk) + (j - i) > max_events:
            yield lo, slot - 1, tuple(chunk)
            lo, chunk = slot, []
        chunk.extend(ordered[i:j])
        i = j
    yield lo, end, tuple(chunk)
