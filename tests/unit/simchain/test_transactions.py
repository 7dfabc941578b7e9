"""Transactions sent with the real `solana` client: the program's rules, byte for byte."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from solana.rpc.async_api import AsyncClient
from solana.rpc.core import RPCException
from solana.rpc.jsonrpc import JsonRpcRequest
from solana.rpc.models import TxOpts
from solders.hash import Hash
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.rpc.errors import RpcCustomErrorFieldless, SendTransactionPreflightFailureMessage
from solders.signature import Signature
from solders.transaction import VersionedTransaction

from aop.core.accounts import ChannelConfigV2, RootEntry
from aop.core.claims import ClaimInput, ClaimTree, TreeScope, get_claim_format
from aop.core.claims.cumulative_v2 import (
    claim_cumulative_instruction,
    publish_cumulative_root_instruction,
)
from aop.core.events import CumulativeRewardsClaimed, decode_event
from aop.core.pda import associated_token_address
from aop.core.program_logs import extract_program_data
from aop.simchain import SimChainServer
from tests.unit.simchain.conftest import rpc_error

CHANNEL = "twitch:alpha"
SEQ_ERROR = "TransactionErrorInstructionError((0, Tagged(InstructionErrorCustom({}))))"
BAD_SIGNATURE = RpcCustomErrorFieldless.TransactionSignatureVerificationFailure
ROOT = bytes(range(32))
DATASET = bytes(range(32, 64))
TxFactory = Callable[..., VersionedTransaction]


def publish_ix(sim: SimChainServer, payer: Pubkey, root_seq: int) -> Instruction:
    return publish_cumulative_root_instruction(
        program_id=sim.chain.program_id,
        mint=sim.chain.mint,
        payer=payer,
        channel=CHANNEL,
        root_seq=root_seq,
        root=ROOT,
        dataset_hash=DATASET,
    )


async def land(sim: SimChainServer, client: AsyncClient, signature: Signature) -> int:
    """Seal the pending slot, then finalize it; returns the transaction's slot."""
    sim.advance(1)
    status = (await client.get_signature_statuses([signature])).value[0]
    assert status is not None
    sim.advance(sim.config.finality_depth)
    return status.slot


async def test_publish_root_signed_by_publisher_writes_the_root_entry(
    sim: SimChainServer, client: AsyncClient, tx_factory: TxFactory
) -> None:
    """The ChannelConfigV2 decodes to exactly the published RootEntry and latest_root_seq."""
    publisher = sim.chain.keys.publisher
    tx = tx_factory([publish_ix(sim, publisher.pubkey(), 1)], [publisher])
    signature = (await client.send_transaction(tx)).value
    slot = await land(sim, client, signature)
    account = (await client.get_account_info(sim.chain.channel_config(CHANNEL))).value
    assert account is not None
    assert account.owner == sim.chain.program_id
    config = ChannelConfigV2.decode(bytes(account.data))
    assert config.latest_root_seq == 1
    assert config.roots[1] == RootEntry(seq=1, root=ROOT, dataset_hash=DATASET, published_slot=slot)
    empty = RootEntry(0, bytes(32), bytes(32), 0)
    assert config.roots[0] == config.roots[2] == config.roots[3] == empty
    tx_info = (await client.get_transaction(signature)).value
    assert tx_info is not None
    assert tx_info.transaction.meta.err is None
    program = str(sim.chain.program_id)
    assert tx_info.transaction.meta.log_messages[:2] == [
        f"Program {program} invoke [1]",
        "Program log: Instruction: PublishCumulativeRoot",
    ]
    assert tx_info.transaction.meta.log_messages[-1] == f"Program {program} success"


async def test_publish_wrong_root_seq_fails_preflight_with_6008(
    sim: SimChainServer, client: AsyncClient, tx_factory: TxFactory
) -> None:
    """root_seq must be latest + 1: seq 2 on a fresh channel is InvalidRootSeq (0x1778)."""
    publisher = sim.chain.keys.publisher
    tx = tx_factory([publish_ix(sim, publisher.pubkey(), 2)], [publisher])
    with pytest.raises(RPCException) as caught:
        await client.send_transaction(tx)
    error = rpc_error(caught.value)
    assert isinstance(error, SendTransactionPreflightFailureMessage)
    assert error.message == (
        "Transaction simulation failed: "
        "Error processing Instruction 0: custom program error: 0x1778"
    )
    assert str(error.data.err) == SEQ_ERROR.format(6008)
    logs = error.data.logs
    assert logs[-1] == f"Program {sim.chain.program_id} failed: custom program error: 0x1778"
    assert "Error Code: InvalidRootSeq. Error Number: 6008." in logs[-3]


