"""The listener creates an aop_dlq_total series at 0 for each reason it can give, so the alert
AopDlqGrowing sees the first dead letter of a reason; the list must be the decoder's."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client import REGISTRY

from aop.streams.listener import decode
from aop.streams.listener.metrics import DLQ_REASONS


def test_dlq_reasons_are_exactly_the_reasons_the_decoder_gives() -> None:
    source = Path(decode.__file__).read_text()
    given = set(re.findall(r'_dead\(\s*"([a-z0-9_]+)"', source))
    assert given == set(DLQ_REASONS)


def test_each_reasons_series_exists_at_zero_from_the_start() -> None:
    for reason in DLQ_REASONS:
        labels = {"stage": "listener", "reason": reason}
        assert REGISTRY.get_sample_value("aop_dlq_total", labels) is not None, reason
