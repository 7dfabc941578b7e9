"""`aop simulate-collectors`: attention signals and bindings for the simulated chain's
channels and wallets, posted to `aop ingest` (`aop.cli.collectors`), so a demo's claims get
an attention bonus.

With the chain of `aop simulate-chain --seed S --wallets N --channels C`, run it with the same
seed, wallet count and channels and a token of AOP_INGEST_TOKENS_FILE (`aop ingest token new
--source simulated --tokens-file ... --output sim.token`). It runs until SIGTERM/SIGINT or
`--duration`, then prints what it posted as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
from dataclasses import asdict
from pathlib import Path

from aop.cli.help import help_options
from aop.runtime.errors import AopError
from aop.runtime.logs import configure_logging
from aop.runtime.secrets import read_secret_file
from aop.runtime.settings import load_settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "simulate-collectors",
        help="post simulated attention signals and bindings of the simulated chain's users "
        "to `aop ingest` (settings: AOP_INGEST_HOST/PORT, AOP_CHANNELS, AOP_SIM_SEED, "
        "AOP_SIM_WALLETS)",
        **help_options(
            "Posts simulated attention signals and bindings for the simulated chain's wallets "
            "and channels (same --seed, --wallets and --channels as aop simulate-chain) to aop "
            "ingest, at --rate signals/s, until SIGTERM/SIGINT or --duration; then prints what "
            "it posted as one JSON line. For demos and tests, never a public cluster.",
            settings=(
                "AOP_INGEST_HOST",
                "AOP_INGEST_PORT",
                "AOP_CHANNELS",
                "AOP_SIM_SEED",
                "AOP_SIM_WALLETS",
            ),
            exits={0: "stopped or --duration reached", 2: "bad options or token file"},
        ),
    )
    parser.add_argument(
        "--token-file", type=Path, required=True, help="the source's bearer token (mode 600)"
    )
    parser.add_argument("--url", help="the ingest (default http://AOP_INGEST_HOST:AOP_INGEST_PORT)")
    parser.add_argument("--seed", type=int, help="the chain's seed (default AOP_SIM_SEED)")
    parser.add_argument("--wallets", type=int, help="its wallets (default AOP_SIM_WALLETS)")
    parser.add_argument("--channels", help="comma-separated (default AOP_CHANNELS)")
    parser.add_argument("--rate", type=float, default=50.0, help="signals per second (50)")
    parser.add_argument("--batch", type=int, default=100, help="items per request (100)")
    parser.add_argument(
        "--duration", type=float, default=0.0, help="seconds to run (0: until stopped)"
    )
    parser.add_argument("--no-bindings", action="store_true", help="post no bindings")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from aop.cli.collectors import CollectorOptions, run_collectors

    settings = load_settings()
    configure_logging(settings.log_level)
    channels = (
        [c.strip() for c in args.channels.split(",") if c.strip()]
        if args.channels is not None
        else list(settings.channels)
    )
    options = CollectorOptions(
        url=args.url or f"http://{settings.ingest_host}:{settings.ingest_port}",
        token=read_secret_file(args.token_file, "--token-file"),
        seed=args.seed if args.seed is not None else settings.sim_seed,
        wallets=args.wallets if args.wallets is not None else settings.sim_wallets,
        channels=channels,
        rate=args.rate,
        batch=args.batch,
        duration_s=args.duration,
        bindings=not args.no_bindings,
    )
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        report = run_collectors(options, stop)
    except ValueError as exc:
        raise AopError(f"bad collector options: {exc}") from exc
    print(json.dumps(asdict(report)), flush=True)
    return 0
