"""`aop settle`: publish the outbox's roots on-chain (dry run unless AOP_AUTO_PUBLISH=true)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import signal
from typing import TYPE_CHECKING

from rich.table import Table

from aop.cli.console import make_console, print_json
from aop.cli.help import OPERATOR_ERROR, help_options
from aop.runtime.logs import configure_logging
from aop.runtime.metrics import serve_metrics
from aop.runtime.settings import Settings, load_settings
from aop.runtime.shutdown import arm_shutdown_deadline

if TYPE_CHECKING:
    from solders.keypair import Keypair

    from aop.settlement.outbox import ChannelStanding

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "settle",
        help="publish projected roots on-chain, in order, at most once (settings: "
        "AOP_RPC_URL, AOP_COMMITMENT, AOP_PUBLISHER_KEYPAIR, AOP_AUTO_PUBLISH, AOP_SETTLEMENT_*)",
        **help_options(
            "Publishes the outbox's roots on-chain, per root account in root_seq order, at "
            "most once (it reads the account before sending). Only the formats of "
            "AOP_SETTLEMENT_TARGET are sent: channel (cumulative-v2, ring-v0), global-v4 or "
            "global-v5. A dry run (AOP_AUTO_PUBLISH=false, the default) records what it would "
            "send. One active settler per schema; others wait on its lock. --status and "
            "--release are operator actions that run once and exit.",
            settings=(
                "AOP_RPC_URL",
                "AOP_COMMITMENT",
                "AOP_PUBLISHER_KEYPAIR",
                "AOP_AUTO_PUBLISH",
                "AOP_SETTLEMENT_TARGET",
                "AOP_SETTLEMENT_*",
                "AOP_GLOBAL_PROTOCOL_STATE",
                "AOP_DATABASE_URL",
                "AOP_DATABASE_SCHEMA",
                "AOP_KAFKA_BOOTSTRAP",
                "AOP_TOPIC_PREFIX",
                "AOP_METRICS_HOST",
                "AOP_METRICS_PORT",
            ),
            exits={
                0: "stopped by SIGTERM or SIGINT; --once, --release done; --status: no "
                "channel of the target is stopped",
                1: "--status: a channel of the target is stopped",
                2: OPERATOR_ERROR + " (the keypair file: unset, missing or readable by others)",
            },
        ),
    )
    parser.add_argument(
        "--once", action="store_true", help="one pass over the outbox, then exit (no loop)"
    )
    parser.add_argument(
        "--release",
        metavar="CHANNEL",
        help="operator action: put a stopped channel (failed / sequence_mismatch) back to "
        "pending, then exit",
    )
    parser.add_argument(
        "--status",
        action="store_true",
        help="print every root account's settlement state (stopped, why, since when; the next "
        "root to go; outside the target) and exit",
    )
    parser.add_argument("--json", action="store_true", help="with --status: JSON on stdout")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    configure_logging(settings.log_level)
    from aop.projections.db import check_schema_current

    if args.status:
        check_schema_current(settings)
        standings = asyncio.run(_standings(settings))
        _print_standings(settings, standings, as_json=args.json)
        return 1 if any(s.state == "stopped" for s in standings) else 0
    if args.release:
        check_schema_current(settings)
        released = asyncio.run(_release(settings, args.release))
        print(f"released {released} entr{'y' if released == 1 else 'ies'} of {args.release}")
        return 0
    from aop.log.kafka import ensure_topics
    from aop.settlement.keypair import load_publisher_keypair

    keypair = load_publisher_keypair(settings.publisher_keypair)  # refuse to start first
    check_schema_current(settings)
    ensure_topics(settings)
    serve_metrics(settings.metrics_host, settings.metrics_port)
    log.info(
        "settlement starting",
        extra={
            "publisher": str(keypair.pubkey()),
            "rpc_url": settings.rpc_url,
            "commitment": settings.commitment,
            "auto_publish": settings.auto_publish,
        },
    )
    asyncio.run(_serve(settings, keypair, once=args.once))
    log.info("settlement stopped")
    return 0


async def _standings(settings: Settings) -> list[ChannelStanding]:
    from aop.settlement.outbox import SettlementStore

    store = await SettlementStore.open(settings)
    try:
        return await store.standings()
    finally:
        await store.close()


def _print_standings(
    settings: Settings, standings: list[ChannelStanding], *, as_json: bool
) -> None:
    if as_json:
        print_json(
            {
                "kind": "aop.settle.status",
                "target": settings.settlement_target,
                "auto_publish": settings.auto_publish,
                "channels": [
                    {
                        **dataclasses.asdict(s),
                        "channel": s.channel or "global",
                        "state": s.state,
                        "stopped_since": s.stopped_since.isoformat() if s.stopped_since else None,
                    }
                    for s in standings
                ],
            }
        )
        return
    mode = "publishing" if settings.auto_publish else "dry run"
    console = make_console(markup=False)
    table = Table(
        title=f"settlement: target {settings.settlement_target} ({mode}), schema "
        f"{settings.database_schema}"
    )
    for column in (
        "root account",
        "format",
        "state",
        "published (last)",
        "next root_seq",
        "stopped since",
        "why",
    ):
        table.add_column(column)
    for s in standings:
        last = "-" if s.last_published_seq is None else str(s.last_published_seq)
        next_root = "-" if s.next_seq is None else f"{s.next_seq} ({s.next_status})"
        since = "-"
        why = ""
        if s.stopped_seq is not None:
            since = s.stopped_since.strftime("%Y-%m-%d %H:%M:%S %Z") if s.stopped_since else "?"
            why = f"root_seq {s.stopped_seq} {s.stopped_status}: {s.stopped_detail or ''}"
        table.add_row(
            s.channel or "global",
            s.format,
            s.state,
            f"{s.published} ({last})",
            next_root,
            since,
            why,
        )
    console.print(table)
    stopped = [s.channel or "global" for s in standings if s.state == "stopped"]
    if stopped:
        console.print(
            "stopped: " + ", ".join(stopped) + "; operator action: compare with the chain "
            "(`aop chain status`), fix the cause, then `aop settle --release CHANNEL`"
        )


async def _release(settings: Settings, channel: str) -> int:
    from aop.settlement.outbox import SettlementStore

    store = await SettlementStore.open(settings)
    try:
        return await store.release(channel)
    finally:
        await store.close()


async def _serve(settings: Settings, keypair: Keypair, *, once: bool) -> None:
    """Run until SIGTERM or SIGINT (or one pass with `once`)."""
    from confluent_kafka import Producer

    from aop.log.kafka import producer_config
    from aop.settlement.outbox import SettlementStore
    from aop.settlement.rpc import SolanaRpc
    from aop.settlement.settler import Settler

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        stop.set()
        arm_shutdown_deadline(settings.shutdown_timeout_s, "settlement")

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal)
    store = await SettlementStore.open(settings)
    rpc = SolanaRpc(
        settings.rpc_url,
        commitment=settings.commitment,
        timeout=settings.settlement_rpc_timeout_s,
    )
    producer = Producer(producer_config(settings))
    settler = Settler(settings, store, rpc, keypair, producer=producer)
    try:
        if once:
            await settler.run_once()
        else:
            await settler.run(stop)
    finally:
        await rpc.close()
        await store.close()
        await asyncio.to_thread(producer.flush, 10)
