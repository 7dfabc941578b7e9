"""`aop fold`: fold aop.chain.events into per-epoch, per-channel Merkle roots (a Faust worker)."""

from __future__ import annotations

import argparse

from aop.cli.help import EPOCH_SETTINGS, SERVICE_EXITS, help_options
from aop.runtime.logs import configure_logging
from aop.runtime.settings import load_settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "fold",
        help="fold aop.chain.events into epoch roots on aop.epoch.roots (Faust worker)",
        **help_options(
            "A Faust worker: folds the SlotBatches of aop.chain.events into per-channel state "
            "(stake-time attention) and, when a partition's watermark closes an epoch, writes "
            "each channel's EpochRoot and LeafChunks to aop.epoch.roots. More workers share "
            "the partitions (same AOP_FOLD_APP_ID, own AOP_FOLD_DATADIR each).",
            settings=(
                "AOP_FOLD_*",
                *EPOCH_SETTINGS,
                "AOP_KAFKA_BOOTSTRAP",
                "AOP_TOPIC_PREFIX",
                "AOP_METRICS_HOST",
                "AOP_METRICS_PORT",
            ),
            exits=SERVICE_EXITS,
        ),
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    configure_logging(settings.log_level)
    from aop.streams.fold.worker import run_fold

    return run_fold(settings)
