"""`aop listen`: watch the program over Solana JSON-RPC and append its events to the log."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from typing import TYPE_CHECKING

from aop.cli.help import SERVICE_EXITS, help_options
from aop.runtime.logs import configure_logging
from aop.runtime.metrics import serve_metrics
from aop.runtime.settings import load_settings
from aop.runtime.shutdown import arm_shutdown_deadline

if TYPE_CHECKING:
    from aop.streams.listener import Listener

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "listen",
        help="append the program's events to aop.chain.events (settings: AOP_RPC_URL, "
        "AOP_WS_URL, AOP_PROGRAM_ID, AOP_COMMITMENT, AOP_LISTENER_*)",
        **help_options(
            "Watches the program over Solana JSON-RPC (websocket logs, backfilled with "
            "getSignaturesForAddress/getTransaction/getBlock) and appends its events to "
            "aop.chain.events as SlotBatch records, one per partition per slot range, empty "
            "ones included (the watermarks that close epochs). Exactly one listener per topic "
            "prefix: a second one fences the first.",
            settings=(
                "AOP_RPC_URL",
                "AOP_WS_URL",
                "AOP_PROGRAM_ID",
                "AOP_COMMITMENT",
                "AOP_KAFKA_BOOTSTRAP",
                "AOP_TOPIC_PREFIX",
                "AOP_CHAIN_PARTITIONS",
                "AOP_LISTENER_*",
                "AOP_AUDIT_DIR",
                "AOP_AUDIT_MAX_BYTES",
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
    logging.getLogger("httpx2").setLevel(logging.WARNING)  # one INFO line per RPC call
    from aop.streams.listener import Listener  # heavy imports only for this command

    serve_metrics(settings.metrics_host, settings.metrics_port)
    listener = Listener(settings)
    log.info(
        "listener starting",
        extra={
            "program_id": settings.program_id,
            "rpc_url": settings.rpc_url,
            "ws_url": settings.ws_url,
            "commitment": settings.commitment,
            "partitions": settings.chain_partitions,
        },
    )
    asyncio.run(_serve(listener, settings.shutdown_timeout_s))
    return 0


async def _serve(listener: Listener, shutdown_timeout_s: float) -> None:
    """Run until SIGTERM or SIGINT, then let the listener commit and stop (within
    AOP_SHUTDOWN_TIMEOUT_S: `runtime.shutdown`)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        stop.set()
        arm_shutdown_deadline(shutdown_timeout_s, "listener")

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal)
    await listener.run(stop)
