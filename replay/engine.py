"""Fold one partition of aop.chain.events (or of aop.attention.signals, for a channel's
attention roots) again with the reference fold, from offset 0.

The fold is `core.fold.ReferenceFold`: the same `PartitionFold.apply` the Faust app runs, over
in-memory stores. Its configuration is the deployment's (`streams.fold.config.fold_config`,
the function `aop fold` uses), narrowed to the channels being replayed: a channel's state
(wallets, positions, root_seq) never depends on another channel's events, and the
partition-wide state (folded offset, slot watermark, open epoch, the epoch's first offset)
depends only on the records, so the narrowed fold emits byte-identical roots for its channels
(a unit test holds it to that) while skipping the others' work.

Why always from offset 0: a root depends on the channel's whole history (open positions and
cumulative totals), which no record or table holds in a form the fold could start from. The
offsets a stored root records (`roots.input_offsets`) name its partition and the record that
closed its epoch; reading stops there (or at the partition's end) once every root asked for
is out.
"""

from __future__ import annotations

import dataclasses
import gc
import time
from collections import Counter
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal, Protocol

from solders.pubkey import Pubkey

from aop.core.claims import TreeScope, get_claim_format
from aop.core.fold import ReferenceFold
from aop.core.fold_config import ChannelSpec, FoldConfig
from aop.core.fold_output import BatchResult, RootOutput
from aop.log.avro import AvroDecodeError, codec_for
from aop.log.kafka import ATTENTION_SIGNALS, CHAIN_EVENTS
from aop.log.reader import LogBounds, LogReader, ReadRange, log_bounds
from aop.log.slot_batch import SlotBatchDecoder
from aop.replay.errors import LogTruncatedError
from aop.runtime.settings import Settings

__all__ = [
    "ChannelTarget",
    "FoldStep",
    "PartitionRun",
    "ReadProgress",
    "StepTimes",
    "fold_steps",
    "gc_tuned",
    "narrow_config",
    "replay_partition",
    "root_account",
]

Mode = Literal["all", "seqs", "epoch"]


class ReadProgress(Protocol):
    """Told how a read advances (the command shows a progress bar; library code prints nothing)."""

    def start(self, label: str, records: int) -> None: ...

    def advance(self, records: int, events: int) -> None: ...

    def finish(self) -> None: ...


def root_account(config: FoldConfig, spec: ChannelSpec) -> str:
    """The base58 account the channel's roots are keyed by (`roots.channel_config`)."""
    fmt = get_claim_format(spec.claim_format)
    if fmt.name == "cumulative-v2":
        return str(Pubkey.from_bytes(spec.config))
    return str(fmt.root_account(TreeScope(config.program_id, config.mint, spec.name, 0, 0)))


def narrow_config(config: FoldConfig, specs: list[ChannelSpec]) -> FoldConfig:
    """`config` serving only `specs` (module docstring: roots of those channels unchanged)."""
    keep = {s.config for s in specs}
    return dataclasses.replace(
        config, channels=tuple(s for s in config.channels if s.config in keep)
    )


@dataclass(frozen=True)
class ChannelTarget:
    """Which roots of one channel a replay compares, and when it may stop reading.

    mode `all`: every root (read to the partition's end); `seqs`: the given root_seqs (stop
    once the fold emitted the last of them); `epoch`: the root(s) of `epoch` (stop once the
    fold closed it).
    """

    spec: ChannelSpec
    key: str
    mode: Mode
    seqs: frozenset[int] = frozenset()
    epoch: int | None = None
    #: the channel's attention roots (aop.attention.signals; `epoch` is an attention epoch's
    #: unix start) instead of its stake-time roots.
    attention: bool = False
    #: the roots' claim format when it is not the stake-time one (attention roots).
    format_name: str | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def format(self) -> str:
        return self.format_name or self.spec.claim_format

    def wants(self, root: RootOutput) -> bool:
        if self.mode == "seqs":
            return root.root_seq in self.seqs
        if self.mode == "epoch":
            return root.epoch == self.epoch
        return True

    def satisfied(self, last_seq: int | None, open_epoch: int) -> bool:
        """Whether reading further cannot produce another wanted root."""
        if self.mode == "seqs":
            return last_seq is not None and all(s <= last_seq for s in self.seqs)
        if self.mode == "epoch":
            return self.epoch is not None and open_epoch > self.epoch
        return False


@dataclass
class StepTimes:
    """Where a read's time went (seconds): decoding records, folding them (tree builds
    included, also counted apart), comparing roots. The rest of a run's time is the read."""

    decode: float = 0.0
    fold: float = 0.0
    tree_build: float = 0.0
    compare: float = 0.0


