"""The fold: SlotBatches of one partition -> per-(channel, epoch) Merkle roots (pure, no I/O).

`PartitionFold.apply(store, offset, batch)` folds one SlotBatch record of `aop.chain.events`
into a `FoldStore` and returns a `BatchResult`: `RootOutput`s (an EpochRoot record and its
LeafChunk records for `aop.epoch.roots`) and `Rejection`s (for `aop.dlq`). The Faust app
(`streams/fold`) and the reference fold below run exactly this code; only the store differs.

Steps of `apply` for the record at `offset` of partition p:

1. A record at or below the partition's folded offset is a replay: nothing changes.
2. Events at or below the partition's watermark (the last batch's `last_slot`) are late or
   replayed and are skipped; so are repeats of an event id inside the batch.
3. The remaining events are decoded (`core.events`) and sorted by (slot, opens before closes
   before claims, event id), so the order of a slot's events never matters.
4. Events are applied in that order. Before an event past the open epoch's last slot, the open
   epoch closes (and any idle epochs up to the event's); after the last event every epoch that
   ends at or before the batch's `last_slot` closes. A batch can thus straddle boundaries and
   close several epochs.
5. Closing epoch e of a channel with total weight W > 0 and emission E > 0 splits E
   (`core.policy.split_emission`), checks the result (sum, monotone totals, u64, repeats,
   format limits) and builds the tree with the channel's claim format. A refused tree becomes
   a Rejection, consumes no root_seq and allocates nothing.

Events of channels this deployment does not serve are skipped (counted, not rejected). A
second open of an open position, an undecodable event, an event outside its batch's range or
in the wrong partition is rejected. A close of an unknown position is skipped (counted).

When the partition's open epoch advances, the result also carries `EpochClosed` (every epoch
before the new open one is closed for every channel of the partition, idle ones included,
and the closing batch's `last_block_time`, which the combiner needs for attention):
the fold writes it after the record's roots, so a reader of aop.epoch.roots (the combiner)
learns an epoch is closed from the log, never from a root that did not come.

Each root's `input` names the offsets that fed it: [the first batch of the partition whose
range reached the epoch, the batch that closed it].
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import repeat
from operator import add
from typing import Any

from aop.core.attention.fold import AttentionFold
from aop.core.attention.state import MemoryAttentionStore
from aop.core.claims import TreeScope, get_claim_format
from aop.core.errors import (
    ClaimIdTooLongError,
    CoreError,
    DuplicateWalletError,
    EventDecodeError,
    TooManyClaimsError,
)
from aop.core.events import UnknownEvent, decode_event
from aop.core.fold_config import ChannelSpec, FoldConfig
from aop.core.fold_output import BatchResult, EpochClosed, RootOutput, leaf_chunks
from aop.core.fold_state import (
    CLAIMED,
    FIRST_SEEN,
    RATE,
    TOTAL,
    WEIGHT,
    ChannelMeta,
    FoldStore,
    MemoryFoldStore,
    PartitionMeta,
    Position,
)
from aop.core.policy import (
    CLOSE,
    OPEN,
    PolicyEvent,
    PolicyRefusedError,
    check_cumulative_totals,
    check_epoch_amounts,
    policy_event_from_payload,
    split_emission,
)

__all__ = ["FoldInvariantError", "PartitionFold", "ReferenceFold", "fold_log"]

# An event ready to apply: (slot, kind, event id, policy event, channel, raw bytes).
_Action = tuple[int, int, str, PolicyEvent, ChannelSpec, bytes]


class FoldInvariantError(CoreError, RuntimeError):
    """Raised when the fold's own bookkeeping disagrees with itself (a bug, never bad input)."""


