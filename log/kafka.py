"""The log's topics and the Kafka client configurations every service shares."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaException

# confluent_kafka.admin imports NewTopic from its C module without re-exporting it
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from aop.runtime.errors import AopError
from aop.runtime.settings import Settings

__all__ = [
    "CHAIN_EVENTS",
    "DLQ",
    "EPOCH_ROOTS",
    "GLOBAL_ROOTS",
    "SETTLEMENT",
    "TopicSpec",
    "consumer_config",
    "ensure_topics",
    "producer_config",
    "topic_specs",
]

CHAIN_EVENTS = "aop.chain.events"
EPOCH_ROOTS = "aop.epoch.roots"
SETTLEMENT = "aop.settlement"
DLQ = "aop.dlq"
#: one global root per mint and chain epoch (the combiner's output and checkpoint), keyed by
#: mint: one partition keeps a mint's roots in order.
GLOBAL_ROOTS = "aop.global.roots"

#: the log is the source of truth: nothing on it expires or is compacted away.
_KEEP_FOREVER = {"retention.ms": "-1", "retention.bytes": "-1", "cleanup.policy": "delete"}


@dataclass(frozen=True)
class TopicSpec:
    """A topic of the pipeline. Every spec is part of the log `aop log export` backs up.

    `transactional` marks a topic written in Kafka transactions that span several partitions
    (the listener's): an export cuts it only where no such transaction is half visible.
    """

    name: str
    partitions: int
    config: dict[str, str]
    transactional: bool = False


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """Every topic of the pipeline, named under the settings' topic prefix.

    `aop.epoch.roots` has as many partitions as `aop.chain.events`, so a channel's roots land in
    the partition number of its events (co-partitioned, handy for one worker per partition).
    """
    parts = settings.chain_partitions
    large = {**_KEEP_FOREVER, "max.message.bytes": "4194304"}
    return [
        TopicSpec(settings.topic(CHAIN_EVENTS), parts, large, transactional=True),
        TopicSpec(settings.topic(EPOCH_ROOTS), parts, large),
        TopicSpec(settings.topic(GLOBAL_ROOTS), 1, large),
        TopicSpec(settings.topic(SETTLEMENT), 1, dict(_KEEP_FOREVER)),
        TopicSpec(settings.topic(DLQ), 1, large, transactional=True),
    ]


def ensure_topics(settings: Settings, specs: list[TopicSpec] | None = None) -> None:
    """Create the missing topics; refuse to run against one with a different partition count.

    Raises:
        AopError: the broker refused, or an existing topic's partition count differs (routing
            by partition would silently change: operator action needed).
    """
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    specs = topic_specs(settings) if specs is None else specs
    existing = admin.list_topics(timeout=10).topics
    missing = []
    for spec in specs:
        if spec.name in existing:
            have = len(existing[spec.name].partitions)
            if have != spec.partitions:
                raise AopError(
                    f"topic {spec.name} has {have} partitions but AOP_CHAIN_PARTITIONS asks for "
                    f"{spec.partitions}; operator action: use a new topic prefix or restore "
                    "the setting"
                )
        else:
            missing.append(NewTopic(spec.name, spec.partitions, 1, config=spec.config))
    if not missing:
        return
    for name, future in admin.create_topics(missing, operation_timeout=30).items():
        try:
            future.result()
        except KafkaException as exc:
            if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":
                raise AopError(f"cannot create topic {name}: {exc}") from exc


def producer_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    """An idempotent producer: retries never duplicate or reorder within a partition."""
    return {
        "bootstrap.servers": settings.kafka_bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "compression.type": "lz4",
        "message.max.bytes": 4194304,
        **extra,
    }


def consumer_config(settings: Settings, group_id: str, **extra: Any) -> dict[str, Any]:
    """A consumer that commits only what the caller says it has durably handled."""
    return {
        "bootstrap.servers": settings.kafka_bootstrap,
        "group.id": group_id,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "fetch.max.bytes": 16777216,
        "max.partition.fetch.bytes": 4194304,
        **extra,
    }
