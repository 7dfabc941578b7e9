"""`aop rebuild`: rebuild every projection from the log into a fresh schema and switch to it.

Exit codes: 0 switched (or, with --no-switch, built and verified), 1 refused (the rebuilt
schema does not match the fold, or the old one matches the log but differs), 2 could not run.
The protocol and the switch mechanism: replay/rebuild.py and replay/README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from aop.cli.commands.replay import REPLAY_SETTINGS
from aop.cli.help import OPERATOR_ERROR, help_options
from aop.runtime.errors import AopError
from aop.runtime.logs import configure_logging
from aop.runtime.settings import Settings, load_settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "rebuild",
        help="rebuild the projections from the log into a fresh schema, verify it against the "
        "fold, and switch AOP_DATABASE_SCHEMA to it by renaming (no reader downtime)",
        **help_options(
            "Builds every projection from the log into <schema>_rb_<ts>, verifies each root "
            "against the fold's replay, compares with the current schema and switches by "
            "renaming (<schema> -> <schema>_old_<ts>) in one transaction. --drop-old lists "
            "and drops the schemas earlier rebuilds left. Protocol: replay/README.md.",
            settings=(
                *REPLAY_SETTINGS,
                "AOP_REBUILD_CATCHUP_TIMEOUT_S",
                "AOP_REBUILD_LOCK_TIMEOUT_S",
            ),
            exits={
                0: "switched (--no-switch: built and verified; --drop-old: dropped or "
                "nothing to drop)",
                1: "refused: the rebuilt schema does not match the fold, or the old one "
                "matches the log but differs (the report says why; --force switches anyway); "
                "--drop-old: the operator answered no",
                2: OPERATOR_ERROR + "; broker or database unreachable; log truncated",
            },
        ),
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
    parser.add_argument(
        "--drop-old",
        action="store_true",
        help="instead of rebuilding: list the schemas earlier rebuilds and set-asides left "
        "(<schema>_old_/_rb_/_aside_<ts>) and drop them, asking first (not while a rebuild runs)",
    )
    parser.add_argument("--yes", action="store_true", help="with --drop-old: drop without asking")
    parser.add_argument("--json", action="store_true", help="print a JSON report on stdout")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    configure_logging(settings.log_level)
    if args.drop_old:
        return drop_old(settings, yes=args.yes, as_json=args.json)
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


def drop_old(settings: Settings, *, yes: bool, as_json: bool) -> int:
    """`--drop-old`: list the leftover schemas, ask (unless `yes`), drop them."""
    from aop.projections.schemas import drop_schemas, leftover_schemas

    found = leftover_schemas(settings)
    if as_json and not yes:
        raise AopError("--drop-old --json needs --yes (no question can be asked)")
    if not as_json:
        if not found:
            print(f"no leftover schema of {settings.database_schema}")
            return 0
        print(f"leftover schemas of {settings.database_schema}:")
        for s in found:
            print(f"  {s.name}  ({s.kind}, {s.tables} tables, {s.bytes / 1e6:,.1f} MB)")
    if found and not yes:
        print(f"drop these {len(found)} schema(s)? [y/N] ", end="", flush=True)
        line = sys.stdin.readline()  # a terminal, or a pipe (`yes | aop rebuild --drop-old`)
        if not line:
            raise AopError("no answer on standard input: add --yes to drop them")
        answer = line.strip().lower()
        if answer not in ("y", "yes"):
            print("nothing dropped")
            return 1
    drop_schemas(settings, [s.name for s in found])
    if as_json:
        json.dump(
            {"kind": "aop.rebuild.drop_old", "dropped": [dataclasses.asdict(s) for s in found]},
            sys.stdout,
            indent=2,
        )
        sys.stdout.write("\n")
    else:
        print(f"dropped {len(found)} schema(s)")
    return 0
