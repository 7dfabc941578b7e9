"""Capped exponential backoff with full jitter: the one retry policy of the services.

The n-th retry (n = 0, 1, ...) waits `uniform(0, min(cap, initial * 2**n))` ("full jitter":
retries of many clients spread over the whole window instead of bunching at its top). Used by
the listener (RPC retries, websocket reconnects, Kafka reopen), settlement (RPC retries) and
the projector and settlement after a database error (`DATABASE_OUTAGE`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["DATABASE_OUTAGE", "Backoff", "BackoffPolicy"]

#: past this exponent the cap has long won (and 2**n stays a small float).
_MAX_EXPONENT = 62


@dataclass(frozen=True)
class BackoffPolicy:
    """The delays of one kind of retry; `delay(n)` for the n-th retry (n from 0)."""

    initial_s: float
    cap_s: float

    def ceiling(self, attempt: int) -> float:
        """The upper bound of the `attempt`-th delay: min(cap, initial * 2**attempt)."""
        return min(self.cap_s, self.initial_s * 2.0 ** min(max(attempt, 0), _MAX_EXPONENT))

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """A delay drawn uniformly from [0, ceiling(attempt)] (`rng`: the module's default)."""
        return (rng or _RNG).uniform(0, self.ceiling(attempt))


#: after a database error: 1 s, 2 s, ... up to 30 s windows (the first retry is attempt 1).
DATABASE_OUTAGE = BackoffPolicy(initial_s=0.5, cap_s=30.0)
_RNG = random.Random()


class Backoff:
    """A `BackoffPolicy` with its attempt count: `next_delay()` per failure, `reset()` after a
    success."""

    def __init__(self, *, initial_s: float, cap_s: float, rng: random.Random | None = None) -> None:
        if initial_s <= 0 or cap_s < initial_s:
            raise ValueError(f"need 0 < initial <= cap (got initial={initial_s}, cap={cap_s})")
        self.policy = BackoffPolicy(initial_s, cap_s)
        self._rng = rng or random.Random()
        self.attempt = 0

    def ceiling(self) -> float:
        """The upper bound of the next delay."""
        return self.policy.ceiling(self.attempt)

    def next_delay(self) -> float:
        """The next delay in seconds; each call raises the ceiling until the cap."""
        delay = self.policy.delay(self.attempt, self._rng)
        self.attempt += 1
        return delay

    def reset(self) -> None:
        self.attempt = 0
