"""`aop demo`: the whole pipeline end to end on a simulated chain (see aop.demo)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from aop.cli.demo import DemoOptions, run_demo


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "demo", help="run the pipeline end to end on a simulated chain, then print a proof to curl"
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
