"""getBlock: Agave's shape, parameters and errors; its transactions are getTransaction's."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
from solana.rpc.async_api import AsyncClient
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction

from aop.simchain import SimChainServer, SimConfig
from tests.unit.simchain.conftest import QUIET

#: slot 1005 is finalized after `advance(10)` (tip 1010, confirmed 1009, finalized 1006).
SLOT = 1005


@pytest.fixture
def sim_config() -> SimConfig:
    """The quiet chain with its workload on: ~16 events, several program txs per slot, a
    fifth of them failing."""
    return QUIET.replace(workload=True, rate=40.0, failed_tx_ratio=0.2)


async def rpc(sim: SimChainServer, method: str, *params: Any) -> dict[str, Any]:
    """The raw JSON-RPC reply (result or error) of one call."""
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
    async with httpx.AsyncClient() as http:
        reply = (await http.post(sim.http_url, json=body)).json()
    return dict(reply)


async def test_get_block_holds_the_slot_transactions_as_get_transaction_renders_them(
    sim: SimChainServer,
) -> None:
    """Block order equals the ledger's; each entry is getTransaction's answer less slot and
    blockTime; rewards on by default, as Agave."""
    sim.advance(10)
    ledger_block = sim.chain.ledger.block(SLOT)
    assert ledger_block is not None
    records = ledger_block.txs
    assert len(records) >= 3 and len({r.err is None for r in records}) == 2  # some fail
    block = (await rpc(sim, "getBlock", SLOT))["result"]
    assert {k: v for k, v in block.items() if k != "transactions"} == {
        "blockHeight": SLOT,
        "blockTime": sim.chain.block_time(SLOT),
        "blockhash": str(sim.chain.keys.blockhash(SLOT)),
        "parentSlot": SLOT - 1,
        "previousBlockhash": str(sim.chain.keys.blockhash(SLOT - 1)),
        "rewards": [],
    }
    entries = block["transactions"]
    assert [e["transaction"]["signatures"][0] for e in entries] == [r.signature for r in records]
    for entry, record in zip(entries, records, strict=True):
        single = (await rpc(sim, "getTransaction", record.signature))["result"]
        assert single.pop("slot") == SLOT and single.pop("blockTime") == block["blockTime"]
        assert entry == single  # no "version" without maxSupportedTransactionVersion
        assert entry["meta"]["logMessages"] == list(record.logs)

    versioned = await rpc(sim, "getBlock", SLOT, {"maxSupportedTransactionVersion": 0})
    assert [e["version"] for e in versioned["result"]["transactions"]] == ["legacy"] * len(records)
    # the deprecated positional encoding, as getTransaction takes it
    raw = (await rpc(sim, "getBlock", SLOT, "base64"))["result"]["transactions"]
    assert [base64.b64decode(e["transaction"][0]) for e in raw] == [r.raw for r in records]
    assert sim.rpc.served["getBlock"] == 3


async def test_get_block_detail_levels_and_rewards(sim: SimChainServer) -> None:
    """transactionDetails signatures/none and rewards false drop what Agave drops."""
    sim.advance(10)
    ledger_block = sim.chain.ledger.block(SLOT)
    assert ledger_block is not None
    signatures = [r.signature for r in ledger_block.txs]
    header = {"blockHeight", "blockTime", "blockhash", "parentSlot", "previousBlockhash"}

    listed = (await rpc(sim, "getBlock", SLOT, {"transactionDetails": "signatures"}))["result"]
    assert set(listed) == header | {"rewards", "signatures"}
    assert listed["signatures"] == signatures
    bare = await rpc(sim, "getBlock", SLOT, {"transactionDetails": "none", "rewards": False})
    assert set(bare["result"]) == header
    quiet = (await rpc(sim, "getBlock", SLOT, {"rewards": False}))["result"]
    assert set(quiet) == header | {"transactions"}
    assert all("rewards" not in e["meta"] for e in quiet["transactions"])
    refused = await rpc(sim, "getBlock", SLOT, {"transactionDetails": "accounts"})
    assert refused["error"] == {
        "code": -32602,
        "message": "Invalid params: simchain serves transactionDetails full, signatures or none "
        "(got accounts)",
    }


async def test_get_block_parses_with_the_solana_client(
    sim: SimChainServer, client: AsyncClient
) -> None:
    """What `AsyncClient.get_block` sends (explicit nulls included) and parses; the logs are
    getTransaction's for the same signature."""
    sim.advance(10)
    ledger_block = sim.chain.ledger.block(SLOT)
    assert ledger_block is not None
    value = (
        await client.get_block(SLOT, max_supported_transaction_version=0, commitment="confirmed")
    ).value
    assert (value.block_height, value.block_time, value.parent_slot) == (
        SLOT,
        sim.chain.block_time(SLOT),
        SLOT - 1,
    )
    assert [str(tx.transaction.signatures[0]) for tx in value.transactions] == [
        r.signature for r in ledger_block.txs
    ]
    for tx in value.transactions:
        single = await client.get_transaction(
            tx.transaction.signatures[0], max_supported_transaction_version=0
        )
        assert single.value is not None
        assert tx.meta.log_messages == single.value.transaction.meta.log_messages
        assert tx.meta.err == single.value.transaction.meta.err


