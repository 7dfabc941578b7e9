"""A replay run: fold the log again for some channels and compare every root it asks for.

Steps of `run_replay`, per partition holding requested channels (each read once):

1. capture the partition's bounds (its last stable offset is where the read ends at most);
2. fold its records from offset 0 with the reference fold (`aop.replay.engine`); each
   root a target wants is compared at once with Postgres (fields, every leaf, every tree
   level: `aop.replay.compare`) and with its root account on-chain (`aop.replay.chain`)
   and dropped, so memory holds one root at a time;
3. stop as soon as every target is satisfied (its root_seqs emitted, its epoch closed), else
   at the bounds captured in step 1;
4. account for the rest: stored roots the log did not produce (`not_replayed`), replayed ones
   Postgres lacks (`missing_in_store` below the newest stored root, `unprojected` above it);
5. if leaves differ, trace the first differing wallets of the first differing root
   (`aop.replay.explain`: a second read up to the record that closed that root).
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field

from sqlalchemy.pool import NullPool

from aop.core.fold_config import ChannelSpec, FoldConfig
from aop.core.fold_output import RootOutput
from aop.core.root_account import OurRoot
from aop.log.avro import codec_for
from aop.log.kafka import ATTENTION_SIGNALS, CHAIN_EVENTS
from aop.log.reader import log_bounds
from aop.log.slot_batch import SlotBatchDecoder
from aop.projections.dataset import root_view
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
from aop.replay.context import chain_reader
from aop.replay.engine import (
    ChannelTarget,
    PartitionRun,
    ReadProgress,
    gc_tuned,
    replay_partition,
    root_account,
)
from aop.replay.errors import NothingToReplayError, ReplayError, UnknownChannelError
from aop.replay.explain import trace_wallets
from aop.replay.stored_roots import RootStore
from aop.runtime.settings import Settings

__all__ = [
    "ChannelRun",
    "ReplayReport",
    "channel_targets",
    "resolve_channels",
    "run_replay",
]


@dataclass
class ChannelRun:
    """One channel's part of a run."""

    name: str
    key: str
    partition: int
    format: str
    mode: str
    read: PartitionRun | None = None
    roots: list[RootReport] = field(default_factory=list)


@dataclass
class ReplayReport:
    """Everything a run found; `ok` is what the exit code says."""

    channels: list[ChannelRun]
    chain: str
    seconds: float = 0.0

    @property
    def roots(self) -> list[RootReport]:
        return [r for c in self.channels for r in c.roots]

    @property
    def roots_checked(self) -> int:
        """Roots compared (replayed and/or stored; `unprojected` ones are not counted)."""
        return sum(1 for r in self.roots if r.status != Status.UNPROJECTED)

    @property
    def mismatches(self) -> int:
        return sum(1 for r in self.roots if r.failed)

    @property
    def ok(self) -> bool:
        return self.mismatches == 0


def resolve_channels(config: FoldConfig, names: Iterable[str]) -> list[ChannelSpec]:
    """The specs of `names` (ASCII case-insensitive); every served channel when empty.

    Raises:
        UnknownChannelError: a name is not one of AOP_CHANNELS.
    """
    by_name = {s.name.lower(): s for s in config.channels}
    wanted = list(names)
    if not wanted:
        return sorted(config.channels, key=lambda s: s.name)
    out = []
    for name in wanted:
        spec = by_name.get(name.lower())
        if spec is None:
            known = ", ".join(sorted(s.name for s in config.channels)) or "none"
            raise UnknownChannelError(
                f"channel {name!r} is not served by this deployment (AOP_CHANNELS: {known}); "
                "operator action: replay with the settings the fold ran with"
            )
        if spec not in out:
            out.append(spec)
    return out


def channel_targets(
    config: FoldConfig,
    specs: Sequence[ChannelSpec],
    *,
    mode: str,
    seqs: Mapping[str, Iterable[int]] | None = None,
    epoch: int | None = None,
    attention: bool = False,
) -> list[ChannelTarget]:
    """One target per channel: mode `all`, `seqs` (root_seqs per channel name) or `epoch`;
    with `attention`, of the channels' attention roots.

    Raises:
        ReplayError: `attention` while the deployment has no attention side.
    """
    sides = {} if config.attention is None else {c.config: c for c in config.attention.channels}
    if attention and not sides:
        raise ReplayError(
            "attention roots are folded only with AOP_ATTENTION_ENABLED=true; operator action: "
            "replay with the settings the fold ran with"
        )
    out = []
    for spec in specs:
        wanted = frozenset((seqs or {}).get(spec.name, ()))
        side = sides.get(spec.config) if attention else None
        out.append(
            ChannelTarget(
                spec=spec,
                key=side.key if side is not None else root_account(config, spec),
                mode=mode,  # type: ignore[arg-type]
                seqs=wanted,
                epoch=epoch,
                attention=side is not None,
                format_name=side.claim_format if side is not None else None,
            )
        )
    return out


