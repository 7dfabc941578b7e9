"""The log's topics: what each must be, and `ensure_topics`, which every service runs at start.

A topic the pipeline needs is created with `AOP_KAFKA_REPLICATION_FACTOR` (-1: the broker's
default) and, when set, `AOP_KAFKA_MIN_INSYNC_REPLICAS`. A topic that exists already is
checked against its spec (`spec_findings`), and a service refuses to start on one that could
silently expire, compact away or lose what it holds, with an "operator action:" message.
`aop doctor` reports the same findings, plus the cluster's health (`health_findings`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from confluent_kafka import KafkaException

# confluent_kafka.admin imports NewTopic from its C module without re-exporting it
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from aop.log.clients import connected_admin
from aop.log.inspect import TopicState, broker_default, describe_topics
from aop.runtime.errors import AopError
from aop.runtime.settings import Settings

__all__ = [
    "ATTENTION_SIGNALS",
    "CHAIN_EVENTS",
    "DLQ",
    "EPOCH_ROOTS",
    "GLOBAL_ROOTS",
    "SETTLEMENT",
    "Finding",
    "TopicMismatchError",
    "TopicSpec",
    "asked_replication",
    "ensure_topics",
    "health_findings",
    "replicated",
    "spec_findings",
    "topic_specs",
]

CHAIN_EVENTS = "aop.chain.events"
EPOCH_ROOTS = "aop.epoch.roots"
SETTLEMENT = "aop.settlement"
DLQ = "aop.dlq"
#: one global root per mint and chain epoch (the combiner's output and checkpoint), keyed by
#: mint: one partition keeps a mint's roots in order.
GLOBAL_ROOTS = "aop.global.roots"
#: attention signals and user -> wallet bindings from `aop ingest` (SignalBatch records, keyed
#: by channel, co-partitioned with aop.chain.events): a source of truth like the chain events.
ATTENTION_SIGNALS = "aop.attention.signals"

#: nothing on these topics expires or is compacted away (the roots topics are purged only by
#: `projections.purge`, below what every reader has passed: never by time).
_KEEP_FOREVER = {"retention.ms": "-1", "retention.bytes": "-1", "cleanup.policy": "delete"}
#: the source of truth: a topic that could lose records is refused.
_SOURCE_OF_TRUTH = ("retention.ms", "retention.bytes", "cleanup.policy")


class TopicMismatchError(AopError):
    """Raised when an existing topic differs from what the pipeline needs of it."""


@dataclass(frozen=True)
class TopicSpec:
    """A topic the pipeline needs. Every spec is part of the log `aop log export` backs up.

    Attributes:
        config: the configuration it is created with.
        checked: keys of `config` an existing topic must hold exactly (e.g. the infinite
            retention of the source of truth, the compaction of a changelog).
        transactional: the topic is written in Kafka transactions that span several
            partitions (the listener's): an export cuts it only where no such transaction is
            half visible.
        purgeable: the topic is derived (the roots topics): records below the offset every
            reader has durably passed and no recovery needs are deleted (`log.purge_point`,
            `projections.purge`), so its log start offset moves; an export starts at it. The
            source of truth (chain events, signals), settlement and the DLQ never are: they
            keep infinite retention and `delete_below` refuses them.
    """

    name: str
    partitions: int
    config: dict[str, str]
    checked: tuple[str, ...] = field(default=())
    transactional: bool = False
    purgeable: bool = False


@dataclass(frozen=True)
class Finding:
    """Something wrong with a topic: what, and what an operator does about it."""

    topic: str
    problem: str
    action: str

    def __str__(self) -> str:
        return f"topic {self.topic}: {self.problem}; operator action: {self.action}"


#: the segment size of the purged roots topics. A purge moves a partition's log start; the
#: broker frees disk only by deleting whole segments below it, and with the broker's 1 GiB
#: default a roots partition never closed a segment in the day run: its log start moved and
#: its disk did not shrink (RELIABILITY.md "Day"). 64 MiB segments free the purged records'
#: disk within a segment's worth and the broker's retention check (5 min by default).
PURGED_SEGMENT_BYTES = 64 * 1024 * 1024


def replicated(settings: Settings, config: dict[str, str]) -> dict[str, str]:
    """`config` plus `min.insync.replicas` when AOP_KAFKA_MIN_INSYNC_REPLICAS is set."""
    if settings.kafka_min_insync_replicas is None:
        return dict(config)
    return {**config, "min.insync.replicas": str(settings.kafka_min_insync_replicas)}


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """Every topic of the pipeline, named under the settings' topic prefix.

    `aop.epoch.roots` has as many partitions as `aop.chain.events`, so a channel's roots land in
    the partition number of its events (co-partitioned, handy for one worker per partition).
    """
    parts = settings.chain_partitions
    keep = replicated(settings, _KEEP_FOREVER)
    large = {**keep, "max.message.bytes": "4194304"}
    purged = {**large, "segment.bytes": str(PURGED_SEGMENT_BYTES)}
    return [
        TopicSpec(settings.topic(CHAIN_EVENTS), parts, large, _SOURCE_OF_TRUTH, transactional=True),
        TopicSpec(
            settings.topic(ATTENTION_SIGNALS), parts, large, _SOURCE_OF_TRUTH, transactional=True
        ),
        TopicSpec(settings.topic(EPOCH_ROOTS), parts, purged, purgeable=True),
        TopicSpec(settings.topic(GLOBAL_ROOTS), 1, purged, purgeable=True),
        TopicSpec(settings.topic(SETTLEMENT), 1, keep),
        TopicSpec(settings.topic(DLQ), 1, large, transactional=True),
    ]


def asked_replication(admin: AdminClient, settings: Settings) -> int | None:
    """The replication factor topics must have at least: AOP_KAFKA_REPLICATION_FACTOR, or for
    -1 the broker's `default.replication.factor` (None when the broker does not report it)."""
    if settings.kafka_replication_factor > 0:
        return settings.kafka_replication_factor
    value = broker_default(admin, "default.replication.factor")
    return int(value) if value is not None and value.lstrip("-").isdigit() else None


def spec_findings(
    spec: TopicSpec, state: TopicState, *, replication: int | None, min_insync: int | None
) -> list[Finding]:
    """How an existing topic falls short of its spec: partitions, replication factor,
    `min.insync.replicas` below the asked, and the `checked` configurations."""
    found = []
    if state.partitions != spec.partitions:
        found.append(
            Finding(
                spec.name,
                f"has {state.partitions} partitions but AOP_CHAIN_PARTITIONS asks for "
                f"{spec.partitions}",
                "use a new topic prefix or restore the setting",
            )
        )
    if replication is not None and state.replication_factor < replication:
        found.append(
            Finding(
                spec.name,
                f"replication factor {state.replication_factor} is below the asked "
                f"{replication} (AOP_KAFKA_REPLICATION_FACTOR, -1: the broker's default)",
                "reassign its partitions to more brokers (kafka-reassign-partitions; Redpanda: "
                "rpk topic alter-config --set replication.factor=N)",
            )
        )
    have_isr = state.configs.get("min.insync.replicas")
    if min_insync is not None and have_isr is not None and int(have_isr) < min_insync:
        found.append(
            Finding(
                spec.name,
                f"min.insync.replicas={have_isr} is below the asked {min_insync} "
                "(AOP_KAFKA_MIN_INSYNC_REPLICAS)",
                f"kafka-configs --alter --add-config min.insync.replicas={min_insync}",
            )
        )
    for key in spec.checked:
        want, have = spec.config[key], state.configs.get(key)
        if have is not None and have != want:
            found.append(
                Finding(
                    spec.name,
                    f"{key}={have} but it must be {want} (records could be lost)",
                    f"set {key}={want} on it and run `aop replay --all` to check nothing is "
                    "missing",
                )
            )
    return found


def health_findings(state: TopicState) -> list[Finding]:
    """Partitions without a leader or with replicas out of sync (a broker down or behind),
    and a `min.insync.replicas` above the replication factor (no write can be acknowledged)."""
    found = []
    min_isr = state.configs.get("min.insync.replicas")
    if min_isr is not None and int(min_isr) > state.replication_factor:
        found.append(
            Finding(
                state.name,
                f"min.insync.replicas={min_isr} exceeds its replication factor "
                f"{state.replication_factor}: no write can be acknowledged",
                "raise its replication factor, or lower min.insync.replicas on it",
            )
        )
    if state.offline:
        found.append(
            Finding(
                state.name,
                f"{state.offline} of {state.partitions} partitions have no leader",
                "start the brokers holding their replicas",
            )
        )
    if state.under_replicated:
        found.append(
            Finding(
                state.name,
                f"{state.under_replicated} of {state.partitions} partitions are under-replicated",
                "bring the brokers that hold their replicas back, or reassign the partitions",
            )
        )
    return found


def ensure_topics(settings: Settings, specs: Sequence[TopicSpec] | None = None) -> None:
    """Create the missing topics; refuse to run against one that differs from its spec.

    1. Connect with the configured credentials (`connected_admin`).
    2. Describe the topics that exist and check each against its spec (`spec_findings`).
    3. Create the missing ones (a concurrent creation by another service is fine).

    Raises:
        SettingsError: a bad Kafka setting.
        KafkaConnectError: the brokers refuse the credentials or do not answer.
        TopicMismatchError: an existing topic differs (partition count, replication factor,
            min.insync.replicas, or the retention of the source of truth): operator action.
        AopError: the broker refused to create a topic.
    """
    admin = connected_admin(settings)
    specs = topic_specs(settings) if specs is None else list(specs)
    existing = describe_topics(admin, [spec.name for spec in specs])
    if existing:
        replication = asked_replication(admin, settings)
        found = [
            finding
            for spec in specs
            if spec.name in existing
            for finding in spec_findings(
                spec,
                existing[spec.name],
                replication=replication,
                min_insync=settings.kafka_min_insync_replicas,
            )
        ]
        if found:
            raise TopicMismatchError(" | ".join(str(f) for f in found))
    missing = [
        NewTopic(
            spec.name,
            spec.partitions,
            replication_factor=settings.kafka_replication_factor,
            config=spec.config,
        )
        for spec in specs
        if spec.name not in existing
    ]
    if not missing:
        return
    for name, future in admin.create_topics(missing, operation_timeout=30).items():
        try:
            future.result()
        except KafkaException as exc:
            if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":
                raise AopError(f"cannot create topic {name}: {exc}") from exc
