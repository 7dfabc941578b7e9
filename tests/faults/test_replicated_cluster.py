"""Brokers of a replicated cluster killed under load: RF 3, min.insync.replicas 2.

A three-node KRaft cluster of the test's own (`infra/local/kafka-cluster.sh` on free ports,
`tests.support.kafka_nodes`), the whole pipeline on it at the harness's rate. Then:

1. kill -9 the broker that leads the most partitions of the pipeline's topics; the other two
   elect new leaders (the time until no partition is led by the dead broker is recorded) and
   the pipeline carries on: writes need 2 in-sync replicas and 2 are left, so the listener's
   acknowledged event count must grow;
2. while it is down, kill -9 a second broker: one broker is left, below min.insync and below
   the controller quorum, so no write can be acknowledged: producers must block (or fail
   loudly), and `aop_listener_events_total` (events the listener had acknowledged) must not
   move;
3. start the first broker again (quorum and min.insync are back), then the second;
4. quiesce and audit as every scenario does: events on the log = events emitted, 0 lost,
   0 duplicated, every root equal to the replay; then `aop doctor` must find nothing once the
   replicas are back in sync.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from aop.log.kafka import connected_admin, topic_specs
from aop.runtime.settings import Settings
from aop.streams.fold.topics import fold_topic_specs
from tests.faults.assertions import assert_no_loss_and_roots_match
from tests.faults.figures import ScenarioFigures
from tests.faults.progress import wait_until
from tests.faults.scenario import FAULT_RATE, FaultRun, fault_run
from tests.support.kafka_nodes import KafkaNodes, kafka_nodes

pytestmark = pytest.mark.slow

#: load before the first kill, and while one broker is down before the second kill.
BEFORE_S = 5.0
ONE_DOWN_S = 10.0
#: both brokers down (one left): the window in which nothing may be acknowledged.
TWO_DOWN_S = 15.0
#: the listener's in-flight transaction may still complete just after the second kill.
SETTLE_S = 3.0


@pytest.fixture(scope="module")
def cluster() -> Iterator[KafkaNodes]:
    with kafka_nodes("kafka-cluster") as running:
        yield running


def leaders(settings: Settings) -> Counter[int]:
    """Partitions of the pipeline's topics (the log's and the fold's) led by each node, from
    the cluster's metadata (right after a kill, requests that need the controller can time
    out; metadata answers)."""
    names = {spec.name for spec in (*topic_specs(settings), *fold_topic_specs(settings))}
    topics = connected_admin(settings).list_topics(timeout=15).topics
    return Counter(
        part.leader
        for name in names & set(topics)
        for part in topics[name].partitions.values()
        if part.leader >= 0
    )


def listener_acknowledged(run: FaultRun) -> float | None:
    """Events the listener has had acknowledged by the log (None: it does not answer)."""
    return run.metric("listener", "aop_listener_events_total")


def doctor(run: FaultRun) -> subprocess.CompletedProcess[str]:
    """`aop doctor` with the pipeline's settings."""
    return subprocess.run(
        [sys.executable, "-m", "aop.cli", "doctor"],
        env={**os.environ, **run.services.env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_two_of_three_brokers_killed_under_load_lose_nothing_and_roots_match(
    cluster: KafkaNodes, database_url: str, tmp_path: Path
) -> None:
    figures = ScenarioFigures(
        scenario="replicated_brokers_kill9",
        injected=(
            "RF 3, min.insync 2: kill -9 of the broker leading most partitions; once its "
            f"partitions had new leaders, {ONE_DOWN_S:.0f} s of load, then kill -9 of a second "
            f"({TWO_DOWN_S:.0f} s with one broker left); both restarted, one after the other"
        ),
        rate_target=FAULT_RATE,
    )
    settings = cluster.env()
    assert settings["AOP_KAFKA_REPLICATION_FACTOR"] == "3"
    assert settings["AOP_KAFKA_MIN_INSYNC_REPLICAS"] == "2"
    with fault_run(
        figures,
        kafka_bootstrap=cluster.bootstrap,
        database_url=database_url,
        workdir=tmp_path,
        settings=settings,
    ) as run:
        run.run_for(BEFORE_S)
        led = leaders(run.settings)
        first = min(led, key=lambda node: (-led[node], node))
        second = min(node for node in range(1, cluster.nodes + 1) if node != first)
        figures.extra["leaders_before"] = {str(n): led[n] for n in sorted(led)}
        figures.extra["killed"] = [first, second]

        cluster.kill(first)
        killed_at = time.monotonic()
        moved = wait_until(
            lambda: first not in (led := leaders(run.settings)) and led,
            timeout=90,
            what=f"every partition led by a live broker after node {first} was killed",
        )
        figures.extra["leaders_moved_after_s"] = round(time.monotonic() - killed_at, 1)
        figures.extra["leaders_one_down"] = {str(n): moved[n] for n in sorted(moved)}
        acked_one_down = [listener_acknowledged(run)]
        run.run_for(ONE_DOWN_S)
        acked_one_down.append(listener_acknowledged(run))
        figures.extra["listener_acknowledged_with_two_brokers"] = acked_one_down
        cluster.kill(second)
        run.run_for(SETTLE_S)
        acked_from = listener_acknowledged(run)
        run.run_for(TWO_DOWN_S)
        acked_to = listener_acknowledged(run)
        figures.extra["listener_acknowledged_while_one_broker_left"] = [acked_from, acked_to]

        mark = run.restart_mark()
        cluster.start(first)
        figures.extra["first_start_seconds"] = round(time.monotonic() - mark.at, 1)
        run.recovered("first_broker_back", mark)
        mark = run.restart_mark()
        cluster.start(second)
        figures.extra["second_start_seconds"] = round(time.monotonic() - mark.at, 1)
        run.recovered("second_broker_back", mark)
        figures = run.quiesce_and_audit()
        back = time.monotonic()
        report = wait_until(
            lambda: (r := doctor(run)).returncode == 0 and r,
            timeout=120,
            what="aop doctor without findings (every replica back in sync)",
        )
        figures.extra["doctor_clean_after_s"] = round(time.monotonic() - back, 1)
    # two brokers (= min.insync) carry writes; one broker cannot acknowledge any
    assert None not in acked_one_down and acked_one_down[1] > acked_one_down[0], figures.extra
    assert acked_from is not None and acked_to == acked_from, figures.extra
    assert_no_loss_and_roots_match(figures, min_roots=len(run.probe.channels) * 3)
    assert "3 broker(s)" in report.stdout and report.stdout.rstrip().endswith("no findings")
