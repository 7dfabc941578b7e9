"""`aop settle`: publish the outbox's roots on-chain (dry run unless AOP_AUTO_PUBLISH=true)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from typing import TYPE_CHECKING

from aop.runtime.logs import configure_logging
from aop.runtime.metrics import serve_metrics
from aop.runtime.settings import Settings, load_settings

if TYPE_CHECKING:
    from solders.keypair import Keypair

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "settle",
        help="publish projected roots on-chain, in order, at most once (settings: "
        "AOP_RPC_URL, AOP_COMMITMENT, AOP_PUBLISHER_KEYPAIR, AOP_AUTO_PUBLISH, AOP_SETTLEMENT_*)",
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
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    configure_logging(settings.log_level)
    from aop.projections.db import check_schema_current

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
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
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
