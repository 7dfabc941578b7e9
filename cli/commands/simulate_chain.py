"""`aop simulate-chain`: a local Solana JSON-RPC + websocket endpoint running the program.

It serves the standard methods the pipeline uses (and `sim_*` control methods), produces
slots on a timer with a seeded workload of staking, claims and admin events, and runs until
SIGINT or SIGTERM. Program id and mint come from the settings; the publisher of
`AOP_PUBLISHER_KEYPAIR` (if set) becomes the protocol's publisher, so `aop settle` can publish.
`AOP_SIM_PROGRAM` (or `--program`) picks the program version: `v0.2.2` or `deployed` (global
roots, its GlobalRootConfig at `AOP_SIM_GLOBAL_LATEST_ROOT_SEQ`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from solders.pubkey import Pubkey

from aop.cli.help import SERVICE_EXITS, help_options
from aop.runtime.errors import AopError
from aop.runtime.logs import configure_logging
from aop.runtime.settings import Settings, load_settings

if TYPE_CHECKING:
    from aop.simchain.config import SimConfig


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "simulate-chain",
        help="serve a simulated Solana RPC + websocket endpoint running the program "
        "(settings: AOP_PROGRAM_ID, AOP_MINT, AOP_RPC_URL, AOP_WS_URL, AOP_SIM_*)",
        **help_options(
            "For tests and the demo only: a simulated Solana cluster (JSON-RPC on AOP_RPC_URL's "
            "port, pubsub on AOP_WS_URL's) that runs the attention-oracle program's rules and "
            "a staking workload. It never talks to a real cluster.",
            settings=("AOP_PROGRAM_ID", "AOP_MINT", "AOP_RPC_URL", "AOP_WS_URL", "AOP_SIM_*"),
            exits=SERVICE_EXITS,
        ),
    )
    parser.add_argument("--host", default=None, help="listen address (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=None, help="HTTP port, 0 = free (default: AOP_RPC_URL's)"
    )
    parser.add_argument(
        "--ws-port", type=int, default=None, help="websocket port, 0 = free (default: AOP_WS_URL's)"
    )
    parser.add_argument(
        "--program",
        choices=("v0.2.2", "deployed"),
        default=None,
        help="program version to run (default: AOP_SIM_PROGRAM, v0.2.2)",
    )
    parser.add_argument("--rate", type=float, default=None, help="workload events per second")
    parser.add_argument(
        "--channels",
        default=None,
        help="staking channels: a count, or comma-separated names (default: AOP_CHANNELS, else "
        "AOP_SIM_CHANNEL_COUNT generated names)",
    )
    parser.add_argument(
        "--claim-channels",
        default=None,
        help="comma-separated self-published claim channels ('' for none; default: "
        "AOP_SIM_CLAIM_CHANNELS, else sim:claims with v0.2.2 and none with deployed)",
    )
    parser.add_argument("--wallets", type=int, default=None, help="wallets funded at genesis")
    parser.add_argument(
        "--slot-ms", type=float, default=None, help="ms per slot (0: only sim_advance)"
    )
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--finality-depth", type=int, default=None, help="finalized = tip - depth")
    parser.add_argument(
        "--retain-slots",
        type=int,
        default=None,
        help="sealed slots kept; older ones answer as pruned (default: AOP_SIM_RETAIN_SLOTS, "
        "else 150 s of slots)",
    )
    parser.add_argument(
        "--max-wallets",
        type=int,
        default=None,
        help="most workload wallets at once (default: AOP_SIM_MAX_WALLETS, else the larger of "
        "--wallets and 4096)",
    )
    parser.add_argument(
        "--wall-clock",
        action="store_true",
        help="block times follow the wall clock (genesis now, --slot-ms a slot); default: from "
        "2026-01-01, 400 ms a slot whatever --slot-ms is",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the URLs as one JSON line (for scripts)"
    )
    parser.set_defaults(handler=run)


def _port(url: str, flag: int | None) -> int:
    if flag is not None:
        return flag
    return urlparse(url).port or 0


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


def _publisher(settings: Settings) -> Pubkey | None:
    """The publisher's public key, read by the one keypair rule (mode 600, Solana CLI JSON)."""
    if settings.publisher_keypair is None:
        return None
    from aop.settlement.keypair import load_publisher_keypair

    return load_publisher_keypair(Path(settings.publisher_keypair)).pubkey()


