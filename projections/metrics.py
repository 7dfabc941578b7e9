"""The projector's Prometheus metrics (DESIGN §10); updated by `projections.projector`."""

from __future__ import annotations

from prometheus_client import REGISTRY, Counter, Gauge, Histogram

from aop.runtime.metrics import precreate

__all__ = [
    "CONSUMER_LAG",
    "DLQ",
    "PURGED_RECORDS",
    "PURGE_LAST",
    "PURGE_LOG_START",
    "ROOTS",
    "ROWS",
    "WRITE_SECONDS",
]


def _shared_counter(name: str, documentation: str, labels: list[str]) -> Counter:
    """A counter other services may also define (`aop_dlq_total`): reuse it if registered."""
    existing = getattr(REGISTRY, "_names_to_collectors", {}).get(name)
    if isinstance(existing, Counter):
        return existing
    return Counter(name, documentation, labels)


WRITE_SECONDS = Histogram(
    "aop_projection_write_seconds",
    "Time to verify and commit one root (tree rebuild, COPY, levels, outbox, offsets)",
    buckets=(0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30, 60),
)
ROOTS = Counter(
    "aop_projection_roots_total",
    "EpochRoots handled by the projector, by outcome (written, duplicate, rejected)",
    ["outcome"],
)
precreate(ROOTS, [("written",), ("duplicate",), ("rejected",)])
ROWS = Counter("aop_projection_rows_total", "Rows written by the projector, by table", ["table"])
DLQ = _shared_counter(
    "aop_dlq_total", "Records sent to aop.dlq, by stage and reason", ["stage", "reason"]
)
precreate(DLQ, [("projector", "undecodable")])
CONSUMER_LAG = Gauge(
    "aop_projection_consumer_lag",
    "Records on the log not yet committed by the projector (high watermark - stored offset)",
    ["topic", "partition"],
)
PURGE_LOG_START = Gauge(
    "aop_roots_purge_log_start_offset",
    "Log start offset of a roots topic partition after the last purge (`projections.purge`)",
    ["topic", "partition"],
)
PURGED_RECORDS = Counter(
    "aop_roots_purged_records_total",
    "Records deleted from a roots topic by the purge (new log start - old log start)",
    ["topic"],
)
PURGE_LAST = Gauge(
    "aop_roots_purge_last_timestamp_seconds", "Unix time of the last completed roots purge"
)
