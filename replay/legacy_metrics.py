"""Metrics of `aop parity --legacy-dsn-file` (the parallel run against the legacy), in a
registry of their own: the run writes them to its own textfile or serves them on its own
port, so they never mix with the daily parity's gauges (`replay.parity.PARITY_REGISTRY`),
which describe another job.

Counters count checks: a (channel, epoch) MATCHes once (it is not checked again); one that
differs or is missing counts again in every round that finds it so, so their increase keeps
showing while it lasts. PENDING is not counted.

* `aop_parity_legacy_matched_total{channel}`
* `aop_parity_legacy_mismatched_total{channel}`
* `aop_parity_legacy_missing_total{channel,side}`: `side` is the side without the root
  (`ours` for MISSING_OURS, `legacy` for MISSING_LEGACY)
* `aop_parity_legacy_last_success_timestamp_seconds`: when a round last completed
* `aop_parity_legacy_interval_seconds`: the run's `--interval` (0 for a single check)
* `aop_parity_legacy_running`: 1 while a run goes on, 0 once it ended

Every channel's series exist at 0 from the start (`start_run`), so an alert sees the first
increase.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["LEGACY_REGISTRY", "end_run", "record_check", "record_round", "start_run"]

LEGACY_REGISTRY: Final = CollectorRegistry(auto_describe=True)
MATCHED = Counter(
    "aop_parity_legacy_matched",
    "Checks of the parallel run that found our root and the legacy's equal",
    ["channel"],
    registry=LEGACY_REGISTRY,
)
MISMATCHED = Counter(
    "aop_parity_legacy_mismatched",
    "Checks of the parallel run that found our root and the legacy's different",
    ["channel"],
    registry=LEGACY_REGISTRY,
)
MISSING = Counter(
    "aop_parity_legacy_missing",
    "Checks of the parallel run that found a root on one side only (side: the one without)",
    ["channel", "side"],
    registry=LEGACY_REGISTRY,
)
LAST_SUCCESS = Gauge(
    "aop_parity_legacy_last_success_timestamp_seconds",
    "Unix time the parallel run's last round completed (0: none yet)",
    registry=LEGACY_REGISTRY,
)
INTERVAL = Gauge(
    "aop_parity_legacy_interval_seconds",
    "The parallel run's interval between rounds (0: a single check)",
    registry=LEGACY_REGISTRY,
)
RUNNING = Gauge(
    "aop_parity_legacy_running",
    "1 while a parallel run goes on, 0 once it ended",
    registry=LEGACY_REGISTRY,
)
SIDES: Final = ("ours", "legacy")


def start_run(channels: Iterable[str], *, interval_s: float) -> None:
    """A run starts: every channel's series at 0, the interval, running 1."""
    for metric in (MATCHED, MISMATCHED, MISSING):
        metric.clear()
    for channel in channels:
        MATCHED.labels(channel)
        MISMATCHED.labels(channel)
        for side in SIDES:
            MISSING.labels(channel, side)
    LAST_SUCCESS.set(0)
    INTERVAL.set(interval_s)
    RUNNING.set(1)


def record_check(channel: str, verdict: str) -> None:
    """Count one verdict (PENDING is not counted)."""
    if verdict == "MATCH":
        MATCHED.labels(channel).inc()
    elif verdict == "MISMATCH":
        MISMATCHED.labels(channel).inc()
    elif verdict == "MISSING_OURS":
        MISSING.labels(channel, "ours").inc()
    elif verdict == "MISSING_LEGACY":
        MISSING.labels(channel, "legacy").inc()


def record_round(finished_at: float) -> None:
    """A round completed at `finished_at` (unix seconds)."""
    LAST_SUCCESS.set(finished_at)


def end_run() -> None:
    """The run ended (its duration is over, or a single check is done)."""
    RUNNING.set(0)
