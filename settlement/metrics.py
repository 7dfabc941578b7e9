"""Settlement's Prometheus metrics (DESIGN §10); updated by `settlement.settler`."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

__all__ = ["ATTEMPTS", "LAG_ROOTS", "LAST_PUBLISHED_SEQ"]

ATTEMPTS = Counter(
    "aop_settlement_attempts_total",
    "Settlement steps by outcome (intent, published, already_on_chain, dry_run, expired, "
    "rpc_error, failed, sequence_mismatch)",
    ["outcome"],
)
LAST_PUBLISHED_SEQ = Gauge(
    "aop_settlement_last_published_seq",
    "The newest root_seq known on-chain (published by us or found there), per channel",
    ["channel"],
)
LAG_ROOTS = Gauge(
    "aop_settlement_lag_roots",
    "Outbox roots not yet on-chain (pending, sent, dry_run, failed, sequence_mismatch)",
)
