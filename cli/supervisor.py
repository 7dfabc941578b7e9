"""Run several services as child processes on one machine and keep them up.

Each child is restarted when it exits unexpectedly, after a capped exponential backoff that
grows with the number of exits in the last `crash_loop_window` seconds (so it resets once a
child has run quietly for that long). A
child that dies `crash_loop_restarts` times within `crash_loop_window` seconds is in a crash
loop: the supervisor logs it at ERROR, counts it in `aop_supervisor_crash_loops_total`, and
keeps trying at the backoff cap (an operator sees it; nothing is hidden). On SIGTERM/SIGINT
every child gets SIGTERM, then SIGKILL after `stop_timeout` seconds.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import Counter, Gauge

__all__ = ["ServiceSpec", "Supervisor"]

log = logging.getLogger(__name__)

RESTARTS = Counter("aop_supervisor_restarts_total", "Child restarts", ["service"])
CRASH_LOOPS = Counter(
    "aop_supervisor_crash_loops_total", "Times a child entered a crash loop", ["service"]
)
UP = Gauge("aop_supervisor_service_up", "1 while the child runs", ["service"])


@dataclass(frozen=True)
class ServiceSpec:
    """A child: its name, its argv, extra environment variables and, optionally, the file
    its stdout and stderr are appended to (else it shares the supervisor's)."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    log_file: Path | None = None


@dataclass
class _Child:
    spec: ServiceSpec
    process: subprocess.Popen[bytes] | None = None
    next_start: float = 0.0
    restarts: int = 0
    exits: deque[float] = field(default_factory=deque)
    in_crash_loop: bool = False


class Supervisor:
    """Starts, watches and stops a set of child services."""

    def __init__(
        self,
        specs: Sequence[ServiceSpec],
        *,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        crash_loop_restarts: int = 5,
        crash_loop_window: float = 60.0,
        stop_timeout: float = 15.0,
        poll_interval: float = 0.2,
    ) -> None:
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"service names must be unique (got {names})")
        self._children = [_Child(spec) for spec in specs]
        for name in names:  # every child's series from the start (runtime.metrics.precreate)
            RESTARTS.labels(service=name)
            CRASH_LOOPS.labels(service=name)
            UP.labels(service=name).set(0)
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._loop_restarts = crash_loop_restarts
        self._loop_window = crash_loop_window
        self._stop_timeout = stop_timeout
        self._poll = poll_interval
        self._stopping = threading.Event()

    def request_stop(self, *_args: object) -> None:
        """Ask `run` to stop every child and return (safe from a signal handler)."""
        self._stopping.set()

    def restarts(self, name: str) -> int:
        """How many times `name` was restarted (for tests and the demo's status view)."""
        return next(c.restarts for c in self._children if c.spec.name == name)

    def pids(self) -> dict[str, int | None]:
        """The current pid of each child (None while it waits to restart)."""
        return {
            c.spec.name: c.process.pid if c.process and c.process.poll() is None else None
            for c in self._children
        }

    def run(self, *, install_signal_handlers: bool = True) -> None:
        """Supervise until `request_stop` (or SIGTERM/SIGINT); then stop every child."""
        if install_signal_handlers:
            signal.signal(signal.SIGTERM, self.request_stop)
            signal.signal(signal.SIGINT, self.request_stop)
        try:
            while not self._stopping.is_set():
                now = time.monotonic()
                for child in self._children:
                    self._tend(child, now)
                self._stopping.wait(self._poll)
        finally:
            self._stop_all()

    def _tend(self, child: _Child, now: float) -> None:
        process = child.process
        if process is not None:
            code = process.poll()
            if code is None:
                return
            self._on_exit(child, code, now)
        if now >= child.next_start:
            self._start(child)

    def _start(self, child: _Child) -> None:
        env = {**os.environ, **child.spec.env}
        if child.spec.log_file is None:
            child.process = subprocess.Popen(list(child.spec.argv), env=env)
        else:
            with child.spec.log_file.open("ab") as output:  # the child keeps its own copy
                child.process = subprocess.Popen(
                    list(child.spec.argv), env=env, stdout=output, stderr=subprocess.STDOUT
                )
        UP.labels(service=child.spec.name).set(1)
        log.info("started %s", child.spec.name, extra={"pid": child.process.pid})

    def _on_exit(self, child: _Child, code: int, now: float) -> None:
        name = child.spec.name
        child.process = None
        UP.labels(service=name).set(0)
        RESTARTS.labels(service=name).inc()
        child.restarts += 1
        child.exits.append(now)
        while child.exits and now - child.exits[0] > self._loop_window:
            child.exits.popleft()
        delay = min(self._backoff_max, self._backoff_initial * 2 ** (len(child.exits) - 1))
        child.next_start = now + delay
        looping = len(child.exits) >= self._loop_restarts
        if looping and not child.in_crash_loop:
            CRASH_LOOPS.labels(service=name).inc()
            log.error(
                "%s is crash-looping: %d exits in %.0f s; operator action: read its log",
                name,
                len(child.exits),
                self._loop_window,
                extra={"exit_code": code},
            )
        elif not looping:
            log.warning(
                "%s exited with %d; restarting in %.1f s",
                name,
                code,
                delay,
                extra={"exit_code": code},
            )
        child.in_crash_loop = looping

    def _stop_all(self) -> None:
        running = [
            (c.spec.name, c.process)
            for c in self._children
            if c.process is not None and c.process.poll() is None
        ]
        for _name, process in running:
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self._stop_timeout
        for name, process in running:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("%s did not stop in %.0f s; killing", name, self._stop_timeout)
                process.kill()
                process.wait()
            UP.labels(service=name).set(0)
