"""Replay of the global roots: fold every partition again, combine, compare.

A global root sums every channel's roots, so its replay folds the whole log. Steps of
`replay_global`:

1. capture every partition's bounds of aop.chain.events;
2. fold the partitions with the reference fold in epoch lockstep: always advance the
   partition that has closed the fewest epochs, so the combiner holds the roots of about one
   epoch at a time, not of the whole log; with attention on, fold a partition of
   aop.attention.signals whenever the combiner waits for its attention markers (and the rest
   at the end);
3. hand each channel root, attention root and marker to the pure combiner (`core.combine`,
   the code `aop combine` runs) in each partition's order; the offsets it sees are positions
   in that virtual roots log, which no field compared below depends on (nor does the result
   depend on how the two topics interleave);
4. compare each global root a target wants with Postgres (every field, leaf and level:
   `replay.compare`) and with the mint's GlobalRootConfig on-chain (`replay.chain`), then
   drop it;
5. account for stored global roots the log did not produce (`not_replayed`), and replayed
   ones Postgres lacks (`missing_in_store`, or `unprojected` above the newest stored).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from aop.core.combine import GlobalCombiner, GlobalOutput, Part
from aop.core.fold import ReferenceFold
from aop.core.fold_config import FoldConfig
from aop.core.fold_output import RootOutput
from aop.core.root_account import OurRoot
from aop.log.avro import codec_for
from aop.log.slot_batch import SlotBatchDecoder
from aop.replay.chain import ChainReader
from aop.replay.compare import (
    ChainReport,
    RootReport,
    Status,
    compare_root,
    digest_match_report,
    matches_digest,
    replayed_summary,
)
from aop.replay.engine import FoldStep, fold_steps, gc_tuned, partition_bounds
from aop.replay.errors import NothingToReplayError
from aop.replay.run import ChannelRun
from aop.replay.stored_roots import RootStore
from aop.runtime.settings import Settings
from aop.streams.combiner.config import combine_config

__all__ = ["GLOBAL_NAME", "GlobalRun", "global_channel_run", "global_root_output", "replay_global"]

#: how global roots are named in reports (they have no channel).
GLOBAL_NAME = "global"


@dataclass
class GlobalRun:
    """What a global replay found."""

    key: str
    format: str
    roots: list[RootReport] = field(default_factory=list)
    records: int = 0
    events: int = 0
    seconds: float = 0.0
    #: the global root_seqs the replay produced, in order.
    produced: list[int] = field(default_factory=list)


def global_channel_run(run: GlobalRun, mode: str) -> ChannelRun:
    """The global run as one entry of a `ReplayReport` (named "global", no partition)."""
    return ChannelRun(GLOBAL_NAME, run.key, -1, run.format, mode, roots=run.roots)


def global_root_output(output: GlobalOutput) -> RootOutput:
    """A global root as the comparison reads roots: the record the projections store
    (`projections.dataset.root_view`: no channel, no input offsets) and its tree."""
    record = {k: v for k, v in output.record.items() if k not in ("sources", "resume")}
    record["channel"] = ""
    record["input"] = []
    return RootOutput(0, output.key, record, output.chunks, output.tree)


class _Lockstep:
    """Steps 2-3: the partitions' folds advanced in epoch lockstep into one combiner."""

    def __init__(self, settings: Settings, config: FoldConfig) -> None:
        self.combiner = GlobalCombiner(combine_config(settings))
        fold = ReferenceFold(config)
        decoder = SlotBatchDecoder(codec_for(settings))
        self.steps: dict[int, Iterator[FoldStep]] = {}
        #: the folds of aop.attention.signals (attention on).
        self.signal_steps: dict[int, Iterator[FoldStep]] = {}
        self.closed: dict[int, int] = {}
        #: per partition, the next position on the virtual roots log.
        self.position: dict[int, int] = {}
        attention = config.attention is not None and combine_config(settings).attention_on
        for partition in range(settings.chain_partitions):
            bounds = partition_bounds(settings, partition)
            self.steps[partition] = fold_steps(
                settings, fold, partition, bounds.stop, decoder=decoder, progress=None
            )
            if attention:
                stop = partition_bounds(settings, partition, signals=True).stop
                self.signal_steps[partition] = fold_steps(
                    settings, fold, partition, stop, decoder=decoder, signals=True
                )
            self.closed[partition] = -1
            self.position[partition] = 0
        self.records = self.events = 0

    def outputs(self) -> Iterator[GlobalOutput]:
        """Every global root the log produces, in order (refusals are skipped: the live
        combiner dead-letters the same ones)."""
        while self.steps or self.signal_steps:
            waiting = self.combiner.attention_waiting_partitions
            behind = [p for p in waiting if p in self.signal_steps]
            if behind or not self.steps:
                steps, partition = self.signal_steps, (behind or sorted(self.signal_steps))[0]
            else:
                steps = self.steps
                partition = min(steps, key=lambda p: (self.closed[p], p))
            try:
                step = next(steps[partition])
            except StopIteration:
                del steps[partition]
                continue
            self.records += 1
            self.events += step.items
            for output in self._feed(partition, step):
                if isinstance(output, GlobalOutput):
                    yield output

    def _feed(self, partition: int, step: FoldStep) -> list[object]:
        out: list[object] = []
        result = step.result
        for root in result.roots:
            offset = self.position[partition]
            self.position[partition] += 1 + len(root.chunks)
            part: Part = "attention_bonus" if root.record_type == "AttentionRoot" else "base_yield"
            out += self.combiner.add_root(
                partition, offset, root.epoch_root, root.tree.dataset, part=part
            )
        if result.closed is not None:
            offset = self.position[partition]
            self.position[partition] += 1
            self.closed[partition] = result.closed.epoch
            out += self.combiner.add_closed(partition, offset, result.closed.record)
        if result.attention_closed is not None:
            offset = self.position[partition]
            self.position[partition] += 1
            record = result.attention_closed.record
            out += self.combiner.add_attention_closed(partition, offset, record)
        return out


