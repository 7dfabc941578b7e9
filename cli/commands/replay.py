"""`aop replay`: fold the log again and compare roots with Postgres and the chain.

Exit codes: 0 every root compared matches (MATCH), 1 a difference (the diff is printed),
2 the replay could not run (bad arguments or settings, broker or database unreachable).
"""

from __future__ import annotations

import argparse
import json
import sys

from aop.cli.help import EPOCH_SETTINGS, OPERATOR_ERROR, help_options
from aop.core.fold_config import FoldConfig
from aop.runtime.logs import configure_logging
from aop.runtime.settings import Settings, load_settings

#: what `aop replay` and `aop parity` read: the fold's settings must be the live fold's.
REPLAY_SETTINGS = (
    *EPOCH_SETTINGS,
    "AOP_KAFKA_BOOTSTRAP",
    "AOP_TOPIC_PREFIX",
    "AOP_DATABASE_URL",
    "AOP_DATABASE_SCHEMA",
    "AOP_RPC_URL",
    "AOP_REPLAY_*",
)
REPLAY_EXITS = {
    0: "every root compared MATCHES",
    1: "a mismatch (the report says where)",
    2: OPERATOR_ERROR + "; broker, database or a required RPC unreachable; log truncated",
}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="rebuild roots from aop.chain.events and compare them byte for byte with "
        "Postgres and the chain (exit 0 MATCH, 1 mismatch, 2 error)",
        **help_options(
            "Reads the channel's partition of aop.chain.events from offset 0 with the "
            "reference fold (the code `aop fold` runs) and compares root, dataset_hash, every "
            "field, every leaf and every tree level with Postgres (AOP_DATABASE_SCHEMA) and, "
            "when the RPC at AOP_RPC_URL answers, with the root stored on-chain.",
            settings=REPLAY_SETTINGS,
            exits=REPLAY_EXITS,
        ),
    )
    parser.add_argument(
        "--channel",
        action="append",
        default=[],
        metavar="NAME",
        help="a channel of AOP_CHANNELS (repeatable; default with --all: every channel)",
    )
    parser.add_argument(
        "--global",
        dest="global_roots",
        action="store_true",
        help="compare the global roots (one per mint; folds every partition) instead of "
        "channels' roots: with --root-seq N or --all",
    )
    parser.add_argument(
        "--attention",
        action="store_true",
        help="compare the channels' attention roots (folded from aop.attention.signals; "
        "--epoch E is then an attention epoch's unix start) instead of their stake-time roots",
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--root-seq", type=int, metavar="N", help="compare root_seq N")
    which.add_argument("--epoch", type=int, metavar="E", help="compare the root of epoch E")
    which.add_argument("--all", action="store_true", help="compare every root")
    add_replay_options(parser)
    parser.add_argument(
        "--no-explain",
        action="store_true",
        help="do not trace differing wallets (a second read of the log)",
    )
    parser.set_defaults(handler=run)


def add_replay_options(parser: argparse.ArgumentParser) -> None:
    """Options every command that replays the log shares (`aop replay`, `aop parity`)."""
    parser.add_argument(
        "--chain",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="compare with the on-chain root account (default: when the RPC answers)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="partitions replayed at once, one process each (default AOP_REPLAY_WORKERS, 1)",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON report on stdout")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    configure_logging(settings.log_level)
    from aop.replay.context import chain_mode, chain_reader, deployment_config, open_store
    from aop.replay.errors import ReplayError
    from aop.replay.progress import progress_for
    from aop.replay.report import render_text, report_json
    from aop.replay.run import channel_targets, resolve_channels, run_replay

    config = deployment_config(settings)
    if args.global_roots:
        if args.attention:
            raise ReplayError("--global includes the attention roots already; drop --attention")
        return _global(args, settings, config)
    specs = resolve_channels(config, args.channel)
    attention = args.attention
    if args.all:
        targets = channel_targets(config, specs, mode="all", attention=attention)
    else:
        if len(specs) != 1:
            raise ReplayError("--root-seq and --epoch need exactly one --channel")
        if args.root_seq is not None:
            seqs = {specs[0].name: [args.root_seq]}
            targets = channel_targets(config, specs, mode="seqs", seqs=seqs, attention=attention)
        else:
            targets = channel_targets(
                config, specs, mode="epoch", epoch=args.epoch, attention=attention
            )
    chain = chain_reader(settings, chain_mode(args.chain))
    try:
        with open_store(settings) as store:
            report = run_replay(
                settings,
                config,
                targets,
                store=store,
                chain=chain,
                progress=progress_for(quiet=args.quiet or args.json),
                explain=not args.no_explain,
                workers=args.workers or settings.replay_workers,
            )
    finally:
        chain.close()
    if args.json:
        json.dump(report_json(report), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(render_text(report))
    return 0 if report.ok else 1


def _global(args: argparse.Namespace, settings: Settings, config: FoldConfig) -> int:
    """`aop replay --global`: the global roots (`--root-seq N` or `--all`)."""
    from aop.replay.context import chain_mode, chain_reader, open_store
    from aop.replay.errors import ReplayError
    from aop.replay.global_roots import global_channel_run, replay_global
    from aop.replay.report import render_text, report_json
    from aop.replay.run import ReplayReport

    if args.channel or args.epoch is not None:
        raise ReplayError("--global takes --root-seq N or --all, not --channel or --epoch")
    seqs = None if args.all else frozenset({args.root_seq})
    chain = chain_reader(settings, chain_mode(args.chain))
    # read before close(): a closed reader is no longer `enabled`
    chain_text = "compared" if chain.enabled else f"skipped ({chain.reason})"
    try:
        with open_store(settings) as store:
            run = replay_global(settings, config, store=store, chain=chain, root_seqs=seqs)
    finally:
        chain.close()
    report = ReplayReport(
        [global_channel_run(run, "all" if seqs is None else "seqs")], chain_text, run.seconds
    )
    if args.json:
        json.dump(report_json(report), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(render_text(report))
    return 0 if report.ok else 1
