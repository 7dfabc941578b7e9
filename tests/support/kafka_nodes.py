"""The project's Kafka cluster modes, started by its own scripts for tests.

`infra/local/kafka-secure.sh` (one node, SASL_SSL with SCRAM and mutual TLS, a throwaway CA)
and `infra/local/kafka-cluster.sh` (three KRaft nodes) run here under a directory and a port
block of the test's own (`AOP_LOCAL_DIR`, `AOP_LOCAL_KAFKA_PORT`), reusing the jars the shared
broker fetched, so the shared development broker on 19092 is never touched. CI starts only
`make up`'s broker: tests that need these start them through this module.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import ROOT
from tests.live_pipeline import free_port_block

__all__ = ["KafkaNodes", "kafka_nodes"]

SHARED_KAFKA_LIBS = ROOT / ".local" / "kafka" / "libs"
#: script name -> nodes it runs
SCRIPTS = {"kafka-secure": 1, "kafka-cluster": 3}


@dataclass(frozen=True)
class KafkaNodes:
    """A running cluster of `script` under `directory`, node i on `port + 2(i-1)`."""

    script: str
    directory: Path
    port: int

    @property
    def nodes(self) -> int:
        return SCRIPTS[self.script]

    @property
    def home(self) -> Path:
        """Where the script keeps data, configs, certificates and secrets."""
        return self.directory / self.script

    def node_port(self, node: int) -> int:
        return self.port + 2 * (node - 1)

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{self.node_port(i)}" for i in range(1, self.nodes + 1))

    def run(self, *args: str, timeout: float = 240) -> None:
        """`infra/local/<script>.sh <args>` in this cluster's environment."""
        env = {
            **os.environ,
            "AOP_LOCAL_DIR": str(self.directory),
            "AOP_LOCAL_KAFKA_PORT": str(self.port),
            "AOP_PYTHON": sys.executable,
        }
        if "AOP_LOCAL_KAFKA_LIBS" not in os.environ and SHARED_KAFKA_LIBS.is_dir():
            env["AOP_LOCAL_KAFKA_LIBS"] = str(SHARED_KAFKA_LIBS)
        script = ROOT / "infra" / "local" / f"{self.script}.sh"
        subprocess.run(["bash", str(script), *args], env=env, check=True, timeout=timeout)

    def env(self) -> dict[str, str]:
        """The `AOP_KAFKA_*` settings of a client (the script's client.env)."""
        lines = (self.home / "client.env").read_text().splitlines()
        return dict(
            line.split("=", 1) for line in lines if line.strip() and not line.startswith("#")
        )

    def password(self) -> str:
        """The SCRAM password of the user `aop` (kafka-secure only)."""
        return (self.home / "secrets" / "aop.password").read_text().strip()

    def pid(self, node: int) -> int | None:
        path = self.home / f"node{node}" / "kafka.pid"
        return int(path.read_text()) if path.exists() else None

    def kill(self, node: int) -> None:
        """SIGKILL node `node` (no clean shutdown: a crash) and wait until it is gone."""
        pid = self.pid(node)
        if pid is None:
            raise RuntimeError(f"node {node} of {self.script} has no pid file")
        os.kill(pid, signal.SIGKILL)
        with suppress(ChildProcessError):
            os.waitpid(pid, 0)  # not our child (setsid): poll instead
        while _alive(pid):
            time.sleep(0.05)

    def start(self, node: int) -> None:
        """Start node `node` again and wait until it answers."""
        self.run("start", str(node))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie until its parent (the setsid'd shell) reaps it
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(") ", 1)[1][0] != "Z"


@contextmanager
def kafka_nodes(script: str) -> Iterator[KafkaNodes]:
    """`script`'s cluster on a free port block under `.local/clusters/<script>-<id>`; stopped
    and its directory (data, certificates, secrets) removed on exit."""
    directory = ROOT / ".local" / "clusters" / f"{script}-{uuid.uuid4().hex[:8]}"
    directory.mkdir(parents=True)
    cluster = KafkaNodes(script, directory, free_port_block(2 * SCRIPTS[script]))
    try:
        cluster.run("up")
        yield cluster
    finally:
        with suppress(subprocess.SubprocessError):
            cluster.run("down")
        shutil.rmtree(directory, ignore_errors=True)
