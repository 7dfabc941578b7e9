"""Landing transactions on an in-process SimChain, for the program tests."""

from __future__ import annotations

from solders.instruction import Instruction
from solders.keypair import Keypair

from aop.simchain import SimChain
from aop.simchain.ledger import TxRecord

__all__ = ["custom", "send"]


def send(chain: SimChain, ixs: list[Instruction], signers: list[Keypair]) -> TxRecord:
    """Sign `ixs` (fee payer signers[0]), land them without preflight, seal the slot."""
    record = chain.submit(chain.sign(ixs, signers))
    assert record is not None
    chain.produce_slot()
    return record


def custom(record: TxRecord) -> int | None:
    """The custom program error of a failed transaction (None when it succeeded)."""
    return None if record.err is None else record.err["InstructionError"][1].get("Custom")
