"""`aop doctor`: connect with the configured credentials and check every topic and group.

Exit codes: 0 healthy, 1 a finding (each printed on a `FINDING` line), 2 could not check
(bad settings, brokers refusing the credentials or not answering).
"""

from __future__ import annotations

import argparse

from aop.runtime.logs import configure_logging
from aop.runtime.settings import load_settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "doctor",
        help="check the Kafka cluster as the services see it: every topic's partitions, "
        "replication, min.insync, retention and cleanup policy, and consumer group lag "
        "(exit 0 healthy, 1 findings, 2 error)",
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
