"""`aop demo`: the whole pipeline end to end on a simulated chain (see aop.demo)."""

from __future__ import annotations

import argparse
import socket
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

from aop.cli.console import make_console
from aop.cli.demo import DemoOptions, run_demo
from aop.cli.help import OPERATOR_ERROR, help_options
from aop.cli.services import METRICS_PORTS


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the pipeline end to end on a simulated chain running the deployed program, "
        "then print a proof to curl and claim with it",
        **help_options(
            "Migrates a fresh schema, starts a simulated chain running the program as deployed "
            "today (global roots only; its GlobalRootConfig at root_seq 1800) and every "
            "service under the supervisor (topic prefix and schema named after the run; "
            "global-v5 roots published from 1801), shows a live view until --roots global "
            "roots are published, then prints the roots, a wallet's proof from the API, that "
            "wallet's claim with it (aop claim), and the replay that re-verifies the root. "
            "Settings of the run: <workdir>/env. With --keep everything runs until SIGINT or "
            "SIGTERM, then stops cleanly.",
            settings=("AOP_KAFKA_BOOTSTRAP", "AOP_DATABASE_URL", "AOP_SCHEMA_REGISTRY_URL"),
            exits={
                0: "the proof, the claim and the replay check out",
                1: "no proof, the claim failed, or the replay did not MATCH",
                2: OPERATOR_ERROR + "; the API port in use",
            },
        ),
    )
    parser.add_argument("--keep", action="store_true", help="leave everything running at the end")
    parser.add_argument("--budget", type=float, default=150.0, help="seconds to watch (150)")
    parser.add_argument(
        "--roots", type=int, default=3, help="published global roots to wait for (3)"
    )
    parser.add_argument("--rate", type=float, default=400.0, help="chain events per second (400)")
    parser.add_argument("--wallets", type=int, default=3000, help="simulated wallets (3000)")
    parser.add_argument("--api-port", type=int, default=8080, help="API port (8080)")
    parser.add_argument("--workdir", type=Path, default=Path(".local/demo"))
    parser.add_argument(
        "--free-ports",
        action="store_true",
        help="serve the services' /metrics on free ports instead of 9101-9107 (what "
        "Prometheus scrapes), e.g. beside a running pipeline",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    options = DemoOptions(
        keep=args.keep,
        budget_s=args.budget,
        roots=args.roots,
        rate=args.rate,
        wallets=args.wallets,
        api_port=args.api_port,
        workdir=args.workdir,
    )
    if args.free_ports:
        options = replace(options, metrics_ports=_free_ports())
    return run_demo(options, make_console())


def _free_ports() -> dict[str, int]:
    """A free port on 127.0.0.1 for each service of METRICS_PORTS."""
    with ExitStack() as stack:
        sockets = {name: stack.enter_context(socket.socket()) for name in METRICS_PORTS}
        for sock in sockets.values():
            sock.bind(("127.0.0.1", 0))
        return {name: int(sock.getsockname()[1]) for name, sock in sockets.items()}
