"""`aop doctor` on real brokers: a healthy deployment, a topic with finite retention, and one
created with replication factor 1 where more is asked (on the shared broker and, `slow`, on a
three-node cluster); `ensure_topics` refuses the same topics at a service's start."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from aop.log.clients import connected_admin
from aop.log.inspect import describe_topics
from aop.log.kafka import (
    CHAIN_EVENTS,
    TopicMismatchError,
    TopicSpec,
    admin_config,
    ensure_topics,
    topic_specs,
)
from aop.runtime.settings import Settings
from aop.streams.fold.topics import fold_topic_specs
from tests.live_pipeline import AOP
from tests.support.kafka_nodes import KafkaNodes


def doctor(settings: Settings, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AOP_")}
    return subprocess.run(
        [*AOP, "doctor"], env={**clean, **env}, capture_output=True, text=True, timeout=120
    )


def env_of(settings: Settings) -> dict[str, str]:
    return {
        "AOP_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "AOP_TOPIC_PREFIX": settings.topic_prefix,
        "AOP_CHAIN_PARTITIONS": str(settings.chain_partitions),
    }


def all_specs(settings: Settings) -> list[TopicSpec]:
    return [*topic_specs(settings), *fold_topic_specs(settings)]


def create_by_hand(settings: Settings, name: str, replication: int, config: dict[str, str]) -> None:
    admin = AdminClient(admin_config(settings))
    topic = NewTopic(name, settings.chain_partitions, replication, config=config)
    admin.create_topics([topic])[name].result()


def test_a_healthy_deployment_has_no_finding(settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory()
    ensure_topics(settings, all_specs(settings))
    result = doctor(settings, env_of(settings))
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"cluster: 1 broker(s) at {settings.kafka_bootstrap} (PLAINTEXT)")
    prefix = settings.topic_prefix
    rows = {line.split()[0]: line.split()[1:7] for line in lines if line.startswith(prefix)}
    assert rows == {
        f"{prefix}aop.chain.events": ["4", "1", "1", "-1", "-1", "delete"],
        f"{prefix}aop.attention.signals": ["4", "1", "1", "-1", "-1", "delete"],
        f"{prefix}aop.epoch.roots": ["4", "1", "1", "-1", "-1", "delete"],
        f"{prefix}aop.global.roots": ["1", "1", "1", "-1", "-1", "delete"],
        f"{prefix}aop.settlement": ["1", "1", "1", "-1", "-1", "delete"],
        f"{prefix}aop.dlq": ["1", "1", "1", "-1", "-1", "delete"],
        f"{prefix}aop-fold-fold-state-changelog": ["4", "1", "1", "-1", "-1", "compact"],
        f"{prefix}aop-fold-__assignor-__leader": ["1", "1", "1", "-1", "-1", "delete"],
    }
    assert lines[-1] == "no findings"
    # the changelog rolls 16 MiB segments, so the cleaner compacts it during a day
    states = describe_topics(connected_admin(settings), [f"{prefix}aop-fold-fold-state-changelog"])
    assert states[f"{prefix}aop-fold-fold-state-changelog"].configs["segment.bytes"] == str(2**24)


def test_finite_retention_of_the_source_of_truth_is_caught_and_refused(
    settings_factory: Callable[..., Settings],
) -> None:
    settings = settings_factory()
    events = settings.topic(CHAIN_EVENTS)
    create_by_hand(settings, events, 1, {"retention.ms": "86400000"})
    ensure_topics(settings, [s for s in all_specs(settings) if s.name != events])
    result = doctor(settings, env_of(settings))
    assert result.returncode == 1, result.stdout + result.stderr
    findings = [line for line in result.stdout.splitlines() if "FINDING" in line]
    assert findings == [
        f"  FINDING topic {events}: retention.ms=86400000 but it must be -1 (records could be "
        "lost); operator action: set retention.ms=-1 on it and run `aop replay --all` to check "
        "nothing is missing"
    ]
    with pytest.raises(TopicMismatchError) as caught:
        ensure_topics(settings)  # what every service does at start
    assert str(caught.value) == findings[0].removeprefix("  FINDING ")


def test_replication_below_the_asked_is_caught_and_refused(
    settings_factory: Callable[..., Settings],
) -> None:
    """On the single broker: topics with RF 1 where AOP_KAFKA_REPLICATION_FACTOR asks for 2."""
    settings = settings_factory()
    ensure_topics(settings, all_specs(settings))
    asking = settings_factory({"AOP_KAFKA_REPLICATION_FACTOR": "2"})
    result = doctor(asking, {**env_of(asking), "AOP_KAFKA_REPLICATION_FACTOR": "2"})
    assert result.returncode == 1, result.stdout + result.stderr
    findings = [line for line in result.stdout.splitlines() if "FINDING" in line]
    assert len(findings) == 8  # the log's 6 topics and the fold's 2
    assert all("replication factor 1 is below the asked 2" in line for line in findings)
    with pytest.raises(TopicMismatchError, match="replication factor 1 is below the asked 2"):
        ensure_topics(asking)


@pytest.mark.slow
def test_a_topic_created_with_rf_1_on_a_three_node_cluster_is_caught(
    replicated_kafka: KafkaNodes, settings_factory: Callable[..., Settings]
) -> None:
    """The cluster asks RF 3 and min.insync 2; the events topic was created by hand with RF 1
    (as the runbook's old `rpk topic create -r 1`)."""
    cluster_env = replicated_kafka.env()
    settings = settings_factory(cluster_env)
    events = settings.topic(CHAIN_EVENTS)
    keep = {"retention.ms": "-1", "retention.bytes": "-1", "cleanup.policy": "delete"}
    create_by_hand(settings, events, 1, keep)
    ensure_topics(settings, [s for s in all_specs(settings) if s.name != events])
    result = doctor(settings, {**env_of(settings), **cluster_env})
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.startswith("cluster: 3 broker(s) at ")
    findings = [line for line in result.stdout.splitlines() if "FINDING" in line]
    assert [f.split(": ", 1)[1] for f in findings] == [
        "replication factor 1 is below the asked 3 (AOP_KAFKA_REPLICATION_FACTOR, -1: the "
        "broker's default); operator action: reassign its partitions to more brokers "
        "(kafka-reassign-partitions; Redpanda: rpk topic alter-config --set "
        "replication.factor=N)",
        "min.insync.replicas=2 exceeds its replication factor 1: no write can be "
        "acknowledged; operator action: raise its replication factor, or lower "
        "min.insync.replicas on it",
    ]


@pytest.mark.slow
def test_replication_minus_one_takes_the_brokers_default_on_a_three_node_cluster(
    replicated_kafka: KafkaNodes, settings_factory: Callable[..., Settings]
) -> None:
    """AOP_KAFKA_REPLICATION_FACTOR=-1 (the default): topics get the cluster's
    default.replication.factor (3), and that is what existing topics are checked against."""
    cluster_env = {**replicated_kafka.env(), "AOP_KAFKA_REPLICATION_FACTOR": "-1"}
    settings = settings_factory(cluster_env)
    ensure_topics(settings, all_specs(settings))
    result = doctor(settings, {**env_of(settings), **cluster_env})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "replication factor asked: 3 (broker default)" in result.stdout
    rows = [line.split() for line in result.stdout.splitlines()]
    rf = {row[0]: row[2] for row in rows if row and row[0].startswith(settings.topic_prefix)}
    # the log's six topics and the fold's changelog and leader topic
    assert len(rf) == 8 and set(rf.values()) == {"3"}
