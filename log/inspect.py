"""What the cluster holds: topics as the brokers describe them, and consumer groups' lag.

Read-only questions to an admin client, shared by `ensure_topics` (every service at start)
and `aop doctor`. Whether what is found is right is decided in `aop.log.topics`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from confluent_kafka import (
    ConsumerGroupTopicPartitions,
    IsolationLevel,
    KafkaException,
    TopicPartition,
)

# confluent_kafka.admin imports these from its C module without re-exporting them
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    ConfigResource,
    OffsetSpec,
    ResourceType,
)

from aop.runtime.errors import AopError

__all__ = [
    "REPORTED_CONFIGS",
    "GroupLag",
    "TopicState",
    "broker_default",
    "describe_topics",
    "group_lags",
]

#: the topic configurations the pipeline checks and `aop doctor` reports.
REPORTED_CONFIGS = (
    "min.insync.replicas",
    "retention.ms",
    "retention.bytes",
    "cleanup.policy",
    "segment.bytes",
)


@dataclass(frozen=True)
class TopicState:
    """One topic as the brokers describe it.

    Attributes:
        replication_factor: the smallest replica count over its partitions.
        under_replicated: partitions with fewer in-sync replicas than replicas.
        offline: partitions without a leader (neither readable nor writable).
        configs: the `REPORTED_CONFIGS` the broker reported (one it does not know is absent,
            e.g. `min.insync.replicas` on Redpanda).
    """

    name: str
    partitions: int
    replication_factor: int
    under_replicated: int
    offline: int
    leaders: Mapping[int, int]
    configs: Mapping[str, str]


def describe_topics(
    admin: AdminClient, names: Iterable[str], *, timeout: float = 15.0
) -> dict[str, TopicState]:
    """The state of each of `names` that exists (absent ones are left out).

    Raises:
        AopError: the brokers did not answer.
    """
    wanted = list(dict.fromkeys(names))
    try:
        metadata = admin.list_topics(timeout=timeout).topics
        present = [n for n in wanted if n in metadata and metadata[n].error is None]
        resources = [ConfigResource(ResourceType.TOPIC, n) for n in present]
        configs = (
            {r.name: f.result() for r, f in admin.describe_configs(resources).items()}
            if resources
            else {}
        )
    except KafkaException as exc:
        raise AopError(f"cannot describe topics {wanted}: {exc}") from exc
    states = {}
    for name in present:
        parts = metadata[name].partitions.values()
        states[name] = TopicState(
            name=name,
            partitions=len(parts),
            replication_factor=min((len(p.replicas) for p in parts), default=0),
            under_replicated=sum(1 for p in parts if len(p.isrs) < len(p.replicas)),
            offline=sum(1 for p in parts if p.leader < 0),
            leaders={p.id: p.leader for p in parts},
            configs={
                key: entry.value
                for key, entry in configs[name].items()
                if key in REPORTED_CONFIGS and entry.value is not None
            },
        )
    return states


def broker_default(admin: AdminClient, key: str, *, timeout: float = 15.0) -> str | None:
    """A broker's value of configuration `key` (e.g. `default.replication.factor`), or None
    when the broker does not report it.

    Raises:
        AopError: the brokers did not answer.
    """
    try:
        brokers = sorted(admin.list_topics(timeout=timeout).brokers)
        if not brokers:
            return None
        resource = ConfigResource(ResourceType.BROKER, str(brokers[0]))
        entries = admin.describe_configs([resource])[resource].result()
    except KafkaException as exc:
        raise AopError(f"cannot read the brokers' configuration: {exc}") from exc
    entry = entries.get(key)
    return None if entry is None or entry.value is None else str(entry.value)


@dataclass(frozen=True)
class GroupLag:
    """A consumer group's committed position on one topic, against the topic's end."""

    group: str
    topic: str
    partitions: int
    lag: int
    #: partitions of the topic the group has no committed offset for (their lag is not counted).
    uncommitted: int


def group_lags(
    admin: AdminClient, topics: Sequence[str], *, timeout: float = 15.0
) -> list[GroupLag]:
    """Every consumer group's lag on each of `topics` it has committed offsets for; the end of
    a partition is its last stable offset (what read_committed consumers can reach).

    Raises:
        AopError: the brokers did not answer.
    """
    wanted = set(topics)
    try:
        listing = admin.list_consumer_groups(request_timeout=timeout).result()
        groups = sorted(g.group_id for g in listing.valid)
        committed: dict[tuple[str, str], dict[int, int]] = {}
        for group in groups:
            request = [ConsumerGroupTopicPartitions(group)]
            result = admin.list_consumer_group_offsets(request, request_timeout=timeout)
            for tp in result[group].result().topic_partitions:
                if tp.topic in wanted and tp.offset >= 0:
                    committed.setdefault((group, tp.topic), {})[tp.partition] = tp.offset
        metadata = admin.list_topics(timeout=timeout).topics
        ends: dict[str, dict[int, int]] = {}
        for topic in sorted({t for _, t in committed}):
            specs = {
                TopicPartition(topic, p): OffsetSpec.latest()  # type: ignore[no-untyped-call]
                for p in metadata[topic].partitions
            }
            answer = admin.list_offsets(
                specs, isolation_level=IsolationLevel.READ_COMMITTED, request_timeout=timeout
            )
            ends[topic] = {tp.partition: f.result().offset for tp, f in answer.items()}
    except KafkaException as exc:
        raise AopError(f"cannot read the consumer groups' offsets: {exc}") from exc
    return [
        GroupLag(
            group=group,
            topic=topic,
            partitions=len(ends[topic]),
            lag=sum(max(ends[topic][p] - o, 0) for p, o in offsets.items() if p in ends[topic]),
            uncommitted=len(set(ends[topic]) - set(offsets)),
        )
        for (group, topic), offsets in sorted(committed.items())
    ]