class PartitionFold:
    """Folds the SlotBatch records of one partition into a `FoldStore` (module docstring)."""

    def __init__(self, config: FoldConfig, partition: int) -> None:
        self.config = config
        self.partition = partition
        self.clock = config.clock
        self._program_id = str(config.program_id)
        self._mint = str(config.mint)
        self._specs = {s.config: s for s in config.channels}
        self._own = config.channels_of(partition)

    # -- one record -----------------------------------------------------------------------

    def apply(self, store: FoldStore, offset: int, batch: Mapping[str, Any]) -> BatchResult:
        """Fold the SlotBatch at `offset` into `store` (module docstring).

        Raises:
            FoldInvariantError: the store's sums disagree with its records (a bug).
        """
        result = BatchResult(self.partition, offset)
        meta = store.partition_meta() or PartitionMeta()
        if offset <= meta.offset:
            result.skipped = True
            self.touch(store, batch)
            return result
        first, last = int(batch["first_slot"]), int(batch["last_slot"])
        if batch["partition"] != self.partition or last < first:
            detail = (
                f"SlotBatch names partition {batch['partition']} and slots [{first}, {last}]; "
                f"it was read from partition {self.partition}"
            )
            reason = "partition_mismatch" if batch["partition"] != self.partition else "bad_range"
            self._reject(result, reason, detail, offset, None, b"")
            store.put_partition_meta(meta._replace(offset=offset))
            return result
        if last <= meta.watermark:
            result.counts["skipped_late_batch"] += 1
            result.counts["skipped_late"] += len(batch["events"])
            store.put_partition_meta(meta._replace(offset=offset))
            return result

        actions = self._prepare(batch, meta.watermark, offset, result)
        clock = self.clock
        epoch, first_offset = meta.open_epoch, meta.epoch_first_offset
        if first_offset < 0 and last >= clock.first_slot(epoch):
            first_offset = offset
        start, end = clock.first_slot(epoch), clock.last_slot(epoch)
        #: per channel [root_seq, rate, weight], written back at the end of the record.
        metas: dict[bytes, list[int]] = {}
        counts = result.counts
        for slot, kind, event_id, event, spec, data in actions:
            if slot > end:
                epoch = self._close_until(
                    store, metas, epoch, slot - 1, first_offset, offset, last, result
                )
                start, end, first_offset = clock.first_slot(epoch), clock.last_slot(epoch), offset
            channel_meta = metas.get(spec.config)
            if channel_meta is None:
                channel_meta = metas[spec.config] = self._channel_meta(store, spec)
            # slots of the open epoch at or after `slot` (`clock.slots_from`, inlined; >= 1, as
            # every epoch ending before `slot` was closed above)
            held = end + 1 - (slot if slot > start else start)
            if kind == OPEN:
                if not self._open(store, channel_meta, spec, event, slot, held):
                    detail = (
                        f"ChannelStaked {event_id} opens nft_mint {event.nft_mint.hex()} of "
                        f"channel {spec.name!r}, which is already open"
                    )
                    self._reject(result, "duplicate_position", detail, offset, event_id, data)
                    continue
            elif kind == CLOSE:
                if not self._close_position(store, channel_meta, spec, event, held):
                    counts["skipped_unknown_position"] += 1
                    continue
            else:
                state = store.wallet_for_update(spec.config, event.wallet)
                if event.amount > state[CLAIMED]:
                    state[CLAIMED] = event.amount
            counts[event.name] += 1
        if last >= end:
            epoch = self._close_until(store, metas, epoch, last, first_offset, offset, last, result)
            first_offset = offset if last >= clock.first_slot(epoch) else -1
        for config, (root_seq, rate, weight) in metas.items():
            store.put_channel(config, ChannelMeta(root_seq, rate, weight))
        store.put_partition_meta(PartitionMeta(offset, last, epoch, first_offset))
        if epoch > meta.open_epoch:
            closed_at = batch.get("last_block_time")
            result.closed = EpochClosed(self.partition, epoch - 1, last, offset, closed_at)
        return result

    def reject_record(
        self, store: FoldStore, offset: int, reason: str, detail: str, payload: bytes
    ) -> BatchResult:
        """Reject the whole record at `offset` (e.g. not a SlotBatch): it folds nothing."""
        result = BatchResult(self.partition, offset)
        meta = store.partition_meta() or PartitionMeta()
        if offset <= meta.offset:
            result.skipped = True
            return result
        self._reject(result, reason, detail, offset, None, payload)
        store.put_partition_meta(meta._replace(offset=offset))
        return result

    def touch(self, store: FoldStore, batch: Mapping[str, Any]) -> None:
        """Read every record that folding `batch` could write (a store writes back what it read).

        Used for replayed records: a changelog-backed store republishes those keys, which
        repairs a changelog that lags its local state (write-if-touched).
        """
        store.partition_meta()
        for ev in batch["events"]:
            try:
                event = policy_event_from_payload(ev["data"])
            except EventDecodeError:
                continue
            spec = None if event is None else self._specs.get(event.channel)
            if event is None or spec is None or spec.partition != self.partition:
                continue
            store.channel(spec.config)
            if event.kind == OPEN:
                store.position(spec.config, event.nft_mint)
                store.wallet(spec.config, event.wallet)
            elif event.kind == CLOSE:
                position = store.position(spec.config, event.nft_mint)
                if position is not None:
                    store.wallet(spec.config, position.wallet)
            else:
                store.wallet(spec.config, event.wallet)
        first, last = int(batch["first_slot"]), int(batch["last_slot"])
        if self.clock.epoch_of(last + 1) > self.clock.epoch_of(first):
            for spec in self._own:
                store.channel(spec.config)
                store.wallets(spec.config)

    # -- events ---------------------------------------------------------------------------

    def _prepare(
        self, batch: Mapping[str, Any], watermark: int, offset: int, result: BatchResult
    ) -> list[_Action]:
        counts = result.counts
        first, last = int(batch["first_slot"]), int(batch["last_slot"])
        seen: set[str] = set()
        actions: list[_Action] = []
        program_id, specs, partition = self._program_id, self._specs, self.partition
        for ev in batch["events"]:
            slot = ev["slot"]
            if slot <= watermark:
                counts["skipped_late"] += 1
                continue
            event_id = ev["id"]
            if event_id in seen:
                counts["skipped_duplicate"] += 1
                continue
            seen.add(event_id)
            data = ev["data"]
            if not first <= slot <= last:
                detail = f"event {event_id} has slot {slot}, outside its batch [{first}, {last}]"
                self._reject(result, "event_outside_batch", detail, offset, event_id, data)
                continue
            if ev["program_id"] != program_id:
                counts["skipped_other_program"] += 1
                continue
            try:
                event = policy_event_from_payload(data)
                if event is None:  # not a policy event: decode it to validate and count it
                    decoded = decode_event(data)
                    name = "unknown" if isinstance(decoded, UnknownEvent) else decoded.NAME
            except EventDecodeError as exc:
                self._reject(result, "undecodable_event", str(exc), offset, event_id, data)
                continue
            if event is None:
                counts[f"skipped_{name}"] += 1
                continue
            spec = specs.get(event.channel)
            if spec is None:
                counts["skipped_unknown_channel"] += 1
                continue
            if spec.partition != partition:
                detail = (
                    f"event {event_id} of channel {spec.name!r} belongs to partition "
                    f"{spec.partition}, not {partition}"
                )
                self._reject(result, "wrong_partition", detail, offset, event_id, data)
                continue
            actions.append((slot, event.kind, event_id, event, spec, data))
        # by (slot, kind, event id): opens before closes before claims inside a slot, then by
        # id. Ids are unique here (repeats were dropped), so the tuples never compare further.
        actions.sort()
        return actions

    def _open(
        self,
        store: FoldStore,
        channel_meta: list[int],
        spec: ChannelSpec,
        event: PolicyEvent,
        slot: int,
        held: int,
    ) -> bool:
        """Open a position at `slot`, `held` slots before the open epoch ends; False (nothing
        changed) when its nft_mint is already open."""
        channel = spec.config
        position = Position(event.wallet, event.amount, event.boost_bps, slot)
        if not store.open_position(channel, event.nft_mint, position):
            return False
        rate = event.amount * event.boost_bps
        gain = rate * held
        state = store.wallet_for_update(channel, event.wallet)
        state[RATE] += rate
        state[WEIGHT] += gain
        if state[FIRST_SEEN] < 0:
            state[FIRST_SEEN] = slot
        channel_meta[1] += rate
        channel_meta[2] += gain
        return True

    def _close_position(
        self,
        store: FoldStore,
        channel_meta: list[int],
        spec: ChannelSpec,
        event: PolicyEvent,
        held: int,
    ) -> bool:
        """Close a position `held` slots before the open epoch ends (its own wallet loses
        them); False if unknown."""
        channel = spec.config
        position = store.close_position(channel, event.nft_mint)
        if position is None:
            return False
        rate = position.amount * position.boost_bps
        loss = rate * held
        state = store.wallet_for_update(channel, position.wallet)
        if state[RATE] < rate or state[WEIGHT] < loss:
            raise FoldInvariantError(
                f"position {event.nft_mint.hex()} of channel {spec.name!r} has rate {rate}, "
                f"its wallet's state is {state}"
            )
        state[RATE] -= rate
        state[WEIGHT] -= loss
        channel_meta[1] -= rate
        channel_meta[2] -= loss
        return True

    # -- epochs ---------------------------------------------------------------------------

    def _channel_meta(self, store: FoldStore, spec: ChannelSpec) -> list[int]:
        """[root_seq, rate, weight] of the channel, to update during one record."""
        meta = store.channel(spec.config)
        return [spec.first_root_seq - 1, 0, 0] if meta is None else list(meta)

    def _close_until(
        self,
        store: FoldStore,
        metas: dict[bytes, list[int]],
        epoch: int,
        watermark: int,
        first_offset: int,
        offset: int,
        closed_at: int,
        result: BatchResult,
    ) -> int:
        """Close every epoch from `epoch` on whose last slot is <= `watermark`.

        Returns:
            The new open epoch.
        """
        clock = self.clock
        for spec in self._own:
            if spec.config not in metas:
                metas[spec.config] = self._channel_meta(store, spec)
        while clock.last_slot(epoch) <= watermark:
            active = [s for s in self._own if metas[s.config][1] or metas[s.config][2]]
            if not active:  # nothing accrues anywhere: pass the idle epochs at once
                return max(epoch + 1, clock.epoch_of(watermark + 1))
            for spec in active:
                self._close_channel(
                    store, spec, metas[spec.config], epoch, first_offset, offset, closed_at, result
                )
            result.closed_epochs.append(epoch)
            epoch += 1
            first_offset = offset
        return epoch

    def _close_channel(
        self,
        store: FoldStore,
        spec: ChannelSpec,
        meta: list[int],
        epoch: int,
        first_offset: int,
        offset: int,
        closed_at: int,
        result: BatchResult,
    ) -> None:
        """Close `epoch` for one channel: maybe a root; weights restart at rate x epoch.

        Updates `meta` ([root_seq, rate, weight]) in place.
        """
        wallets = list(store.wallets(spec.config))
        weights = {w: s[WEIGHT] for w, s in wallets if s[WEIGHT]}
        root_seq, rate, weight = meta
        summed = sum(weights.values())
        if summed != weight:
            raise FoldInvariantError(
                f"channel {spec.name!r} epoch {epoch}: wallet weights sum to {summed} but the "
                f"channel records {weight}"
            )
        shares: dict[bytes, int] = {}
        if weight > 0 and spec.emission > 0:
            shares = split_emission(spec.emission, weights)
            try:
                root = self._root(
                    spec, epoch, root_seq + 1, wallets, shares, first_offset, offset, closed_at
                )
            except PolicyRefusedError as exc:
                what = {"channel": spec.name, "epoch": epoch, "root_seq": root_seq + 1}
                detail = f"channel {spec.name!r} epoch {epoch}: {exc.detail}; no root emitted"
                payload = json.dumps(what, sort_keys=True).encode()
                self._reject(result, f"refused_{exc.reason}", detail, offset, None, payload)
                shares = {}
            else:
                result.roots.append(root)
                root_seq += 1
        slots = self.clock.epoch_slots
        store.close_epoch(spec.config, shares, slots)
        meta[:] = [root_seq, rate, rate * slots]

    def _root(
        self,
        spec: ChannelSpec,
        epoch: int,
        root_seq: int,
        wallets: Sequence[tuple[bytes, list[int]]],
        shares: Mapping[bytes, int],
        first_offset: int,
        offset: int,
        closed_at: int,
    ) -> RootOutput:
        """Check the epoch's allocation and build its tree and records.

        Raises:
            PolicyRefusedError: the allocation or the tree breaks an invariant.
        """
        fmt = get_claim_format(spec.claim_format)
        check_epoch_amounts(spec.emission, shares)
        first_seen = None
        if fmt.amount_basis == "cumulative":
            previous = {w: s[TOTAL] for w, s in wallets if s[TOTAL]}
            # each share added to the wallet's previous total (one pass in C, not a loop)
            totals = map(add, map(previous.get, shares, repeat(0)), shares.values())
            amounts = dict(previous)
            amounts.update(zip(shares, totals, strict=True))
            check_cumulative_totals(previous, amounts)
        else:
            amounts = dict(shares)
            first_seen = {w: s[FIRST_SEEN] for w, s in wallets}
        scope = TreeScope(self.config.program_id, self.config.mint, spec.name, root_seq, epoch)
        started = time.perf_counter()
        try:
            tree = fmt.build_from_amounts(scope, amounts, first_seen)
        except DuplicateWalletError as exc:
            raise PolicyRefusedError("duplicate_wallet", str(exc)) from exc
        except TooManyClaimsError as exc:
            raise PolicyRefusedError("too_many_claims", str(exc)) from exc
        except ClaimIdTooLongError as exc:
            raise PolicyRefusedError("claim_id_too_long", str(exc)) from exc
        except CoreError as exc:
            raise PolicyRefusedError("tree_build_failed", str(exc)) from exc
        build_seconds = time.perf_counter() - started
        expected = sum(amounts.values())
        if tree.total != expected or len(set(tree.wallets)) != tree.leaf_count:
            raise PolicyRefusedError(
                "tree_mismatch",
                f"the tree holds {tree.total} in {tree.leaf_count} leaves, expected {expected}",
            )
        key = str(fmt.root_account(scope))
        chunks = leaf_chunks(tree, key, root_seq)
        epoch_root = {
            "channel": spec.name,
            "channel_config": key,
            "program_id": self._program_id,
            "mint": self._mint,
            "format": fmt.name,
            "epoch": epoch,
            "root_seq": root_seq,
            "root": tree.root,
            "dataset_hash": tree.dataset_hash,
            "leaf_count": tree.leaf_count,
            "total": str(tree.total),
            "emission": str(spec.emission),
            "chunk_count": len(chunks),
            "closed_at_slot": closed_at,
            "input": [
                {"partition": self.partition, "first_offset": first_offset, "last_offset": offset}
            ],
        }
        return RootOutput(self.partition, key.encode(), epoch_root, chunks, tree, build_seconds)

    # -- helpers --------------------------------------------------------------------------

    def _reject(
        self,
        result: BatchResult,
        reason: str,
        detail: str,
        offset: int,
        event_id: str | None,
        payload: bytes,
    ) -> None:
        """A dead letter of the record at `offset` (always `result`'s)."""
        result.reject(self.config.source_topic, reason, detail, event_id, payload)


