"""`aop chain status`: the root accounts on-chain beside our newest projected and published
roots (`aop.replay.chain_status`), and the first-root settings that continue them."""

from __future__ import annotations

import argparse
import json

from rich.table import Table

from aop.cli.console import make_console, print_json
from aop.cli.help import OPERATOR_ERROR, help_options
from aop.runtime.logs import configure_logging
from aop.runtime.settings import load_settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "chain",
        help="read the on-chain root accounts (channels and the global root) and compare them "
        "with our roots",
        **help_options(
            "What the chain holds, beside what we hold.",
            settings=(),
            exits={0: "done", 2: OPERATOR_ERROR},
        ),
    )
    actions = parser.add_subparsers(dest="chain_action", metavar="ACTION", required=True)
    status = actions.add_parser(
        "status",
        help="per root account: on-chain latest root_seq, our newest projected and published "
        "root, the verdict, and the AOP_*FIRST_ROOT_SEQ values that continue the chain",
        **help_options(
            "Reads, at AOP_COMMITMENT, the mint's GlobalRootConfig and every channel's root "
            "account (ChannelConfigV2; ChannelState for ring-v0), and shows each beside our "
            "newest projected root (PostgreSQL `roots`) and newest published one "
            "(`settlement_outbox`), with a verdict: in_step, behind, ahead, other_root, "
            "no_account, undecodable, or no_roots (nothing projected yet). Then the settings "
            "that continue the on-chain sequences: AOP_GLOBAL_FIRST_ROOT_SEQ (the "
            "GlobalRootConfig's latest_root_seq + 1) and AOP_FIRST_ROOT_SEQ (per channel). "
            "The cutover and rollback steps of docs/runbook.md use it.",
            settings=(
                "AOP_RPC_URL",
                "AOP_COMMITMENT",
                "AOP_PROGRAM_ID",
                "AOP_MINT",
                "AOP_CHANNELS",
                "AOP_CLAIM_FORMAT_DEFAULT",
                "AOP_CLAIM_FORMATS",
                "AOP_SETTLEMENT_TARGET",
                "AOP_DATABASE_URL",
                "AOP_DATABASE_SCHEMA",
                "AOP_REPLAY_RPC_TIMEOUT_S",
            ),
            exits={
                0: "every account is in_step, behind or has no roots yet",
                1: "an account needs an operator: ahead, other_root, no_account or undecodable",
                2: OPERATOR_ERROR + "; the RPC or the database unreachable; schema not migrated",
            },
        ),
    )
    status.add_argument("--json", action="store_true", help="print a JSON document on stdout")
    status.set_defaults(handler=run_status)


def run_status(args: argparse.Namespace) -> int:
    settings = load_settings()
    configure_logging(settings.log_level)
    from sqlalchemy.pool import NullPool

    from aop.projections.db import check_schema_current, engine_for
    from aop.replay.chain import ChainReader
    from aop.replay.chain_status import ATTENTION, chain_status, status_json, suggested_settings
    from aop.replay.errors import ReplayError
    from aop.streams.fold.config import fold_config

    try:
        config = fold_config(settings)
    except ValueError as exc:
        raise ReplayError(f"bad channel settings: {exc}") from exc
    check_schema_current(settings)
    chain = ChainReader(
        settings.rpc_url,
        mode="on",
        commitment=settings.commitment,
        timeout=settings.replay_rpc_timeout_s,
    )
    engine = engine_for(settings, poolclass=NullPool)
    try:
        statuses = chain_status(settings, config, engine, chain)
    finally:
        engine.dispose()
        chain.close()
    if args.json:
        print_json(status_json(statuses))
    else:
        console = make_console(markup=False)
        table = Table(title=f"root accounts on-chain ({settings.commitment}) and ours")
        table.add_column("root account")
        table.add_column("format")
        table.add_column("address", no_wrap=True, min_width=44)
        for column in ("on-chain latest", "ring holds", "projected", "published", "verdict"):
            table.add_column(column)
        for s in statuses:
            latest = "-" if s.chain.latest is None else str(s.chain.latest)
            if not s.chain.exists:
                latest = "no account"
            projected = "-" if s.projected is None else str(s.projected.root_seq)
            published = "-"
            if s.projected is not None and s.projected.published_seq is not None:
                published = str(s.projected.published_seq)
            table.add_row(
                s.name,
                s.format,
                s.account,
                latest,
                ",".join(map(str, s.chain.held)) or "-",
                projected,
                published,
                s.verdict,
            )
        console.print(table)
        for s in statuses:
            console.print(f"{s.name}: {s.verdict}: {s.detail}", soft_wrap=True)
        suggested = suggested_settings(statuses)
        console.print("settings that continue the on-chain sequences (cutover):")
        if "AOP_GLOBAL_FIRST_ROOT_SEQ" in suggested:
            console.print(f"  AOP_GLOBAL_FIRST_ROOT_SEQ={suggested['AOP_GLOBAL_FIRST_ROOT_SEQ']}")
        else:
            console.print("  AOP_GLOBAL_FIRST_ROOT_SEQ: the GlobalRootConfig does not exist")
        first = json.dumps(suggested["AOP_FIRST_ROOT_SEQ"], separators=(",", ":"))
        console.print(f"  AOP_FIRST_ROOT_SEQ='{first}'", soft_wrap=True, highlight=False)
    return 1 if any(s.verdict in ATTENTION for s in statuses) else 0
