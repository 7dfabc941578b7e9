"""Websocket subscriptions through the real `solana` websocket client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import pytest
from solana.rpc.async_api import AsyncClient
from solana.rpc.websocket_api import SolanaWsClient
from solders.keypair import Keypair
from solders.rpc.config import RpcTransactionLogsFilter, RpcTransactionLogsFilterMentions
from solders.rpc.responses import LogsNotification, SignatureNotification, SlotNotification
from solders.transaction import VersionedTransaction
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from aop.core.claims.cumulative_v2 import publish_cumulative_root_instruction
from aop.simchain import SimChainServer

TxFactory = Callable[..., VersionedTransaction]


async def next_notification(ws: SolanaWsClient, timeout: float = 2.0) -> object:
    return await asyncio.wait_for(ws.recv(), timeout)


async def assert_quiet(ws: SolanaWsClient, seconds: float = 0.15) -> None:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(ws.recv(), seconds)


def publish(sim: SimChainServer, tx_factory: TxFactory, root_seq: int) -> VersionedTransaction:
    publisher = sim.chain.keys.publisher
    ix = publish_cumulative_root_instruction(
        program_id=sim.chain.program_id,
        mint=sim.chain.mint,
        payer=publisher.pubkey(),
        channel="twitch:alpha",
        root_seq=root_seq,
        root=bytes([root_seq]) * 32,
        dataset_hash=bytes(32),
    )
    return tx_factory([ix], [publisher])


async def test_logs_notifications_arrive_at_each_commitment(
    sim: SimChainServer, client: AsyncClient, tx_factory: TxFactory
) -> None:
    """One subscription per level: processed at once, confirmed one slot later, finalized
    when the slot is 4 deep; each carries the slot, signature, err and the full logs."""
    mentions = RpcTransactionLogsFilterMentions(sim.chain.program_id)
    async with SolanaWsClient(sim.ws_url) as ws:
        subs = {
            level: await ws.logs_subscribe(filter_=mentions, commitment=level)
            for level in ("processed", "confirmed", "finalized")
        }
        signature = (await client.send_transaction(publish(sim, tx_factory, 1))).value
        expected_logs = list(sim.chain.ledger.pending[0].logs)
        order = [(1, "processed"), (1, "confirmed"), (3, "finalized")]
        for slots, level in order:
            sim.advance(slots)
            note = await next_notification(ws)
            assert isinstance(note, LogsNotification)
            assert note.subscription == subs[level].subscription_id
            assert note.result.context.slot == 1001
            assert note.result.value.signature == signature
            assert note.result.value.err is None
            assert note.result.value.logs == expected_logs
            await assert_quiet(ws, 0.05)
        await ws.unsubscribe(subs["finalized"])
        await client.send_transaction(publish(sim, tx_factory, 2))
        sim.advance(6)
        levels = [(await next_notification(ws)).subscription for _ in range(2)]  # type: ignore[attr-defined]
        assert levels == [subs["processed"].subscription_id, subs["confirmed"].subscription_id]
        await assert_quiet(ws)


async def test_failed_transactions_are_notified_with_their_error(
    sim: SimChainServer, client: AsyncClient, tx_factory: TxFactory
) -> None:
    """A failed program transaction is notified too, with err set (Custom 6008)."""
    from solana.rpc.models import TxOpts

    async with SolanaWsClient(sim.ws_url) as ws:
        await ws.logs_subscribe(
            filter_=RpcTransactionLogsFilterMentions(sim.chain.program_id), commitment="processed"
        )
        bad = publish(sim, tx_factory, 7)
        await client.send_transaction(bad, opts=TxOpts(skip_preflight=True))
        sim.advance(1)
        note = await next_notification(ws)
        assert isinstance(note, LogsNotification)
        assert str(note.result.value.err) == (
            "TransactionErrorInstructionError((0, Tagged(InstructionErrorCustom(6008))))"
        )
        assert note.result.value.logs[-1].endswith("failed: custom program error: 0x1778")


async def test_mentions_filter_and_all_filter(
    sim: SimChainServer, client: AsyncClient, tx_factory: TxFactory
) -> None:
    """`mentions` sees only transactions naming the program; `all` sees the airdrop too."""
    async with SolanaWsClient(sim.ws_url) as ws:
        program_sub = await ws.logs_subscribe(
            filter_=RpcTransactionLogsFilterMentions(sim.chain.program_id), commitment="processed"
        )
        all_sub = await ws.logs_subscribe(
            filter_=RpcTransactionLogsFilter.All, commitment="processed"
        )
        airdrop = (await client.request_airdrop(Keypair().pubkey(), 5)).value
        signature = (await client.send_transaction(publish(sim, tx_factory, 1))).value
        sim.advance(1)
        seen = [await next_notification(ws) for _ in range(3)]
        got = [(n.subscription, n.result.value.signature) for n in seen]  # type: ignore[attr-defined]
        assert got == [
            (program_sub.subscription_id, signature),
            (all_sub.subscription_id, airdrop),
            (all_sub.subscription_id, signature),
        ]


async def test_slot_and_signature_subscriptions(
    sim: SimChainServer, client: AsyncClient, tx_factory: TxFactory
) -> None:
    """slotNotification per new slot (parent, root, slot); signatureNotification once final."""
    async with SolanaWsClient(sim.ws_url) as ws:
        await ws.slot_subscribe()
        sim.advance(2)
        first, second = await next_notification(ws), await next_notification(ws)
        assert isinstance(first, SlotNotification) and isinstance(second, SlotNotification)
        assert (first.result.parent, first.result.slot, first.result.root) == (1000, 1001, 1000)
        assert (second.result.parent, second.result.slot) == (1001, 1002)
    async with SolanaWsClient(sim.ws_url) as ws:
        signature = (await client.send_transaction(publish(sim, tx_factory, 1))).value
        sub = await ws.signature_subscribe(signature=signature, commitment="finalized")
        sim.advance(4)
        await assert_quiet(ws, 0.1)
        sim.advance(1)
        note = await next_notification(ws)
        assert isinstance(note, SignatureNotification)
        assert (note.subscription, note.result.context.slot) == (sub.subscription_id, 1003)
        assert note.result.value.err is None


async def test_bad_subscription_requests_get_jsonrpc_errors(sim: SimChainServer) -> None:
    """Agave's answers: two `mentions` addresses, an unknown id, an unknown method."""
    async with connect(sim.ws_url) as ws:
        requests = [
            {"method": "logsSubscribe", "params": [{"mentions": ["a", "b"]}]},
            {"method": "logsUnsubscribe", "params": [12345]},
            {"method": "blockSubscribe", "params": ["all"]},
        ]
        replies = []
        for request_id, request in enumerate(requests):
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": request_id, **request}))
            replies.append(json.loads(await ws.recv()))
    assert [(r["id"], r["error"]["code"], r["error"]["message"]) for r in replies] == [
        (0, -32602, "Invalid Request: Only 1 address supported"),
        (1, -32602, "Invalid subscription id."),
        (2, -32601, "Method not found"),
    ]


