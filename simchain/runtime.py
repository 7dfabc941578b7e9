"""Transaction execution: the checks a node makes, then each instruction, atomically.

Steps for one transaction (`Runtime.execute`):
1. sanitize the message; optionally verify every signature (solders);
2. reject what cannot land: a signature already processed, an unknown or expired recent
   blockhash (older than 150 slots), a fee payer that cannot pay 5000 lamports per
   signature (plus any priority fee), a program that does not exist, a lookup table;
3. run the instructions in order (Compute Budget, System transfer, Memo, the attention
   program), each framed by `invoke [1]` ... `success`/`failed` log lines;
4. on success keep every account write; on failure keep only the fee, and the error is
   `{"InstructionError": [index, <error>]}`.

Rejections raise `TransactionRejectedError`; instruction failures are part of the `Execution`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any, Literal

from solders.pubkey import Pubkey
from solders.transaction import Legacy, VersionedTransaction

import aop.simchain.program as oracle
from aop.core.program_ids import SYSTEM_PROGRAM_ID
from aop.simchain.config import MAX_PROCESSING_AGE, SimProgram
from aop.simchain.errors import (
    InstructionFailedError,
    InvalidTransactionError,
    SignatureVerificationError,
    TransactionRejectedError,
)
from aop.simchain.invoke import Frame, InvokeContext, Overlay, TxState
from aop.simchain.ledger import Account, Ledger
from aop.simchain.logs import LogCollector

__all__ = [
    "COMPUTE_BUDGET_PROGRAM_ID",
    "LAMPORTS_PER_SIGNATURE",
    "MAX_PROCESSING_AGE",
    "MEMO_PROGRAM_ID",
    "Execution",
    "Runtime",
]

LAMPORTS_PER_SIGNATURE = 5_000
DEFAULT_UNITS_PER_INSTRUCTION = 200_000
MAX_UNITS = 1_400_000
COMPUTE_BUDGET_PROGRAM_ID = Pubkey.from_string("ComputeBudget111111111111111111111111111111")
MEMO_PROGRAM_ID = Pubkey.from_string("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr")


@dataclass
class Execution:
    """What running a transaction produced (committed or not)."""

    signature: str
    version: Literal["legacy", 0]
    account_keys: list[Pubkey]
    err: Any
    logs: list[str]
    truncated: bool
    units: int
    fee: int
    inner_instructions: list[dict[str, Any]]
    pre_balances: list[int]
    post_balances: list[int]
    #: (name, payload, visible) of every event the attention program emitted, in order.
    events: list[tuple[str, bytes, bool]] = field(default_factory=list)
    memo: str | None = None
    changes: dict[Pubkey, Account | None] = field(default_factory=dict)


def _flags(tx: VersionedTransaction) -> tuple[list[bool], list[bool]]:
    """(is_signer, is_writable) per account key, from the message header."""
    header = tx.message.header
    count = len(tx.message.account_keys)
    signed = header.num_required_signatures
    signers = [i < signed for i in range(count)]
    writables = [
        i < signed - header.num_readonly_signed_accounts
        or signed <= i < count - header.num_readonly_unsigned_accounts
        for i in range(count)
    ]
    return signers, writables


class Runtime:
    """Executes transactions against a ledger's newest account state; the attention-oracle
    program at `program_id` runs the rules of version `program`."""

    def __init__(
        self, *, program_id: Pubkey, ledger: Ledger, program: SimProgram = "v0.2.2"
    ) -> None:
        self.program_id = program_id
        self.program = program
        self.ledger = ledger
        self._programs = {
            program_id,
            SYSTEM_PROGRAM_ID,
            COMPUTE_BUDGET_PROGRAM_ID,
            MEMO_PROGRAM_ID,
        }

    # -- checks ----------------------------------------------------------------------------
    @staticmethod
    def verify_signatures(tx: VersionedTransaction) -> None:
        """Raises SignatureVerificationError if any signature does not verify."""
        if not all(tx.verify_with_results()):
            raise SignatureVerificationError()

    @staticmethod
    def sanitize(tx: VersionedTransaction) -> None:
        """Raises InvalidTransactionError if the message does not sanitize."""
        try:
            tx.sanitize()
        except Exception as exc:  # solders raises its own SanitizeError type
            raise InvalidTransactionError(str(exc)) from exc

    def check_blockhash(self, tx: VersionedTransaction) -> None:
        slot = self.ledger.blockhash_slot(str(tx.message.recent_blockhash))
        if slot is None or self.ledger.pending_slot - slot > MAX_PROCESSING_AGE:
            raise TransactionRejectedError("BlockhashNotFound", "Blockhash not found")

    # -- execution -------------------------------------------------------------------------
    def execute(
        self,
        tx: VersionedTransaction,
        *,
        slot: int,
        unix_timestamp: int,
        check_blockhash: bool = True,
    ) -> Execution:
        """Run `tx` against the newest state without committing (see the module steps).

        Raises:
            TransactionRejectedError: the transaction cannot land (step 2).
        """
        message = tx.message
        signature = str(tx.signatures[0])
        if self.ledger.is_known_signature(signature):
            raise TransactionRejectedError(
                "AlreadyProcessed", "This transaction has already been processed"
            )
        if check_blockhash:
            self.check_blockhash(tx)
        if isinstance(tx.version(), int) and message.address_table_lookups:  # type: ignore[union-attr]
            raise TransactionRejectedError(
                "AddressLookupTableNotFound",
                "Transaction loads an address table account that doesn't exist",
            )
        keys = list(message.account_keys)
        for ix in message.instructions:
            if keys[ix.program_id_index] not in self._programs:
                raise TransactionRejectedError(
                    "ProgramAccountNotFound", "Attempt to load a program that does not exist"
                )
        limit, price = self._compute_budget(tx)
        fee = LAMPORTS_PER_SIGNATURE * message.header.num_required_signatures
        fee += (price * limit + 999_999) // 1_000_000
        accounts = Overlay(self.ledger.accounts)
        payer = accounts.get(keys[0])
        if payer is None or payer.lamports == 0:
            raise TransactionRejectedError(
                "AccountNotFound",
                "Attempt to debit an account but found no record of a prior credit.",
            )
        if payer.lamports < fee:
            raise TransactionRejectedError("InsufficientFundsForFee", "Insufficient funds for fee")
        pre = [accounts.lamports(k) for k in keys]
        accounts.put(
            keys[0], Account(payer.lamports - fee, payer.data, payer.owner, payer.executable)
        )
        fee_state = dict(accounts.changes)

        logs = LogCollector()
        state = TxState(accounts, logs, slot, unix_timestamp, keys, limit)
        signers, writables = _flags(tx)
        err: Any = None
        memos: list[str] = []
        for index, ix in enumerate(message.instructions):
            program_id = keys[ix.program_id_index]
            frame = Frame(
                program_id,
                [keys[i] for i in ix.accounts],
                [signers[i] for i in ix.accounts],
                [writables[i] for i in ix.accounts],
                bytes(ix.data),
            )
            state.instruction_index = index
            try:
                self._run(state, frame, memos)
            except InstructionFailedError as exc:
                err = {"InstructionError": [index, exc.error]}
                break
        if err is not None:
            accounts.changes = fee_state
        post = [accounts.lamports(k) for k in keys]
        events = [
            (name, payload, visible)
            for program, payload, name, visible in state.data_lines
            if program == self.program_id
        ]
        version = tx.version()
        return Execution(
            signature=signature,
            version="legacy" if isinstance(version, Legacy) else 0,
            account_keys=keys,
            err=err,
            logs=logs.messages,
            truncated=logs.truncated,
            units=state.used,
            fee=fee,
            inner_instructions=state.inner,
            pre_balances=pre,
            post_balances=post,
            events=events if err is None else [],
            memo="; ".join(memos) if memos else None,
            changes=accounts.changes,
        )

    def _compute_budget(self, tx: VersionedTransaction) -> tuple[int, int]:
        """(compute unit limit, micro-lamports per unit) from Compute Budget instructions."""
        keys = tx.message.account_keys
        limit: int | None = None
        price = 0
        others = 0
        for ix in tx.message.instructions:
            data = bytes(ix.data)
            if keys[ix.program_id_index] != COMPUTE_BUDGET_PROGRAM_ID:
                others += 1
            elif data[:1] == b"\x02" and len(data) >= 5:
                limit = struct.unpack_from("<I", data, 1)[0]
            elif data[:1] == b"\x03" and len(data) >= 9:
                price = struct.unpack_from("<Q", data, 1)[0]
        if limit is None:
            limit = DEFAULT_UNITS_PER_INSTRUCTION * others
        return min(limit, MAX_UNITS), price

    def _run(self, state: TxState, frame: Frame, memos: list[str]) -> None:
        """One top-level instruction, framed by its `invoke [1]` and outcome lines."""
        program = str(frame.program_id)
        logs = state.logs
        logs.invoke(program, 1)
        if frame.program_id == COMPUTE_BUDGET_PROGRAM_ID:
            state.used += 150
            logs.success(program)
            return
        if frame.program_id == SYSTEM_PROGRAM_ID:
            state.used += 150
            try:
                _system(state, frame)
            except InstructionFailedError as exc:
                logs.failed(program, exc.reason)
                raise
            logs.success(program)
            return
        budget = state.budget - state.used
        start = state.used
        try:
            if frame.program_id == MEMO_PROGRAM_ID:
                text = frame.data.decode("utf-8", "replace")
                logs.program_log(f'Memo (len {len(frame.data)}): "{text}"')
                memos.append(f"[{len(frame.data)}] {text}")
                state.used += 2_000 + 60 * len(frame.data)
            else:
                oracle.execute(InvokeContext(state, frame, 1), self.program)
            if state.used > state.budget:
                state.used = state.budget
                raise InstructionFailedError(
                    "ComputationalBudgetExceeded", "Computational budget exceeded"
                )
        except InstructionFailedError as exc:
            logs.consumed(program, state.used - start, budget)
            logs.failed(program, exc.reason)
            raise
        logs.consumed(program, state.used - start, budget)
        logs.success(program)


def _system(state: TxState, frame: Frame) -> None:
    """System program: `Transfer` (index 2) only; anything else is invalid data here."""
    data = frame.data
    if len(data) < 12 or struct.unpack_from("<I", data)[0] != 2 or len(frame.keys) < 2:
        raise InstructionFailedError("InvalidInstructionData", "invalid instruction data")
    lamports = struct.unpack_from("<Q", data, 4)[0]
    source, destination = frame.keys[0], frame.keys[1]
    if not frame.signers[0]:
        raise InstructionFailedError(
            "MissingRequiredSignature", "missing required signature for instruction"
        )
    accounts = state.accounts
    have = accounts.lamports(source)
    if have < lamports:
        state.logs.log(f"Transfer: insufficient lamports {have}, need {lamports}")
        raise InstructionFailedError.custom(1)
    paying = accounts.get(source)
    if paying is None:  # a zero-lamport transfer from an account that does not exist
        return
    accounts.put(source, Account(have - lamports, paying.data, paying.owner, paying.executable))
    receiving = accounts.get(destination)
    if receiving is None:
        accounts.put(destination, Account(lamports, b"", SYSTEM_PROGRAM_ID))
    else:
        accounts.put(
            destination,
            Account(
                receiving.lamports + lamports, receiving.data, receiving.owner, receiving.executable
            ),
        )
