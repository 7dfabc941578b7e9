"""Backoff: full jitter under a ceiling that doubles up to the cap.

Expectations are computed here from the documented rule, `uniform(0, min(cap, base*2**n))`,
with the ceilings written out and `random.Random(seed).random()` (uniform(a, b) is
a + (b - a) * random()), not from the code under test.
"""

from __future__ import annotations

import random

import pytest

from aop.runtime.backoff import DATABASE_OUTAGE, Backoff, BackoffPolicy

SEED = 20261127


def full_jitter(ceilings: list[float], seed: int = SEED) -> list[float]:
    draws = random.Random(seed)
    return [ceiling * draws.random() for ceiling in ceilings]


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


def test_backoff_draws_full_jitter_with_a_seeded_rng() -> None:
    backoff = Backoff(initial_s=0.1, cap_s=1.0, rng=random.Random(SEED))
    delays = [backoff.next_delay() for _ in range(6)]
    assert delays == pytest.approx(full_jitter([0.1, 0.2, 0.4, 0.8, 1.0, 1.0]), rel=1e-12)


def test_policy_delays_fill_the_whole_window_not_its_upper_half() -> None:
    """Full jitter: about half of the draws fall below ceiling / 2 (equal jitter: none)."""
    policy = BackoffPolicy(initial_s=1.0, cap_s=1.0)
    rng = random.Random(SEED)
    delays = [policy.delay(0, rng) for _ in range(2000)]
    assert all(0 <= d <= 1.0 for d in delays)
    assert 0.45 < sum(d < 0.5 for d in delays) / len(delays) < 0.55
    assert min(delays) < 0.01


def test_database_outage_policy_ceilings() -> None:
    """1 s after the first failure, doubling to 30 s."""
    assert [DATABASE_OUTAGE.ceiling(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]
    assert DATABASE_OUTAGE.ceiling(10_000) == 30


def test_backoff_rejects_a_cap_below_the_initial_delay() -> None:
    with pytest.raises(ValueError, match=r"need 0 < initial <= cap \(got initial=2, cap=1\)"):
        Backoff(initial_s=2, cap_s=1)
