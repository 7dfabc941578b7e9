"""The ledger: sealed blocks, their transactions, and account state by slot.

Pure bookkeeping, no clock and no I/O. Slots are contiguous (no skipped slots), so a slot's
block height is the slot itself. Transactions accumulate in the pending block (slot tip + 1)
and become visible when `seal()` makes that block the new tip; account writes are stamped
with the pending slot, so a read "at slot S" sees exactly the state after block S.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from solders.pubkey import Pubkey

from aop.simchain.errors import SimChainError

__all__ = ["Account", "AccountStore", "Block", "EmittedEvent", "Ledger", "TxRecord"]


@dataclass(frozen=True, slots=True)
class Account:
    """One account's state: lamports, data, owning program, executable flag."""

    lamports: int
    data: bytes
    owner: Pubkey
    executable: bool = False


@dataclass(frozen=True, slots=True)
class EmittedEvent:
    """One program event of a successful transaction, as visible in its logs.

    `event_index` counts the program's `Program data:` lines in the transaction (0-based);
    `id` is `<signature>:<event_index>`, the pipeline's event id.
    """

    signature: str
    event_index: int
    slot: int
    name: str
    data: bytes

    @property
    def id(self) -> str:
        return f"{self.signature}:{self.event_index}"


@dataclass(slots=True)
class TxRecord:
    """A landed transaction with everything `getTransaction` and the notifications need."""

    signature: str
    slot: int
    index: int
    raw: bytes
    version: Literal["legacy", 0]
    account_keys: tuple[str, ...]
    err: Any
    logs: tuple[str, ...]
    inner_instructions: list[dict[str, Any]]
    fee: int
    pre_balances: list[int]
    post_balances: list[int]
    units: int
    events: tuple[EmittedEvent, ...] = ()
    truncated: bool = False
    hidden_events: int = 0
    memo: str | None = None


@dataclass(slots=True)
class Block:
    """A sealed slot."""

    slot: int
    parent_slot: int
    blockhash: str
    previous_blockhash: str
    block_time: int
    txs: list[TxRecord] = field(default_factory=list)


class AccountStore:
    """Versioned accounts: every write is stamped with the slot whose block made it.

    `get(key)` reads the newest state (the working bank, pending block included);
    `get(key, at_slot=S)` reads the state after block S.
    """

    def __init__(self) -> None:
        self._slots: dict[Pubkey, list[int]] = {}
        self._values: dict[Pubkey, list[Account | None]] = {}

    def get(self, key: Pubkey, at_slot: int | None = None) -> Account | None:
        values = self._values.get(key)
        if not values:
            return None
        if at_slot is None:
            return values[-1]
        pos = bisect.bisect_right(self._slots[key], at_slot)
        return values[pos - 1] if pos else None

    def put(self, key: Pubkey, account: Account | None, slot: int) -> None:
        """Write (or delete, with None) `key` as of `slot` (never below its last write)."""
        slots = self._slots.setdefault(key, [])
        values = self._values.setdefault(key, [])
        if slots and slots[-1] == slot:
            values[-1] = account
        else:
            slots.append(slot)
            values.append(account)

    def put_many(self, changes: Mapping[Pubkey, Account | None], slot: int) -> None:
        for key, account in changes.items():
            self.put(key, account, slot)

    def prune(self, before_slot: int) -> int:
        """Forget versions no read can reach: those superseded at or before `before_slot`
        (reads never go below the finalized slot). Returns how many were dropped."""
        dropped = 0
        for key, slots in self._slots.items():
            keep = bisect.bisect_right(slots, before_slot) - 1
            if keep > 0:
                del slots[:keep]
                del self._values[key][:keep]
                dropped += keep
        return dropped


