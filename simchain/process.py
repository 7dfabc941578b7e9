"""Run the simulator as a subprocess (`aop simulate-chain --json`), e.g. for kill -9 tests."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import IO, Any, cast

import httpx

from aop.simchain.errors import SimChainError

__all__ = ["SimChainProcess", "spawn_simchain"]


class SimChainProcess:
    """A running `aop simulate-chain`; `control()` calls its `sim_*` methods."""

    def __init__(self, process: subprocess.Popen[str], http_url: str, ws_url: str) -> None:
        self.process = process
        self.http_url = http_url
        self.ws_url = ws_url

    @property
    def pid(self) -> int:
        return self.process.pid

    def control(
        self, method: str, params: Mapping[str, Any] | None = None, *, timeout: float = 10.0
    ) -> Any:
        """Call a `sim_*` method and return its result.

        Raises:
            SimChainError: the method answered a JSON-RPC error.
        """
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": dict(params or {})}
        reply = httpx.post(self.http_url, json=body, timeout=timeout).json()
        if "error" in reply:
            raise SimChainError(f"{method}: {reply['error']}")
        return reply["result"]

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, then SIGKILL if it does not exit in time; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        _close_stdout(self.process)
        return int(self.process.returncode)

    def kill(self) -> None:
        """SIGKILL now (the chain's state is lost, as a crashed node's would be)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        _close_stdout(self.process)

    def __enter__(self) -> SimChainProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def spawn_simchain(
    args: Sequence[str] = (), *, env: Mapping[str, str] | None = None, timeout: float = 30.0
) -> SimChainProcess:
    """Start `aop simulate-chain --json --port 0 --ws-port 0 *args` and wait for its URLs.

    Args:
        args: more command-line options (e.g. ["--slot-ms", "20", "--rate", "50"]).
        env: extra environment variables (e.g. AOP_PROGRAM_ID), over os.environ.
    Raises:
        SimChainError: it exited or printed nothing within `timeout` seconds.
    """
    command = [
        sys.executable,
        "-m",
        "aop.cli",
        "simulate-chain",
        "--json",
        "--port",
        "0",
        "--ws-port",
        "0",
        *args,
    ]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    stdout = cast(IO[str], process.stdout)
    with selectors.DefaultSelector() as selector:
        selector.register(stdout, selectors.EVENT_READ)
        ready = selector.select(timeout)
    if not ready:
        SimChainProcess(process, "", "").kill()
        raise SimChainError(f"aop simulate-chain printed no URLs within {timeout} s")
    line = stdout.readline()
    try:
        urls = json.loads(line)
    except ValueError:
        SimChainProcess(process, "", "").kill()
        raise SimChainError(
            f"aop simulate-chain exited or printed {line!r} (exit code {process.poll()})"
        ) from None
    return SimChainProcess(process, urls["http_url"], urls["ws_url"])


def _close_stdout(process: subprocess.Popen[str]) -> None:
    """Close our end of the pipe the simulator printed its URLs on (an open pipe outlives the
    process and leaks a file descriptor)."""
    if process.stdout is not None:
        process.stdout.close()
