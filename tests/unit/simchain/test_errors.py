"""The chain refuses with its own typed errors; the RPC layer answers each with Agave's."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction

from aop.simchain import SimChain, SimChainServer
from aop.simchain.errors import (
    AirdropFailedError,
    ChainRequestError,
    InvalidTransactionError,
    PreflightFailedError,
    ProtocolNotSetUpError,
    RpcError,
    SignatureVerificationError,
    UnknownCommitmentError,
)
from aop.simchain.rpc import rpc_error
from tests.unit.simchain.conftest import QUIET

SYSTEM_PROGRAM = "11111111111111111111111111111111"
MINT = Pubkey(bytes([7] * 32))


@pytest.fixture
def chain() -> SimChain:
    return SimChain(QUIET)


def transfer_tx(chain: SimChain, payer: Keypair, lamports: int) -> VersionedTransaction:
    """`payer` sends `lamports` to a fresh key, signed on the tip's blockhash."""
    ix = transfer(
        TransferParams(from_pubkey=payer.pubkey(), to_pubkey=Keypair().pubkey(), lamports=lamports)
    )
    return VersionedTransaction.from_legacy(chain.sign([ix], [payer]))


def test_unknown_commitment_raises_a_typed_error(chain: SimChain) -> None:
    """slot_at("bogus") is UnknownCommitmentError, a ChainRequestError and no RpcError."""
    with pytest.raises(UnknownCommitmentError, match="unknown commitment `bogus`") as caught:
        chain.slot_at("bogus")
    assert caught.value.commitment == "bogus"
    assert isinstance(caught.value, ChainRequestError)
    assert not isinstance(caught.value, RpcError)


def test_preflight_of_an_unfunded_payer_carries_the_rejection(chain: SimChain) -> None:
    """A payer with no lamports is rejected before running: no logs, no units."""
    with pytest.raises(PreflightFailedError) as caught:
        chain.send(transfer_tx(chain, Keypair(), 1))
    error = caught.value
    reason = "Attempt to debit an account but found no record of a prior credit."
    assert (error.reason, error.err, error.logs, error.units) == (reason, "AccountNotFound", [], 0)
    assert str(error) == f"Transaction simulation failed: {reason}"


def test_preflight_of_a_failing_transfer_carries_the_simulation(chain: SimChain) -> None:
    """The faucet sending 2^63 lamports fails in the System program (custom error 0x1)."""
    with pytest.raises(PreflightFailedError) as caught:
        chain.send(transfer_tx(chain, chain.keys.faucet, 2**63))
    error = caught.value
    assert error.reason == "Error processing Instruction 0: custom program error: 0x1"
    assert error.err == {"InstructionError": [0, {"Custom": 1}]}
    assert error.logs[0] == f"Program {SYSTEM_PROGRAM} invoke [1]"
    assert error.logs[-1] == f"Program {SYSTEM_PROGRAM} failed: custom program error: 0x1"
    assert error.units == 150  # the System program's cost
    assert chain.ledger.pending == []


def test_a_bad_signature_raises_a_typed_error(chain: SimChain) -> None:
    raw = bytearray(bytes(transfer_tx(chain, chain.keys.faucet, 1)))
    raw[10] ^= 0xFF  # inside the first signature
    with pytest.raises(SignatureVerificationError):
        chain.send(VersionedTransaction.from_bytes(bytes(raw)))


def test_a_channel_of_a_mint_without_protocol_raises_a_typed_error(chain: SimChain) -> None:
    with pytest.raises(ProtocolNotSetUpError, match=f"no ProtocolState for mint {MINT}") as caught:
        chain.setup_channel("twitch:gamma", mint=MINT)
    assert caught.value.mint == MINT


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            UnknownCommitmentError("bogus"),
            {"code": -32602, "message": "Invalid params: unknown commitment `bogus`"},
        ),
        (
            InvalidTransactionError("index out of bounds"),
            {"code": -32602, "message": "invalid transaction: index out of bounds"},
        ),
        (
            SignatureVerificationError(),
            {"code": -32003, "message": "Transaction signature verification failure"},
        ),
        (AirdropFailedError(), {"code": -32603, "message": "Internal error: airdrop failed"}),
        (
            ProtocolNotSetUpError(MINT),
            {
                "code": -32602,
                "message": f"Invalid params: no ProtocolState for mint {MINT}; "
                "set up the protocol first",
            },
        ),
        (
            PreflightFailedError("Blockhash not found", err="BlockhashNotFound", logs=[], units=0),
            {
                "code": -32002,
                "message": "Transaction simulation failed: Blockhash not found",
                "data": {
                    "accounts": None,
                    "err": "BlockhashNotFound",
                    "innerInstructions": None,
                    "loadedAccountsDataSize": 0,
                    "logs": [],
                    "replacementBlockhash": None,
                    "returnData": None,
                    "unitsConsumed": 0,
                },
            },
        ),
    ],
)
def test_rpc_error_answers_each_refusal_as_agave(
    error: ChainRequestError, expected: dict[str, Any]
) -> None:
    assert rpc_error(error).to_json() == expected


async def call(sim: SimChainServer, method: str, params: Any) -> dict[str, Any]:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    async with httpx.AsyncClient() as http:
        return dict((await http.post(sim.http_url, json=body)).json())


async def test_served_methods_answer_a_refusal_with_its_rpc_error(sim: SimChainServer) -> None:
    """A Solana method (getSlot) and a sim_* method (sim_setupChannel) both map the chain's
    typed error to the JSON-RPC error object."""
    assert await call(sim, "getSlot", [{"commitment": "bogus"}]) == {
        "jsonrpc": "2.0",
        "error": {"code": -32602, "message": "Invalid params: unknown commitment `bogus`"},
        "id": 1,
    }
    reply = await call(sim, "sim_setupChannel", {"name": "twitch:gamma", "mint": str(MINT)})
    assert reply["error"] == {
        "code": -32602,
        "message": f"Invalid params: no ProtocolState for mint {MINT}; set up the protocol first",
    }
