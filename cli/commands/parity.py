"""`aop parity`: replay the newest roots of every channel; metrics and a JSON report.

Runs once (a cron job or systemd timer; see replay/README.md) or, with
`--interval`, forever. Exit codes: 0 every root matches, 1 a mismatch, 2 could not run (the
metrics file then says `aop_parity_last_run_success 0`).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from aop.cli.commands.replay import REPLAY_EXITS, REPLAY_SETTINGS, add_replay_options
from aop.cli.help import help_options
from aop.runtime.errors import AopError
from aop.runtime.logs import configure_logging
from aop.runtime.settings import Settings, load_settings

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "parity",
        help="replay the newest roots of every channel and compare them (daily validation; "
        "exit 0 all match, 1 mismatch, 2 error)",
        **help_options(
            "Replays the newest roots of every channel (and the newest global roots) and "
            "compares them with PostgreSQL and the chain: the daily validation. Writes the "
            "aop_parity_* metrics (textfile or served) and a JSON report.",
            settings=(*REPLAY_SETTINGS, "AOP_PARITY_ROOTS", "AOP_METRICS_HOST", "AOP_METRICS_PORT"),
            exits={**REPLAY_EXITS, 2: REPLAY_EXITS[2] + " (aop_parity_last_run_success 0)"},
        ),
    )
    parser.add_argument(
        "--roots",
        type=int,
        default=None,
        metavar="N",
        help="newest roots per channel (default AOP_PARITY_ROOTS, 4)",
    )
    parser.add_argument(
        "--channel", action="append", default=[], metavar="NAME", help="only these channels"
    )
    parser.add_argument(
        "--metrics-file",
        type=Path,
        metavar="PATH",
        help="write the aop_parity_* metrics there in Prometheus text format (atomically; "
        "for node_exporter's textfile collector, name it *.prom)",
    )
    parser.add_argument("--report", type=Path, metavar="PATH", help="write the JSON report there")
    parser.add_argument(
        "--serve-metrics",
        action="store_true",
        help="serve the metrics on AOP_METRICS_HOST:AOP_METRICS_PORT while running",
    )
    parser.add_argument(
        "--interval",
        type=float,
        metavar="SECONDS",
        help="run again every SECONDS until interrupted (exit code of the last run)",
    )
    add_replay_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    configure_logging(settings.log_level)
    from aop.replay.parity import PARITY_REGISTRY

    if args.roots is not None and args.roots < 1:
        raise AopError(f"--roots must be >= 1 (got {args.roots})")
    if args.serve_metrics:
        from prometheus_client import start_http_server

        server, _ = start_http_server(
            settings.metrics_port, addr=settings.metrics_host, registry=PARITY_REGISTRY
        )
        log.info("parity metrics", extra={"port": server.server_address[1]})
    while True:
        code = _once(args, settings)
        if args.interval is None:
            return code
        time.sleep(args.interval)


def _once(args: argparse.Namespace, settings: Settings) -> int:
    from aop.replay.context import chain_mode, chain_reader, deployment_config, open_store
    from aop.replay.parity import (
        parity_json,
        record_failure,
        record_metrics,
        run_parity,
        write_json,
        write_metrics_file,
    )
    from aop.replay.progress import progress_for
    from aop.replay.report import render_text

    started = time.time()
    try:
        config = deployment_config(settings)
        chain = chain_reader(settings, chain_mode(args.chain))
        try:
            with open_store(settings) as store:
                result = run_parity(
                    settings,
                    config,
                    store=store,
                    chain=chain,
                    roots=args.roots or settings.parity_roots,
                    channels=args.channel,
                    progress=progress_for(quiet=args.quiet or args.json),
                    workers=args.workers or settings.replay_workers,
                )
        finally:
            chain.close()
    except AopError:
        record_failure(started)
        if args.metrics_file is not None:
            write_metrics_file(args.metrics_file)
        if args.interval is None:
            raise
        log.exception("parity run failed")
        return 2
    record_metrics(result)
    if args.metrics_file is not None:
        write_metrics_file(args.metrics_file)
    document = parity_json(result)
    if args.report is not None:
        write_json(args.report, document)
    if args.json:
        json.dump(document, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(render_text(result.report))
        for skip in result.skipped:
            print(f"skipped {skip['channel']} ({skip['channel_config']}): {skip['reason']}")
    return 0 if result.ok else 1