class ReferenceFold:
    """The fold over in-memory stores, fed one record at a time (replay, tests, the oracle).

    Records of one partition of one topic must be fed in log order; partitions, and the two
    topics (SlotBatches of aop.chain.events, SignalBatches of aop.attention.signals, whose
    state is kept apart), may interleave freely.
    """

    def __init__(self, config: FoldConfig) -> None:
        self.config = config
        #: the state of each partition seen so far.
        self.stores: dict[int, MemoryFoldStore] = {}
        #: the attention state of each partition of the signals topic seen so far.
        self.attention_stores: dict[int, MemoryAttentionStore] = {}
        self._folds: dict[int, PartitionFold] = {}
        self._attention_folds: dict[int, AttentionFold] = {}

    def feed(self, partition: int, offset: int, batch: Mapping[str, Any]) -> BatchResult:
        """Fold the SlotBatch (an Avro-decoded dict) at (`partition`, `offset`).

        Returns:
            The roots (EpochRoot + LeafChunks) and rejections this record produced.
        """
        return self._fold(partition).apply(self.stores[partition], offset, batch)

    def feed_undecodable(
        self, partition: int, offset: int, payload: bytes, detail: str
    ) -> BatchResult:
        """Account for the record at (`partition`, `offset`) that is not a SlotBatch."""
        return self._fold(partition).reject_record(
            self.stores[partition], offset, "undecodable_batch", detail, payload
        )

    def feed_all(
        self, records: Iterable[tuple[int, int, Mapping[str, Any]]]
    ) -> Iterator[BatchResult]:
        """`feed` each (partition, offset, SlotBatch) in turn, yielding each result."""
        for partition, offset, batch in records:
            yield self.feed(partition, offset, batch)

    def feed_signals(self, partition: int, offset: int, batch: Mapping[str, Any]) -> BatchResult:
        """Fold the SignalBatch (an Avro-decoded dict) at (`partition`, `offset`) of the
        signals topic.

        Raises:
            FoldInvariantError: the configuration has no attention side.
        """
        return self._attention(partition).apply(self.attention_stores[partition], offset, batch)

    def feed_undecodable_signals(
        self, partition: int, offset: int, payload: bytes, detail: str
    ) -> BatchResult:
        """Account for the record at (`partition`, `offset`) of the signals topic that is not
        a SignalBatch."""
        return self._attention(partition).reject_record(
            self.attention_stores[partition], offset, "undecodable_batch", detail, payload
        )

    def _attention(self, partition: int) -> AttentionFold:
        fold = self._attention_folds.get(partition)
        if fold is None:
            if self.config.attention is None:
                raise FoldInvariantError("this fold has no attention configuration")
            fold = AttentionFold(self.config.attention, partition)
            self._attention_folds[partition] = fold
            self.attention_stores[partition] = MemoryAttentionStore()
        return fold

    def _fold(self, partition: int) -> PartitionFold:
        fold = self._folds.get(partition)
        if fold is None:
            fold = self._folds[partition] = PartitionFold(self.config, partition)
            self.stores[partition] = MemoryFoldStore()
        return fold


def fold_log(
    records: Iterable[tuple[int, int, Mapping[str, Any]]], config: FoldConfig
) -> list[RootOutput]:
    """Every root of a log, in the order its records produce them.

    Args:
        records: (partition, offset, SlotBatch dict) in log order (the order inside each
            partition is what matters; partitions may interleave freely).
        config: the deployment's policy (`FoldConfig.create`, `streams.fold.fold_config`).
    """
    fold = ReferenceFold(config)
    return [root for result in fold.feed_all(records) for root in result.roots]
