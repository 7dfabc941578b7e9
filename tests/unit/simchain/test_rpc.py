"""Standard JSON-RPC methods: answers parse with the `solana`/`solders` response types."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from solana.rpc.async_api import AsyncClient
from solana.rpc.core import RPCException
from solders.keypair import Keypair
from solders.rpc.errors import InvalidParamsMessage
from solders.signature import Signature
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction

from aop.core.accounts import ProtocolState
from aop.core.claims.cumulative_v2 import publish_cumulative_root_instruction
from aop.core.pda import protocol_state_address
from aop.simchain import SimChainServer
from aop.simchain.invoke import b58
from tests.unit.simchain.conftest import rpc_error

TxFactory = Callable[..., VersionedTransaction]


async def test_slots_follow_commitment_depths(sim: SimChainServer, client: AsyncClient) -> None:
    """processed = tip, confirmed = tip - 1, finalized = tip - finality_depth (4 here)."""
    sim.advance(10)
    assert (await client.get_slot("processed")).value == 1010
    assert (await client.get_slot("confirmed")).value == 1009
    assert (await client.get_slot("finalized")).value == 1006
    assert (await client.get_slot()).value == 1006  # the default commitment is finalized
    assert (await client.get_block_height("processed")).value == 1010
    assert (await client.get_block_time(1005)).value == sim.config.genesis_time + 2
    with pytest.raises(RPCException, match="Block not available for slot 1010"):
        await client.get_block_time(1010)


async def test_node_info_methods_parse(sim: SimChainServer, client: AsyncClient) -> None:
    """getHealth, getVersion, getEpochInfo, getMinimumBalanceForRentExemption, getGenesisHash."""
    assert await client.is_connected() is True
    assert (await client.get_version()).value.solana_core == "2.2.16"
    epoch = (await client.get_epoch_info("processed")).value
    assert (epoch.absolute_slot, epoch.epoch, epoch.slot_index) == (1000, 0, 1000)
    assert (await client.get_minimum_balance_for_rent_exemption(482)).value == 4_245_600
    assert str((await client.get_genesis_hash()).value) == str(sim.chain.keys.blockhash(1000))


async def test_account_reads_see_the_commitment_slot(
    sim: SimChainServer, client: AsyncClient
) -> None:
    """The ProtocolState decodes with core; an account written later is absent at finalized."""
    address = protocol_state_address(program_id=sim.chain.program_id, mint=sim.chain.mint).address
    account = (await client.get_account_info(address)).value
    assert account is not None
    state = ProtocolState.decode(bytes(account.data))
    assert state.admin == bytes(sim.chain.keys.admin.pubkey())
    assert state.publisher == bytes(sim.chain.keys.publisher.pubkey())
    assert (state.paused, state.mint) == (False, bytes(sim.chain.mint))
    fresh = Keypair().pubkey()
    sim.chain.setup_protocol(publisher=fresh)
    sim.advance(1)
    processed = (await client.get_account_info(address, "processed")).value
    assert ProtocolState.decode(bytes(processed.data)).publisher == bytes(fresh)
    finalized = (await client.get_account_info(address)).value
    assert ProtocolState.decode(bytes(finalized.data)).publisher == state.publisher
    many = (await client.get_multiple_accounts([address, fresh], "processed")).value
    assert many[0] is not None and many[1] is not None  # fresh got fee lamports at set-up
    assert many[1].lamports == 100 * 10**9
    assert (await client.get_balance(Keypair().pubkey(), "processed")).value == 0


async def test_request_airdrop_lands_as_a_faucet_transfer(
    sim: SimChainServer, client: AsyncClient
) -> None:
    """requestAirdrop returns a real transaction signature that lands in the next slot."""
    wallet = Keypair().pubkey()
    signature = (await client.request_airdrop(wallet, 2_000_000_000)).value
    assert (await client.get_signature_statuses([signature])).value == [None]
    sim.advance(1)
    status = (await client.get_signature_statuses([signature])).value[0]
    assert (status.slot, status.confirmations, status.err) == (1001, 0, None)
    assert (await client.get_balance(wallet, "processed")).value == 2_000_000_000
    sim.advance(4)
    status = (await client.get_signature_statuses([signature])).value[0]
    assert status.confirmations is None
    assert str(status.confirmation_status) == "TransactionConfirmationStatus.Finalized"


async def publish_many(
    sim: SimChainServer, client: AsyncClient, tx_factory: TxFactory, per_slot: list[int]
) -> list[Signature]:
    """Publishes roots 1, 2, ... with `per_slot[i]` transactions in slot i; chain order."""
    publisher = sim.chain.keys.publisher
    signatures: list[Signature] = []
    seq = 0
    for count in per_slot:
        for _ in range(count):
            seq += 1
            ix = publish_cumulative_root_instruction(
                program_id=sim.chain.program_id,
                mint=sim.chain.mint,
                payer=publisher.pubkey(),
                channel="twitch:alpha",
                root_seq=seq,
                root=bytes([seq]) * 32,
                dataset_hash=bytes(32),
            )
            tx = tx_factory([ix], [publisher])
            signatures.append((await client.send_transaction(tx)).value)
        sim.advance(1)
    return signatures


async def test_signatures_for_address_pages_exactly(
    sim: SimChainServer, client: AsyncClient, tx_factory: TxFactory
) -> None:
    """Newest first (reverse block order within a slot); before/until exclusive; limit."""
    chain_order = await publish_many(sim, client, tx_factory, [3, 1, 4, 2])
    sim.advance(4)
    newest_first = list(reversed(chain_order))
    program = sim.chain.program_id

    async def page(**kwargs: object) -> list[Signature]:
        result = await client.get_signatures_for_address(program, **kwargs)  # type: ignore[arg-type]
        return [s.signature for s in result.value]

    assert await page() == newest_first
    first = await page(limit=4)
    assert first == newest_first[:4]
    second = await page(limit=4, before=first[-1])
    assert second == newest_first[4:8]
    third = await page(limit=4, before=second[-1])
    assert third == newest_first[8:]
    assert await page(until=chain_order[5]) == newest_first[:4]
    assert await page(before=newest_first[2], until=chain_order[2]) == newest_first[3:7]
    assert await page(before=Keypair().sign_message(b"unknown")) == []
    full = (await client.get_signatures_for_address(program, limit=1)).value[0]
    assert (full.slot, full.err, full.memo) == (1004, None, None)
    assert full.block_time == sim.chain.block_time(1004)
    assert str(full.confirmation_status) == "TransactionConfirmationStatus.Finalized"


async def test_signatures_for_address_at_confirmed_and_its_limits(
    sim: SimChainServer, client: AsyncClient, tx_factory: TxFactory
) -> None:
    """confirmed shows the newer slots; processed and limit > 1000 are refused as in Agave."""
    signatures = await publish_many(sim, client, tx_factory, [1, 1])
    confirmed = (
        await client.get_signatures_for_address(sim.chain.program_id, commitment="confirmed")
    ).value
    assert [s.signature for s in confirmed] == signatures[:1]
    assert str(confirmed[0].confirmation_status) == "TransactionConfirmationStatus.Confirmed"
    assert (await client.get_signatures_for_address(sim.chain.program_id)).value == []
    with pytest.raises(RPCException) as caught:
        await client.get_signatures_for_address(sim.chain.program_id, commitment="processed")
    assert isinstance(rpc_error(caught.value), InvalidParamsMessage)
    assert "commitment below `confirmed`" in rpc_error(caught.value).message
    with pytest.raises(RPCException, match="Invalid limit; max 1000"):
        await client.get_signatures_for_address(sim.chain.program_id, limit=1001)


async def test_get_transaction_shapes(
    sim: SimChainServer, client: AsyncClient, tx_factory: TxFactory
) -> None:
    """json and base64 encodings; null before the commitment; the signed bytes round-trip."""
    [signature] = await publish_many(sim, client, tx_factory, [1])
    assert (await client.get_transaction(signature, commitment="confirmed")).value is None
    sim.advance(1)  # tip 1002: the transaction's slot 1001 is confirmed, not finalized
    assert (await client.get_transaction(signature)).value is None
    confirmed = (await client.get_transaction(signature, commitment="confirmed")).value
    assert confirmed is not None
    assert (confirmed.slot, confirmed.block_time) == (1001, sim.chain.block_time(1001))
    message = confirmed.transaction.transaction.message
    assert str(message.account_keys[0]) == str(sim.chain.keys.publisher.pubkey())
    assert confirmed.transaction.meta.compute_units_consumed > 0
    raw = (await client.get_transaction(signature, "base64", "confirmed", 0)).value
    decoded = raw.transaction.transaction
    assert decoded.signatures[0] == signature
    assert decoded.verify_with_results() == [True]


async def test_jsonrpc_errors_and_batches(sim: SimChainServer) -> None:
    """Batch answers in order; unknown method -32601; bad JSON -32700; empty batch -32600."""
    async with httpx.AsyncClient() as http:
        batch = [
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "getSlot",
                "params": [{"commitment": "processed"}],
            },
            {"jsonrpc": "2.0", "id": "b", "method": "getNope"},
            {"jsonrpc": "2.0", "id": 3, "method": "getBalance", "params": ["not-a-key"]},
        ]
        assert (await http.post(sim.http_url, json=batch)).json() == [
            {"jsonrpc": "2.0", "result": 1000, "id": 1},
            {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "b"},
            {
                "jsonrpc": "2.0",
                "error": {"code": -32602, "message": "Invalid params: Invalid"},
                "id": 3,
            },
        ]
        assert (await http.post(sim.http_url, content=b"{")).json() == {
            "jsonrpc": "2.0",
            "error": {"code": -32700, "message": "Parse error"},
            "id": None,
        }
        assert (await http.post(sim.http_url, json=[])).json()["error"]["code"] == -32600
        assert (await http.get(sim.http_url + "/health")).text == "ok"


async def test_simulate_transaction_reports_logs_without_landing(
    sim: SimChainServer, client: AsyncClient, tx_factory: TxFactory
) -> None:
    """simulateTransaction runs the program rules and changes nothing."""
    publisher = sim.chain.keys.publisher
    ix = publish_cumulative_root_instruction(
        program_id=sim.chain.program_id,
        mint=sim.chain.mint,
        payer=publisher.pubkey(),
        channel="twitch:alpha",
        root_seq=9,
        root=bytes(32),
        dataset_hash=bytes(32),
    )
    result = (await client.simulate_transaction(tx_factory([ix], [publisher]))).value
    assert (
        str(result.err)
        == "TransactionErrorInstructionError((0, Tagged(InstructionErrorCustom(6008))))"
    )
    assert result.logs[1] == "Program log: Instruction: PublishCumulativeRoot"
    assert result.units_consumed > 0
    sim.advance(1)
    assert sim.chain.ledger.transaction_count() == 0


async def test_send_transaction_accepts_base58_the_default_encoding(
    sim: SimChainServer, tx_factory: TxFactory
) -> None:
    """Without `encoding`, sendTransaction reads base58, as Agave does."""
    wallet = sim.chain.keys.wallet(0)
    ix = transfer(
        TransferParams(from_pubkey=wallet.pubkey(), to_pubkey=Keypair().pubkey(), lamports=7)
    )
    tx = tx_factory([ix], [wallet])
    body = {"jsonrpc": "2.0", "id": 1, "method": "sendTransaction", "params": [b58(bytes(tx))]}
    async with httpx.AsyncClient() as http:
        reply = (await http.post(sim.http_url, json=body)).json()
    assert reply == {"jsonrpc": "2.0", "result": str(tx.signatures[0]), "id": 1}
    assert sim.chain.ledger.pending[0].logs == (
        "Program 11111111111111111111111111111111 invoke [1]",
        "Program 11111111111111111111111111111111 success",
    )


async def test_set_multi_event_ratio_control(sim: SimChainServer) -> None:
    """sim_setMultiEventRatio changes the running workload's mix; out of 0..1 is -32602."""

    def call(ratio: float) -> dict[str, object]:
        return {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "sim_setMultiEventRatio",
            "params": {"ratio": ratio},
        }

    async with httpx.AsyncClient() as http:
        assert (await http.post(sim.http_url, json=call(1.0))).json() == {
            "jsonrpc": "2.0",
            "result": {"multi_event_ratio": 1.0},
            "id": 1,
        }
        assert sim.chain.workload.multi_event_ratio == 1.0
        assert (await http.post(sim.http_url, json=call(2.0))).json()["error"] == {
            "code": -32602,
            "message": "Invalid params: multi_event_ratio must be in 0..1 (got 2.0)",
        }


