"""`aop run`: every service of the pipeline on one machine, supervised."""

from __future__ import annotations

import argparse

from aop.logs import configure_logging
from aop.services import SERVICES, service_specs
from aop.settings import load_settings
from aop.supervisor import Supervisor


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run listener, fold, projector, settlement and API together, restarting any that "
        "exits (with backoff; crash loops are logged and counted); SIGTERM stops them all",
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
    from aop.kafka import ensure_topics
    from aop.metrics import serve_metrics
    from projections.db import upgrade

    names = [n.strip() for n in args.services.split(",") if n.strip()]
    ensure_topics(settings)
    upgrade(settings, "head")
    serve_metrics(settings.metrics_host, settings.metrics_port)  # aop_supervisor_* metrics
    Supervisor(service_specs(names)).run()
    return 0
