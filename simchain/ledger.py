"""The ledger: a window of sealed blocks, their transactions, and account state by slot.

Pure bookkeeping, no clock and no I/O. Slots are contiguous (no skipped slots), so a slot's
block height is the slot itself. Transactions accumulate in the pending block (slot tip + 1)
and become visible when `seal()` makes that block the new tip; account writes are stamped
with the pending slot, so a read "at slot S" sees exactly the state after block S.

The ledger keeps the newest `retain_slots` sealed blocks, as an Agave node run with a limited
ledger (`--limit-ledger-size`) keeps recent history only. Each seal past the window drops the
oldest block with its transactions and their index entries, so pruning costs the same per
transaction as indexing did, and never a pass over the whole ledger; `first_available` is
then the oldest block kept. Account versions that no read can reach go in
`AccountStore.prune`, a pass over the accounts written since the previous one.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from solders.pubkey import Pubkey

from aop.simchain.errors import SimChainError

__all__ = [
    "Account",
    "AccountStore",
    "Block",
    "EmittedEvent",
    "InnerInstruction",
    "Ledger",
    "TxRecord",
]


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


class InnerInstruction(NamedTuple):
    """One CPI of a landed transaction, as meta.innerInstructions lists it (`top`: the index
    of the top-level instruction it ran under). A tuple with the account indexes as bytes:
    a dict with a list per CPI cost about 2 KB of each transaction kept."""

    program_id_index: int
    accounts: bytes
    data: bytes
    stack_height: int
    top: int


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
    inner_instructions: tuple[InnerInstruction, ...]
    fee: int
    pre_balances: tuple[int, ...]
    post_balances: tuple[int, ...]
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
        #: keys written since the last `prune` (or left with versions it could not drop yet).
        self._dirty: set[Pubkey] = set()

    def __len__(self) -> int:
        """Accounts with a version (deleted ones included until `prune` drops them)."""
        return len(self._slots)

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
        self._dirty.add(key)

    def put_many(self, changes: Mapping[Pubkey, Account | None], slot: int) -> None:
        for key, account in changes.items():
            self.put(key, account, slot)

    def delete_many(self, keys: Iterable[Pubkey], slot: int) -> None:
        """Delete `keys` as of `slot` (reads at older slots still see them until `prune`)."""
        for key in keys:
            if key in self._slots:
                self.put(key, None, slot)

    def prune(self, before_slot: int) -> int:
        """Forget versions no read can reach: those superseded at or before `before_slot`
        (reads never go below the finalized slot), and accounts deleted at or before it.

        Visits only the accounts written since the previous prune (and those it had to keep
        versions of), so its cost follows the writes, not the number of accounts.
        Returns how many versions were dropped.
        """
        dropped = 0
        dirty, self._dirty = self._dirty, set()
        for key in dirty:
            slots = self._slots.get(key)
            if slots is None:
                continue
            values = self._values[key]
            keep = bisect.bisect_right(slots, before_slot) - 1
            if keep > 0:
                del slots[:keep]
                del values[:keep]
                dropped += keep
            if len(slots) > 1 or slots[0] > before_slot:
                self._dirty.add(key)
            elif values[0] is None:
                del self._slots[key], self._values[key]
                dropped += 1
        return dropped


class _Timeline:
    """One address's transactions in chain order. The oldest leave from the front in O(1)
    amortised: a list read from `start`, whose dead head is cleared at once (so no pruned
    transaction stays referenced) and cut off when it is half the list."""

    __slots__ = ("start", "txs")

    def __init__(self) -> None:
        self.txs: list[TxRecord | None] = []
        self.start = 0

    def __len__(self) -> int:
        return len(self.txs) - self.start

    def drop_first(self) -> None:
        self.txs[self.start] = None
        self.start += 1
        if self.start * 2 >= len(self.txs):
            del self.txs[: self.start]
            self.start = 0


class Ledger:
    """The newest `retain_slots` sealed blocks (down to `first_available`), the pending
    block, and their indexes.

    Raises:
        SimChainError: `retain_slots` is below 1.
    """

    def __init__(
        self, *, first_slot: int, genesis_blockhash: str, genesis_time: int, retain_slots: int
    ) -> None:
        if retain_slots < 1:
            raise SimChainError(f"retain_slots must be >= 1 (got {retain_slots})")
        self.retain_slots = retain_slots
        self._blocks: deque[Block] = deque(
            [Block(first_slot, max(first_slot - 1, 0), genesis_blockhash, "1" * 32, genesis_time)]
        )
        self.pending: list[TxRecord] = []
        self.accounts = AccountStore()
        self._by_signature: dict[str, TxRecord] = {}
        self._pending_signatures: set[str] = set()
        self._by_address: dict[str, _Timeline] = {}
        self._blockhash_slot: dict[str, int] = {genesis_blockhash: first_slot}
        self._landed = 0

    # -- slots -----------------------------------------------------------------------------
    @property
    def tip(self) -> int:
        """The newest sealed slot (the `processed` commitment)."""
        return self._blocks[-1].slot

    @property
    def pending_slot(self) -> int:
        return self.tip + 1

    @property
    def first_available(self) -> int:
        """The oldest sealed slot still kept (getFirstAvailableBlock, minimumLedgerSlot)."""
        return self._blocks[0].slot

    def block(self, slot: int) -> Block | None:
        """The sealed block of `slot`; None if it is not sealed yet or was pruned."""
        index = slot - self._blocks[0].slot
        return self._blocks[index] if 0 <= index < len(self._blocks) else None

    def sealed(self, slot: int) -> Block:
        """The sealed block of `slot`.

        Raises:
            SimChainError: `slot` is not kept (pruned, before genesis, or after the tip).
        """
        block = self.block(slot)
        if block is None:
            raise SimChainError(
                f"slot {slot} is not kept (sealed and kept: {self.first_available}..{self.tip})"
            )
        return block

    def seal(self, *, blockhash: str, block_time: int) -> Block:
        """Make the pending block the new tip, index its transactions, and drop the oldest
        block if the window is full."""
        previous = self._blocks[-1]
        block = Block(
            previous.slot + 1,
            previous.slot,
            blockhash,
            previous.blockhash,
            block_time,
            self.pending,
        )
        self._blocks.append(block)
        self.pending = []
        self._pending_signatures.clear()
        self._blockhash_slot[blockhash] = block.slot
        self._landed += len(block.txs)
        by_address = self._by_address
        for tx in block.txs:
            self._by_signature[tx.signature] = tx
            for key in dict.fromkeys(tx.account_keys):
                timeline = by_address.get(key)
                if timeline is None:
                    timeline = by_address[key] = _Timeline()
                timeline.txs.append(tx)
        while len(self._blocks) > self.retain_slots:
            self._drop_oldest()
        return block

    def _drop_oldest(self) -> None:
        """Forget the oldest block: its blockhash, its transactions and their index entries
        (each is the first live entry of its addresses' timelines: both go in chain order)."""
        block = self._blocks.popleft()
        del self._blockhash_slot[block.blockhash]
        by_address = self._by_address
        for tx in block.txs:
            del self._by_signature[tx.signature]
            for key in dict.fromkeys(tx.account_keys):
                timeline = by_address[key]
                timeline.drop_first()
                if not timeline:
                    del by_address[key]

    # -- blockhashes -----------------------------------------------------------------------
    def blockhash_slot(self, blockhash: str) -> int | None:
        return self._blockhash_slot.get(blockhash)

    # -- transactions ----------------------------------------------------------------------
    def add_pending(self, tx: TxRecord) -> None:
        self.pending.append(tx)
        self._pending_signatures.add(tx.signature)

    def is_known_signature(self, signature: str) -> bool:
        """Whether a kept transaction has this signature, or one in the pending block."""
        return signature in self._by_signature or signature in self._pending_signatures

    def transaction(self, signature: str, max_slot: int) -> TxRecord | None:
        """The kept transaction `signature` at or below `max_slot` (None: unknown, newer, or
        pruned, as Agave answers for history it cleaned up)."""
        tx = self._by_signature.get(signature)
        return tx if tx is not None and tx.slot <= max_slot else None

    def transaction_count(self) -> int:
        """Transactions landed in every sealed block, pruned ones included."""
        return self._landed

    def signatures_for_address(
        self,
        address: str,
        *,
        max_slot: int,
        limit: int,
        before: str | None = None,
        until: str | None = None,
    ) -> list[TxRecord]:
        """Kept transactions mentioning `address`, newest first, as getSignaturesForAddress
        pages them.

        `before` (exclusive) starts below that transaction; an unknown (or pruned) `before`
        gives [] as Agave does. `until` (exclusive) stops above it; an unknown (or pruned)
        `until` is ignored, so the listing runs down to `first_available`. Within a slot the
        order is the reverse of the block order.
        """
        timeline = self._by_address.get(address)
        if timeline is None:
            return []
        txs, lo = timeline.txs, timeline.start
        key = _position_key
        stop = bisect.bisect_right(txs, (max_slot, 1 << 62), lo=lo, key=key)
        if before is not None:
            anchor = self._by_signature.get(before)
            if anchor is None or anchor.slot > max_slot:
                return []
            stop = min(stop, bisect.bisect_left(txs, key(anchor), lo=lo, key=key))
        start = lo
        if until is not None:
            anchor = self._by_signature.get(until)
            if anchor is not None:
                start = bisect.bisect_right(txs, key(anchor), lo=lo, key=key)
        out: list[TxRecord] = []
        for index in range(stop - 1, start - 1, -1):
            tx = txs[index]
            if tx is not None:  # always: [lo, len) holds live entries only
                out.append(tx)
            if len(out) >= limit:
                break
        return out


def _position_key(tx: TxRecord | None) -> tuple[int, int]:
    if tx is None:  # never: bisect reads only from a timeline's start
        raise SimChainError("a pruned transaction was read from an address timeline")
    return (tx.slot, tx.index)