def replay_global(
    settings: Settings,
    config: FoldConfig,
    *,
    store: RootStore,
    chain: ChainReader,
    root_seqs: frozenset[int] | None = None,
    max_wallets: int | None = None,
) -> GlobalRun:
    """Replay the global roots (`root_seqs`, or all) and compare them (module docstring).

    Raises:
        NothingToReplayError: a root_seq asked for is neither stored nor produced.
        LogTruncatedError, ReadStalledError: the log cannot be read from the start.
    """
    started = time.perf_counter()
    combine = combine_config(settings)
    key = combine.root_account
    run = GlobalRun(key, combine.format_name)
    stored = store.root_epochs(key)
    wanted = set(stored) if root_seqs is None else set(root_seqs)
    newest_wanted = max(wanted, default=None)
    lockstep = _Lockstep(settings, config)
    reports: dict[int, RootReport] = {}
    with gc_tuned():
        for output in lockstep.outputs():
            run.produced.append(output.root_seq)
            if root_seqs is None or output.root_seq in wanted:
                reports[output.root_seq] = _compare(
                    global_root_output(output),
                    key,
                    store,
                    chain,
                    max_wallets or settings.replay_max_wallets,
                )
            if (
                root_seqs is not None
                and newest_wanted is not None
                and output.root_seq >= newest_wanted
            ):
                break
    run.records, run.events = lockstep.records, lockstep.events
    latest = max(stored, default=None)
    for report in reports.values():
        if report.status == Status.MISSING_IN_STORE and (
            latest is None or report.root_seq > latest
        ):
            report.status = Status.UNPROJECTED
    for seq in sorted((wanted & set(stored)) - set(reports)):
        reports[seq] = RootReport(
            channel=GLOBAL_NAME,
            channel_config=key,
            root_seq=seq,
            epoch=stored[seq],
            status=Status.NOT_REPLAYED,
        )
    if root_seqs is not None:
        missing = sorted(s for s in root_seqs if s not in reports)
        if missing:
            newest = run.produced[-1] if run.produced else None
            raise NothingToReplayError(
                f"the global root {missing[0]} is neither stored (newest stored: {latest}) nor "
                f"produced by the log (newest replayed: {newest})"
            )
    run.roots = [reports[s] for s in sorted(reports)]
    run.seconds = time.perf_counter() - started
    return run


def _compare(
    root: RootOutput, key: str, store: RootStore, chain: ChainReader, max_wallets: int
) -> RootReport:
    """Step 4 for one replayed global root."""
    digest = store.root_digest(key, root.root_seq)
    if digest is not None and matches_digest(root, digest):
        report = digest_match_report(
            root, digest, channel=GLOBAL_NAME, channel_config=key, closing_offset=None
        )
    else:
        full = None if digest is None else store.root(key, root.root_seq)
        if full is None:
            report = RootReport(
                channel=GLOBAL_NAME,
                channel_config=key,
                root_seq=root.root_seq,
                epoch=root.epoch,
                status=Status.MISSING_IN_STORE,
                replayed=replayed_summary(root),
            )
        else:
            report = compare_root(root, full, max_wallets=max_wallets, closing_offset=None)
            report.channel = GLOBAL_NAME
    record = root.epoch_root
    ours = OurRoot(
        str(record["format"]),
        root.root_seq,
        root.epoch,
        bytes(record["root"]),
        bytes(record["dataset_hash"]),
    )
    report.chain = (
        chain.compare(ours, key) if chain.enabled else ChainReport("skipped", chain.reason)
    )
    return report
