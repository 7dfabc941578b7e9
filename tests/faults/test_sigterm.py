"""SIGTERM stops every service within its shutdown time, whether its broker answers or not.

Each service runs alone, as under systemd, against a broker of the test's own (the shared
one on 19092 is never stopped): the simulated chain, listener, fold, combiner, projector,
settlement (dry run) and API. Once every one serves /metrics (and the listener has written
to the log), the broker is stopped (case `broker_down`) or left up, then all get SIGTERM at
once. Each must exit 0 within SHUTDOWN_LIMIT_S: below the supervisor's 15 s before SIGKILL
(`aop run`), and systemd's TimeoutStopSec=30 in docs/runbook.md.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from aop.cli.services import SERVICES
from aop.simchain.process import spawn_simchain
from tests.faults.cluster import LocalCluster
from tests.live_pipeline import (
    AOP,
    free_port_block,
    free_ports,
    fresh_schema,
    http_get,
    pipeline_env,
    service_env,
)

#: AOP_SHUTDOWN_TIMEOUT_S (10 s by default) plus the interpreter's exit.
SHUTDOWN_LIMIT_S = 12.0
SIM_ARGS = ["--rate", "40", "--wallets", "20", "--slot-ms", "40", "--finality-depth", "4"]
SIM_ARGS += ["--channels", "sig:alpha,sig:beta", "--claim-channels", ""]
FORCED = "did not stop within AOP_SHUTDOWN_TIMEOUT_S"
START_TIMEOUT_S = 120.0
pytestmark = pytest.mark.slow


@contextmanager
def private_broker(name: str) -> Iterator[LocalCluster]:
    """A Kafka broker of the test's own on free ports (no PostgreSQL: the shared one serves)."""
    directory = Path(__file__).resolve().parents[2] / ".local" / "faults" / name
    directory.mkdir(parents=True, exist_ok=True)
    cluster = LocalCluster(directory, free_port_block(2), 0)
    try:
        cluster.up("kafka")
        yield cluster
    finally:
        with suppress(subprocess.SubprocessError):
            cluster.down("kafka")
        import shutil

        shutil.rmtree(directory, ignore_errors=True)


def _ready(name: str, env: dict[str, str]) -> bool:
    if name == "api":
        reply = http_get(f"http://127.0.0.1:{env['AOP_API_PORT']}/healthz")
    else:
        reply = http_get(f"http://127.0.0.1:{env['AOP_METRICS_PORT']}/metrics")
    if reply is None or reply.status_code != 200:
        return False
    if name == "listener":  # it has written slot ranges: its producer is mid-stream
        return "aop_listener_batches_total 0.0" not in reply.text
    return True


@pytest.mark.parametrize("case", ["broker_up", "broker_down"])
def test_every_service_stops_on_sigterm_within_its_shutdown_time(
    case: str, database_url: str, tmp_path: Path
) -> None:
    with (
        private_broker(f"sigterm-{uuid.uuid4().hex[:8]}") as broker,
        fresh_schema(database_url) as schema,
    ):
        env, ports = pipeline_env(
            kafka_bootstrap=broker.kafka_bootstrap,
            database_url=database_url,
            schema=schema,
            workdir=tmp_path,
            channels=("sig:alpha", "sig:beta"),
            settings={"AOP_LOG_LEVEL": "INFO"},
        )
        sim = spawn_simchain(SIM_ARGS, env=env)
        env.update(AOP_RPC_URL=sim.http_url, AOP_WS_URL=sim.ws_url)
        logs = {name: (tmp_path / f"{name}.log").open("wb") for name in SERVICES}
        processes = {
            name: subprocess.Popen(
                [*AOP, command],
                env={**os.environ, **service_env(env, ports, name)},
                stdout=logs[name],
                stderr=subprocess.STDOUT,
            )
            for name, command in SERVICES.items()
        }
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            waiting = set(SERVICES)
            while waiting and time.monotonic() < deadline:
                exited = {n: p.returncode for n, p in processes.items() if p.poll() is not None}
                assert not exited, f"exited before the test: {exited}"
                waiting = {n for n in waiting if not _ready(n, service_env(env, ports, n))}
                time.sleep(0.5)
            assert not waiting, f"not ready within {START_TIMEOUT_S:.0f} s: {sorted(waiting)}"
            time.sleep(3)  # every service at work (the fold past its rebalance)
            if case == "broker_down":
                broker.down("kafka")
                time.sleep(2)
            stopped_at = time.monotonic()
            for process in processes.values():
                process.send_signal(signal.SIGTERM)
            took: dict[str, float] = {}
            codes: dict[str, int | None] = {}
            while len(took) < len(processes) and time.monotonic() - stopped_at < 60:
                for name, process in processes.items():
                    if name not in took and process.poll() is not None:
                        took[name] = round(time.monotonic() - stopped_at, 1)
                        codes[name] = process.returncode
                time.sleep(0.1)
        finally:
            for process in processes.values():
                if process.poll() is None:
                    process.kill()
                    process.wait()
            sim.stop()
        slow = {n: took.get(n) for n in SERVICES if took.get(n, 99.0) > SHUTDOWN_LIMIT_S}
        print(f"SIGTERM {case}: seconds to exit {took}, exit codes {codes}")
        tails = {
            n: (tmp_path / f"{n}.log").read_text(errors="replace")[-1500:]
            for n in slow or [n for n, c in codes.items() if c != 0]
        }
        assert not slow, f"slower than {SHUTDOWN_LIMIT_S} s: {slow}\n{tails}"
        assert codes == dict.fromkeys(SERVICES, 0), f"{codes}\n{tails}"
        forced = sorted(n for n in SERVICES if FORCED in (tmp_path / f"{n}.log").read_text())
        print(f"SIGTERM {case}: stopped by the shutdown deadline: {forced}")
        if case == "broker_up":
            assert forced == [], "with the broker up every service stops cleanly"


