"""The simulated chain: slots, commitment levels, transactions, and the record of events.

`SimChain` is synchronous and deterministic given its `SimConfig` and the transactions sent
to it; the server drives `produce_slot()` on a timer (as `fill_steps()` then `seal_slot()`,
answering requests between the steps). Each call:

1. lets the workload add its transactions to the pending block;
2. seals the pending block as the new tip (`processed`);
3. moves `confirmed` (tip - confirmation_depth) and `finalized` (tip - finality_depth)
   forward, notifying listeners once per block per level, in that order;
4. appends the events of newly finalized blocks to the authoritative record
   (`emitted_events()`), in chain order: slot, transaction index, event index.
"""

from __future__ import annotations

import logging
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any, Literal

from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction, VersionedTransaction

from aop.core.accounts import ProtocolState
from aop.core.pda import channel_config_address, protocol_state_address
from aop.simchain.config import SimConfig
from aop.simchain.errors import (
    AirdropFailedError,
    PreflightFailedError,
    ProtocolNotSetUpError,
    SimChainError,
    TransactionRejectedError,
    UnknownCommitmentError,
)
from aop.simchain.genesis import Genesis
from aop.simchain.keys import Keys, public_key
from aop.simchain.ledger import Block, EmittedEvent, InnerInstruction, Ledger, TxRecord
from aop.simchain.record import EventRecord
from aop.simchain.runtime import Execution, Runtime
from aop.simchain.workload import Workload

__all__ = ["Commitment", "Listener", "SimChain"]

log = logging.getLogger(__name__)

Commitment = Literal["processed", "confirmed", "finalized"]
#: called as listener(level, block) when `block` reaches commitment `level`.
Listener = Callable[[Commitment, Block], None]

LAMPORTS_PER_SOL = 1_000_000_000
_FAUCET_LAMPORTS = 10**9 * LAMPORTS_PER_SOL
_TREASURY_BALANCE = 10**18
#: how often (in finalized slots) account versions older than finality are dropped.
_PRUNE_EVERY = 256


