"""`log_bounds` while a partition's leader is SIGKILLed, on a real three-node cluster.

Found by the day run: a parity turn that captured its bounds while a broker was down read
nothing of the partitions that broker led (the admin client answered offset -1001, "invalid",
without an error, and the bounds clamped it to 0: an empty partition), so the global replay
combined nothing and reported the newest stored global roots `not_replayed` (exit 1).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import NewTopic

from aop.log.clients import connected_admin
from aop.log.reader import LogBounds, log_bounds
from aop.runtime.settings import Settings
from tests.support.kafka_nodes import KafkaNodes

pytestmark = pytest.mark.slow

PARTITIONS = 3
RECORDS_PER_PARTITION = 10


@pytest.fixture
def cluster_settings(
    replicated_kafka: KafkaNodes, settings_factory: Callable[..., Settings]
) -> Settings:
    return settings_factory(replicated_kafka.env())


@pytest.fixture
def filled_topic(cluster_settings: Settings) -> str:
    """A topic (RF 3) with RECORDS_PER_PARTITION acknowledged records in each partition."""
    topic = cluster_settings.topic("bounds.failover")
    admin = connected_admin(cluster_settings)
    admin.create_topics([NewTopic(topic, PARTITIONS, 3)])[topic].result()
    producer = Producer({"bootstrap.servers": cluster_settings.kafka_bootstrap, "acks": "all"})
    for partition in range(PARTITIONS):
        for n in range(RECORDS_PER_PARTITION):
            producer.produce(topic, f"{partition}:{n}".encode(), partition=partition)
    assert producer.flush(30) == 0
    return topic


@pytest.fixture
def killed_leader(
    replicated_kafka: KafkaNodes, cluster_settings: Settings, filled_topic: str
) -> Iterator[int]:
    """SIGKILL the leader of partition 0 of the topic; start it again after the test."""
    admin = connected_admin(cluster_settings)
    node = admin.list_topics(filled_topic, timeout=10).topics[filled_topic].partitions[0].leader
    replicated_kafka.kill(node)
    try:
        yield node
    finally:
        replicated_kafka.start(node)


def test_bounds_read_while_the_leader_is_killed_are_the_records_written(
    cluster_settings: Settings, filled_topic: str, killed_leader: int
) -> None:
    """Asked right after the kill, the bounds wait for the new leader instead of calling the
    leaderless partitions empty: every partition holds the records written (offsets 0-9)."""
    bounds = log_bounds(cluster_settings, filled_topic, range(PARTITIONS))
    assert bounds == {p: LogBounds(0, RECORDS_PER_PARTITION) for p in range(PARTITIONS)}
