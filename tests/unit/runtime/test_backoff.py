"""Backoff: full jitter under a ceiling that doubles up to the cap."""

from __future__ import annotations

import random

import pytest

from aop.runtime.backoff import Backoff


def test_backoff_ceiling_doubles_to_the_cap_and_resets() -> None:
    backoff = Backoff(initial_s=0.1, cap_s=1.0, rng=random.Random(7))
    ceilings = []
    for _ in range(6):
        ceilings.append(backoff.ceiling())
        delay = backoff.next_delay()
        assert 0 <= delay <= ceilings[-1]
    assert ceilings == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    backoff.reset()
    assert backoff.ceiling() == 0.1


def test_backoff_rejects_a_cap_below_the_initial_delay() -> None:
    with pytest.raises(ValueError, match=r"need 0 < initial <= cap \(got initial=2, cap=1\)"):
        Backoff(initial_s=2, cap_s=1)
