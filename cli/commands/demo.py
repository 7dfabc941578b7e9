"""`aop demo`: the whole pipeline end to end on a simulated chain (see aop.demo)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from aop.cli.demo import DemoOptions, run_demo
from aop.cli.help import OPERATOR_ERROR, help_options


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the pipeline end to end on a simulated chain, then print a proof to curl",
        **help_options(
            "Migrates a fresh schema, starts a simulated chain and every service under the "
            "supervisor (topic prefix and schema named after the run), shows a live view until "
            "each channel has --roots roots, then prints a summary, a proof from the API and "
            "the replay that re-verifies it. Settings of the run: <workdir>/env. With --keep "
            "everything runs until SIGINT or SIGTERM, then stops cleanly.",
            settings=("AOP_KAFKA_BOOTSTRAP", "AOP_DATABASE_URL", "AOP_SCHEMA_REGISTRY_URL"),
            exits={
                0: "the proof and its replay check out",
                1: "no proof, or the replay did not MATCH",
                2: OPERATOR_ERROR + "; the API port in use",
            },
        ),
    )
    parser.add_argument("--keep", action="store_true", help="leave everything running at the end")
    parser.add_argument("--budget", type=float, default=150.0, help="seconds to watch (150)")
    parser.add_argument("--roots", type=int, default=3, help="roots per channel to wait for (3)")
    parser.add_argument("--rate", type=float, default=400.0, help="chain events per second (400)")
    parser.add_argument("--wallets", type=int, default=3000, help="simulated wallets (3000)")
    parser.add_argument("--api-port", type=int, default=8080, help="API port (8080)")
    parser.add_argument("--workdir", type=Path, default=Path(".local/demo"))
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    options = DemoOptions(
        keep=args.keep,
        budget_s=args.budget,
        roots=args.roots,
        rate=args.rate,
        wallets=args.wallets,
        api_port=args.api_port,
        workdir=args.workdir,
    )
    console = Console()
    if not console.is_terminal:  # piped or logged: wide enough that hashes are not cut
        console = Console(width=160)
    return run_demo(options, console)
