"""The day run's clock and its reading of the legacy parity's summary (fast; runs in the
default suite)."""

from __future__ import annotations

import pytest

from aop.replay.legacy_parity import Check, LegacyComparison, LegacyPlan
from tests.soak.day_clock import DayClock, day_clock
from tests.soak.test_day import legacy_verdicts


@pytest.mark.parametrize(
    ("events", "clock"),
    [
        # 2,000 s at 1,000 events/s; a 24th is 83.3 s, 833.3 slots of 100 ms: 834
        (2_000_000, DayClock(834, 83.4, 83, 7)),
        # 200 s; 8.33 s, 83.3 slots: 84; lateness 300/3600 of 8 s is under the 2 s floor
        (200_000, DayClock(84, 8.4, 8, 2)),
        # 10 s; 4.2 slots: the 50-slot floor, 5 s
        (10_000, DayClock(50, 5.0, 5, 2)),
    ],
)
def test_a_day_keeps_24_epochs_at_the_expected_rate(events: int, clock: DayClock) -> None:
    assert day_clock(events, 1000.0, 100.0) == clock


def test_the_epoch_count_follows_the_expected_rate() -> None:
    """At 500 events/s the day lasts twice as long: epochs twice as long, still 24."""
    assert day_clock(2_000_000, 500.0, 100.0) == DayClock(1667, 166.7, 167, 14)


def test_the_legacy_grace_covers_the_lateness_two_epochs_and_a_minute() -> None:
    assert DayClock(834, 83.4, 83, 7).legacy_grace_s == 7 + 166 + 60


@pytest.mark.parametrize(("events", "rate"), [(0, 1000.0), (1000, 0.0)])
def test_no_events_or_no_rate_is_refused_naming_the_settings(events: int, rate: float) -> None:
    with pytest.raises(ValueError, match="AOP_DAY_EVENTS, AOP_DAY_EXPECTED_RATE"):
        day_clock(events, rate, 100.0)


def test_the_verdict_counts_are_read_from_the_summary_line() -> None:
    """A comparison holding 2 MATCH, 1 MISMATCH and 1 PENDING, summarised by the product."""
    comparison = LegacyComparison(LegacyPlan((), {}, 3600))
    root, other = b"\x01" * 32, b"\x02" * 32
    comparison.latest = {
        ("a", 0): Check("a", 0, "MATCH", root, root),
        ("a", 3600): Check("a", 3600, "MATCH", root, root),
        ("b", 0): Check("b", 0, "MISMATCH", root, other),
        ("b", 3600): Check("b", 3600, "PENDING", root, None),
    }
    output = f"legacy parity: a, b; ...\nMISMATCH b ...\n{comparison.summary()}\n"
    assert legacy_verdicts(output) == {
        "MATCH": 2,
        "MISMATCH": 1,
        "MISSING_OURS": 0,
        "MISSING_LEGACY": 0,
        "PENDING": 1,
    }
    assert legacy_verdicts("aop parity: cannot connect to the legacy database: ...\n") is None
