"""What an existing topic must be: the rule `ensure_topics` enforces at start and `aop doctor`
reports, on described topics (no broker needed)."""

from __future__ import annotations

from aop.log.inspect import TopicState
from aop.log.kafka import TopicSpec, topic_specs
from aop.log.topics import health_findings, spec_findings
from aop.runtime.settings import load_settings
from aop.streams.fold.topics import fold_topic_specs

SETTINGS = load_settings(
    {
        "AOP_TOPIC_PREFIX": "p.",
        "AOP_CHAIN_PARTITIONS": "6",
        "AOP_KAFKA_REPLICATION_FACTOR": "3",
        "AOP_KAFKA_MIN_INSYNC_REPLICAS": "2",
    }
)
EVENTS, SIGNALS, ROOTS, GLOBAL, SETTLEMENT, DLQ = topic_specs(SETTINGS)
CHANGELOG, LEADER = fold_topic_specs(SETTINGS)
KEEP = {"retention.ms": "-1", "retention.bytes": "-1", "cleanup.policy": "delete"}


def state(partitions: int = 6, rf: int = 3, **configs: str) -> TopicState:
    return TopicState(
        name="p.aop.chain.events",
        partitions=partitions,
        replication_factor=rf,
        under_replicated=0,
        offline=0,
        leaders={},
        configs={"min.insync.replicas": "2", **KEEP, **configs},
    )


def problems(
    spec: TopicSpec = EVENTS,
    topic: TopicState | None = None,
    *,
    replication: int | None = 3,
    min_insync: int | None = 2,
) -> list[str]:
    found = spec_findings(spec, topic or state(), replication=replication, min_insync=min_insync)
    return [f.problem for f in found]


def test_specs_carry_the_replication_settings_and_the_source_of_truth_retention() -> None:
    specs = (EVENTS, SIGNALS, ROOTS, GLOBAL, SETTLEMENT, DLQ, CHANGELOG, LEADER)
    assert [s.name for s in specs] == [
        "p.aop.chain.events",
        "p.aop.attention.signals",
        "p.aop.epoch.roots",
        "p.aop.global.roots",
        "p.aop.settlement",
        "p.aop.dlq",
        "p.aop-fold-fold-state-changelog",
        "p.aop-fold-__assignor-__leader",
    ]
    assert [s.partitions for s in specs] == [
        6,
        6,
        6,
        1,
        1,
        1,
        6,
        1,
    ]
    assert all(s.config["min.insync.replicas"] == "2" for s in specs)
    assert EVENTS.checked == ("retention.ms", "retention.bytes", "cleanup.policy")
    assert SIGNALS.checked == EVENTS.checked  # a source of truth too
    assert CHANGELOG.config["cleanup.policy"] == "compact"
    assert CHANGELOG.checked == ("cleanup.policy",)
    # a purge frees disk by whole segments: 64 MiB ones on the roots topics
    assert [s.config.get("segment.bytes") for s in (EVENTS, ROOTS, GLOBAL)] == [
        None,
        str(64 * 1024 * 1024),
        str(64 * 1024 * 1024),
    ]
    # compaction cleans closed segments only: 16 MiB ones, not the broker's 1 GiB
    assert CHANGELOG.config["segment.bytes"] == str(16 * 1024 * 1024)
    # the listener's transactions span the partitions: an export cuts only between them
    assert [s.transactional for s in (EVENTS, SIGNALS, ROOTS, GLOBAL, SETTLEMENT, DLQ)] == [
        True,
        True,
        False,
        False,
        False,
        True,
    ]


def test_without_min_insync_setting_the_topics_take_the_brokers_default() -> None:
    specs = topic_specs(load_settings({})) + fold_topic_specs(load_settings({}))
    assert all("min.insync.replicas" not in s.config for s in specs)


def test_a_topic_as_specified_has_no_finding() -> None:
    assert problems() == []


def test_another_partition_count_is_a_finding() -> None:
    assert problems(topic=state(partitions=4)) == [
        "has 4 partitions but AOP_CHAIN_PARTITIONS asks for 6"
    ]


def test_replication_below_the_asked_is_a_finding_and_above_is_not() -> None:
    assert problems(topic=state(rf=1)) == [
        "replication factor 1 is below the asked 3 (AOP_KAFKA_REPLICATION_FACTOR, -1: the "
        "broker's default)"
    ]
    assert problems(topic=state(rf=5)) == []
    assert problems(topic=state(rf=1), replication=None) == []  # broker default not reported


def test_min_insync_below_the_asked_is_a_finding_unless_unreported() -> None:
    low = state(**{"min.insync.replicas": "1"})
    assert problems(topic=low) == [
        "min.insync.replicas=1 is below the asked 2 (AOP_KAFKA_MIN_INSYNC_REPLICAS)"
    ]
    assert problems(topic=low, min_insync=None) == []
    redpanda = state()
    redpanda = TopicState(**{**redpanda.__dict__, "configs": dict(KEEP)})
    assert problems(topic=redpanda) == []  # Redpanda does not report it


def test_finite_retention_or_compaction_of_the_source_of_truth_is_a_finding() -> None:
    finite = state(**{"retention.ms": "604800000", "retention.bytes": "1073741824"})
    assert problems(topic=finite) == [
        "retention.ms=604800000 but it must be -1 (records could be lost)",
        "retention.bytes=1073741824 but it must be -1 (records could be lost)",
    ]
    compacted = state(**{"cleanup.policy": "compact"})
    assert problems(topic=compacted) == [
        "cleanup.policy=compact but it must be delete (records could be lost)"
    ]


def test_retention_of_a_derived_topic_is_not_checked() -> None:
    assert problems(ROOTS, state(**{"retention.ms": "604800000"})) == []


def test_a_changelog_that_is_not_compacted_is_a_finding() -> None:
    deleting = state(**{"cleanup.policy": "delete"})
    assert problems(CHANGELOG, deleting) == [
        "cleanup.policy=delete but it must be compact (records could be lost)"
    ]


def test_every_finding_says_what_to_do() -> None:
    findings = spec_findings(EVENTS, state(partitions=2, rf=1), replication=3, min_insync=2)
    assert all(str(f).startswith("topic p.aop.chain.events: ") for f in findings)
    assert all("; operator action: " in str(f) for f in findings)


def test_partitions_offline_or_out_of_sync_are_health_findings() -> None:
    sick = TopicState(
        name="p.aop.dlq",
        partitions=12,
        replication_factor=3,
        under_replicated=4,
        offline=1,
        leaders={},
        configs={},
    )
    assert [f.problem for f in health_findings(sick)] == [
        "1 of 12 partitions have no leader",
        "4 of 12 partitions are under-replicated",
    ]
    assert health_findings(state()) == []
    unwritable = state(rf=1)  # min.insync.replicas 2 (the cluster default) on RF 1
    assert [f.problem for f in health_findings(unwritable)] == [
        "min.insync.replicas=2 exceeds its replication factor 1: no write can be acknowledged"
    ]