class _Comparer:
    """Compares each replayed root as it comes out of the fold (steps 2 and 4)."""

    def __init__(self, store: RootStore, chain: ChainReader, max_wallets: int) -> None:
        self.store = store
        self.chain = chain
        self.max_wallets = max_wallets
        self.reports: dict[str, dict[int, RootReport]] = {}

    def __call__(self, target: ChannelTarget, root: RootOutput, offset: int) -> None:
        if root.record_type == "AttentionRoot":  # compared as the projections store it
            view = dict(root_view(root.record_type, root.epoch_root))
            root = RootOutput(root.partition, root.key, view, root.chunks, root.tree)
        digest = self.store.root_digest(target.key, root.root_seq)
        if digest is not None and matches_digest(root, digest):
            report = digest_match_report(
                root, digest, channel=target.name, channel_config=target.key, closing_offset=offset
            )
        else:  # read it whole for the detailed comparison
            stored = None if digest is None else self.store.root(target.key, root.root_seq)
            if stored is None:
                report = RootReport(
                    channel=target.name,
                    channel_config=target.key,
                    root_seq=root.root_seq,
                    epoch=root.epoch,
                    status=Status.MISSING_IN_STORE,
                    replayed=replayed_summary(root),
                    closing_offset=offset,
                )
            else:
                report = compare_root(
                    root, stored, max_wallets=self.max_wallets, closing_offset=offset
                )
        record = root.epoch_root
        report.chain = (
            ChainReport("skipped", "attention roots are published inside global roots only")
            if target.attention
            else self.chain.compare(
                OurRoot(
                    target.format,
                    root.root_seq,
                    root.epoch,
                    bytes(record["root"]),
                    bytes(record["dataset_hash"]),
                ),
                target.key,
            )
            if self.chain.enabled
            else ChainReport("skipped", self.chain.reason)
        )
        self.reports.setdefault(target.key, {})[root.root_seq] = report


def run_replay(
    settings: Settings,
    config: FoldConfig,
    targets: Sequence[ChannelTarget],
    *,
    store: RootStore,
    chain: ChainReader,
    progress: ReadProgress | None = None,
    explain: bool = True,
    workers: int = 1,
) -> ReplayReport:
    """Replay and compare (module docstring).

    Args:
        workers: partitions replayed at once, each in its own process (the fold is CPU-bound
            Python: threads would not help). 1: in this process.
    Raises:
        NothingToReplayError: a root_seq or epoch asked for is neither stored nor produced.
        LogTruncatedError, ReadStalledError: the log cannot be read from the start.
        RpcUnavailableError: `--chain` and the RPC fails.
    """
    started = time.perf_counter()
    by_partition: dict[int, list[ChannelTarget]] = {}
    for target in targets:
        by_partition.setdefault(target.spec.partition, []).append(target)
    runs: dict[str, ChannelRun] = {}
    if workers > 1 and len(by_partition) > 1:
        for run in _in_processes(settings, config, by_partition, chain, progress, explain, workers):
            runs[run.key] = run
    else:
        decoder = SlotBatchDecoder(codec_for(settings))
        for partition in sorted(by_partition):
            for run in _replay_group(
                settings,
                config,
                partition,
                by_partition[partition],
                store=store,
                chain=chain,
                decoder=decoder,
                progress=progress,
                explain=explain,
            ):
                runs[run.key] = run
    chain_text = "compared" if chain.enabled else f"skipped ({chain.reason})"
    return ReplayReport([runs[t.key] for t in targets], chain_text, time.perf_counter() - started)


def _replay_group(
    settings: Settings,
    config: FoldConfig,
    partition: int,
    group: list[ChannelTarget],
    *,
    store: RootStore,
    chain: ChainReader,
    decoder: SlotBatchDecoder,
    progress: ReadProgress | None,
    explain: bool,
) -> list[ChannelRun]:
    """Steps 1-5 for the channels of one partition (under `gc_tuned`, left once the folds
    are dropped)."""
    comparer = _Comparer(store, chain, settings.replay_max_wallets)
    out = []
    with gc_tuned():
        read = replay_partition(
            settings, config, partition, group, on_root=comparer, decoder=decoder, progress=progress
        )
        for target in group:
            run = ChannelRun(target.name, target.key, partition, target.format, target.mode, read)
            run.roots = _settle(target, read, store, comparer.reports.get(target.key, {}))
            if explain and settings.replay_explain_wallets > 0 and not target.attention:
                _explain(settings, config, target, run, store, decoder)
            out.append(run)
    return out


def _group_in_worker(
    settings: Settings,
    config: FoldConfig,
    partition: int,
    group: list[ChannelTarget],
    chain_on: bool,
    explain: bool,
) -> list[ChannelRun]:
    """`_replay_group` in a worker process, with its own connections."""
    from aop.projections.db import engine_for

    engine = engine_for(settings, poolclass=NullPool)
    chain = chain_reader(settings, "on" if chain_on else "off")
    try:
        return _replay_group(
            settings,
            config,
            partition,
            group,
            store=RootStore(engine),
            chain=chain,
            decoder=SlotBatchDecoder(codec_for(settings)),
            progress=None,
            explain=explain,
        )
    finally:
        chain.close()
        engine.dispose()


