"""kill -9 of each service in turn under load; each restarted after a pause."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from aop.cli.services import SERVICES
from tests.faults.assertions import assert_no_loss_and_roots_match
from tests.faults.figures import ScenarioFigures
from tests.faults.scenario import FAULT_RATE, fault_run

pytestmark = pytest.mark.slow

#: how long a killed service stays down (the chain runs on meanwhile).
DOWN_S = 5.0
#: load between faults, so each kill lands in a running pipeline.
BETWEEN_S = 5.0


def test_kill_9_of_each_service_in_turn_loses_nothing_and_roots_match(
    kafka_bootstrap: str, database_url: str, tmp_path: Path
) -> None:
    """SIGKILL listener, fold, projector, settlement, api one after another, each down for
    DOWN_S under load: no event lost or duplicated, every root equal to the replay."""
    figures = ScenarioFigures(
        scenario="kill9_each_service",
        injected=f"SIGKILL of each service in turn, {DOWN_S:.0f} s down, then restarted",
        rate_target=FAULT_RATE,
    )
    with fault_run(
        figures, kafka_bootstrap=kafka_bootstrap, database_url=database_url, workdir=tmp_path
    ) as run:
        for name in SERVICES:
            run.run_for(BETWEEN_S)
            run.services.kill(name)
            time.sleep(DOWN_S)  # the outage itself; no pass/fail decision rests on it
            mark = run.restart_mark()
            run.services.start(name)
            run.recovered(name, mark)
        figures = run.quiesce_and_audit()
    assert_no_loss_and_roots_match(figures, min_roots=len(run.probe.channels) * 4)
