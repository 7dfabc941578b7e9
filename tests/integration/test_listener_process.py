"""`aop listen` as a process: kill -9 at several points and restart, then SIGTERM; the log
holds every finalized event exactly once, in contiguous ranges on every partition."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from aop.runtime.settings import Settings
from aop.simchain.server import SimChainServer
from tests.conftest import ROOT
from tests.integration.test_listener import CHAIN_START, FAST, assert_exactly, read_log, sim_config
from tests.support.threaded_simchain import ThreadedSimChain

#: kill -9 points: None = during start-up (0.5 s in); a number = that many seconds after the
#: process committed its first range (its steps run every 40-150 ms, so these land before,
#: during and after Kafka transactions).
KILL_POINTS = (None, 0.0, 0.1, 0.4)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _listen(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "aop.cli", "listen"],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _metrics(port: int) -> dict[str, float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    samples = {}
    for line in text.splitlines():
        if line.startswith("aop_"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def _sample(port: int, name: str) -> float:
    try:
        return _metrics(port).get(name, -1.0)
    except httpx.HTTPError:
        return -1.0


def _wait_for(condition: Callable[[], bool], log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"listener did not get there in {timeout} s:\n{log.read_text()[-3000:]}"
            )
        time.sleep(0.02)


def test_listener_process_killed_repeatedly_neither_skips_nor_duplicates(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = settings_factory()
    metrics_port = _free_port()
    with ThreadedSimChain(SimChainServer(sim_config(seed=4, rate=30.0))) as sim:
        env = {
            **FAST,
            "AOP_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "AOP_TOPIC_PREFIX": settings.topic_prefix,
            "AOP_CHAIN_PARTITIONS": str(settings.chain_partitions),
            "AOP_RPC_URL": sim.http_url,
            "AOP_WS_URL": sim.ws_url,
            "AOP_AUDIT_DIR": str(tmp_path / "audit"),
            "AOP_LOG_LEVEL": "INFO",
        }
        log = tmp_path / "listen.log"
        for point in KILL_POINTS:
            port = _free_port()
            process = _listen({**env, "AOP_METRICS_PORT": str(port)}, log)
            if point is None:
                time.sleep(0.5)
            else:
                _wait_for(lambda p=port: _sample(p, "aop_listener_batches_total") >= 1, log)
                time.sleep(point)
            assert process.poll() is None, log.read_text()[-2000:]
            process.send_signal(signal.SIGKILL)
            assert process.wait(10) == -signal.SIGKILL

        process = _listen({**env, "AOP_METRICS_PORT": str(metrics_port)}, log)
        _wait_for(lambda: _sample(metrics_port, "aop_listener_batches_total") >= 1, log)
        sim.call(lambda: setattr(sim.server.chain.workload, "enabled", False))
        target = sim.call(lambda: sim.server.chain.tip)
        _wait_for(lambda: _sample(metrics_port, "aop_listener_last_slot") >= target, log)
        samples = _metrics(metrics_port)
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0, log.read_text()[-2000:]
        events = sim.call(lambda: sim.server.chain.emitted_events())

    view = read_log(settings, first_slot=CHAIN_START)
    last = min(view.last_slot.values())
    assert last >= target
    expected = [e.id for e in events if e.slot <= last]
    assert len(expected) > 150
    assert_exactly(view, expected)
    assert samples["aop_listener_batches_total"] >= 4
    assert samples['aop_listener_events_total{event="ChannelStaked"}'] >= 1
    assert samples["aop_listener_slot_lag"] >= 0
