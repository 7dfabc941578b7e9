"""The day run's clock and its reading of the parity runs' output (fast; runs in the default
suite)."""

from __future__ import annotations

import json

import pytest

from aop.replay.legacy_parity import Check, LegacyComparison, LegacyPlan
from tests.soak.day_clock import DayClock, day_clock
from tests.soak.test_day import chain_parity_summary, legacy_verdicts


@pytest.mark.parametrize(
    ("events", "clock"),
    [
        # 260 events a slot (2,600 asked x 0.1 s); a 24th of 2,000,000 is 83,333 events,
        # 320.5 slots: 321, 83,460 events, 83.46 s at 1,000/s; lateness 83 x 300/3600 = 6.9
        (2_000_000, DayClock(321, 83.46, 83, 7)),
        # 8,333 events, 32.05 slots: 33, 8.58 s; lateness 0.75 s, under the 2 s floor
        (200_000, DayClock(33, 8.58, 9, 2)),
        # 417 events, 1.6 slots: the 32-slot floor, 8,320 events, 8.32 s
        (10_000, DayClock(32, 8.32, 8, 2)),
    ],
)
def test_a_day_keeps_24_epochs_of_the_events_asked(events: int, clock: DayClock) -> None:
    assert day_clock(events, 2600.0, 1000.0, 100.0) == clock


def test_the_attention_epoch_follows_the_expected_rate_and_the_chain_epoch_the_asked() -> None:
    """At 500 events/s achieved the day lasts twice as long: the same slots, attention
    epochs twice as long; asked what it achieves, 100 events a slot: 833.3 slots, 834."""
    assert day_clock(2_000_000, 2600.0, 500.0, 100.0) == DayClock(321, 166.92, 167, 14)
    assert day_clock(2_000_000, 1000.0, 1000.0, 100.0) == DayClock(834, 83.4, 83, 7)


def test_the_legacy_grace_covers_the_lateness_two_epochs_and_a_minute() -> None:
    assert DayClock(321, 83.46, 83, 7).legacy_grace_s == 7 + 166 + 60


@pytest.mark.parametrize(("events", "rate", "expected"), [(0, 1, 1), (1, 0, 1), (1, 1, 0)])
def test_no_events_or_no_rate_is_refused_naming_the_settings(
    events: int, rate: float, expected: float
) -> None:
    with pytest.raises(ValueError, match="AOP_DAY_EVENTS, AOP_DAY_RATE, AOP_DAY_EXPECTED_RATE"):
        day_clock(events, rate, expected, 100.0)


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


def test_the_chain_report_is_cut_to_its_verdict_and_the_roots_that_did_not_match() -> None:
    matched = {"root_seq": 1, "epoch": 0, "status": "match", "chain": {"status": "match"}}
    wrong = {"root_seq": 2, "epoch": 1, "status": "mismatch", "fields": ["root"]}
    off_chain = {"root_seq": 3, "epoch": 2, "status": "match", "chain": {"status": "mismatch"}}
    report = {
        "status": "mismatch",
        "roots_checked": 3,
        "mismatches": 2,
        "skipped": [],
        "channels": [{"channel": "a", "roots": [matched, wrong, off_chain]}],
    }
    summary = json.loads(chain_parity_summary(json.dumps(report)))
    assert summary["status"] == "mismatch" and summary["roots_checked"] == 3
    assert [(r["channel"], r["root_seq"]) for r in summary["not matching"]] == [("a", 2), ("a", 3)]
    assert chain_parity_summary("x" * 3000 + "aop parity: cannot read") == (
        "x" * 1977 + "aop parity: cannot read"
    )
