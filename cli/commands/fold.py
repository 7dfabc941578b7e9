"""`aop fold`: fold aop.chain.events into per-epoch, per-channel Merkle roots (a Faust worker)."""

from __future__ import annotations

import argparse

from aop.runtime.logs import configure_logging
from aop.runtime.settings import load_settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "fold", help="fold aop.chain.events into epoch roots on aop.epoch.roots (Faust worker)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    configure_logging(settings.log_level)
    from aop.streams.fold.worker import run_fold

    return run_fold(settings)
