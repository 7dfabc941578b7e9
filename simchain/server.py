"""The simulated endpoint: JSON-RPC over HTTP (Starlette on uvicorn) plus websocket pubsub.

Like a real validator it listens on two ports, HTTP (8899-style) and websocket (8900-style);
port 0 picks free ones. With `slot_ms > 0` a timer produces slots; with `slot_ms == 0` slots
only advance on `advance(n)` / `sim_advance`, which makes tests exact.

    async with SimChainServer(SimConfig(slot_ms=20)).serve() as sim:
        client = AsyncClient(sim.http_url); ws = SolanaWsClient(sim.ws_url)
        ...
        sim.faults.update(drop_notification_p=0.2)
        ids = sim.emitted_event_ids()

`simchain.process.spawn_simchain()` runs `aop simulate-chain` as a subprocess.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import socket
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from aop.simchain.chain import SimChain
from aop.simchain.config import SimConfig
from aop.simchain.control import ControlRpc
from aop.simchain.errors import RpcError, SimChainError
from aop.simchain.faults import Faults
from aop.simchain.pubsub import PubSubServer
from aop.simchain.rpc import SolanaRpc

__all__ = ["SimChainServer"]

log = logging.getLogger(__name__)

#: the collector's youngest-generation threshold while serving (CPython's default, 700, made
#: its passes over a chain that kept every block cost ~15% of slot production at 2,000
#: events/s).
_GC_YOUNG_THRESHOLD = 50_000
#: longest run of slot filling between two turns of the event loop.
_FILL_SLICE_S = 0.001


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: the owner of the loop decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _json_response(body: Any, status: int = 200) -> Response:
    return Response(
        json.dumps(body, separators=(",", ":")), status_code=status, media_type="application/json"
    )


class SimChainServer:
    """One simulated chain served over HTTP JSON-RPC and websocket pubsub."""

    def __init__(
        self,
        config: SimConfig | None = None,
        *,
        chain: SimChain | None = None,
        faults: Faults | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.chain = chain if chain is not None else SimChain(config)
        self.config = self.chain.config
        self.faults = faults if faults is not None else Faults(seed=self.config.seed)
        self.host = host
        self.rpc = SolanaRpc(self.chain)
        self.control = ControlRpc(self)
        self.pubsub = PubSubServer(self.chain, self.faults)
        self.http_port: int | None = None
        self.ws_port: int | None = None
        self._ticker: asyncio.Task[None] | None = None

    # -- addresses -------------------------------------------------------------------------
    @property
    def http_url(self) -> str:
        if self.http_port is None:
            raise SimChainError("the server is not running; use `async with server.serve()`")
        return f"http://{self.host}:{self.http_port}"

    @property
    def ws_url(self) -> str:
        if self.ws_port is None:
            raise SimChainError("the server is not running; use `async with server.serve()`")
        return f"ws://{self.host}:{self.ws_port}"

    # -- Python API ------------------------------------------------------------------------
    def advance(self, slots: int = 1) -> None:
        """Produce `slots` slots now (with the workload, if it is enabled)."""
        self.chain.produce_slots(slots)

    def drop_connections(self) -> int:
        """Cut every websocket connection at once; returns how many were cut."""
        return self.pubsub.drop_all()

    def emitted_event_ids(self) -> list[str]:
        """The authoritative ids (`signature:event_index`) of finalized events, chain order."""
        return self.chain.emitted_event_ids()

    def status(self) -> dict[str, Any]:
        status = self.chain.status()
        status.update(
            faults=self.faults.to_json(),
            websocket_connections=self.pubsub.connection_count,
            http_url=self.http_url if self.http_port else None,
            ws_url=self.ws_url if self.ws_port else None,
        )
        return status

    async def wait_for_slot(
        self, slot: int, *, commitment: str = "finalized", timeout: float = 30.0
    ) -> None:
        """Wait until `commitment` reaches `slot` (the timer must be running).

        Raises:
            TimeoutError: it did not within `timeout` seconds.
        """
        deadline = time.monotonic() + timeout
        while self.chain.slot_at(commitment) < slot:
            if time.monotonic() > deadline:
                now = self.chain.slot_at(commitment)
                raise TimeoutError(
                    f"{commitment} slot did not reach {slot} in {timeout} s (at {now})"
                )
            await asyncio.sleep(max(self.config.slot_ms, 5) / 1000)

    # -- serving ---------------------------------------------------------------------------
    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/", self._http, methods=["POST"]),
                Route("/health", lambda _: PlainTextResponse("ok"), methods=["GET"]),
            ]
        )

    @contextlib.asynccontextmanager
    async def serve(self, port: int = 0, ws_port: int = 0) -> AsyncIterator[SimChainServer]:
        """Listen (HTTP on `port`, websocket on `ws_port`; 0 = free ports) and run the timer."""
        # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets whose protocol says
        # TCP, and without it every answer (headers, then body: two writes) waited ~40 ms
        # for the client's delayed ACK (Nagle): ~44 ms per RPC call, measured.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, port))
        self.http_port = int(sock.getsockname()[1])
        server = _Server(
            uvicorn.Config(
                self.app(), lifespan="off", access_log=False, log_level="warning", ws="none"
            )
        )
        http_task = asyncio.create_task(server.serve(sockets=[sock]))
        thresholds = gc.get_threshold()
        gc.set_threshold(_GC_YOUNG_THRESHOLD, *thresholds[1:])
        try:
            while not server.started:
                if http_task.done():
                    http_task.result()
                await asyncio.sleep(0.005)
            self.ws_port = await self.pubsub.start(self.host, ws_port)
            if self.config.slot_ms > 0:
                self._ticker = asyncio.create_task(self._tick())
            log.info("simchain serving", extra={"http_url": self.http_url, "ws_url": self.ws_url})
            yield self
        finally:
            if self._ticker is not None:
                self._ticker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._ticker
                self._ticker = None
            await self.pubsub.stop()
            server.should_exit = True
            await http_task
            sock.close()
            self.http_port = self.ws_port = None
            gc.set_threshold(*thresholds)

    async def _tick(self) -> None:
        """Produce a slot every `slot_ms`, catching up (without sleeping) when late."""
        period = self.config.slot_ms / 1000
        next_at = time.monotonic() + period
        while True:
            delay = next_at - time.monotonic()
            await asyncio.sleep(max(delay, 0))
            try:
                await self._produce_slot()
            except Exception:
                log.exception("slot production failed")
            next_at += period
            if time.monotonic() - next_at > 10 * period:  # far behind (e.g. a paused process)
                next_at = time.monotonic() + period

    async def _produce_slot(self) -> None:
        """Fill the pending slot, letting the loop answer requests every ms, then seal it.

        Filling a busy slot takes tens of ms of CPU; done in one go, requests only advanced
        between slots, one loop step each, and a listener catching up by getTransaction
        could not (~6 answers/s at 400 events/s)."""
        yielded = time.monotonic()
        for _ in self.chain.fill_steps():
            if time.monotonic() - yielded >= _FILL_SLICE_S:
                await asyncio.sleep(0)
                yielded = time.monotonic()
        self.chain.seal_slot()

    async def _http(self, request: Request) -> Response:
        body = await request.body()
        try:
            payload = json.loads(body)
        except ValueError:
            return _json_response(
                {"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": None}
            )
        items = payload if isinstance(payload, list) else [payload]
        control = bool(items) and all(
            isinstance(i, dict) and self.control.handles(str(i.get("method"))) for i in items
        )
        fault = None
        if not control:
            if self.faults.delay_ms:
                await asyncio.sleep(self.faults.delay_ms / 1000)
            fault = self.faults.rpc_error()
            if fault == "http503":
                return PlainTextResponse("Service Unavailable", status_code=503)
        if isinstance(payload, list) and not payload:
            return _json_response(
                {
                    "jsonrpc": "2.0",
                    "error": {"code": -32600, "message": "Invalid request"},
                    "id": None,
                }
            )
        replies = [self._one(item, fault is not None) for item in items]
        return _json_response(replies if isinstance(payload, list) else replies[0])

    def _one(self, item: Any, failing: bool) -> dict[str, Any]:
        request_id = item.get("id") if isinstance(item, dict) else None
        try:
            if (
                not isinstance(item, dict)
                or item.get("jsonrpc") != "2.0"
                or not isinstance(item.get("method"), str)
            ):
                raise RpcError(-32600, "Invalid request")
            method = item["method"]
            if failing:
                behind = 5 + self.chain.tip % 40
                raise RpcError(
                    -32005, f"Node is behind by {behind} slots", {"numSlotsBehind": behind}
                )
            params = item.get("params")
            if self.control.handles(method):
                result = self.control.call(method, params if params is not None else {})
            else:
                if params is None:
                    params = []
                if not isinstance(params, list):
                    raise RpcError(-32602, "Invalid params: expected an array")
                result = self.rpc.call(method, params)
        except RpcError as exc:
            return {"jsonrpc": "2.0", "error": exc.to_json(), "id": request_id}
        except Exception as exc:  # a bug here must not look like a dead node
            log.exception(
                "rpc handler failed",
                extra={"method": item.get("method") if isinstance(item, dict) else None},
            )
            return {
                "jsonrpc": "2.0",
                "error": {"code": -32603, "message": f"Internal error: {exc}"},
                "id": request_id,
            }
        return {"jsonrpc": "2.0", "result": result, "id": request_id}
