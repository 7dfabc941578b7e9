"""Settlement's Prometheus metrics (DESIGN §10); updated by `settlement.settler`."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from aop.projections.models import SETTLEMENT_OUTCOMES
from aop.runtime.metrics import precreate

__all__ = [
    "ATTEMPTS",
    "LAG_ROOTS",
    "LAST_PUBLISHED_SEQ",
    "OUTCOMES",
    "PUBLISHER_LAMPORTS",
    "PUBLISHER_MIN_LAMPORTS",
]

#: every outcome an attempt records (`projections.models.SETTLEMENT_OUTCOMES`), each series at
#: 0 from the start so the first `failed` or `rpc_error` is an increase the alerts see.
OUTCOMES = SETTLEMENT_OUTCOMES

ATTEMPTS = Counter(
    "aop_settlement_attempts_total",
    "Settlement steps by outcome (intent, published, already_on_chain, dry_run, expired, "
    "rpc_error, failed, sequence_mismatch)",
    ["outcome"],
)
precreate(ATTEMPTS, [(o,) for o in OUTCOMES])
LAST_PUBLISHED_SEQ = Gauge(
    "aop_settlement_last_published_seq",
    "The newest root_seq known on-chain (published by us or found there), per channel",
    ["channel"],
)
LAG_ROOTS = Gauge(
    "aop_settlement_lag_roots",
    "Outbox roots not yet on-chain (pending, sent, dry_run, failed, sequence_mismatch)",
)
PUBLISHER_LAMPORTS = Gauge(
    "aop_settlement_publisher_lamports",
    "SOL balance of the publisher keypair (lamports), read every AOP_SETTLEMENT_BALANCE_INTERVAL_S",
)
PUBLISHER_MIN_LAMPORTS = Gauge(
    "aop_settlement_publisher_min_lamports",
    "AOP_SETTLEMENT_MIN_BALANCE_LAMPORTS: below it alert AopPublisherBalanceLow fires",
)
