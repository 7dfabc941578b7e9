"""core.attention.signals: epochs, windows, lateness and users, on hand-computed examples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aop.core.attention.signals import (
    LEGACY_KINDS,
    SIGNAL_KINDS,
    SignalRuleError,
    check_epoch,
    epoch_of,
    is_future,
    is_late,
    signal_epoch,
    signal_window_ms,
    user_key,
    watermark_at,
)

SCHEMAS = Path(__file__).resolve().parents[4] / "schemas" / "avro"


def test_kinds_are_the_avro_enum_in_its_order_and_the_legacy_keys_among_them() -> None:
    schema = json.loads((SCHEMAS / "Signal.avsc").read_text())
    kind = next(f for f in schema["fields"] if f["name"] == "kind")
    assert tuple(kind["type"]["symbols"]) == SIGNAL_KINDS
    assert LEGACY_KINDS == ("presence", "sub", "resub", "gift", "bits", "raid")
    assert set(LEGACY_KINDS) <= set(SIGNAL_KINDS)


@pytest.mark.parametrize(
    ("at_ms", "epoch_seconds", "epoch"),
    [
        (0, 3600, 0),
        (7_200_000, 3600, 7200),  # the first millisecond of epoch 7200
        (10_799_999, 3600, 7200),  # its last
        (10_800_000, 3600, 10_800),  # the next one's first
        # 1_796_650_000 s = 900 * 1_996_277 + 700
        (1_796_650_000_123, 900, 1_796_649_300),
        (59_999, 60, 0),
    ],
)
def test_epoch_of_a_time_is_the_unix_second_its_window_starts(
    at_ms: int, epoch_seconds: int, epoch: int
) -> None:
    assert epoch_of(at_ms, epoch_seconds) == epoch


@given(st.integers(0, 2**53), st.integers(1, 31 * 86_400))
def test_epoch_of_holds_the_time_and_is_aligned(at_ms: int, epoch_seconds: int) -> None:
    """A second rendering of the rule: the epoch's window holds the time."""
    epoch = epoch_of(at_ms, epoch_seconds)
    assert epoch % epoch_seconds == 0
    assert epoch * 1000 <= at_ms < (epoch + epoch_seconds) * 1000


def test_a_negative_time_has_no_epoch() -> None:
    with pytest.raises(SignalRuleError, match=r"time must be >= 0 unix ms \(got -1\)"):
        epoch_of(-1, 3600)


def test_epoch_seconds_must_be_positive() -> None:
    with pytest.raises(ValueError, match=r"epoch_seconds must be an int >= 1 \(got 0\)"):
        epoch_of(5, 0)


def test_an_aligned_epoch_is_accepted_and_others_are_refused_naming_neighbours() -> None:
    assert check_epoch(7200, 3600) == 7200
    assert check_epoch(0, 3600) == 0
    with pytest.raises(SignalRuleError, match=r"multiple of 3600 \(got 7201; e.g. 7200 or 10800\)"):
        check_epoch(7201, 3600)
    with pytest.raises(SignalRuleError, match=r"\(got -3600; e.g. 0 or 3600\)") as refused:
        check_epoch(-3600, 3600)
    assert refused.value.reason == "bad_epoch"


def test_a_signal_counts_in_the_epoch_it_names_else_in_the_one_of_its_time() -> None:
    assert signal_epoch(10_800_000, None, 3600) == 10_800
    assert signal_epoch(10_800_000, 3600, 3600) == 3600


def test_a_window_is_the_instant_or_the_whole_named_epoch() -> None:
    assert signal_window_ms(123, None, 3600) == (123, 123)
    assert signal_window_ms(99_999_999, 3600, 3600) == (3_600_000, 7_199_999)
    assert signal_window_ms(5, 0, 60) == (0, 59_999)


def test_late_means_the_window_ends_before_the_watermark() -> None:
    assert is_late(999, 1000)
    assert not is_late(1000, 1000)
    # a legacy signal of epoch 3600 (ends at 7_199_999) stays acceptable until the
    # watermark passes the epoch's end
    last = signal_window_ms(0, 3600, 3600)[1]
    assert not is_late(last, 7_199_999)
    assert is_late(last, 7_200_000)


def test_future_means_the_window_starts_after_clock_plus_skew() -> None:
    assert not is_future(1030, 1000, 30)
    assert is_future(1031, 1000, 30)


def test_the_watermark_is_the_clock_minus_the_lateness() -> None:
    assert watermark_at(1_000_000, 300) == 700_000
    assert watermark_at(1_000_000, 0) == 1_000_000


def test_users_compare_case_insensitively() -> None:
    assert user_key("AlIcE") == user_key("alice") == "alice"
    assert user_key("Ünïcode") == "ünïcode"


def test_epoch_of_a_time_of_today_is_the_start_of_its_hour() -> None:
    """2026-12-07 18:47:39.500 UTC is 1796669259500 ms; its hour starts at 18:00:00,
    1796666400 (= 1796669259 - 47*60 - 39)."""
    assert epoch_of(1_796_669_259_500, 3600) == 1_796_666_400
