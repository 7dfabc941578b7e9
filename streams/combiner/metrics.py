"""The combiner's Prometheus metrics (dashboard "Global roots", alert AopGlobalRootHeldBack)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from aop.runtime.metrics import precreate

__all__ = [
    "ACTIVE",
    "COMBINE_SECONDS",
    "GLOBAL_ROOTS",
    "HELD_BACK_SECONDS",
    "LAST_EPOCH",
    "PENDING_ATTENTION_EPOCHS",
    "PENDING_EPOCHS",
    "REFUSAL_REASONS",
    "REFUSED",
    "SKIPPED",
    "WAITING_PARTITIONS",
]

#: the refusal reasons `core.combine` can give (each label series exists from the start).
REFUSAL_REASONS = ("late_root", "sum_mismatch", "total_decreased", "total_overflow", "bad_root")

GLOBAL_ROOTS = Counter("aop_combiner_global_roots_total", "Global roots written to the log.")
REFUSED = Counter(
    "aop_combiner_refused_total", "Global roots refused by a guard (dead letters).", ["reason"]
)
precreate(REFUSED, [(reason,) for reason in REFUSAL_REASONS])
SKIPPED = Counter(
    "aop_combiner_skipped_total", "Input records skipped (duplicates, other mints).", ["reason"]
)
precreate(SKIPPED, [("duplicate_root",), ("other_mint",), ("attention_off",)])
ACTIVE = Gauge("aop_combiner_active", "1 while this instance holds the lease and combines.")
LAST_EPOCH = Gauge("aop_combiner_last_epoch", "Chain epoch of the last global root written.")
PENDING_EPOCHS = Gauge(
    "aop_combiner_pending_epochs", "Epochs with channel roots waiting for every partition."
)
PENDING_ATTENTION_EPOCHS = Gauge(
    "aop_combiner_pending_attention_epochs",
    "Attention epochs with attention roots not yet in a global root.",
)
WAITING_PARTITIONS = Gauge(
    "aop_combiner_waiting_partitions",
    "Partitions of aop.epoch.roots that have not closed the oldest pending epoch (or, with "
    "attention on, the attention epochs it waits for).",
)
HELD_BACK_SECONDS = Gauge(
    "aop_combiner_held_back_seconds",
    "How long the oldest pending epoch has waited for its last partition (0: none waits).",
)
COMBINE_SECONDS = Histogram(
    "aop_combiner_combine_seconds",
    "From the marker that completed an epoch to its global root committed on the log.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
