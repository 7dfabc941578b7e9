"""`aop rebuild`: rebuild every projection from the log into a fresh schema and switch to it.

Exit codes: 0 switched (or, with --no-switch, built and verified), 1 refused (the rebuilt
schema does not match the fold, or the old one matches the log but differs), 2 could not run.
The protocol and the switch mechanism: replay/rebuild.py and replay/README.md.
"""

from __future__ import annotations

import argparse
import json
import sys

from aop.runtime.logs import configure_logging
from aop.runtime.settings import load_settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "rebuild",
        help="rebuild the projections from the log into a fresh schema, verify it against the "
        "fold, and switch AOP_DATABASE_SCHEMA to it by renaming (no reader downtime)",
    )
    parser.add_argument(
        "--no-switch",
        action="store_true",
        help="build and verify only; leave <schema>_rb_<ts> for inspection",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="switch even when the checks refuse (the report still says why)",
    )
    parser.add_argument(
        "--settlement-from",
        choices=("auto", "old", "log"),
        default="auto",
        help="settlement state: copied from the old schema (auto when readable) or rebuilt "
        "from the results on aop.settlement",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON report on stdout")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    configure_logging(settings.log_level)
    from aop.replay.context import deployment_config
    from aop.replay.progress import progress_for
    from aop.replay.rebuild import rebuild
    from aop.replay.rebuild_report import rebuild_json, render_rebuild

    config = deployment_config(settings)
    report = rebuild(
        settings,
        config,
        switch=not args.no_switch,
        force=args.force,
        settlement_from=args.settlement_from,
        progress=progress_for(quiet=args.quiet or args.json),
    )
    if args.json:
        json.dump(rebuild_json(report), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(render_rebuild(report))
    return 0 if report.ok else 1