class SimChain:
    """A deterministic single-leader chain running the attention-oracle program in Python."""

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config = config or SimConfig()
        self.keys = Keys(config.seed)
        self.program_id = config.program_id
        self.mint = config.mint
        self.ledger = Ledger(
            first_slot=config.first_slot,
            genesis_blockhash=str(self.keys.blockhash(config.first_slot)),
            genesis_time=config.genesis_time,
            retain_slots=config.retained_slots,
        )
        self.runtime = Runtime(
            program_id=config.program_id, ledger=self.ledger, program=config.program
        )
        self.genesis = Genesis(self.ledger.accounts, config.program_id)
        self.stats: Counter[str] = Counter()
        self._listeners: list[Listener] = []
        self._confirmed = self._finalized = config.first_slot
        self.record = EventRecord()
        self._truncated: list[dict[str, Any]] = []
        slot = config.first_slot
        self.genesis.fund(self.keys.faucet.pubkey(), _FAUCET_LAMPORTS, slot)
        self.setup_protocol(at_slot=slot)
        if config.program == "deployed":
            self.genesis.global_root(
                mint=self.mint, latest_root_seq=config.global_latest_root_seq, slot=slot
            )
        for name in (*config.channels, *config.claim_channels):
            self.setup_channel(
                name,
                creator_wallet=self.keys.creator(name).pubkey(),
                at_slot=slot,
            )
        self.workload = Workload(self)
        self.workload.enabled = config.workload

    # -- slots and commitment --------------------------------------------------------------
    @property
    def tip(self) -> int:
        return self.ledger.tip

    @property
    def confirmed_slot(self) -> int:
        return self._confirmed

    @property
    def finalized_slot(self) -> int:
        return self._finalized

    def slot_at(self, commitment: str | None) -> int:
        """The slot a read at `commitment` sees (default finalized, as Solana's RPC).

        Raises:
            UnknownCommitmentError: not a commitment level (or an alias) Solana knows.
        """
        if commitment in ("processed", "recent", "single"):
            return self.tip
        if commitment in ("confirmed", "singleGossip"):
            return self._confirmed
        if commitment in (None, "finalized", "max", "root"):
            return self._finalized
        raise UnknownCommitmentError(commitment)

    def commitment_of(self, slot: int) -> Commitment:
        if slot <= self._finalized:
            return "finalized"
        if slot <= self._confirmed:
            return "confirmed"
        return "processed"

    def block_time(self, slot: int) -> int:
        return self.config.genesis_time + (slot - self.config.first_slot) * 400 // 1000

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _notify(self, level: Commitment, block: Block) -> None:
        for listener in list(self._listeners):
            try:
                listener(level, block)
            except Exception:  # a broken subscriber must not stop the chain
                log.exception("chain listener failed", extra={"level": level, "slot": block.slot})

    def produce_slot(self) -> Block:
        """Fill and seal one slot (see the module steps) and return its block."""
        for _ in self.fill_steps():
            pass
        return self.seal_slot()

    def fill_steps(self) -> Iterator[None]:
        """Step 1, one workload transaction per step. Stops early if the workload is paused
        or the slot is sealed by someone else between steps (`sim_pause`, `sim_advance`)."""
        slot = self.ledger.pending_slot
        if not self.workload.enabled:
            return
        for _ in self.workload.fill_steps(slot):
            yield
            if not self.workload.enabled or self.ledger.pending_slot != slot:
                return

    def seal_slot(self) -> Block:
        """Steps 2-4: seal the pending block as the new tip and move the commitments."""
        slot = self.ledger.pending_slot
        block = self.ledger.seal(
            blockhash=str(self.keys.blockhash(slot)), block_time=self.block_time(slot)
        )
        self.stats["slots"] += 1
        self._notify("processed", block)
        confirmed = max(block.slot - self.config.confirmation_depth, self.config.first_slot)
        for s in range(self._confirmed + 1, confirmed + 1):
            self._confirmed = s
            self._notify("confirmed", self.ledger.sealed(s))
        finalized = max(block.slot - self.config.finality_depth, self.config.first_slot)
        for s in range(self._finalized + 1, finalized + 1):
            self._finalized = s
            final = self.ledger.sealed(s)
            self._record(final)
            self._notify("finalized", final)
        return block

    def produce_slots(self, count: int) -> None:
        for _ in range(count):
            self.produce_slot()

    def close(self) -> None:
        """Release the event record's files (the chain cannot finalize slots after this)."""
        self.record.close()

    def _record(self, block: Block) -> None:
        if block.slot % _PRUNE_EVERY == 0:
            self.ledger.accounts.prune(block.slot)
        self.record.append(event for tx in block.txs for event in tx.events)
        for tx in block.txs:
            if tx.truncated and tx.err is None:
                self._truncated.append(
                    {"signature": tx.signature, "slot": tx.slot, "hidden_events": tx.hidden_events}
                )

    # -- the record ------------------------------------------------------------------------
    def emitted_events(self) -> list[EmittedEvent]:
        """Every program event of a successful transaction in a finalized slot, chain order
        (read back from the record's file: for tests, not for a long chain)."""
        return list(self.record)

    def emitted_event_ids(self) -> list[str]:
        return [event.id for event in self.record]

    def truncated_transactions(self) -> list[dict[str, Any]]:
        """Finalized successful transactions whose logs hit `Log truncated`, with how many of
        their events have no visible `Program data:` line (those are not in the record)."""
        return list(self._truncated)

    def status(self) -> dict[str, Any]:
        return {
            "program": self.config.program,
            "tip": self.tip,
            "confirmed": self._confirmed,
            "finalized": self._finalized,
            "first_available": self.ledger.first_available,
            "transactions": self.ledger.transaction_count(),
            "finalized_events": len(self.record),
            "truncated_transactions": len(self._truncated),
            "workload": self.workload.status(),
            "counts": dict(self.stats),
        }

    # -- transactions ----------------------------------------------------------------------
    def latest_blockhash(self, commitment: str | None = None) -> tuple[Hash, int]:
        """(blockhash, lastValidBlockHeight) of the block at `commitment`."""
        slot = self.slot_at(commitment)
        return self.keys.blockhash(slot), slot + 150

    def execute(self, tx: VersionedTransaction, *, check_blockhash: bool = True) -> Execution:
        """Run `tx` on the newest state without landing it (simulation, preflight)."""
        slot = self.ledger.pending_slot
        return self.runtime.execute(
            tx, slot=slot, unix_timestamp=self.block_time(slot), check_blockhash=check_blockhash
        )

    def land(self, execution: Execution, raw: bytes) -> TxRecord:
        """Put an execution into the pending block: its writes (or only its fee) apply.

        The record is kept compact, as the ledger keeps thousands: log lines and account keys
        are interned (most recur in every transaction of a kind, and interned strings go when
        the last transaction holding them is pruned), CPIs are tuples."""
        slot = self.ledger.pending_slot
        self.ledger.accounts.put_many(execution.changes, slot)
        visible = [(name, payload) for name, payload, shown in execution.events if shown]
        record = TxRecord(
            signature=execution.signature,
            slot=slot,
            index=len(self.ledger.pending),
            raw=raw,
            version=execution.version,
            account_keys=tuple(sys.intern(str(k)) for k in execution.account_keys),
            err=execution.err,
            logs=tuple(map(sys.intern, execution.logs)),
            inner_instructions=tuple(
                InnerInstruction(
                    ix["programIdIndex"],
                    bytes(ix["accounts"]),
                    ix["data"],
                    ix["stackHeight"],
                    ix["top"],
                )
                for ix in execution.inner_instructions
            ),
            fee=execution.fee,
            pre_balances=tuple(execution.pre_balances),
            post_balances=tuple(execution.post_balances),
            units=execution.units,
            events=tuple(
                EmittedEvent(execution.signature, i, slot, name, payload)
                for i, (name, payload) in enumerate(visible)
            ),
            truncated=execution.truncated,
            hidden_events=len(execution.events) - len(visible),
            memo=execution.memo,
        )
        self.ledger.add_pending(record)
        self.stats["transactions"] += 1
        self.stats["failed" if record.err is not None else "succeeded"] += 1
        self.stats["events"] += len(record.events)
        return record

    def send(self, tx: VersionedTransaction, *, skip_preflight: bool = False) -> str:
        """`sendTransaction`: preflight (verify, simulate) unless skipped, then land.

        Without preflight a transaction that cannot land is dropped silently (its signature is
        returned and never confirms) and a failing one lands as failed, as on a real cluster.

        Raises:
            InvalidTransactionError: the message does not sanitize.
            SignatureVerificationError: with preflight, a signature does not verify.
            PreflightFailedError: with preflight, the transaction is rejected or fails.
        """
        Runtime.sanitize(tx)
        signature = str(tx.signatures[0])
        if not skip_preflight:
            Runtime.verify_signatures(tx)
        elif not all(tx.verify_with_results()):
            self.stats["dropped"] += 1
            return signature
        try:
            execution = self.execute(tx)
        except TransactionRejectedError as exc:
            if skip_preflight:
                self.stats["dropped"] += 1
                return signature
            raise PreflightFailedError(exc.message, err=exc.err, logs=[], units=0) from exc
        if execution.err is not None and not skip_preflight:
            index, error = execution.err["InstructionError"]
            raise PreflightFailedError(
                f"Error processing Instruction {index}: {_error_text(error)}",
                err=execution.err,
                logs=execution.logs,
                units=execution.units,
            )
        self.land(execution, bytes(tx))
        return signature

    def submit(self, tx: VersionedTransaction | Transaction) -> TxRecord | None:
        """Land a transaction the simulator built itself (no preflight); None if rejected."""
        versioned = (
            tx if isinstance(tx, VersionedTransaction) else VersionedTransaction.from_legacy(tx)
        )
        try:
            execution = self.execute(versioned)
        except TransactionRejectedError as exc:
            log.warning("simulator transaction rejected", extra={"reason": exc.message})
            self.stats["rejected_internal"] += 1
            return None
        return self.land(execution, bytes(versioned))

    def sign(self, instructions: list[Any], signers: list[Keypair]) -> Transaction:
        """A legacy transaction of `instructions`, fee payer signers[0], on the tip's blockhash.

        Signs the message bytes directly: `Transaction(signers, ...)` derives every signer's
        public key again, which cost as much as the signature itself.

        Raises:
            SimChainError: `signers` are not exactly the message's required signers.
        """
        blockhash = self.keys.blockhash(self.tip)
        by_key = {public_key(signer): signer for signer in signers}
        message = Message.new_with_blockhash(instructions, public_key(signers[0]), blockhash)
        required = message.account_keys[: message.header.num_required_signatures]
        if set(required) != set(by_key):
            raise SimChainError(
                f"signers {sorted(map(str, by_key))} are not the message's required signers "
                f"{sorted(map(str, required))}"
            )
        payload = bytes(message)
        return Transaction.populate(
            message, [by_key[key].sign_message(payload) for key in required]
        )

    def airdrop(self, to: Pubkey, lamports: int) -> str:
        """`requestAirdrop`: a real faucet transfer transaction, landing in the next slot.

        Raises:
            AirdropFailedError: the transfer was rejected.
        """
        tx = self.sign(
            [
                transfer(
                    TransferParams(
                        from_pubkey=self.keys.faucet.pubkey(), to_pubkey=to, lamports=lamports
                    )
                )
            ],
            [self.keys.faucet],
        )
        record = self.submit(tx)
        if record is None:
            raise AirdropFailedError()
        return record.signature

    # -- set-up (direct writes, visible from the next slot) ---------------------------------
    def setup_protocol(
        self,
        *,
        admin: Pubkey | None = None,
        publisher: Pubkey | None = None,
        mint: Pubkey | None = None,
        paused: bool = False,
        fund_lamports: int = 100 * LAMPORTS_PER_SOL,
        at_slot: int | None = None,
    ) -> Pubkey:
        """Write the ProtocolState of `mint` (admin, publisher, paused), its mint and treasury.

        Admin and publisher default to the simulator's own keys; both get `fund_lamports`
        for fees. The deployed program also gets its singleton ProtocolState
        (`Genesis.global_protocol`) with the same keys, which its global instructions read;
        the mint-keyed one stays for the simulated staking instructions. Returns the address
        of the ProtocolState the program's root publications name (the singleton for the
        deployed program).
        """
        slot = self.ledger.pending_slot if at_slot is None else at_slot
        admin = admin or self.keys.admin.pubkey()
        publisher = publisher or self.keys.publisher.pubkey()
        for key in dict.fromkeys((admin, publisher)):
            self.genesis.fund(key, fund_lamports, slot)
        writers = [self.genesis.protocol]
        if self.config.program == "deployed":
            writers.append(self.genesis.global_protocol)
        for write in writers:
            address = write(
                mint=mint or self.mint,
                admin=admin,
                publisher=publisher,
                paused=paused,
                treasury_balance=_TREASURY_BALANCE,
                slot=slot,
            )
        return address

    def setup_channel(
        self,
        name: str,
        *,
        creator_wallet: Pubkey | None = None,
        creator_fee_bps: int = 0,
        latest_root_seq: int = 0,
        mint: Pubkey | None = None,
        at_slot: int | None = None,
    ) -> Pubkey:
        """Write channel `name`'s ChannelConfigV2 (no roots yet), stake pool and vault.

        Returns the ChannelConfigV2 address (the `channel` of the channel's events).

        Raises:
            ProtocolNotSetUpError: `mint` has no ProtocolState.
        """
        mint = mint or self.mint
        slot = self.ledger.pending_slot if at_slot is None else at_slot
        state = self.ledger.accounts.get(
            protocol_state_address(program_id=self.program_id, mint=mint).address
        )
        if state is None:
            raise ProtocolNotSetUpError(mint)
        authority = Pubkey(ProtocolState.decode(state.data).admin)
        return self.genesis.channel(
            mint=mint,
            name=name,
            authority=authority,
            creator_wallet=creator_wallet,
            creator_fee_bps=creator_fee_bps,
            latest_root_seq=latest_root_seq,
            slot=slot,
        )

    def setup_global_root(self, *, latest_root_seq: int, mint: Pubkey | None = None) -> Pubkey:
        """Write the mint's GlobalRootConfig at `latest_root_seq` (`Genesis.global_root`)."""
        return self.genesis.global_root(
            mint=mint or self.mint, latest_root_seq=latest_root_seq, slot=self.ledger.pending_slot
        )

    def channel_config(self, name: str, mint: Pubkey | None = None) -> Pubkey:
        return channel_config_address(
            program_id=self.program_id, mint=mint or self.mint, channel=name
        ).address


def _error_text(error: Any) -> str:
    """The node's text for an instruction error, as in `Error processing Instruction i: ...`."""
    if isinstance(error, dict) and "Custom" in error:
        return f"custom program error: {error['Custom']:#x}"
    texts = {
        "InvalidInstructionData": "invalid instruction data",
        "MissingRequiredSignature": "missing required signature for instruction",
        "ComputationalBudgetExceeded": "Computational budget exceeded",
        "MissingAccount": "An account required by the instruction is missing",
    }
    return texts.get(str(error), str(error))
