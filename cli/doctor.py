"""`aop doctor`: check a deployment's Kafka cluster with the services' own credentials.

1. Connect as the services do (`connected_admin`): a refused login or an untrusted CA is
   reported as the services would report it.
2. Describe every topic the pipeline needs (the log's and the fold's Faust topics): partitions,
   replication factor, min.insync.replicas, retention, cleanup policy, and partitions without
   a leader or out of sync.
3. Compare each with its spec (`aop.log.topics.spec_findings`, the rule `ensure_topics`
   enforces at start) and the cluster's health (`health_findings`); a topic not created yet
   is a finding too.
4. Read every consumer group's lag on those topics (a lag above `--max-lag` is a finding).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from aop.log.inspect import GroupLag, TopicState, describe_topics, group_lags
from aop.log.kafka import TopicSpec, connected_admin, topic_specs
from aop.log.topics import Finding, asked_replication, health_findings, spec_findings
from aop.runtime.settings import Settings
from aop.streams.fold.topics import fold_topic_specs

__all__ = ["DoctorReport", "diagnose", "render"]


@dataclass
class DoctorReport:
    """What `diagnose` found; `findings` empty means healthy."""

    brokers: int
    replication: int | None
    min_insync: int | None
    specs: list[TopicSpec]
    topics: dict[str, TopicState]
    lags: list[GroupLag]
    findings: list[Finding] = field(default_factory=list)


def diagnose(settings: Settings, *, max_lag: int | None = None) -> DoctorReport:
    """Steps 1-4 of the module docstring.

    Raises:
        SettingsError: a bad Kafka setting.
        AopError: the brokers refuse the credentials or do not answer.
    """
    admin = connected_admin(settings)
    brokers = len(admin.list_topics(timeout=15).brokers)
    specs = [*topic_specs(settings), *fold_topic_specs(settings)]
    topics = describe_topics(admin, [spec.name for spec in specs])
    replication = asked_replication(admin, settings)
    report = DoctorReport(
        brokers=brokers,
        replication=replication,
        min_insync=settings.kafka_min_insync_replicas,
        specs=specs,
        topics=topics,
        lags=group_lags(admin, [spec.name for spec in specs]),
    )
    for spec in specs:
        state = topics.get(spec.name)
        if state is None:
            report.findings.append(
                Finding(
                    spec.name,
                    "does not exist",
                    "start the services (each creates the topics it uses), or create it as "
                    "the runbook says",
                )
            )
            continue
        report.findings += spec_findings(
            spec, state, replication=replication, min_insync=settings.kafka_min_insync_replicas
        )
        report.findings += health_findings(state)
    if max_lag is not None:
        report.findings += [
            Finding(
                lag.topic,
                f"consumer group {lag.group} lags {lag.lag:,} records",
                "see the runbook's lag alerts (AopFoldLagGrowing, AopProjectorLagGrowing)",
            )
            for lag in report.lags
            if lag.lag > max_lag
        ]
    return report


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    cells = [list(map(str, header)), *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]


def render(report: DoctorReport, settings: Settings) -> str:
    """The report as text: the cluster, a table of topics, one of groups, then findings."""
    asked = (
        "broker default"
        if settings.kafka_replication_factor < 0
        else "AOP_KAFKA_REPLICATION_FACTOR"
    )
    lines = [
        f"cluster: {report.brokers} broker(s) at {settings.kafka_bootstrap} "
        f"({settings.kafka_security_protocol}); replication factor asked: "
        f"{report.replication if report.replication is not None else 'unknown'} ({asked}); "
        f"min.insync.replicas asked: {report.min_insync or 'broker default'}",
        "",
    ]
    rows: list[list[object]] = []
    for spec in report.specs:
        state = report.topics.get(spec.name)
        if state is None:
            rows.append([spec.name, "-", "-", "-", "-", "-", "-", "missing"])
            continue
        configs = state.configs
        rows.append(
            [
                spec.name,
                state.partitions,
                state.replication_factor,
                configs.get("min.insync.replicas", "n/a"),
                configs.get("retention.ms", "n/a"),
                configs.get("retention.bytes", "n/a"),
                configs.get("cleanup.policy", "n/a"),
                f"{state.under_replicated} under-replicated, {state.offline} offline",
            ]
        )
    header = [
        "topic",
        "partitions",
        "RF",
        "min.insync",
        "retention.ms",
        "retention.bytes",
        "cleanup",
        "partitions' health",
    ]
    lines += _table(header, rows)
    lines.append("")
    if report.lags:
        lines += _table(
            ["consumer group", "topic", "partitions", "lag", "without commit"],
            [[g.group, g.topic, g.partitions, g.lag, g.uncommitted] for g in report.lags],
        )
    else:
        lines.append("consumer groups: none has committed offsets on these topics")
    lines.append("")
    if report.findings:
        lines.append(f"{len(report.findings)} finding(s):")
        lines += [f"  FINDING {finding}" for finding in report.findings]
    else:
        lines.append("no findings")
    return "\n".join(lines)