async def test_a_client_lagging_past_the_queue_capacity_is_disconnected(
    sim: SimChainServer, client: AsyncClient, tx_factory: TxFactory
) -> None:
    """A notification that would take a connection's queue past its capacity cuts that
    connection, as Agave cuts a lagging client; the client reconnects and subscribes again."""
    sim.pubsub.capacity_bytes = 300  # a subscribe reply fits, a logs notification does not
    request = {"jsonrpc": "2.0", "id": 1, "method": "logsSubscribe", "params": ["all"]}
    async with connect(sim.ws_url) as ws:
        await ws.send(json.dumps({**request, "params": ["all", {"commitment": "processed"}]}))
        assert "result" in json.loads(await ws.recv())
        await client.send_transaction(publish(sim, tx_factory, 1))
        sim.advance(1)
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 2.0)
    sim.pubsub.capacity_bytes = 1 << 20
    async with connect(sim.ws_url) as ws:
        await ws.send(json.dumps({**request, "params": ["all", {"commitment": "processed"}]}))
        assert "result" in json.loads(await ws.recv())
        await client.send_transaction(publish(sim, tx_factory, 2))
        sim.advance(1)
        note = json.loads(await asyncio.wait_for(ws.recv(), 2.0))
        assert note["method"] == "logsNotification"
