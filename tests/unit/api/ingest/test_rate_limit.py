"""api.ingest.rate_limit: a token bucket per source, on hand-computed examples."""

from __future__ import annotations

import math

import pytest

from aop.api.ingest.rate_limit import RateLimiter


def test_a_full_bucket_pays_its_burst_then_says_when_the_next_request_fits() -> None:
    limiter = RateLimiter(rate=10, burst=20)
    assert limiter.take("a", 20, now_s=0.0) == 0.0
    assert limiter.take("a", 1, now_s=0.0) == pytest.approx(0.1)  # 1 token at 10/s
    assert limiter.take("a", 5, now_s=0.5) == 0.0  # 0.5 s refilled 5
    assert limiter.take("a", 15, now_s=0.5) == pytest.approx(1.5)  # 15 missing at 10/s
    assert limiter.take("a", 15, now_s=2.0) == 0.0  # 1.5 s refilled 15


def test_a_refused_request_takes_nothing() -> None:
    limiter = RateLimiter(rate=10, burst=20)
    assert limiter.take("a", 15, now_s=0.0) == 0.0
    assert limiter.take("a", 10, now_s=0.0) == pytest.approx(0.5)
    assert limiter.take("a", 5, now_s=0.0) == 0.0  # the 5 left were not taken


def test_the_bucket_holds_at_most_its_burst_and_sources_are_apart() -> None:
    limiter = RateLimiter(rate=10, burst=20)
    assert limiter.take("a", 20, now_s=0.0) == 0.0
    assert limiter.take("b", 20, now_s=0.0) == 0.0  # b's own bucket
    assert limiter.take("a", 21, now_s=1000.0) == math.inf  # never fits
    assert limiter.take("a", 20, now_s=1000.0) == 0.0


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError, match=r"need rate > 0 and burst >= 1 \(got 0, 5\)"):
        RateLimiter(rate=0, burst=5)
