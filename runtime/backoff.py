"""Capped exponential backoff with full jitter (reconnects and RPC retries)."""

from __future__ import annotations

import random

__all__ = ["Backoff"]


class Backoff:
    """Delays `uniform(0, min(cap, initial * 2**attempt))`; `reset()` after a success."""

    def __init__(self, *, initial_s: float, cap_s: float, rng: random.Random | None = None) -> None:
        if initial_s <= 0 or cap_s < initial_s:
            raise ValueError(f"need 0 < initial <= cap (got initial={initial_s}, cap={cap_s})")
        self._initial = initial_s
        self._cap = cap_s
        self._rng = rng or random.Random()
        self.attempt = 0

    def ceiling(self) -> float:
        """The upper bound of the next delay."""
        return min(self._cap, self._initial * 2.0 ** min(self.attempt, 62))

    def next_delay(self) -> float:
        """The next delay in seconds; each call raises the ceiling until the cap."""
        delay = self._rng.uniform(0, self.ceiling())
        self.attempt += 1
        return delay

    def reset(self) -> None:
        self.attempt = 0
