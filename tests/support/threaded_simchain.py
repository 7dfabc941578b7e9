"""A simulated chain served from a background thread, for synchronous tests.

with ThreadedSimChain(SimChainServer(config)) as sim:
    httpx.post(sim.http_url, ...)
    sim.call(lambda: sim.server.advance(5))  # runs on the server's loop
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TypeVar

from aop.simchain import SimChainError, SimChainServer

__all__ = ["ThreadedSimChain"]

T = TypeVar("T")


class ThreadedSimChain:
    """A `SimChainServer` running in a daemon thread with its own event loop, until `.stop()`;
    `call(fn)` runs fn on that loop (the chain is not thread-safe)."""

    def __init__(self, server: SimChainServer, port: int = 0, ws_port: int = 0) -> None:
        self.server = server
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(port, ws_port), name="simchain", daemon=True
        )
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise SimChainError(f"simchain did not start: {self._error}") from self._error

    def _run(self, port: int, ws_port: int) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            async with self.server.serve(port, ws_port):
                self._ready.set()
                await self._stop.wait()

        try:
            asyncio.run(main())
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self._ready.set()

    @property
    def http_url(self) -> str:
        return self.server.http_url

    @property
    def ws_url(self) -> str:
        return self.server.ws_url

    def call(self, fn: Callable[[], T], timeout: float = 30.0) -> T:
        """Run `fn()` on the server's loop and return its result."""
        if self._loop is None:
            raise SimChainError("simchain is not running")
        future: Future[T] = Future()

        def run() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)

        self._loop.call_soon_threadsafe(run)
        return future.result(timeout)

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    def __enter__(self) -> ThreadedSimChain:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
