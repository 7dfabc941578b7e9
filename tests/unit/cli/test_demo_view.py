"""The demo's live view reads the DLQ counter per reason, over every service."""

from __future__ import annotations

from aop.cli.demo import _dlq_by_reason


def test_dlq_is_summed_per_reason_over_services() -> None:
    values = {
        "listener:aop_dlq_total": 7.0,  # the all-labels sum is not counted twice
        "listener:aop_dlq_total|reason=failed_transaction": 5.0,
        "listener:aop_dlq_total|reason=log_truncated": 1.0,
        "fold:aop_dlq_total|reason=failed_transaction": 1.0,
        "listener:aop_listener_rpc_errors_total|reason=timeout": 9.0,
        "listener:aop_dlq_total|reason=undecodable": 0.0,  # created at start, never seen
    }
    assert _dlq_by_reason(values) == "6 failed_transaction, 1 log_truncated"


def test_an_empty_dlq_reads_zero() -> None:
    assert _dlq_by_reason({"listener:aop_dlq_total": 0.0}) == "0"
