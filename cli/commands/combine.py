"""`aop combine`: every channel's roots -> one global root per mint and chain epoch."""

from __future__ import annotations

import argparse

from aop.cli.help import SERVICE_EXITS, help_options
from aop.runtime.logs import configure_logging
from aop.runtime.metrics import serve_metrics
from aop.runtime.settings import load_settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "combine",
        help="combine the channel roots of aop.epoch.roots into global roots on "
        "aop.global.roots (settings: AOP_SETTLEMENT_TARGET, AOP_GLOBAL_FIRST_ROOT_SEQ, "
        "AOP_GLOBAL_PROTOCOL_STATE, AOP_COMBINER_*)",
        **help_options(
            "Reads aop.epoch.roots and writes, once every partition has closed a chain "
            "epoch, the global root of that epoch (global-v5, or global-v4 when "
            "AOP_SETTLEMENT_TARGET=global-v4) in one Kafka transaction. Several instances may "
            "run: one holds the lease and combines, the others wait.",
            settings=(
                "AOP_SETTLEMENT_TARGET",
                "AOP_GLOBAL_FIRST_ROOT_SEQ",
                "AOP_GLOBAL_PROTOCOL_STATE",
                "AOP_COMBINER_*",
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
    from aop.streams.combiner import run_combiner

    serve_metrics(settings.metrics_host, settings.metrics_port)
    return run_combiner(settings)