class Ledger:
    """Sealed blocks from `first_slot` to `tip`, the pending block, and their indexes."""

    def __init__(self, *, first_slot: int, genesis_blockhash: str, genesis_time: int) -> None:
        self.first_slot = first_slot
        self.blocks: list[Block] = [
            Block(first_slot, max(first_slot - 1, 0), genesis_blockhash, "1" * 32, genesis_time)
        ]
        self.pending: list[TxRecord] = []
        self.accounts = AccountStore()
        self._by_signature: dict[str, TxRecord] = {}
        self._pending_signatures: set[str] = set()
        self._by_address: dict[str, list[TxRecord]] = {}
        self._blockhash_slot: dict[str, int] = {genesis_blockhash: first_slot}

    # -- slots -----------------------------------------------------------------------------
    @property
    def tip(self) -> int:
        """The newest sealed slot (the `processed` commitment)."""
        return self.blocks[-1].slot

    @property
    def pending_slot(self) -> int:
        return self.tip + 1

    def block(self, slot: int) -> Block | None:
        index = slot - self.first_slot
        return self.blocks[index] if 0 <= index < len(self.blocks) else None

    def sealed(self, slot: int) -> Block:
        """The sealed block of `slot`.

        Raises:
            SimChainError: `slot` is not sealed (before genesis or after the tip).
        """
        block = self.block(slot)
        if block is None:
            raise SimChainError(
                f"slot {slot} is not sealed (sealed: {self.first_slot}..{self.tip})"
            )
        return block

    def seal(self, *, blockhash: str, block_time: int) -> Block:
        """Make the pending block the new tip and index its transactions."""
        previous = self.blocks[-1]
        block = Block(
            previous.slot + 1,
            previous.slot,
            blockhash,
            previous.blockhash,
            block_time,
            self.pending,
        )
        self.blocks.append(block)
        self.pending = []
        self._pending_signatures.clear()
        self._blockhash_slot[blockhash] = block.slot
        for tx in block.txs:
            self._by_signature[tx.signature] = tx
            for key in dict.fromkeys(tx.account_keys):
                self._by_address.setdefault(key, []).append(tx)
        return block

    # -- blockhashes -----------------------------------------------------------------------
    def blockhash_slot(self, blockhash: str) -> int | None:
        return self._blockhash_slot.get(blockhash)

    # -- transactions ----------------------------------------------------------------------
    def add_pending(self, tx: TxRecord) -> None:
        self.pending.append(tx)
        self._pending_signatures.add(tx.signature)

    def is_known_signature(self, signature: str) -> bool:
        """Whether a transaction with this signature landed or is in the pending block."""
        return signature in self._by_signature or signature in self._pending_signatures

    def transaction(self, signature: str, max_slot: int) -> TxRecord | None:
        tx = self._by_signature.get(signature)
        return tx if tx is not None and tx.slot <= max_slot else None

    def transaction_count(self) -> int:
        return len(self._by_signature)

    def signatures_for_address(
        self,
        address: str,
        *,
        max_slot: int,
        limit: int,
        before: str | None = None,
        until: str | None = None,
    ) -> list[TxRecord]:
        """Transactions mentioning `address`, newest first, as getSignaturesForAddress pages.

        `before` (exclusive) starts below that transaction; an unknown `before` gives [] (as
        Agave does). `until` (exclusive) stops above it; an unknown `until` is ignored.
        Within a slot the order is the reverse of the block order.
        """
        txs = self._by_address.get(address, [])
        key = _position_key
        stop = bisect.bisect_right(txs, (max_slot, 1 << 62), key=key)
        if before is not None:
            anchor = self._by_signature.get(before)
            if anchor is None or anchor.slot > max_slot:
                return []
            stop = min(stop, bisect.bisect_left(txs, key(anchor), key=key))
        start = 0
        if until is not None:
            anchor = self._by_signature.get(until)
            if anchor is not None:
                start = bisect.bisect_right(txs, key(anchor), key=key)
        out: list[TxRecord] = []
        for index in range(stop - 1, start - 1, -1):
            out.append(txs[index])
            if len(out) >= limit:
                break
        return out


def _position_key(tx: TxRecord) -> tuple[int, int]:
    return (tx.slot, tx.index)