async def test_rotate_channels_control(sim: SimChainServer) -> None:
    """sim_rotateChannels moves the hot spot `by` channels on (default 1), modulo their count."""
    count = len(sim.chain.workload.channels)
    assert count == 2  # QUIET's two channels

    async def rotate(**params: int) -> object:
        body = {"jsonrpc": "2.0", "id": 1, "method": "sim_rotateChannels", "params": params}
        async with httpx.AsyncClient() as http:
            return (await http.post(sim.http_url, json=body)).json()["result"]

    assert await rotate() == {"channel_shift": 1}
    assert await rotate(by=3) == {"channel_shift": 0}
    assert sim.chain.workload.status()["channel_shift"] == 0


async def test_pause_seals_the_slot_being_filled(sim: SimChainServer) -> None:
    """After sim_pause every transaction is in a slot <= the tip it reports."""
    signature = sim.chain.airdrop(Keypair().pubkey(), 1)
    tip = sim.chain.tip
    async with httpx.AsyncClient() as http:
        reply = await http.post(
            sim.http_url, json={"jsonrpc": "2.0", "id": 1, "method": "sim_pause"}
        )
    assert reply.json()["result"] == {"enabled": False}
    assert (sim.chain.tip, sim.chain.ledger.pending) == (tip + 1, [])
    assert sim.chain.ledger.transaction(signature, sim.chain.tip).slot == tip + 1  # type: ignore[union-attr]
