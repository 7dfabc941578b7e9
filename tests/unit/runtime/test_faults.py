"""Fault points: one plan format for every service, killing at the planned arrival."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from aop.runtime.errors import SettingsError
from aop.runtime.faults import FOLD_POINTS, FaultPlan
from aop.runtime.settings import load_settings


def fold_plan(spec: str) -> FaultPlan:
    return FaultPlan(spec, points=FOLD_POINTS, setting="AOP_FOLD_CRASH_AT")


def test_fault_plan_dies_at_the_nth_arrival_only() -> None:
    plan = fold_plan("after_root:2, mid_state:1")
    assert [plan.due("after_root") for _ in range(3)] == [False, True, False]
    assert plan.due("mid_state") and not plan.due("chunk_start")
    assert not fold_plan("")
    assert not FaultPlan.never()


def test_a_point_without_a_count_dies_at_its_first_arrival() -> None:
    plan = fold_plan("mid_root")
    assert [plan.due("mid_root") for _ in range(2)] == [True, False]


@pytest.mark.parametrize("spec", ["nowhere:1", "after_root:0", "after_root:x", "after_root:"])
def test_bad_entries_name_the_setting_and_the_entry(spec: str) -> None:
    with pytest.raises(SettingsError, match=rf"^AOP_FOLD_CRASH_AT: .* \(got '{spec}'\)$"):
        fold_plan(spec)


def test_each_service_reads_its_own_setting_and_points() -> None:
    settings = load_settings(
        {
            "AOP_FOLD_CRASH_AT": "before_root:3",
            "AOP_PROJECTION_CRASH_AT": "after_copy",
            "AOP_SETTLEMENT_CRASH_AT": "after_send",
        }
    )
    fold = FaultPlan.for_service(settings, "fold")
    assert [fold.due("before_root") for _ in range(3)] == [False, False, True]
    projection = FaultPlan.for_service(settings, "projection")
    assert (projection.due("before_commit"), projection.due("after_copy")) == (False, True)
    settlement = FaultPlan.for_service(settings, "settlement")
    assert (settlement.due("before_send"), settlement.due("after_send")) == (False, True)
    assert not FaultPlan.for_service(load_settings({}), "fold")


def test_hit_sigkills_the_process_at_the_planned_arrival() -> None:
    """Nothing after the planned arrival runs: the second line is never printed."""
    code = (
        "from aop.runtime.faults import FaultPlan, SETTLEMENT_POINTS\n"
        "plan = FaultPlan('before_send:2', points=SETTLEMENT_POINTS, setting='S')\n"
        "plan.hit('before_send'); print('first', flush=True)\n"
        "plan.hit('before_send'); print('second', flush=True)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert done.returncode == -signal.SIGKILL
    assert done.stdout == b"first\n"
