"""A token bucket per source: `rate` items a second, at most `burst` saved up.

A request costs its number of items and is taken whole or not at all; when the bucket cannot
pay, the answer is 429 with Retry-After, the seconds until it can. Written here rather than
taken from a library: the rule is a few lines, it must charge a weight (the items) and say
when a refused request will fit, and the libraries at hand (pyrate-limiter, aiolimiter)
either keep a timestamp per unit of weight or wait instead of refusing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["RateLimiter", "TokenBucket"]


@dataclass
class TokenBucket:
    """`rate` tokens a second, at most `burst` held; full at first."""

    rate: float
    burst: float
    tokens: float
    at_s: float

    def take(self, cost: float, now_s: float) -> float:
        """Take `cost` tokens if the bucket holds them: 0.0; else take none and return the
        seconds until it will (infinite when `cost` exceeds `burst`)."""
        self.tokens = min(self.burst, self.tokens + (now_s - self.at_s) * self.rate)
        self.at_s = now_s
        if cost <= self.tokens:
            self.tokens -= cost
            return 0.0
        if cost > self.burst:
            return math.inf
        return (cost - self.tokens) / self.rate


class RateLimiter:
    """One `TokenBucket` per source, made full when the source is first seen."""

    def __init__(self, *, rate: float, burst: int) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"need rate > 0 and burst >= 1 (got {rate}, {burst})")
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, TokenBucket] = {}

    def take(self, source: str, cost: int, now_s: float) -> float:
        """`TokenBucket.take` of `source`'s bucket."""
        bucket = self._buckets.get(source)
        if bucket is None:
            bucket = self._buckets[source] = TokenBucket(self.rate, self.burst, self.burst, now_s)
        return bucket.take(cost, now_s)
