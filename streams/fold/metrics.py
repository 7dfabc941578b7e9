"""The fold's Prometheus metrics (DESIGN §10); updated by `streams.fold.app`."""

from __future__ import annotations

from typing import Any, TypeVar

from prometheus_client import REGISTRY, Counter, Gauge, Histogram

__all__ = [
    "ATTENTION_WATERMARK",
    "BATCH_SECONDS",
    "CONSUMER_LAG",
    "DLQ",
    "EPOCH_CLOSE_SECONDS",
    "EVENTS",
    "RECORDS",
    "ROOTS",
    "SIGNALS_LAG",
    "SIGNAL_RECORDS",
    "STATE_VALUE_BYTES",
    "TREE_BUILD_SECONDS",
    "UNBOUND_USERS",
]

M = TypeVar("M", Counter, Histogram)


def _shared(kind: type[M], name: str, documentation: str, labels: list[str], **kw: Any) -> M:
    """A metric other services may also define (`aop_dlq_total`): reuse it if registered."""
    existing = getattr(REGISTRY, "_names_to_collectors", {}).get(name)
    if isinstance(existing, kind):
        return existing
    return kind(name, documentation, labels, **kw)


_SECONDS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30)

EVENTS = Counter(
    "aop_fold_events_total",
    "Events read by the fold: applied ones by event name, others as skipped_<reason> / "
    "rejected_<reason>",
    ["event"],
)
RECORDS = Counter("aop_fold_records_total", "SlotBatch records folded (replays included)")
BATCH_SECONDS = Histogram(
    "aop_fold_batch_seconds",
    "Time to fold one take_events chunk, roots and writes included",
    buckets=_SECONDS,
)
ROOTS = Counter(
    "aop_fold_roots_total",
    "EpochRoots and AttentionRoots emitted (replays included)",
    ["channel"],
)
SIGNAL_RECORDS = Counter(
    "aop_fold_signal_records_total", "SignalBatch records folded (replays included)"
)
UNBOUND_USERS = Counter(
    "aop_attention_unbound_users_total",
    "Users with attention weight in a closed (channel, attention epoch) and no wallet bound: "
    "not paid",
)
ATTENTION_WATERMARK = Gauge(
    "aop_attention_watermark_seconds",
    "The attention watermark (unix seconds) that last closed an attention epoch, by partition",
    ["partition"],
)
SIGNALS_LAG = Gauge(
    "aop_fold_signals_lag",
    "Records of aop.attention.signals not folded yet, by partition",
    ["partition"],
)
EPOCH_CLOSE_SECONDS = Histogram(
    "aop_fold_epoch_close_seconds",
    "From taking the record that closes an epoch to its root and leaves acknowledged",
    buckets=_SECONDS,
)
TREE_BUILD_SECONDS = _shared(
    Histogram,
    "aop_tree_build_seconds",
    "Time to build one Merkle tree",
    ["format"],
    buckets=_SECONDS,
)
DLQ = _shared(
    Counter, "aop_dlq_total", "Records sent to aop.dlq, by stage and reason", ["stage", "reason"]
)
CONSUMER_LAG = Gauge(
    "aop_fold_consumer_lag",
    "Records of aop.chain.events not folded yet, by partition",
    ["partition"],
)
STATE_VALUE_BYTES = Gauge(
    "aop_fold_state_value_max_bytes", "Largest state value written (the limit is ~900 KB)"
)
