"""The `aop` command: parses arguments, builds settings, runs one sub-command."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any

from aop.runtime.errors import AopError
from aop.runtime.version import git_sha, version

#: sub-command modules under `aop.commands`, each with `register(subparsers)`.
COMMANDS = (
    "tree",
    "demo",
    "chain",
    "dlq",
    "run",
    "listen",
    "db",
    "project",
    "fold",
    "combine",
    "simulate_chain",
    "settle",
    "api",
    "ingest",
    "simulate_collectors",
    "replay",
    "rebuild",
    "parity",
    "log",
    "doctor",
    "claim",
)


class _VersionAction(argparse.Action):
    """`aop --version`: the version and git commit, looked up only when asked."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print the version and git commit")

    def __call__(self, parser: argparse.ArgumentParser, *_args: Any) -> None:
        print(f"aop {version()} (git {git_sha()})")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aop", description="Attention Oracle Pipeline: log -> Merkle roots -> Solana."
    )
    parser.add_argument("--version", action=_VersionAction)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"aop.cli.commands.{name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run `aop`; returns the process exit code (2 for an operator-facing error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
    except AopError as exc:
        print(f"aop {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