def _in_processes(
    settings: Settings,
    config: FoldConfig,
    by_partition: dict[int, list[ChannelTarget]],
    chain: ChainReader,
    progress: ReadProgress | None,
    explain: bool,
    workers: int,
) -> list[ChannelRun]:
    """Partitions spread over `workers` processes (spawned: no forked librdkafka state),
    the costliest first (`costliest_first`)."""
    signals = any(t.attention for group in by_partition.values() for t in group)
    topic = settings.topic(ATTENTION_SIGNALS if signals else CHAIN_EVENTS)
    records = {p: b.stop for p, b in log_bounds(settings, topic, by_partition).items()}
    if progress is not None:
        label = f"{len(by_partition)} partitions, {workers} processes"
        progress.start(label, sum(records.values()))
    out: list[ChannelRun] = []
    try:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            futures = [
                pool.submit(
                    _group_in_worker, settings, config, p, by_partition[p], chain.enabled, explain
                )
                for p in costliest_first(by_partition, records)
            ]
            for future in as_completed(futures):
                runs = future.result()
                out.extend(runs)
                read = runs[0].read
                if progress is not None and read is not None:
                    progress.advance(read.records, read.events)
    finally:
        if progress is not None:
            progress.finish()
    return out


def costliest_first(
    by_partition: Mapping[int, Sequence[ChannelTarget]], records: Mapping[int, int]
) -> list[int]:
    """The partitions in the order to hand them to a pool: the costliest first.

    Longest-processing-time-first scheduling: a pool that takes the big jobs first ends with
    small ones, so no worker is left folding one big partition while the others idle. A
    partition's cost is estimated by its channel count (every epoch close of a channel reads
    all of its wallets and builds a tree over them, most of a replay's time on a busy log),
    then its record count; ties by partition number, so the order is stable.
    """
    return sorted(by_partition, key=lambda p: (-len(by_partition[p]), -records.get(p, 0), p))


def _settle(
    target: ChannelTarget,
    read: PartitionRun,
    store: RootStore,
    replayed: dict[int, RootReport],
) -> list[RootReport]:
    """Step 4: classify replayed roots Postgres lacks and stored roots the log lacks."""
    stored = store.root_epochs(target.key)
    latest = max(stored, default=None)
    for report in replayed.values():
        if report.status == Status.MISSING_IN_STORE and (
            latest is None or report.root_seq > latest
        ):
            report.status = Status.UNPROJECTED
    if target.mode == "all":
        in_scope = set(stored)
    elif target.mode == "epoch":
        in_scope = {s for s, e in stored.items() if e == target.epoch}
    else:
        in_scope = set(target.seqs) & set(stored)
    reports = dict(replayed)
    for seq in sorted(in_scope - set(replayed)):
        reports[seq] = RootReport(
            channel=target.name,
            channel_config=target.key,
            root_seq=seq,
            epoch=stored[seq],
            status=Status.NOT_REPLAYED,
        )
    newest = read.produced.get(target.key, [])
    if target.mode == "seqs":
        missing = sorted(s for s in target.seqs if s not in reports)
        if missing:
            raise NothingToReplayError(
                f"channel {target.name!r} has no root_seq {missing[0]}: none is stored (newest "
                f"stored: {latest}) and the log up to offset {read.read_to} produces none "
                f"(newest replayed: {newest[-1] if newest else None})"
            )
    if target.mode == "epoch" and not reports:
        why = (
            f"epoch {target.epoch} is not closed on the log yet (open epoch {read.open_epoch}, "
            f"watermark slot {read.watermark})"
            if read.open_epoch <= int(target.epoch or 0)
            else "the channel had no stake-time in it, or no emission"
        )
        raise NothingToReplayError(
            f"channel {target.name!r} has no root for epoch {target.epoch}: none is stored and "
            f"the replay produces none ({why})"
        )
    return [reports[s] for s in sorted(reports)]


def _explain(
    settings: Settings,
    config: FoldConfig,
    target: ChannelTarget,
    run: ChannelRun,
    store: RootStore,
    decoder: SlotBatchDecoder,
) -> None:
    """Step 5: trace the first differing wallets of the first root whose leaves differ."""
    bad = [
        r
        for r in run.roots
        if r.status == Status.MISMATCH
        and r.leaves is not None
        and not r.leaves.match
        and r.leaves.wallets
        and r.closing_offset is not None
    ]
    if not bad:
        return
    first = bad[0]
    if first.leaves is None or first.closing_offset is None:  # narrowed above
        return
    wallets = [d.wallet for d in first.leaves.wallets[: settings.replay_explain_wallets]]
    stored = store.wallet_amounts(target.key, wallets)
    first.traces = trace_wallets(
        settings,
        config,
        target,
        wallets,
        stop=first.closing_offset + 1,
        stored=stored,
        pruned=store.pruned_root_seqs(target.key),
        decoder=decoder,
    )
