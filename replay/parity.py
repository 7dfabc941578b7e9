"""`aop parity`: the daily validation — replay the newest roots of every channel.

For every channel of AOP_CHANNELS with stored roots, the newest `roots` (default 4: the ones
claims can still use on-chain) are replayed from the log and compared with Postgres and, when
the RPC answers, with the chain (`aop.replay.run`). Channels Postgres knows but the
deployment no longer serves, and served channels without a stored root, are listed as skipped.

Results go out three ways: the exit code (0 all match, 1 any mismatch, 2 could not run), a
JSON report (`--report`, written atomically), and Prometheus metrics (`PARITY_REGISTRY`):
written in text format to a file for node_exporter's textfile collector (`--metrics-file`,
atomic rename) and/or served on AOP_METRICS_HOST:AOP_METRICS_PORT (`--serve-metrics`, with
`--interval` for a long-running job).

Metrics (gauges, about the last run):

* `aop_parity_roots_checked` — roots compared;
* `aop_parity_mismatches` — roots that differ (any field, leaf, level, the chain, or a root
  only one side has);
* `aop_parity_channel_mismatches{channel}` — the same per channel;
* `aop_parity_last_run_timestamp_seconds` — when the last run finished (also on errors);
* `aop_parity_last_run_success` — 1 if it ran and everything matched, else 0;
* `aop_parity_run_seconds` — how long it took.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

from aop.core.fold_config import FoldConfig
from aop.replay.chain import ChainReader
from aop.replay.engine import ReadProgress, root_account
from aop.replay.global_roots import global_channel_run, replay_global
from aop.replay.report import report_json
from aop.replay.run import ReplayReport, channel_targets, resolve_channels, run_replay
from aop.replay.stored_roots import RootStore
from aop.runtime.settings import Settings

__all__ = [
    "PARITY_REGISTRY",
    "ParityResult",
    "parity_json",
    "record_failure",
    "record_metrics",
    "run_parity",
    "write_json",
    "write_metrics_file",
]

PARITY_REGISTRY = CollectorRegistry(auto_describe=True)
ROOTS_CHECKED = Gauge(
    "aop_parity_roots_checked", "Roots compared by the last parity run", registry=PARITY_REGISTRY
)
MISMATCHES = Gauge(
    "aop_parity_mismatches",
    "Roots of the last parity run that differ from the replay (fields, leaves, levels, chain)",
    registry=PARITY_REGISTRY,
)
CHANNEL_MISMATCHES = Gauge(
    "aop_parity_channel_mismatches",
    "Roots of the last parity run that differ, per channel",
    ["channel"],
    registry=PARITY_REGISTRY,
)
LAST_RUN = Gauge(
    "aop_parity_last_run_timestamp_seconds",
    "Unix time the last parity run finished (also when it failed to run)",
    registry=PARITY_REGISTRY,
)
LAST_SUCCESS = Gauge(
    "aop_parity_last_run_success",
    "1 if the last parity run completed with every root matching, else 0",
    registry=PARITY_REGISTRY,
)
RUN_SECONDS = Gauge(
    "aop_parity_run_seconds", "Duration of the last parity run", registry=PARITY_REGISTRY
)


@dataclass
class ParityResult:
    """A parity run: the replay report plus what was skipped and when it ran."""

    report: ReplayReport
    roots_per_channel: int
    started_at: float
    finished_at: float
    skipped: list[dict[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.report.ok


def run_parity(
    settings: Settings,
    config: FoldConfig,
    *,
    store: RootStore,
    chain: ChainReader,
    roots: int,
    channels: list[str] | None = None,
    progress: ReadProgress | None = None,
    workers: int = 1,
) -> ParityResult:
    """Replay the newest `roots` roots of each channel, and of the global roots when
    Postgres holds some and no channel is named (module docstring).

    Raises:
        UnknownChannelError: a channel in `channels` is not served.
        LogTruncatedError, ReadStalledError, RpcUnavailableError: see `run_replay`.
    """
    started = time.time()
    specs = resolve_channels(config, channels or [])
    served = {root_account(config, s): s for s in specs}
    global_key = settings.global_root_account
    skipped: list[dict[str, str]] = []
    if not channels:
        for stored in store.channels():
            if stored.channel_config not in served and stored.channel_config != global_key:
                skipped.append(
                    {
                        "channel": stored.name,
                        "channel_config": stored.channel_config,
                        "reason": "has roots in Postgres but is not in AOP_CHANNELS",
                    }
                )
    seqs: dict[str, list[int]] = {}
    with_roots = []
    for key, spec in served.items():
        newest = store.newest_root_seqs(key, roots)
        if not newest:
            skipped.append(
                {"channel": spec.name, "channel_config": key, "reason": "no stored root"}
            )
            continue
        seqs[spec.name] = newest
        with_roots.append(spec)
    targets = channel_targets(config, with_roots, mode="seqs", seqs=seqs)
    report = run_replay(
        settings, config, targets, store=store, chain=chain, progress=progress, workers=workers
    )
    newest_global = [] if channels else store.newest_root_seqs(global_key, roots)
    if newest_global:
        run = replay_global(
            settings, config, store=store, chain=chain, root_seqs=frozenset(newest_global)
        )
        report.channels.append(global_channel_run(run, "seqs"))
    return ParityResult(report, roots, started, time.time(), skipped)


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds")


def parity_json(result: ParityResult) -> dict[str, Any]:
    """The JSON report: the replay report plus the run's metadata."""
    return {
        "kind": "aop.parity",
        "started_at": _iso(result.started_at),
        "finished_at": _iso(result.finished_at),
        "roots_per_channel": result.roots_per_channel,
        "skipped": result.skipped,
        **report_json(result.report),
    }


def record_metrics(result: ParityResult) -> None:
    """Set the gauges from a finished run."""
    report = result.report
    ROOTS_CHECKED.set(report.roots_checked)
    MISMATCHES.set(report.mismatches)
    CHANNEL_MISMATCHES.clear()
    for run in report.channels:
        CHANNEL_MISMATCHES.labels(run.name).set(sum(1 for r in run.roots if r.failed))
    LAST_RUN.set(result.finished_at)
    LAST_SUCCESS.set(1 if result.ok else 0)
    RUN_SECONDS.set(result.finished_at - result.started_at)


def record_failure(started_at: float) -> None:
    """Set the gauges after a run that could not complete (exit 2)."""
    now = time.time()
    LAST_RUN.set(now)
    LAST_SUCCESS.set(0)
    RUN_SECONDS.set(now - started_at)


def write_metrics_file(path: Path, registry: CollectorRegistry = PARITY_REGISTRY) -> None:
    """The metrics of `registry` (the daily parity's unless told: the parallel run's is
    `legacy_metrics.LEGACY_REGISTRY`) in Prometheus text format, atomically (node_exporter's
    textfile collector)."""
    write_to_textfile(str(path), registry)


def write_json(path: Path, document: dict[str, Any]) -> None:
    """Write `document` to `path` atomically (a temporary file renamed over it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(document, out, indent=2)
            out.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