async def test_publish_wrong_root_seq_without_preflight_lands_as_failed(
    sim: SimChainServer, client: AsyncClient, tx_factory: TxFactory
) -> None:
    """Skipping preflight, the failed transaction lands with err InstructionError [0, 6008]."""
    publisher = sim.chain.keys.publisher
    tx = tx_factory([publish_ix(sim, publisher.pubkey(), 5)], [publisher])
    signature = (await client.send_transaction(tx, opts=TxOpts(skip_preflight=True))).value
    await land(sim, client, signature)
    meta = (await client.get_transaction(signature)).value.transaction.meta
    assert str(meta.err) == SEQ_ERROR.format(6008)
    assert meta.fee == 5000
    sigs = (await client.get_signatures_for_address(sim.chain.program_id)).value
    assert [s.signature for s in sigs] == [signature]
    assert sigs[0].err is not None
    assert sim.emitted_event_ids() == []


async def test_publish_by_a_stranger_is_unauthorized(
    sim: SimChainServer, client: AsyncClient, tx_factory: TxFactory
) -> None:
    """Only the admin or the publisher may publish (Unauthorized, 6000 = 0x1770)."""
    stranger = sim.chain.keys.wallet(0)
    tx = tx_factory([publish_ix(sim, stranger.pubkey(), 1)], [stranger])
    with pytest.raises(RPCException) as caught:
        await client.send_transaction(tx)
    assert rpc_error(caught.value).message.endswith("custom program error: 0x1770")


async def test_bad_signature_is_rejected(
    sim: SimChainServer, client: AsyncClient, tx_factory: TxFactory
) -> None:
    """A transaction whose signature does not verify gets -32003 and never lands."""
    publisher = sim.chain.keys.publisher
    raw = bytearray(bytes(tx_factory([publish_ix(sim, publisher.pubkey(), 1)], [publisher])))
    raw[10] ^= 0xFF  # inside the first signature
    with pytest.raises(RPCException) as caught:
        await client.send_raw_transaction(bytes(raw))
    assert rpc_error(caught.value) == BAD_SIGNATURE
    sim.advance(1)
    assert sim.chain.ledger.transaction_count() == 0


async def is_blockhash_valid(client: AsyncClient, blockhash: Hash) -> bool:
    request = JsonRpcRequest(
        method="isBlockhashValid", params=[str(blockhash), {"commitment": "processed"}]
    )
    return bool((await client.send_rpc_request(request, dict))["value"])


async def test_expired_blockhash_is_rejected(
    sim: SimChainServer, client: AsyncClient, tx_factory: TxFactory
) -> None:
    """A blockhash is usable up to lastValidBlockHeight (its slot + 150), then not found."""
    publisher = sim.chain.keys.publisher
    old = (await client.get_latest_blockhash("processed")).value
    sim.advance(149)  # the pending block is at old + 150 = lastValidBlockHeight
    first = tx_factory(
        [publish_ix(sim, publisher.pubkey(), 1)], [publisher], blockhash=old.blockhash
    )
    await land(sim, client, (await client.send_transaction(first)).value)
    assert await is_blockhash_valid(client, old.blockhash) is False
    late = tx_factory(
        [publish_ix(sim, publisher.pubkey(), 2)], [publisher], blockhash=old.blockhash
    )
    with pytest.raises(RPCException) as caught:
        await client.send_transaction(late)
    error = rpc_error(caught.value)
    assert error.message == "Transaction simulation failed: Blockhash not found"
    assert str(error.data.err) == "TransactionErrorFieldless.BlockhashNotFound"
    assert old.last_valid_block_height == sim.config.first_slot + 150


def claim_tree(sim: SimChainServer, root_seq: int, totals: dict[Keypair, int]) -> ClaimTree:
    scope = TreeScope(sim.chain.program_id, sim.chain.mint, "sim:claims", root_seq, 0)
    inputs = [ClaimInput(bytes(k.pubkey()), total) for k, total in totals.items()]
    return get_claim_format("cumulative-v2").build(scope, inputs)


def claim_ix(
    sim: SimChainServer, claimer: Keypair, tree: ClaimTree, total: int, proof: list[bytes]
) -> Instruction:
    return claim_cumulative_instruction(
        program_id=sim.chain.program_id,
        mint=sim.chain.mint,
        claimer=claimer.pubkey(),
        channel="sim:claims",
        root_seq=tree.scope.root_seq,
        cumulative_total=total,
        proof=proof,
        creator_wallet=sim.chain.keys.creator("sim:claims").pubkey(),
    )