def _processes_with(marker: str) -> list[int]:
    """Pids of the processes whose environment holds `marker` (the demo's topic prefix)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with suppress(OSError):
                if marker.encode() in (proc / "environ").read_bytes():
                    found.append(int(proc.name))
    return found


@pytest.mark.parametrize("case", ["broker_up", "broker_down"])
def test_demo_keep_stops_everything_it_started_on_sigterm(
    case: str, database_url: str, tmp_path: Path
) -> None:
    """`aop demo --keep`, once everything runs, gets SIGTERM: it exits 143 within the
    services' shutdown time, and no process of its run (chain, services) is left."""
    with private_broker(f"demo-{uuid.uuid4().hex[:8]}") as broker:
        (api_port,) = free_ports(1)
        env = {
            **os.environ,
            "AOP_KAFKA_BOOTSTRAP": broker.kafka_bootstrap,
            "AOP_DATABASE_URL": database_url,
        }
        args = ["--keep", "--free-ports", "--api-port", str(api_port), "--roots", "1"]
        args += ["--rate", "50", "--wallets", "50", "--budget", "90"]
        demo = subprocess.Popen(
            [*AOP, "demo", *args, "--workdir", str(tmp_path / "demo")],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        assert demo.stdout is not None
        lines: list[str] = []
        run = ""
        try:
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                line = demo.stdout.readline().decode(errors="replace")
                if not line:
                    break
                lines.append(line)
                if not run and "aop demo run " in line:
                    run = line.split("aop demo run ", 1)[1].split(":", 1)[0]
                if "--keep: everything keeps running" in line:
                    break
            assert run and "--keep" in lines[-1], "".join(lines[-40:])
            marker = f"AOP_TOPIC_PREFIX={run}."
            before = _processes_with(marker)
            assert len(before) >= len(SERVICES) + 1, before  # the chain and every service
            if case == "broker_down":
                broker.down("kafka")
                time.sleep(2)
            stopped_at = time.monotonic()
            demo.send_signal(signal.SIGTERM)
            rest, _ = demo.communicate(timeout=60)
            took = time.monotonic() - stopped_at
        finally:
            if demo.poll() is None:
                demo.kill()
                demo.wait()
        output = "".join(lines) + rest.decode(errors="replace")
        print(f"demo --keep SIGTERM {case}: exit {demo.returncode} in {took:.1f} s")
        assert demo.returncode == 128 + signal.SIGTERM, output[-3000:]
        assert took < SHUTDOWN_LIMIT_S + 10, took  # the services' deadline, then the chain
        assert _processes_with(marker) == []
        assert "every service and the chain stopped" in output
        _drop_demo_schema(database_url, run)


def _drop_demo_schema(database_url: str, run: str) -> None:
    import psycopg

    from tests.conftest import libpq_url

    schema = run.replace("demo", "demo_", 1)
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
