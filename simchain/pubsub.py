"""Websocket pubsub (Solana's port 8900 API): logs, slot, root and signature subscriptions.

One task per connection reads requests; a second one sends, from a queue, so the chain's
synchronous slot callbacks only enqueue. A notification is sent when its block reaches the
subscription's commitment (default finalized, as Agave). The queue is bounded: a client that
lets `QUEUE_CAPACITY_BYTES` of messages pile up is disconnected, as Agave disconnects a
client lagging behind its bounded notification queue (anza-xyz/agave
`rpc/src/rpc_pubsub_service.rs`: "In both possible error cases (closed or lagged) we
disconnect the client"); it reconnects and backfills. Faults (`simchain.faults`) may drop,
duplicate or delay notifications, refuse handshakes, or cut every connection at once.

Shapes (Agave):
    logsNotification   {"context": {"slot"}, "value": {"signature", "err", "logs"}}
    slotNotification   {"parent", "root", "slot"}
    rootNotification   <slot>
    signatureNotification {"context": {"slot"}, "value": {"err"}}  (then unsubscribed)
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from aop.simchain.chain import Commitment, SimChain
from aop.simchain.errors import RpcError
from aop.simchain.faults import Faults
from aop.simchain.ledger import Block

__all__ = ["QUEUE_CAPACITY_BYTES", "PubSubServer"]

log = logging.getLogger(__name__)

#: most bytes of messages waiting for one connection (Agave's queue is 256 MiB for all).
QUEUE_CAPACITY_BYTES = 64 * 1024 * 1024
_LEVELS = ("processed", "confirmed", "finalized")
_ALIASES = {
    "recent": "processed",
    "single": "processed",
    "singleGossip": "confirmed",
    "max": "finalized",
    "root": "finalized",
}


@dataclass
class _Subscription:
    id: int
    kind: str  # "logs" | "slot" | "root" | "signature"
    commitment: Commitment = "finalized"
    mentions: str | None = None  # logs: None = all transactions
    signature: str | None = None


class _Connection:
    def __init__(self, ws: ServerConnection, capacity_bytes: int) -> None:
        self.ws = ws
        self.subscriptions: dict[int, _Subscription] = {}
        #: (is_notification, text) messages to send, in order.
        self.queue: asyncio.Queue[tuple[bool, str]] = asyncio.Queue()
        self.queued_bytes = 0
        self.capacity_bytes = capacity_bytes
        self.lagged = False

    def put(self, notification: bool, message: str) -> None:
        """Queue a message; past the capacity, cut the connection instead (once)."""
        if self.lagged:
            return
        if self.queued_bytes + len(message) > self.capacity_bytes:
            self.lagged = True
            transport = self.ws.transport
            if transport is not None:
                transport.abort()
            log.warning(
                "websocket client lagged behind; disconnected",
                extra={"queued_bytes": self.queued_bytes},
            )
            return
        self.queued_bytes += len(message)
        self.queue.put_nowait((notification, message))


class PubSubServer:
    """Serves the websocket API for one chain."""

    def __init__(
        self, chain: SimChain, faults: Faults, *, capacity_bytes: int = QUEUE_CAPACITY_BYTES
    ) -> None:
        self.chain = chain
        self.faults = faults
        self.capacity_bytes = capacity_bytes
        self._connections: set[_Connection] = set()
        self._ids = itertools.count(1)
        self._server: Server | None = None
        chain.add_listener(self._on_block)

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    async def start(self, host: str, port: int) -> int:
        """Listen on host:port (0 = a free port); returns the port."""
        self._server = await serve(
            self._handle,
            host,
            port,
            process_request=self._process_request,
            max_size=2**20,
            ping_interval=20,
            # no permessage-deflate: compressing every notification cost ~6 % of the
            # simulator's CPU under load (py-spy), and the listener's ~4 % to inflate them,
            # for a loopback link
            compression=None,
        )
        sockets = list(self._server.sockets)
        return int(sockets[0].getsockname()[1])

    async def stop(self) -> None:
        self.chain.remove_listener(self._on_block)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def drop_all(self) -> int:
        """Cut every connection now, without a closing handshake; returns how many."""
        count = 0
        for connection in list(self._connections):
            transport = connection.ws.transport
            if transport is not None:
                transport.abort()
                count += 1
        self.faults.counts["connections_dropped"] = (
            self.faults.counts.get("connections_dropped", 0) + count
        )
        return count

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if self.faults.refuse_websockets:
            self.faults.count("handshakes_refused")
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "Service Unavailable\n")
        return None

    # -- per connection --------------------------------------------------------------------
    async def _handle(self, ws: ServerConnection) -> None:
        connection = _Connection(ws, self.capacity_bytes)
        self._connections.add(connection)
        sender = asyncio.create_task(self._send_loop(connection))
        try:
            async for message in ws:
                for reply in self._replies(connection, message):
                    connection.put(False, reply)
        except ConnectionClosed:
            pass
        finally:
            self._connections.discard(connection)
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender

    async def _send_loop(self, connection: _Connection) -> None:
        while True:
            notification, message = await connection.queue.get()
            connection.queued_bytes -= len(message)
            if notification and self.faults.notification_delay_ms:
                await asyncio.sleep(self.faults.notification_delay_ms / 1000)
            try:
                await connection.ws.send(message)
            except ConnectionClosed:
                return

    def _replies(self, connection: _Connection, message: str | bytes) -> list[str]:
        try:
            payload = json.loads(message)
        except ValueError:
            return [_error(None, RpcError(-32700, "Parse error"))]
        items = payload if isinstance(payload, list) else [payload]
        replies = []
        for item in items:
            request_id = item.get("id") if isinstance(item, dict) else None
            try:
                if not isinstance(item, dict) or not isinstance(item.get("method"), str):
                    raise RpcError(-32600, "Invalid request")
                params = item.get("params") or []
                result = self._call(
                    connection, item["method"], params if isinstance(params, list) else [params]
                )
                replies.append(json.dumps({"jsonrpc": "2.0", "result": result, "id": request_id}))
            except RpcError as exc:
                replies.append(_error(request_id, exc))
        return replies

    def _call(self, connection: _Connection, method: str, params: list[Any]) -> Any:
        if method.endswith("Unsubscribe") and method[:-11] in ("logs", "slot", "root", "signature"):
            sub_id = params[0] if params else None
            sub = connection.subscriptions.get(sub_id) if isinstance(sub_id, int) else None
            if sub is None or sub.kind != method[:-11]:
                raise RpcError(-32602, "Invalid subscription id.")
            del connection.subscriptions[sub.id]
            return True
        if method == "logsSubscribe":
            sub = self._logs_subscription(params)
        elif method == "slotSubscribe":
            sub = _Subscription(next(self._ids), "slot", "processed")
        elif method == "rootSubscribe":
            sub = _Subscription(next(self._ids), "root", "finalized")
        elif method == "signatureSubscribe":
            sub = self._signature_subscription(params)
        else:
            raise RpcError(-32601, "Method not found")
        connection.subscriptions[sub.id] = sub
        if sub.kind == "signature":
            self._signature_now(connection, sub)
        return sub.id

    def _commitment(self, config: Any) -> Commitment:
        value = (
            (config or {}).get("commitment", "finalized")
            if isinstance(config, dict)
            else "finalized"
        )
        value = _ALIASES.get(value, value)
        if value not in _LEVELS:
            raise RpcError(-32602, f"Invalid params: unknown commitment `{value}`")
        return value  # type: ignore[return-value]

    def _logs_subscription(self, params: list[Any]) -> _Subscription:
        if not params:
            raise RpcError(-32602, "Invalid params: missing filter")
        spec = params[0]
        mentions: str | None = None
        if isinstance(spec, dict) and "mentions" in spec:
            addresses = spec["mentions"]
            if not isinstance(addresses, list) or len(addresses) != 1:
                raise RpcError(-32602, "Invalid Request: Only 1 address supported")
            mentions = str(addresses[0])
        elif spec not in ("all", "allWithVotes"):
            raise RpcError(-32602, "Invalid params: unknown logs filter")
        commitment = self._commitment(params[1] if len(params) > 1 else None)
        return _Subscription(next(self._ids), "logs", commitment, mentions=mentions)

    def _signature_subscription(self, params: list[Any]) -> _Subscription:
        if not params or not isinstance(params[0], str):
            raise RpcError(-32602, "Invalid params: missing signature")
        commitment = self._commitment(params[1] if len(params) > 1 else None)
        return _Subscription(next(self._ids), "signature", commitment, signature=params[0])

    def _signature_now(self, connection: _Connection, sub: _Subscription) -> None:
        """A signature that already reached the commitment is notified at once (as Agave)."""
        slot = self.chain.slot_at(sub.commitment)
        record = self.chain.ledger.transaction(sub.signature or "", slot)
        if record is not None:
            self._push(
                connection,
                "signatureNotification",
                sub.id,
                {"context": {"slot": record.slot}, "value": {"err": record.err}},
            )
            del connection.subscriptions[sub.id]

    # -- notifications ---------------------------------------------------------------------
    def _push(self, connection: _Connection, method: str, sub_id: int, result: Any) -> None:
        copies = self.faults.notification_copies()
        if not copies:
            return
        message = json.dumps(
            {
                "jsonrpc": "2.0",
                "method": method,
                "params": {"result": result, "subscription": sub_id},
            }
        )
        for _ in range(copies):
            connection.put(True, message)

    def _on_block(self, level: Commitment, block: Block) -> None:
        for connection in list(self._connections):
            for sub in list(connection.subscriptions.values()):
                if sub.kind == "slot" and level == "processed":
                    self._push(
                        connection,
                        "slotNotification",
                        sub.id,
                        {
                            "parent": block.parent_slot,
                            "root": self.chain.finalized_slot,
                            "slot": block.slot,
                        },
                    )
                elif sub.kind == "root" and level == "finalized":
                    self._push(connection, "rootNotification", sub.id, block.slot)
                elif sub.commitment != level:
                    continue
                elif sub.kind == "logs":
                    for tx in block.txs:
                        if sub.mentions is None or sub.mentions in tx.account_keys:
                            self._push(
                                connection,
                                "logsNotification",
                                sub.id,
                                {
                                    "context": {"slot": block.slot},
                                    "value": {
                                        "err": tx.err,
                                        "logs": list(tx.logs),
                                        "signature": tx.signature,
                                    },
                                },
                            )
                elif sub.kind == "signature":
                    for tx in block.txs:
                        if tx.signature == sub.signature:
                            self._push(
                                connection,
                                "signatureNotification",
                                sub.id,
                                {"context": {"slot": block.slot}, "value": {"err": tx.err}},
                            )
                            connection.subscriptions.pop(sub.id, None)


def _error(request_id: Any, exc: RpcError) -> str:
    return json.dumps({"jsonrpc": "2.0", "error": exc.to_json(), "id": request_id})