async def publish_tree(
    sim: SimChainServer, client: AsyncClient, tx_factory: TxFactory, tree: ClaimTree
) -> None:
    publisher = sim.chain.keys.publisher
    ix = publish_cumulative_root_instruction(
        program_id=sim.chain.program_id,
        mint=sim.chain.mint,
        payer=publisher.pubkey(),
        channel="sim:claims",
        root_seq=tree.scope.root_seq,
        root=tree.root,
        dataset_hash=tree.dataset_hash,
    )
    await land(sim, client, (await client.send_transaction(tx_factory([ix], [publisher]))).value)


async def token_balance(client: AsyncClient, owner: Pubkey, sim: SimChainServer) -> int:
    ata = associated_token_address(owner=owner, mint=sim.chain.mint)
    return int((await client.get_token_account_balance(ata, "confirmed")).value.amount)


async def test_claim_pays_the_delta_and_emits_the_event_once(
    sim: SimChainServer, client: AsyncClient, tx_factory: TxFactory
) -> None:
    """Valid proof: pays total - claimed, emits CumulativeRewardsClaimed; the same total again
    pays nothing and emits nothing; a higher total under the next root pays the difference."""
    claimer, other = sim.chain.keys.wallet(1), sim.chain.keys.wallet(2)
    first = claim_tree(sim, 1, {claimer: 7_000_000_000, other: 5, Keypair(): 9})
    await publish_tree(sim, client, tx_factory, first)
    before = await token_balance(client, claimer.pubkey(), sim)
    proof = first.proof_for(bytes(claimer.pubkey()))
    claim = tx_factory([claim_ix(sim, claimer, first, 7_000_000_000, proof)], [claimer])
    signature = (await client.send_transaction(claim)).value
    await land(sim, client, signature)
    assert await token_balance(client, claimer.pubkey(), sim) == before + 7_000_000_000
    logs = (await client.get_transaction(signature)).value.transaction.meta.log_messages
    payloads = extract_program_data(logs, sim.chain.program_id).payloads
    assert [decode_event(p.data) for p in payloads] == [
        CumulativeRewardsClaimed(
            channel=bytes(sim.chain.channel_config("sim:claims")),
            claimer=bytes(claimer.pubkey()),
            user_amount=7_000_000_000,
            creator_amount=0,
            cumulative_total=7_000_000_000,
            root_seq=1,
        )
    ]
    assert "Program TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb invoke [2]" in logs
    assert sim.emitted_event_ids() == [f"{signature}:0"]

    repeat = tx_factory([claim_ix(sim, claimer, first, 7_000_000_000, proof)], [claimer])
    assert bytes(repeat) != bytes(claim)  # a newer blockhash, so not a duplicate
    again = (await client.send_transaction(repeat)).value
    await land(sim, client, again)
    assert await token_balance(client, claimer.pubkey(), sim) == before + 7_000_000_000
    again_logs = (await client.get_transaction(again)).value.transaction.meta.log_messages
    assert extract_program_data(again_logs, sim.chain.program_id).payloads == ()
    assert sim.emitted_event_ids() == [f"{signature}:0"]

    second = claim_tree(sim, 2, {claimer: 9_500_000_000, other: 5})
    await publish_tree(sim, client, tx_factory, second)
    proof2 = second.proof_for(bytes(claimer.pubkey()))
    higher = tx_factory([claim_ix(sim, claimer, second, 9_500_000_000, proof2)], [claimer])
    third = (await client.send_transaction(higher)).value
    await land(sim, client, third)
    assert await token_balance(client, claimer.pubkey(), sim) == before + 9_500_000_000
    third_logs = (await client.get_transaction(third)).value.transaction.meta.log_messages
    payload = extract_program_data(third_logs, sim.chain.program_id).payloads[0].data
    event = decode_event(payload)
    assert isinstance(event, CumulativeRewardsClaimed)
    assert (event.user_amount, event.cumulative_total, event.root_seq) == (
        2_500_000_000,
        9_500_000_000,
        2,
    )


async def test_claim_with_a_wrong_proof_fails_with_6005(
    sim: SimChainServer, client: AsyncClient, tx_factory: TxFactory
) -> None:
    """A proof for another total does not verify: InvalidProof (0x1775), nothing paid."""
    claimer = sim.chain.keys.wallet(1)
    tree = claim_tree(sim, 1, {claimer: 1_000, sim.chain.keys.wallet(2): 2_000})
    await publish_tree(sim, client, tx_factory, tree)
    proof = tree.proof_for(bytes(claimer.pubkey()))
    tx = tx_factory([claim_ix(sim, claimer, tree, 1_001, proof)], [claimer])
    with pytest.raises(RPCException) as caught:
        await client.send_transaction(tx)
    error = rpc_error(caught.value)
    assert error.message.endswith("Error processing Instruction 0: custom program error: 0x1775")
    assert str(error.data.err) == SEQ_ERROR.format(6005)
