"""A Kafka broker and a PostgreSQL server of the test's own, to stop and start mid-run.

The shared development services (127.0.0.1:19092 and :15432) serve other tests at the same
time and must never be stopped. These run from the same scripts (`infra/local/kafka.sh`,
`postgres.sh`) under their own `AOP_LOCAL_DIR` and ports, the broker reusing the jars the
shared one fetched (`AOP_LOCAL_KAFKA_LIBS`). `down` waits for a clean stop; that is the
outage: clients see refused connections until `up` returns.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import ROOT
from tests.live_pipeline import free_port_block, free_ports

__all__ = ["LocalCluster", "local_cluster"]

SHARED_KAFKA_LIBS = ROOT / ".local" / "kafka" / "libs"


@dataclass(frozen=True)
class LocalCluster:
    """The scripts' environment for one private broker and server."""

    directory: Path
    kafka_port: int
    pg_port: int

    @property
    def kafka_bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def database_url(self) -> str:
        return f"postgresql+psycopg://aop:aop@127.0.0.1:{self.pg_port}/aop"

    def _script(self, service: str, action: str) -> None:
        env = {
            "AOP_LOCAL_DIR": str(self.directory),
            "AOP_LOCAL_KAFKA_PORT": str(self.kafka_port),
            "AOP_LOCAL_PG_PORT": str(self.pg_port),
            # the scripts' readiness checks run under this interpreter (a worktree has no
            # .venv of its own; tests.support.kafka_nodes passes it too)
            "AOP_PYTHON": sys.executable,
        }
        if SHARED_KAFKA_LIBS.is_dir():
            env["AOP_LOCAL_KAFKA_LIBS"] = str(SHARED_KAFKA_LIBS)
        script = ROOT / "infra" / "local" / f"{service}.sh"
        subprocess.run(
            ["bash", str(script), action], env={**os.environ, **env}, check=True, timeout=180
        )

    def up(self, service: str) -> None:
        """Start `kafka` or `postgres` and wait until it answers."""
        self._script(service, "up")

    def postmaster_pid(self) -> int | None:
        """The PostgreSQL server's pid (its backends are its children), None when down."""
        pid_file = (self.directory / "pg").resolve() / "data" / "postmaster.pid"
        try:
            return int(pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def down(self, service: str) -> None:
        """Stop `kafka` or `postgres` (a clean shutdown; waits for it)."""
        self._script(service, "down")


@contextmanager
def local_cluster(
    name: str, services: tuple[str, ...] = ("kafka", "postgres")
) -> Iterator[LocalCluster]:
    """A private broker and server on free ports under `.local/faults/<name>` (PostgreSQL's
    server user must reach the directory, which pytest's tmp_path does not allow); both
    stopped and the directory removed on exit. `services=("postgres",)` starts the server
    only (a test that brings its own brokers)."""
    directory = ROOT / ".local" / "faults" / name
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    # the broker's controller listens on port + 1: keep both free
    kafka_port, pg_port = free_port_block(2), free_ports(1)[0]
    cluster = LocalCluster(directory, kafka_port, pg_port)
    try:
        for service in services:
            cluster.up(service)
        yield cluster
    finally:
        for service in reversed(services):
            with suppress(subprocess.SubprocessError):
                cluster.down(service)
        pg_dir = (directory / "pg").resolve()
        shutil.rmtree(pg_dir, ignore_errors=True)
        shutil.rmtree(directory, ignore_errors=True)