@dataclass
class PartitionRun:
    """What reading and folding one partition did."""

    partition: int
    #: the partition's bounds when the read started, and where it was asked to stop.
    bounds: LogBounds
    stop: int
    #: the offset after the last record folded.
    read_to: int = 0
    records: int = 0
    events: int = 0
    seconds: float = 0.0
    #: the fold's counts over the read (applied events by name, skipped_*, rejected_*).
    counts: Counter[str] = field(default_factory=Counter)
    #: root account -> root_seqs the fold emitted, in order.
    produced: dict[str, list[int]] = field(default_factory=dict)
    #: the open epoch when the read stopped (the first epoch not closed on the log).
    open_epoch: int = 0
    watermark: int = -1
    times: StepTimes = field(default_factory=StepTimes)


@dataclass(frozen=True)
class FoldStep:
    """One record folded: its offset, its batch (None if undecodable), the partition's
    watermark before it, and what the fold produced."""

    offset: int
    batch: dict[str, Any] | None
    watermark: int
    result: BatchResult

    @property
    def items(self) -> int:
        """The events of a SlotBatch, the signals of a SignalBatch (0 if undecodable)."""
        if self.batch is None:
            return 0
        return len(self.batch["events"] if "events" in self.batch else self.batch["signals"])


#: cyclic-GC thresholds while folding (module docstring of `gc_tuned`).
GC_THRESHOLDS = (100_000, 50, 100)


@contextmanager
def gc_tuned() -> Iterator[None]:
    """Collect cyclic garbage less often while folding; restore the thresholds after.

    The fold's state is millions of small lists and dicts (wallets, positions) with no
    reference cycles; every generation-0 collection that escalates rescans it. Measured on a
    400,000-event fold of 7 channels x 20,000 wallets: 26.5 us/event with the default
    thresholds (700, 10, 10), 15.7 us/event with these. Garbage without cycles is freed by
    reference counting as before; cycles are still collected, just in larger steps.

    Enter it around the whole use of a fold, and leave it once the fold's state is dropped:
    the first allocation after the thresholds are restored runs the collections they held
    back, a full one when due, and over a live fold state that took ~30 ms per partition
    (2.5 % of a 1,000,000-event replay, py-spy). `fold_steps` callers enter it.
    """
    before = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*before)


def fold_steps(
    settings: Settings,
    fold: ReferenceFold,
    partition: int,
    stop: int,
    *,
    decoder: SlotBatchDecoder,
    progress: ReadProgress | None = None,
    label: str = "",
    times: StepTimes | None = None,
    signals: bool = False,
) -> Generator[FoldStep, None, None]:
    """Read records [0, stop) of the partition and fold each, in offset order.

    The caller may stop early (`close()` the generator): records after the last one yielded
    are read (in the consume batch) but never folded.

    Args:
        signals: read aop.attention.signals (SignalBatches, `ReferenceFold.feed_signals`)
            instead of aop.chain.events; `watermark` is then the attention watermark (ms).
    Raises:
        ReadStalledError: the read stops making progress.
    """
    side = _Side.of(fold, partition, decoder, signals)
    topic = settings.topic(ATTENTION_SIGNALS if signals else CHAIN_EVENTS)
    times = times or StepTimes()
    clock = time.perf_counter
    if progress is not None:
        progress.start(label or f"{topic}[{partition}]", stop)
    try:
        with LogReader(settings, [ReadRange(topic, partition, 0, stop)]) as reader:
            for records in reader.batches():
                items = 0
                for _, _, offset, value in records:
                    watermark = side.watermark()
                    started = clock()
                    try:
                        batch = side.decode(value)
                    except AvroDecodeError as exc:
                        result = side.undecodable(partition, offset, value, str(exc))
                        yield FoldStep(offset, None, watermark, result)
                        continue
                    decoded = clock()
                    result = side.feed(partition, offset, batch)
                    times.decode += decoded - started
                    times.fold += clock() - decoded
                    for root in result.roots:
                        times.tree_build += root.build_seconds
                    step = FoldStep(offset, batch, watermark, result)
                    items += step.items
                    yield step
                if progress is not None:
                    progress.advance(len(records), items)
    finally:
        if progress is not None:
            progress.finish()


