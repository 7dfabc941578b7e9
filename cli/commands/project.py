"""`aop project`: aop.epoch.roots (+ claims on aop.chain.events) -> PostgreSQL."""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from aop.cli.help import SERVICE_EXITS, help_options
from aop.runtime.logs import configure_logging
from aop.runtime.metrics import serve_metrics
from aop.runtime.settings import load_settings
from aop.runtime.shutdown import arm_shutdown_deadline

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "project",
        help="verify roots from aop.epoch.roots and write them to PostgreSQL (settings: "
        "AOP_DATABASE_URL, AOP_DATABASE_SCHEMA, AOP_PROJECTION_*)",
        **help_options(
            "Reads aop.epoch.roots (and aop.global.roots), rebuilds each root's tree from its "
            "leaves, and writes roots, leaves, tree levels and the settlement outbox to "
            "PostgreSQL in one transaction with the log offsets; claims on aop.chain.events "
            "raise the claimed totals. A root that does not verify goes to aop.dlq.",
            settings=(
                "AOP_DATABASE_URL",
                "AOP_DATABASE_SCHEMA",
                "AOP_PROJECTION_*",
                "AOP_KAFKA_BOOTSTRAP",
                "AOP_TOPIC_PREFIX",
                "AOP_METRICS_HOST",
                "AOP_METRICS_PORT",
            ),
            exits=SERVICE_EXITS,
        ),
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    configure_logging(settings.log_level)
    from aop.log.kafka import ensure_topics
    from aop.projections.db import check_schema_current, engine_for
    from aop.projections.projector import Projector

    check_schema_current(settings)
    ensure_topics(settings)
    serve_metrics(settings.metrics_host, settings.metrics_port)
    stop = threading.Event()

    def on_signal(*_args: object) -> None:
        stop.set()
        arm_shutdown_deadline(settings.shutdown_timeout_s, "projector")

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    engine = engine_for(settings, pool_size=2)
    projector = Projector(settings, engine)
    log.info(
        "projector starting",
        extra={"schema": settings.database_schema, "topic_prefix": settings.topic_prefix},
    )
    try:
        projector.run(stop)
    finally:
        engine.dispose()
    log.info("projector stopped")
    return 0
