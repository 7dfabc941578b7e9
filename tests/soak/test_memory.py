"""The soak's memory arithmetic (fast; runs in the default suite)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.soak.memory import MIB, MemoryLog, rss_bytes, slope


def test_slope_is_the_least_squares_fit_and_ignores_a_single_outlier_more_than_the_ends() -> None:
    line = [(float(x), 3.0 + 0.5 * x) for x in range(10)]
    assert slope(line) == pytest.approx(0.5)
    assert slope([]) == 0.0 and slope([(1.0, 5.0)]) == 0.0 and slope([(1.0, 1), (1.0, 2)]) == 0.0
    flat_with_spike_at_end = [(float(x), 100.0) for x in range(30)] + [(30.0, 130.0)]
    assert slope(flat_with_spike_at_end) < 0.3  # end minus start would say +1 per step


def test_trend_covers_only_the_window_after_warm_up_and_counts_restarts_as_pids() -> None:
    log = MemoryLog()
    for at, pid, mib in [(0, 1, 500), (60, 1, 100), (120, 2, 101), (180, 2, 102)]:
        log.samples.setdefault("svc", []).append((float(at), pid, mib * MIB))
    trend = log.trend("svc", since=60)
    assert trend is not None
    assert (trend.start_mib, trend.end_mib, trend.peak_mib, trend.samples) == (100, 102, 102, 3)
    assert trend.growth_mib == 2 and trend.slope_mib_per_min == pytest.approx(1.0)
    assert log.pids("svc") == {1, 2}
    assert log.trend("svc", since=999) is None and log.trend("other", since=0) is None


def test_rss_counts_children_and_is_none_for_a_process_that_is_gone() -> None:
    own = rss_bytes(os.getpid())
    assert own is not None and own > MIB
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with_child = rss_bytes(os.getpid())
        assert with_child is not None and with_child > own
    finally:
        child.kill()
        child.wait()
    assert rss_bytes(child.pid) is None


def test_the_judged_life_is_the_longest_after_its_own_warm_up_and_trend_keeps_to_it() -> None:
    """A service killed at 40 s and restarted at 50 s, warm-up 20 s: its first life is judged
    from 20 s (20-40 s), its second from 70 s (70-200 s), the longer; its trend leaves out
    the first life and the second one's first 20 s."""
    log = MemoryLog()
    for at in range(0, 41, 10):
        log.samples.setdefault("fold", []).append((float(at), 11, 500 * MIB))
    for at in range(50, 201, 10):
        log.samples["fold"].append((float(at), 22, (100 + at // 10) * MIB))
    assert log.judged_life("fold", warmup_s=20.0) == (22, 70.0)
    assert log.judged_life("fold", warmup_s=300.0) is None
    # killed at 150 s instead: the first life (20-150 s) outlasts the second (170-200 s)
    late = MemoryLog()
    late.samples["fold"] = [(float(at), 11, MIB) for at in range(0, 151, 10)]
    late.samples["fold"] += [(float(at), 22, MIB) for at in range(160, 201, 10)]
    assert late.judged_life("fold", warmup_s=20.0) == (11, 20.0)
    trend = log.trend("fold", 70.0, pid=22)
    assert trend is not None
    assert (trend.start_mib, trend.end_mib, trend.peak_mib) == (107.0, 120.0, 120.0)
    assert trend.slope_mib_per_min == pytest.approx(6.0)  # 1 MiB per 10 s
