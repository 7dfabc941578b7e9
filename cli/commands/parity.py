"""`aop parity`: replay the newest roots of every channel; metrics and a JSON report.

Runs once (a cron job or systemd timer; see replay/README.md) or, with
`--interval`, forever. Exit codes: 0 every root matches, 1 a mismatch, 2 could not run (the
metrics file then says `aop_parity_last_run_success 0`).

With `--legacy-dsn-file` it compares our ring-v0-legacy attention roots with the legacy
aggregator's instead, once or as the parallel run (`aop.cli.parallel_run`).
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
from aop.replay.legacy_parity import DEFAULT_GRACE_S
from aop.replay.legacy_query import DEFAULT_LEGACY_QUERY
from aop.runtime.errors import AopError
from aop.runtime.logs import configure_logging
from aop.runtime.settings import Settings, load_settings

log = logging.getLogger(__name__)

#: what the daily parity reads besides the replay's settings.
PARITY_SETTINGS = ("AOP_PARITY_ROOTS", "AOP_METRICS_HOST", "AOP_METRICS_PORT")
#: what the legacy comparison reads: which channels' attention roots are ring-v0-legacy.
LEGACY_SETTINGS = (
    "AOP_ATTENTION_ENABLED",
    "AOP_ATTENTION_EPOCH_SECONDS",
    "AOP_ATTENTION_FORMATS",
    "AOP_ATTENTION_FORMAT_DEFAULT",
)
#: options that only mean something with --legacy-dsn-file (attribute -> flag).
LEGACY_ONLY_OPTIONS = {
    "legacy_query": "--legacy-query",
    "from_epoch": "--from",
    "to_epoch": "--to",
    "duration": "--duration",
    "grace": "--grace",
}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "parity",
        help="replay the newest roots of every channel and compare them (daily validation; "
        "exit 0 all match, 1 mismatch, 2 error); with --legacy-dsn-file, the parallel run "
        "against the legacy",
        **help_options(
            "Replays the newest roots of every channel (and the newest global roots) and "
            "compares them with PostgreSQL and the chain: the daily validation. Writes the "
            "aop_parity_* metrics (textfile or served) and a JSON report. With "
            "--legacy-dsn-file it compares our ring-v0-legacy attention roots with the legacy "
            "aggregator's instead, per (channel, epoch), once or every --interval for "
            "--duration (the 24 h parallel run; aop_parity_legacy_* metrics, a report line per "
            "verdict; docs/runbook.md 'Parallel run against the legacy').",
            settings=(*REPLAY_SETTINGS, *LEGACY_SETTINGS, *PARITY_SETTINGS),
            exits={
                0: REPLAY_EXITS[0] + " (legacy: every (channel, epoch) MATCHes)",
                1: REPLAY_EXITS[1] + " (legacy: a MISMATCH or MISSING, or nothing compared)",
                2: REPLAY_EXITS[2]
                + " (aop_parity_last_run_success 0); legacy: a bad DSN file or query, the "
                "legacy database unreachable, or the last round failed",
            },
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
    parser.add_argument(
        "--report",
        type=Path,
        metavar="PATH",
        help="write the JSON report there (with --legacy-dsn-file: append one line per "
        "verdict and the summary)",
    )
    parser.add_argument(
        "--serve-metrics",
        action="store_true",
        help="serve the metrics on AOP_METRICS_HOST:AOP_METRICS_PORT while running",
    )
    parser.add_argument(
        "--interval",
        type=float,
        metavar="SECONDS",
        help="run again every SECONDS until interrupted (exit code of the last run; with "
        "--legacy-dsn-file, until --duration is over)",
    )
    add_replay_options(parser)
    _add_legacy_options(parser)
    parser.set_defaults(handler=run)


def _add_legacy_options(parser: argparse.ArgumentParser) -> None:
    """The comparison with the legacy aggregator (`aop.cli.parallel_run`)."""
    group = parser.add_argument_group(
        "legacy comparison",
        "our ring-v0-legacy attention roots against the legacy aggregator's, per (channel, "
        "epoch): MATCH, MISMATCH, MISSING_OURS, MISSING_LEGACY (or PENDING within --grace); "
        "exit 0 all match, 1 any mismatch or missing, 2 operator error",
    )
    group.add_argument(
        "--legacy-dsn-file",
        type=Path,
        metavar="FILE",
        help="the legacy database's libpq connection string, first line of FILE (mode 600; "
        "never printed); turns on the legacy comparison",
    )
    group.add_argument(
        "--legacy-query",
        metavar="SQL",
        help="the legacy's root of one (channel, epoch), with the named parameters "
        "%%(epoch)s and %%(channel)s; the root as bytea, 64 hex digits or 0x-hex "
        f"(default: {DEFAULT_LEGACY_QUERY.replace('%', '%%')})",
    )
    group.add_argument(
        "--from",
        dest="from_epoch",
        type=int,
        metavar="EPOCH",
        help="first epoch id (unix start; default: our first ring-v0-legacy root)",
    )
    group.add_argument(
        "--to",
        dest="to_epoch",
        type=int,
        metavar="EPOCH",
        help="last epoch id (default: the last one closed on our side)",
    )
    group.add_argument(
        "--duration",
        type=float,
        metavar="SECONDS",
        help="with --interval: the parallel run's length (86400 for 24 h)",
    )
    group.add_argument(
        "--grace",
        type=int,
        metavar="SECONDS",
        help=f"a root one side lacks is PENDING until SECONDS after its epoch ended "
        f"(default {DEFAULT_GRACE_S})",
    )


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    configure_logging(settings.log_level)
    from aop.replay.legacy_metrics import LEGACY_REGISTRY
    from aop.replay.parity import PARITY_REGISTRY

    legacy = args.legacy_dsn_file is not None
    if not legacy:
        for attribute, flag in LEGACY_ONLY_OPTIONS.items():
            if getattr(args, attribute) is not None:
                raise AopError(f"{flag} needs --legacy-dsn-file")
    if args.roots is not None and args.roots < 1:
        raise AopError(f"--roots must be >= 1 (got {args.roots})")
    if args.serve_metrics:
        from prometheus_client import start_http_server

        server, _ = start_http_server(
            settings.metrics_port,
            addr=settings.metrics_host,
            registry=LEGACY_REGISTRY if legacy else PARITY_REGISTRY,
        )
        log.info("parity metrics", extra={"port": server.server_address[1]})
    if legacy:
        from aop.cli.parallel_run import run_legacy

        return run_legacy(args, settings)
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