def build_config(args: argparse.Namespace, settings: Settings) -> SimConfig:
    """The SimConfig of the command line over the settings."""
    from aop.simchain.config import SimConfig, default_channel_names

    if args.channels is not None:
        text = args.channels.strip()
        channels = default_channel_names(int(text)) if text.isdigit() else _names(text)
    elif settings.channels:
        channels = tuple(settings.channels)
    else:
        channels = default_channel_names(settings.sim_channel_count)
    program = args.program if args.program is not None else settings.sim_program
    if args.claim_channels is not None:
        claim = args.claim_channels
    elif "sim_claim_channels" in settings.model_fields_set or program == "v0.2.2":
        claim = settings.sim_claim_channels
    else:
        claim = ""  # the deployed program has no per-channel claims
    slot_ms = args.slot_ms if args.slot_ms is not None else settings.sim_slot_ms
    try:
        config = SimConfig(
            program=program,
            global_latest_root_seq=settings.sim_global_latest_root_seq,
            program_id=Pubkey.from_string(settings.program_id),
            mint=Pubkey.from_string(settings.mint),
            seed=args.seed if args.seed is not None else settings.sim_seed,
            slot_ms=slot_ms,
            finality_depth=args.finality_depth
            if args.finality_depth is not None
            else settings.sim_finality_depth,
            channels=channels,
            claim_channels=_names(claim),
            wallets=args.wallets if args.wallets is not None else settings.sim_wallets,
            rate=args.rate if args.rate is not None else settings.sim_rate,
            retain_slots=args.retain_slots
            if args.retain_slots is not None
            else settings.sim_retain_slots,
            max_wallets=args.max_wallets
            if args.max_wallets is not None
            else settings.sim_max_wallets,
        )
    except ValueError as exc:
        raise AopError(
            f"bad simulated chain options (AOP_SIM_* settings or their flags): {exc}"
        ) from exc
    if not args.wall_clock:
        return config  # block times from 2026-01-01, 400 ms a slot (SimConfig's defaults)
    return replace(config, genesis_time=int(time.time()), block_ms=max(1, round(slot_ms)))


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    configure_logging(settings.log_level)
    config = build_config(args, settings)
    publisher = _publisher(settings)
    asyncio.run(
        _serve(
            config,
            host=args.host or "127.0.0.1",
            port=_port(settings.rpc_url, args.port),
            ws_port=_port(settings.ws_url, args.ws_port),
            publisher=publisher,
            as_json=args.json,
        )
    )
    return 0


async def _serve(
    config: SimConfig,
    *,
    host: str,
    port: int,
    ws_port: int,
    publisher: Pubkey | None,
    as_json: bool,
) -> None:
    """Serve until SIGTERM or SIGINT."""
    from aop.simchain.server import SimChainServer

    server = SimChainServer(config, host=host)
    if publisher is not None:
        server.chain.setup_protocol(publisher=publisher, at_slot=config.first_slot)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with server.serve(port, ws_port) as sim:
            if as_json:
                print(json.dumps({"http_url": sim.http_url, "ws_url": sim.ws_url}), flush=True)
            else:
                print(f"simulated chain: rpc {sim.http_url}  websocket {sim.ws_url}", flush=True)
                channels = ", ".join(config.channels)
                print(
                    f"program {config.program_id} ({config.program})  mint {config.mint}",
                    flush=True,
                )
                print(f"staking channels {channels}", flush=True)
            await stop.wait()
    except OSError as exc:
        raise AopError(
            f"cannot listen on {host}:{port}/{ws_port}: {exc}. "
            "Operator action: pick free ports (--port/--ws-port, 0 = any)"
        ) from exc
    sys.stdout.flush()