async def test_get_block_errors_follow_agave(sim: SimChainServer) -> None:
    """Above the commitment or not produced: -32004; before the first slot: -32001 (cleaned
    up); processed: refused; a v0 transaction needs maxSupportedTransactionVersion."""
    sim.advance(10)

    def not_available(slot: int) -> dict[str, Any]:
        return {"code": -32004, "message": f"Block not available for slot {slot}"}

    assert (await rpc(sim, "getBlock", 1007))["error"] == not_available(1007)
    assert "result" in await rpc(sim, "getBlock", 1007, {"commitment": "confirmed"})
    assert (await rpc(sim, "getBlock", 1010, {"commitment": "confirmed"}))[
        "error"
    ] == not_available(1010)
    assert (await rpc(sim, "getBlock", 5000))["error"] == not_available(5000)
    assert (await rpc(sim, "getBlock", 999))["error"] == {
        "code": -32001,
        "message": "Block 999 cleaned up, does not exist on node. First available block: 1000",
    }
    processed = await rpc(sim, "getBlock", SLOT, {"commitment": "processed"})
    assert processed["error"] == {
        "code": -32602,
        "message": "Invalid params: Method does not support commitment below `confirmed`",
    }
    assert (await rpc(sim, "getBlock", -1))["error"]["code"] == -32602

    sim.chain.workload.enabled = False
    wallet = sim.chain.keys.wallet(0)
    ix = transfer(
        TransferParams(from_pubkey=wallet.pubkey(), to_pubkey=Keypair().pubkey(), lamports=7)
    )
    blockhash = sim.chain.keys.blockhash(sim.chain.tip)
    message = MessageV0.try_compile(wallet.pubkey(), [ix], [], blockhash)
    v0 = VersionedTransaction(message, [wallet])
    signature = sim.chain.send(v0, skip_preflight=False)
    assert signature == str(v0.signatures[0])
    slot = sim.chain.tip + 1
    sim.advance(5)
    assert (await rpc(sim, "getBlock", slot))["error"]["code"] == -32015
    entries = (await rpc(sim, "getBlock", slot, {"maxSupportedTransactionVersion": 0}))["result"][
        "transactions"
    ]
    assert [(e["transaction"]["signatures"], e["version"]) for e in entries] == [([signature], 0)]
    # a signature listing needs no version support (Agave checks versions only when encoding)
    assert (await rpc(sim, "getBlock", slot, {"transactionDetails": "signatures"}))["result"][
        "signatures"
    ] == [signature]
