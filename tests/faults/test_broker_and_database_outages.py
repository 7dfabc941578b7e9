"""The Kafka broker, then PostgreSQL, stopped and started again mid-run.

Both run privately for these tests (`tests.faults.cluster`): the shared ones serve other
tests and must stay up.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.assertions import assert_no_loss_and_roots_match
from tests.faults.cluster import LocalCluster, local_cluster
from tests.faults.figures import ScenarioFigures
from tests.faults.scenario import FAULT_RATE, fault_run

pytestmark = pytest.mark.slow

#: how long the broker or the server stays down.
DOWN_S = 10.0
#: load before the outage.
BEFORE_S = 5.0


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with local_cluster(f"outage-{uuid.uuid4().hex[:8]}") as running:
        yield running


@pytest.mark.parametrize("service", ["kafka", "postgres"])
def test_outage_of_broker_or_database_loses_nothing_and_roots_match(
    service: str, cluster: LocalCluster, tmp_path: Path
) -> None:
    """Stop `service` for DOWN_S under load, start it again: every service recovers (or
    exits and is restarted, as `aop run` would), no event is lost or duplicated, every root
    equals the replay."""
    figures = ScenarioFigures(
        scenario=f"{service}_outage",
        injected=f"{service} stopped for {DOWN_S:.0f} s mid-run, then started again",
        rate_target=FAULT_RATE,
    )
    with fault_run(
        figures,
        kafka_bootstrap=cluster.kafka_bootstrap,
        database_url=cluster.database_url,
        workdir=tmp_path,
    ) as run:
        run.run_for(BEFORE_S)
        stopping = time.monotonic()
        cluster.down(service)
        figures.extra["stop_seconds"] = round(time.monotonic() - stopping, 1)
        run.run_for(DOWN_S)  # the outage; services that exit meanwhile are restarted
        mark = run.restart_mark()
        cluster.up(service)
        figures.extra["start_seconds"] = round(time.monotonic() - mark.at, 1)
        run.recovered(service, mark)
        figures = run.quiesce_and_audit()
    assert_no_loss_and_roots_match(figures, min_roots=len(run.probe.channels) * 3)