@dataclass(frozen=True)
class _Side:
    """What `fold_steps` does differently for the two topics: decode, feed, watermark."""

    decode: Callable[[bytes], dict[str, Any]]
    feed: Callable[[int, int, dict[str, Any]], BatchResult]
    undecodable: Callable[[int, int, bytes, str], BatchResult]
    watermark: Callable[[], int]

    @classmethod
    def of(
        cls, fold: ReferenceFold, partition: int, decoder: SlotBatchDecoder, signals: bool
    ) -> _Side:
        if signals:

            def attention_watermark() -> int:
                store = fold.attention_stores.get(partition)
                meta = None if store is None else store.state
                return -1 if meta is None else meta.watermark_ms

            return cls(
                partial(decoder.codec.decode_as, "SignalBatch"),
                fold.feed_signals,
                fold.feed_undecodable_signals,
                attention_watermark,
            )

        def slot_watermark() -> int:
            store = fold.stores.get(partition)
            meta = None if store is None else store.meta
            return -1 if meta is None else meta.watermark

        return cls(decoder.decode, fold.feed, fold.feed_undecodable, slot_watermark)


def partition_bounds(settings: Settings, partition: int, *, signals: bool = False) -> LogBounds:
    """The partition's bounds (of aop.attention.signals with `signals`); refuses a log that
    lost its first records.

    Raises:
        LogTruncatedError: the partition no longer starts at offset 0.
    """
    topic = settings.topic(ATTENTION_SIGNALS if signals else CHAIN_EVENTS)
    bounds = log_bounds(settings, topic, [partition])[partition]
    if bounds.low > 0:
        raise LogTruncatedError(
            f"{topic}[{partition}] starts at offset {bounds.low}, not 0: records were deleted, "
            "so the fold cannot be replayed from the start. Operator action: restore the topic "
            "(it must have infinite retention)"
        )
    return bounds


def replay_partition(
    settings: Settings,
    config: FoldConfig,
    partition: int,
    targets: list[ChannelTarget],
    *,
    on_root: Callable[[ChannelTarget, RootOutput, int], None],
    decoder: SlotBatchDecoder | None = None,
    progress: ReadProgress | None = None,
    bounds: LogBounds | None = None,
) -> PartitionRun:
    """Fold the partition again for `targets` (all of this partition's channels).

    `on_root(target, root, offset)` gets every root a target wants, as soon as the record at
    `offset` produced it (so the caller compares and drops it: memory stays bounded). Targets
    of attention roots (all or none of `targets`) fold aop.attention.signals.

    Raises:
        LogTruncatedError: the partition lost its first records.
        ReadStalledError: the read stops making progress.
    """
    signals = any(t.attention for t in targets)
    bounds = bounds or partition_bounds(settings, partition, signals=signals)
    run = PartitionRun(partition, bounds, bounds.stop)
    by_key = {t.key: t for t in targets}
    last_seq: dict[str, int] = {}
    fold = ReferenceFold(narrow_config(config, [t.spec for t in targets]))
    decoder = decoder or SlotBatchDecoder(codec_for(settings))
    started = time.perf_counter()
    label = ", ".join(t.name for t in targets)
    steps = fold_steps(
        settings,
        fold,
        partition,
        bounds.stop,
        decoder=decoder,
        progress=progress,
        label=label,
        times=run.times,
        signals=signals,
    )
    for step in steps:
        run.records += 1
        run.read_to = step.offset + 1
        run.events += step.items
        run.counts.update(step.result.counts)
        for root in step.result.roots:
            key = root.key.decode()
            run.produced.setdefault(key, []).append(root.root_seq)
            last_seq[key] = root.root_seq
            target = by_key.get(key)
            if target is not None and target.wants(root):
                started = time.perf_counter()
                on_root(target, root, step.offset)
                run.times.compare += time.perf_counter() - started
        open_epoch = _open_epoch(fold, partition, signals)
        if targets and all(t.satisfied(last_seq.get(t.key), open_epoch) for t in targets):
            steps.close()
            break
    if signals:
        attention = fold.attention_stores.get(partition)
        if attention is not None and attention.state is not None:
            run.open_epoch = attention.state.open_epoch
            run.watermark = attention.state.watermark_ms
    else:
        store = fold.stores.get(partition)
        if store is not None and store.meta is not None:
            run.open_epoch, run.watermark = store.meta.open_epoch, store.meta.watermark
    run.seconds = time.perf_counter() - started
    return run


def _open_epoch(fold: ReferenceFold, partition: int, signals: bool) -> int:
    """The partition's first epoch not closed (an attention epoch's unix start, or -1)."""
    if signals:
        attention = fold.attention_stores.get(partition)
        return -1 if attention is None or attention.state is None else attention.state.open_epoch
    meta = fold.stores[partition].meta
    return 0 if meta is None else meta.open_epoch
