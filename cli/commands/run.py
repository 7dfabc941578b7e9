"""`aop run`: every service of the pipeline on one machine, supervised."""

from __future__ import annotations

import argparse

from aop.cli.help import help_options
from aop.cli.services import SERVICES, service_specs
from aop.cli.supervisor import Supervisor
from aop.runtime.logs import configure_logging
from aop.runtime.settings import load_settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run listener, fold, combiner, projector, settlement, API and ingest together, "
        "restarting any that exits (with backoff; crash loops are logged and counted); "
        "SIGTERM stops them all",
        **help_options(
            "Checks the settings, creates the topics, migrates the schema, serves the "
            "supervisor's metrics on AOP_METRICS_PORT, then runs each service as its own "
            "`aop <command>` child (metrics ports 9101-9104, 9107 and 9108, the API on "
            "AOP_API_PORT), restarting any that exits. SIGTERM or SIGINT stops every child "
            "(SIGTERM, then SIGKILL after 15 s).",
            settings=("every AOP_* setting of the services it runs", "AOP_METRICS_PORT"),
            exits={
                0: "stopped by SIGTERM or SIGINT",
                2: "bad settings (the message names "
                "the AOP_* variable), broker or database unreachable at start",
            },
        ),
    )
    parser.add_argument(
        "--services",
        default=",".join(SERVICES),
        help=f"comma-separated subset of {','.join(SERVICES)} (default: all)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings()  # refuse bad settings here, before any child starts
    configure_logging(settings.log_level)
    from aop.log.kafka import ensure_topics
    from aop.projections.db import upgrade
    from aop.runtime.metrics import serve_metrics

    names = [n.strip() for n in args.services.split(",") if n.strip()]
    ensure_topics(settings)
    upgrade(settings, "head")
    serve_metrics(settings.metrics_host, settings.metrics_port)  # aop_supervisor_* metrics
    Supervisor(service_specs(names)).run()
    return 0
