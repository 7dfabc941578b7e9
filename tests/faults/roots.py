"""Audit of Postgres against the log: every stored root equals the root the replay folds.

No second fold here: `aop.replay.run.run_replay` (what `aop replay --all` runs) folds the
log with the reference fold and compares every root with Postgres, field by field, leaf by
leaf and level by level. The chain comparison is off: settlement runs as a dry run.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

from aop.replay.chain import ChainReader
from aop.replay.compare import Status
from aop.replay.context import deployment_config, open_store
from aop.replay.run import ReplayReport, channel_targets, resolve_channels, run_replay
from aop.runtime.settings import Settings

__all__ = ["RootsAudit", "audit_roots", "replay_all"]


@dataclass(frozen=True)
class RootsAudit:
    """`checked` roots were compared (stored and replayed); `mismatched` of them failed
    (a differing field, leaf or level, or a root only one side has); `unprojected` ones the
    replay produced past the newest stored root (the projector had not written them yet)."""

    checked: int
    mismatched: int
    unprojected: int
    statuses: dict[str, int]
    per_channel: dict[str, int]


def replay_all(settings: Settings) -> ReplayReport:
    """`aop replay --all --no-chain --no-explain`, in this process."""
    config = deployment_config(settings)
    targets = channel_targets(config, resolve_channels(config, []), mode="all")
    chain = ChainReader(settings.rpc_url, mode="off", commitment=settings.commitment, timeout=5)
    try:
        with open_store(settings) as store:
            return run_replay(settings, config, targets, store=store, chain=chain, explain=False)
    finally:
        chain.close()


def _summary(report: ReplayReport) -> RootsAudit:
    return RootsAudit(
        checked=report.roots_checked,
        mismatched=report.mismatches,
        unprojected=sum(1 for r in report.roots if r.status == Status.UNPROJECTED),
        statuses=dict(Counter(str(r.status) for r in report.roots)),
        per_channel={
            c.name: sum(1 for r in c.roots if r.status != Status.UNPROJECTED)
            for c in report.channels
        },
    )


def audit_roots(settings: Settings, *, timeout: float) -> RootsAudit:
    """Replay the (frozen) log and compare, again until the projector has written every root
    the log produces and all of them match, or `timeout` seconds pass; the last comparison is
    returned.

    Freeze the log first (stop the listener): a root closed after the replay captured the
    log's end would otherwise be stored but not replayed. A mismatch is compared again too:
    at ~1,000 events/s a projector still catching up left holes (`missing_in_store`: newer
    roots stored, an older one not yet); one still there at the timeout fails the audit.
    """
    deadline = time.monotonic() + timeout
    while True:
        audit = _summary(replay_all(settings))
        settled = audit.unprojected == 0 and audit.mismatched == 0
        if settled or time.monotonic() > deadline:
            return audit
        time.sleep(2.0)
