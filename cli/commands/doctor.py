"""`aop doctor`: connect with the configured credentials and check every topic and group.

Exit codes: 0 healthy, 1 a finding (each printed on a `FINDING` line), 2 could not check
(bad settings, brokers refusing the credentials or not answering).
"""

from __future__ import annotations

import argparse

from aop.cli.help import KAFKA_SETTINGS, OPERATOR_ERROR, help_options
from aop.runtime.logs import configure_logging
from aop.runtime.settings import load_settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "doctor",
        help="check the Kafka cluster as the services see it: every topic's partitions, "
        "replication, min.insync, retention and cleanup policy, and consumer group lag "
        "(exit 0 healthy, 1 findings, 2 error)",
        **help_options(
            "Connects as the services do (the same credentials) and checks every topic of the "
            "pipeline and of the fold against its spec (partitions, replication factor, "
            "min.insync.replicas, retention and cleanup policy), the cluster's health "
            "(partitions without a leader or under-replicated) and consumer group lag. Each "
            "finding is one FINDING line with the operator action.",
            settings=(
                *KAFKA_SETTINGS,
                "AOP_CHAIN_PARTITIONS",
                "AOP_KAFKA_REPLICATION_FACTOR",
                "AOP_KAFKA_MIN_INSYNC_REPLICAS",
            ),
            exits={0: "healthy", 1: "a finding (each on a FINDING line)", 2: OPERATOR_ERROR},
        ),
    )
    parser.add_argument(
        "--max-lag",
        type=int,
        default=None,
        metavar="N",
        help="a consumer group more than N records behind on a topic is a finding "
        "(default: lag is reported only)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    configure_logging(settings.log_level)
    from aop.cli.doctor import diagnose, render

    report = diagnose(settings, max_lag=args.max_lag)
    print(render(report, settings))
    return 1 if report.findings else 0
