"""How send errors from the node are told apart: refusals vs transient failures."""

from __future__ import annotations

import json

from solana.rpc.core import RPCException

from aop.runtime.errors import RpcUnavailableError
from aop.settlement.errors import TransactionRejectedError
from aop.settlement.rpc import SignatureState, _rejection


class _Error:
    def __init__(self, payload: dict[str, object]) -> None:
        self.payload = payload

    def to_json(self) -> str:
        return json.dumps(self.payload)


def rejection(payload: dict[str, object]) -> Exception:
    return _rejection(RPCException(_Error(payload)))


def test_program_error_carries_the_custom_code() -> None:
    error = rejection(
        {
            "code": -32002,
            "message": "Transaction simulation failed: Error processing Instruction 0: "
            "custom program error: 0x1778",
            "data": {"err": {"InstructionError": [0, {"Custom": 6008}]}},
        }
    )
    assert isinstance(error, TransactionRejectedError)
    assert (error.kind, error.code) == ("program_error", 6008)


def test_blockhash_not_found_and_already_processed_are_recognised() -> None:
    stale = rejection(
        {"code": -32002, "message": "Transaction simulation failed: Blockhash not found"}
    )
    done = rejection({"code": -32002, "message": "This transaction has already been processed"})
    assert isinstance(stale, TransactionRejectedError) and stale.kind == "blockhash_not_found"
    assert isinstance(done, TransactionRejectedError) and done.kind == "already_processed"


def test_node_behind_is_transient() -> None:
    error = rejection({"code": -32005, "message": "Node is behind by 42 slots"})
    assert isinstance(error, RpcUnavailableError)
    assert str(error) == "sendTransaction: Node is behind by 42 slots"


def test_signature_state_reaches_commitments_in_order() -> None:
    confirmed = SignatureState(slot=5, err=None, confirmation="confirmed")
    assert confirmed.reaches("processed") and confirmed.reaches("confirmed")
    assert not confirmed.reaches("finalized")
