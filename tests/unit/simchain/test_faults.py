"""Injected faults do what they say, through the real clients; sim_* stays reachable."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from solana.exceptions import SolanaRpcException
from solana.rpc.async_api import AsyncClient
from solana.rpc.core import RPCException
from solana.rpc.websocket_api import SolanaWsClient
from solders.rpc.config import RpcTransactionLogsFilter
from solders.rpc.errors import NodeUnhealthyMessage
from solders.rpc.responses import SlotNotification
from websockets.exceptions import ConnectionClosedError, InvalidStatus

from aop.simchain import Faults, SimChainServer
from tests.unit.simchain.conftest import rpc_error


async def control(sim: SimChainServer, method: str, params: dict[str, object]) -> object:
    async with httpx.AsyncClient() as http:
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        return (await http.post(sim.http_url, json=body)).json()["result"]


def test_fault_settings_are_validated() -> None:
    """Bad knobs are refused with the name, the rule and the value."""
    faults = Faults()
    with pytest.raises(
        ValueError, match=r"drop_notification_p must be a probability in 0\.\.1 \(got 1\.5\)"
    ):
        faults.update(drop_notification_p=1.5)
    with pytest.raises(ValueError, match="unknown fault 'explode'"):
        faults.update(explode=True)
    with pytest.raises(ValueError, match="rpc_error_mode must be one of jsonrpc, http503, mixed"):
        faults.update(rpc_error_mode="teapot")


async def test_drop_connections_cuts_every_websocket(sim: SimChainServer) -> None:
    """sim_dropConnections aborts the TCP connections: clients see an abnormal close."""
    async with SolanaWsClient(sim.ws_url) as first, SolanaWsClient(sim.ws_url) as second:
        await first.slot_subscribe()
        await second.slot_subscribe()
        assert await control(sim, "sim_dropConnections", {}) == {"dropped": 2}
        for ws in (first, second):
            with pytest.raises(ConnectionClosedError):
                await asyncio.wait_for(ws.recv(), 2)
    assert sim.faults.counts["connections_dropped"] == 2


async def test_dropped_and_duplicated_notifications(sim: SimChainServer) -> None:
    """p=1 drops every notification; duplicate p=1 sends each one twice."""
    async with SolanaWsClient(sim.ws_url) as ws:
        sub = await ws.slot_subscribe()
        await control(sim, "sim_setFaults", {"drop_notification_p": 1.0})
        sim.advance(3)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ws.recv(), 0.15)
        await control(sim, "sim_setFaults", {"clear": True, "duplicate_notification_p": 1.0})
        sim.advance(2)
        notes = [await asyncio.wait_for(ws.recv(), 2) for _ in range(4)]
        assert all(
            isinstance(n, SlotNotification) and n.subscription == sub.subscription_id for n in notes
        )
        assert [n.result.slot for n in notes] == [1004, 1004, 1005, 1005]  # type: ignore[attr-defined]
    assert sim.faults.counts == {"notifications_dropped": 3, "notifications_duplicated": 2}


async def test_notification_delay(sim: SimChainServer) -> None:
    """notification_delay_ms holds each notification back."""
    sim.faults.update(notification_delay_ms=200)
    async with SolanaWsClient(sim.ws_url) as ws:
        await ws.logs_subscribe(filter_=RpcTransactionLogsFilter.All, commitment="processed")
        await ws.slot_subscribe()
        start = time.monotonic()
        sim.advance(1)
        await asyncio.wait_for(ws.recv(), 2)
        assert time.monotonic() - start >= 0.2


async def test_slow_and_failing_http(sim: SimChainServer, client: AsyncClient) -> None:
    """delay_ms slows answers; rpc_error_p=1 fails them as -32005 or HTTP 503; sim_* is exempt."""
    sim.faults.update(delay_ms=150)
    start = time.monotonic()
    assert (await client.get_slot("processed")).value == 1000
    assert time.monotonic() - start >= 0.15
    sim.faults.update(delay_ms=0, rpc_error_p=1.0, rpc_error_mode="jsonrpc")
    with pytest.raises(RPCException) as caught:
        await client.get_slot()
    error = rpc_error(caught.value)
    assert isinstance(error, NodeUnhealthyMessage)
    assert error.message == f"Node is behind by {error.data.num_slots_behind} slots"
    sim.faults.update(rpc_error_mode="http503")
    with pytest.raises(SolanaRpcException) as http_error:
        await client.get_slot()
    assert isinstance(http_error.value.__cause__, Exception)
    assert "503" in str(http_error.value.__cause__)
    status = await control(sim, "sim_status", {})
    assert status["faults"]["counts"] == {"rpc_errors_jsonrpc": 1, "rpc_errors_http503": 1}  # type: ignore[index]


async def test_refused_websocket_handshakes(sim: SimChainServer) -> None:
    """refuse_websockets answers the handshake with HTTP 503 until turned off."""
    sim.faults.update(refuse_websockets=True)
    with pytest.raises(InvalidStatus, match="HTTP 503"):
        await SolanaWsClient(sim.ws_url).connect()
    sim.faults.clear()
    async with SolanaWsClient(sim.ws_url) as ws:
        await ws.slot_subscribe()
