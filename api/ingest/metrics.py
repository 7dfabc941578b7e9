"""The ingest's Prometheus metrics (`aop_ingest_*`), served on its /metrics and on
AOP_METRICS_PORT. Labels are bounded: sources come from the tokens file, reasons and kinds
from closed sets, routes are templates."""

from __future__ import annotations

import time

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "BATCHES",
    "ITEMS",
    "RATE_LIMITED",
    "REFUSED",
    "REQUESTS",
    "REQUEST_SECONDS",
    "SEEN_IDS",
    "TOKENS_RELOADS",
    "TRANSACTION_SECONDS",
    "WATERMARK_LAG",
    "WATERMARK_MS",
    "WRITER_FAILURES",
    "committed_watermark",
]

REQUESTS = Counter(
    "aop_ingest_requests_total",
    "HTTP requests answered by the ingest, by route template, method and status",
    ["route", "method", "status"],
)
REQUEST_SECONDS = Histogram(
    "aop_ingest_request_seconds",
    "Time from request to the last byte of the answer (202: after the log acknowledged), "
    "by route template",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.04, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5, 10, 30),
)
ITEMS = Counter(
    "aop_ingest_items_total",
    "Items of 202-answered requests, by source, kind (signal, binding) and outcome "
    "(accepted: written now; duplicate: (source, id) already on the log)",
    ["source", "kind", "outcome"],
)
REFUSED = Counter(
    "aop_ingest_refused_items_total",
    "Items refused (422: nothing of their request written), by source and reason",
    ["source", "reason"],
)
RATE_LIMITED = Counter(
    "aop_ingest_rate_limited_requests_total",
    "Requests refused with 429 by the source's rate limit (AOP_INGEST_RATE_LIMIT)",
    ["source"],
)
WATERMARK_MS = Gauge(
    "aop_ingest_watermark_ms",
    "The newest watermark the ingest committed to the log (unix ms); 0 before the first",
)
WATERMARK_LAG = Gauge(
    "aop_ingest_watermark_lag_seconds",
    "Wall clock minus the newest committed watermark: AOP_ATTENTION_ALLOWED_LATENESS_S plus "
    "up to one AOP_INGEST_WATERMARK_INTERVAL_S when healthy; growing when no batch reaches the "
    "log (attention epochs then do not close); 0 before the first",
)


class _Committed:
    """The newest committed watermark, for the lag gauge (read at scrape time)."""

    watermark_ms = 0

    def lag_s(self) -> float:
        if self.watermark_ms <= 0:
            return 0.0
        return max(0.0, time.time() - self.watermark_ms / 1000)


_COMMITTED = _Committed()
WATERMARK_LAG.set_function(_COMMITTED.lag_s)


def committed_watermark(watermark_ms: int) -> None:
    """Note that a watermark reached the log (both gauges)."""
    _COMMITTED.watermark_ms = watermark_ms
    WATERMARK_MS.set(watermark_ms)


TRANSACTION_SECONDS = Histogram(
    "aop_ingest_transaction_seconds",
    "One Kafka transaction of the writer: begin, produce, commit (acks=all)",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
)
BATCHES = Counter(
    "aop_ingest_batches_total",
    "SignalBatch records committed to aop.attention.signals (pure watermarks included)",
)
WRITER_FAILURES = Counter(
    "aop_ingest_writer_failures_total",
    "Transactions that failed, by kind (aborted: nothing written; unknown: outcome unknown, "
    "the writer recovers from the log; fenced: the process stops)",
    ["kind"],
)
SEEN_IDS = Gauge(
    "aop_ingest_seen_ids",
    "(source, id) pairs held in memory to answer duplicates (api.ingest.dedupe)",
)
TOKENS_RELOADS = Counter(
    "aop_ingest_tokens_reloads_total",
    "Reloads of AOP_INGEST_TOKENS_FILE after it changed, by outcome (ok, refused: the old "
    "tokens stay)",
    ["outcome"],
)
