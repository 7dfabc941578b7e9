"""The whole pipeline, live, for tests that need every service running at once.

A simulated chain (`aop simulate-chain` as a child process) and every `aop run` service
(listener, fold, projector, settlement in dry run, API) under the `Supervisor`, on free
ports, in a topic prefix and database schema of their own, as `aop demo` runs them. Used by
the observability check (a short run until a root is projected) and the soak test (minutes
at a steady load).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg import sql
from solders.keypair import Keypair

from aop.cli.services import METRICS_PORTS, SERVICES
from aop.cli.supervisor import ServiceSpec, Supervisor
from aop.settlement.keypair import write_keypair
from aop.simchain.process import SimChainProcess, spawn_simchain
from tests.conftest import libpq_url, new_topic_prefix

__all__ = [
    "AOP",
    "LivePipeline",
    "free_port_block",
    "free_ports",
    "fresh_schema",
    "http_get",
    "live_pipeline",
    "pipeline_env",
    "service_env",
]

AOP = (sys.executable, "-m", "aop.cli")


def free_ports(count: int) -> list[int]:
    """`count` distinct TCP ports free on 127.0.0.1 right now."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


def free_port_block(count: int) -> int:
    """The first of `count` consecutive TCP ports free on 127.0.0.1 right now (a broker takes
    its port and the next for its controller; a cluster of N nodes a block of 2N)."""
    for _ in range(100):
        first = free_ports(1)[0]
        with ExitStack() as stack:
            try:
                for port in range(first + 1, first + count):
                    stack.enter_context(socket.socket()).bind(("127.0.0.1", port))
            except OSError:
                continue
        return first
    raise RuntimeError(f"no {count} consecutive free ports found on 127.0.0.1")


def http_get(url: str, **params: Any) -> httpx.Response | None:
    """GET `url`; None when the server does not answer (not up yet, or gone)."""
    try:
        return httpx.get(url, params=params, timeout=5)
    except httpx.HTTPError:
        return None


@contextmanager
def fresh_schema(database_url: str) -> Iterator[str]:
    """A new, empty database schema, dropped with everything in it on exit."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield schema
    finally:
        with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


@dataclass
class LivePipeline:
    """The running chain and services. `env` holds every setting the services run with
    (chain URLs included), so `aop replay`, `aop parity`, … can be run against them."""

    env: dict[str, str]
    ports: dict[str, int]
    sim: SimChainProcess
    supervisor: Supervisor

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.ports['api']}"

    def metrics_url(self, service: str) -> str:
        """A service's /metrics (the API serves it on its own port)."""
        return f"http://127.0.0.1:{self.ports[service]}/metrics"

    def aop(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        """`aop <args>` with the pipeline's settings; output captured."""
        return subprocess.run(
            [*AOP, *args],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def pipeline_env(
    *,
    kafka_bootstrap: str,
    database_url: str,
    schema: str,
    workdir: Path,
    channels: Sequence[str],
    settings: dict[str, str] | None = None,
) -> tuple[dict[str, str], dict[str, int]]:
    """The settings every service of one pipeline runs with, and its free ports (a metrics
    port per service of METRICS_PORTS, plus "api" and "ingest_api"); also writes the
    publisher keypair and runs `aop db upgrade` in `schema`.

    `settings` are extra `AOP_*` variables over the defaults below (fresh topic prefix, the
    given schema, 2 partitions, 50-slot epochs, dry-run settlement, quiet logs).
    """
    keypair = workdir / "publisher.json"
    write_keypair(keypair, Keypair())
    for sub in ("audit", "fold"):
        (workdir / sub).mkdir(exist_ok=True)  # `aop fold` does not create its datadir's parent
    names = [*METRICS_PORTS, "api", "ingest_api"]
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    env = {
        "AOP_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "AOP_DATABASE_URL": database_url,
        "AOP_TOPIC_PREFIX": new_topic_prefix(),
        "AOP_DATABASE_SCHEMA": schema,
        "AOP_CHAIN_PARTITIONS": "2",
        "AOP_CHANNELS": ",".join(channels),
        "AOP_GENESIS_SLOT": "1000",
        "AOP_EPOCH_SLOTS": "50",
        "AOP_PUBLISHER_KEYPAIR": str(keypair),
        "AOP_AUTO_PUBLISH": "false",
        # settlement walks the channel roots (the simulated program is v0.2.2); the combiner
        # still builds, and the projector stores, the global roots
        "AOP_SETTLEMENT_TARGET": "channel",
        "AOP_API_PORT": str(ports["api"]),
        # the ingest runs with no tokens file: it refuses every request (401), on a free port
        "AOP_INGEST_PORT": str(ports["ingest_api"]),
        "AOP_AUDIT_DIR": str(workdir / "audit"),
        "AOP_FOLD_DATADIR": str(workdir / "fold"),
        "AOP_FOLD_STANDBY_REPLICAS": "0",
        "AOP_LOG_LEVEL": "WARNING",
        **(settings or {}),
    }
    upgrade = subprocess.run(
        [*AOP, "db", "upgrade"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert upgrade.returncode == 0, upgrade.stderr
    return env, ports


def service_env(env: dict[str, str], ports: dict[str, int], name: str) -> dict[str, str]:
    """`env` plus the service's own metrics port (for the services that have one)."""
    return {**env, "AOP_METRICS_PORT": str(ports[name])} if name in METRICS_PORTS else env


@contextmanager
def live_pipeline(
    *,
    kafka_bootstrap: str,
    database_url: str,
    schema: str,
    workdir: Path,
    channels: Sequence[str],
    sim_args: Sequence[str],
    settings: dict[str, str] | None = None,
) -> Iterator[LivePipeline]:
    """`pipeline_env`, then the chain (`sim_args` plus `--channels`) and every service; stops
    them all on exit (SIGTERM, then SIGKILL after the supervisor's timeout)."""
    env, ports = pipeline_env(
        kafka_bootstrap=kafka_bootstrap,
        database_url=database_url,
        schema=schema,
        workdir=workdir,
        channels=channels,
        settings=settings,
    )
    sim = spawn_simchain([*sim_args, "--channels", ",".join(channels)], env=env)
    env.update(AOP_RPC_URL=sim.http_url, AOP_WS_URL=sim.ws_url)
    specs = [
        ServiceSpec(name, [*AOP, command], service_env(env, ports, name))
        for name, command in SERVICES.items()
    ]
    supervisor = Supervisor(specs, stop_timeout=15)
    thread = threading.Thread(
        target=supervisor.run, kwargs={"install_signal_handlers": False}, daemon=True
    )
    thread.start()
    try:
        yield LivePipeline(env, ports, sim, supervisor)
    finally:
        supervisor.request_stop()
        thread.join(60)
        sim.stop()
