"""Every `aop run` service as a separate child process the test controls one by one.

The `Supervisor` restarts a dead child on its own schedule; a fault test needs to choose the
moment: kill exactly one service with SIGKILL, leave it down for a pause, start it again.
Each child appends its output to `<log_dir>/<name>.log` (read it when a scenario fails).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from aop.cli.services import SERVICES
from tests.live_pipeline import AOP, service_env

__all__ = ["ServiceProcesses"]

#: a service that exited is started again at most this often (as a supervisor's backoff).
REVIVE_AFTER_S = 2.0


class ServiceProcesses:
    """The services of one pipeline; `env` and `ports` come from `pipeline_env`."""

    def __init__(
        self,
        env: Mapping[str, str],
        ports: Mapping[str, int],
        log_dir: Path,
        names: Sequence[str] = tuple(SERVICES),
        niceness: int = 0,
    ) -> None:
        self.env = dict(env)
        #: run the services at this niceness (`nice -n`, which execs: same pid), so a
        #: simulated chain sharing the host keeps its core (see tests/faults/scenario.py).
        self._niceness = niceness
        self._ports = dict(ports)
        self._log_dir = log_dir
        self._names = list(names)
        self._processes: dict[str, subprocess.Popen[bytes]] = {}
        #: services the test took down on purpose (not revived until started again).
        self._held: set[str] = set()
        self._started_at: dict[str, float] = {}
        #: exit codes of services that exited on their own and were started again.
        self.crashes: dict[str, list[int]] = {name: [] for name in self._names}

    def start(self, name: str) -> None:
        """Start `name` (it must not be running)."""
        if self.running(name):
            raise RuntimeError(f"{name} is already running (pid {self._processes[name].pid})")
        self._held.discard(name)
        self._started_at[name] = time.monotonic()
        env = {**os.environ, **service_env(self.env, self._ports, name)}
        with (self._log_dir / f"{name}.log").open("ab") as output:  # the child keeps a copy
            nice = ["nice", "-n", str(self._niceness)] if self._niceness else []
            self._processes[name] = subprocess.Popen(
                [*nice, *AOP, SERVICES[name]], env=env, stdout=output, stderr=subprocess.STDOUT
            )

    def start_all(self) -> None:
        for name in self._names:
            self.start(name)

    def running(self, name: str) -> bool:
        process = self._processes.get(name)
        return process is not None and process.poll() is None

    def pids(self) -> dict[str, int | None]:
        """Each service's pid while it runs (None while it is down)."""
        return {
            name: process.pid if process.poll() is None else None
            for name, process in self._processes.items()
        }

    def revive(self) -> list[str]:
        """Start again every service that exited on its own (as `aop run`'s supervisor
        would); the names restarted. Their exit codes go to `crashes`."""
        revived = []
        now = time.monotonic()
        for name, process in list(self._processes.items()):
            code = process.poll()
            if code is None or name in self._held:
                continue
            if now - self._started_at[name] < REVIVE_AFTER_S:
                continue  # no hot restart loop for a service that cannot start
            self.crashes[name].append(code)
            self.start(name)
            revived.append(name)
        return revived

    def kill(self, name: str) -> None:
        """SIGKILL `name` and reap it (no clean-up runs: a crash, a power cut); it stays
        down until `start`."""
        process = self._processes[name]
        self._held.add(name)
        process.send_signal(signal.SIGKILL)
        process.wait(30)

    def stop(self, name: str, timeout: float = 30.0) -> int:
        """SIGTERM `name`, SIGKILL after `timeout` seconds; its exit code."""
        process = self._processes.get(name)
        if process is None:
            return 0
        self._held.add(name)
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)
        return int(process.returncode)

    def stop_all(self) -> None:
        """Stop every service, downstream first."""
        for name in reversed(self._names):
            self.stop(name)

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self._log_dir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
