"""The listener's Prometheus metrics (DESIGN §10); updated by `service.py`."""

from __future__ import annotations

from prometheus_client import REGISTRY, Counter, Gauge

from aop.runtime.metrics import precreate

__all__ = [
    "AUDIT_ERRORS",
    "BATCHES",
    "DLQ",
    "DLQ_REASONS",
    "EVENTS",
    "LAST_SLOT",
    "RECONNECTS",
    "SLOT_LAG",
    "TRUNCATED_LOGS",
]


def _shared_counter(name: str, documentation: str, labels: list[str]) -> Counter:
    """A counter other services may also define (`aop_dlq_total`): reuse it if registered."""
    existing = getattr(REGISTRY, "_names_to_collectors", {}).get(name)
    if isinstance(existing, Counter):
        return existing
    return Counter(name, documentation, labels)


EVENTS = Counter("aop_listener_events_total", "Events appended to the log, by type", ["event"])
DLQ = _shared_counter(
    "aop_dlq_total", "Records sent to aop.dlq, by stage and reason", ["stage", "reason"]
)
#: the reasons `streams.listener.decode` gives a dead letter (a unit test holds them equal).
DLQ_REASONS = (
    "bad_base64",
    "failed_transaction",
    "log_truncated",
    "logs_unavailable",
    "undecodable_event",
)
precreate(DLQ, [("listener", reason) for reason in DLQ_REASONS])
SLOT_LAG = Gauge("aop_listener_slot_lag", "Chain tip (processed) minus the last slot on the log")
RECONNECTS = Counter(
    "aop_listener_reconnects_total", "Websocket reconnects and RPC retries after an error"
)
BATCHES = Counter("aop_listener_batches_total", "SlotBatch records appended (empty ones included)")
LAST_SLOT = Gauge("aop_listener_last_slot", "Last slot of the newest slot range on the log")
AUDIT_ERRORS = Counter("aop_listener_audit_errors_total", "Audit lines that could not be written")
TRUNCATED_LOGS = Counter(
    "aop_listener_truncated_logs_total", "Transactions whose log messages the RPC truncated"
)
