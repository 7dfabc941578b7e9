"""What a program sees while it runs: its accounts, the clock, logs, events and CPIs.

`Overlay` holds one transaction's account writes; the runtime applies them only if every
instruction succeeds (Solana transactions are atomic). `InvokeContext` is one instruction
frame: the program's Python rules read and write accounts through it, log through it, emit
events through it, and call other programs (`cpi`) through it, which writes the nested
`invoke [n]` ... `success` frames and the inner-instruction records real nodes return.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from solders.pubkey import Pubkey

from aop.simchain.errors import InstructionFailedError
from aop.simchain.ledger import Account, AccountStore
from aop.simchain.logs import LogCollector

__all__ = ["Frame", "InvokeContext", "Overlay", "TxState", "b58", "jitter"]

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def b58(data: bytes) -> str:
    """Base58 (Bitcoin alphabet), as instruction data is shown in `json` encoding."""
    number = int.from_bytes(data, "big")
    out = []
    while number:
        number, rem = divmod(number, 58)
        out.append(_B58[rem])
    pad = len(data) - len(data.lstrip(b"\0"))
    return "1" * pad + "".join(reversed(out))


class Overlay:
    """Account reads fall through to the store's newest state; writes stay here until commit."""

    def __init__(self, store: AccountStore) -> None:
        self._store = store
        self.changes: dict[Pubkey, Account | None] = {}

    def get(self, key: Pubkey) -> Account | None:
        if key in self.changes:
            return self.changes[key]
        return self._store.get(key)

    def put(self, key: Pubkey, account: Account | None) -> None:
        self.changes[key] = account

    def lamports(self, key: Pubkey) -> int:
        account = self.get(key)
        return account.lamports if account is not None else 0

    def exists(self, key: Pubkey) -> bool:
        account = self.get(key)
        return account is not None and (account.lamports > 0 or bool(account.data))


@dataclass
class TxState:
    """State shared by every frame of one transaction."""

    accounts: Overlay
    logs: LogCollector
    slot: int
    unix_timestamp: int
    account_keys: list[Pubkey]
    budget: int
    used: int = 0
    #: (program id, payload) of every `Program data:` line the runtime logged, with whether
    #: the line was visible (not dropped by the 10 KB limit); the program's own events.
    data_lines: list[tuple[Pubkey, bytes, str, bool]] = field(default_factory=list)
    inner: list[dict[str, Any]] = field(default_factory=list)
    #: index of the top-level instruction running (inner instructions are grouped by it).
    instruction_index: int = 0
    #: account key -> its index in the message (a CPI records the indexes of its accounts).
    key_indexes: dict[Pubkey, int] = field(init=False)

    def __post_init__(self) -> None:
        self.key_indexes = {key: index for index, key in enumerate(self.account_keys)}

    def key_index(self, key: Pubkey) -> int:
        index = self.key_indexes.get(key)
        if index is None:
            raise InstructionFailedError(
                "MissingAccount", "An account required by the instruction is missing"
            )
        return index


@dataclass
class Frame:
    """One instruction's accounts and data as the program receives them."""

    program_id: Pubkey
    keys: list[Pubkey]
    signers: list[bool]
    writables: list[bool]
    data: bytes


class InvokeContext:
    """One executing frame (depth 1 for a top-level instruction)."""

    def __init__(self, tx: TxState, frame: Frame, depth: int) -> None:
        self.tx = tx
        self.frame = frame
        self.depth = depth

    # -- what the program reads ------------------------------------------------------------
    @property
    def program_id(self) -> Pubkey:
        return self.frame.program_id

    @property
    def data(self) -> bytes:
        return self.frame.data

    @property
    def keys(self) -> list[Pubkey]:
        return self.frame.keys

    @property
    def slot(self) -> int:
        return self.tx.slot

    @property
    def unix_timestamp(self) -> int:
        return self.tx.unix_timestamp

    @property
    def accounts(self) -> Overlay:
        return self.tx.accounts

    def is_signer(self, index: int) -> bool:
        return self.frame.signers[index]

    def is_writable(self, index: int) -> bool:
        return self.frame.writables[index]

    # -- what the program writes -----------------------------------------------------------
    def log(self, text: str) -> None:
        """`msg!(text)`: a `Program log:` line."""
        self.tx.logs.program_log(text)

    def emit(self, name: str, payload: bytes) -> None:
        """Anchor `emit!`: a `Program data:` line with the event's bytes."""
        visible = self.tx.logs.program_data(payload)
        self.tx.data_lines.append((self.program_id, payload, name, visible))

    def consume(self, units: int) -> None:
        """Charge compute units to the transaction."""
        self.tx.used += units

    def cpi(
        self,
        program_id: Pubkey,
        keys: list[Pubkey],
        data: bytes,
        body: Callable[[InvokeContext], None],
        *,
        units: int = 0,
        builtin: bool = False,
        signers: list[bool] | None = None,
        writables: list[bool] | None = None,
    ) -> None:
        """Invoke `program_id` (its rules are `body`) one frame deeper, as a CPI.

        Writes the nested frame's logs, records the inner instruction, charges `units` plus
        what `body` charges. Builtins (System) log no `consumed` line, as on a real node.

        Raises:
            InstructionFailedError: `body` failed; its `failed:` line is written first.
        """
        tx = self.tx
        program = str(program_id)
        tx.inner.append(
            {
                "programIdIndex": tx.key_index(program_id),
                "accounts": [tx.key_index(k) for k in keys],
                "data": data,  # raw bytes; base58 when rendered (see simchain.encoding)
                "stackHeight": self.depth + 1,
                "top": tx.instruction_index,
            }
        )
        frame = Frame(
            program_id,
            keys,
            signers if signers is not None else [False] * len(keys),
            writables if writables is not None else [True] * len(keys),
            data,
        )
        child = InvokeContext(tx, frame, self.depth + 1)
        tx.logs.invoke(program, self.depth + 1)
        budget = tx.budget - tx.used
        start = tx.used
        tx.used += units
        try:
            body(child)
        except InstructionFailedError as exc:
            if not builtin:
                tx.logs.consumed(program, tx.used - start, budget)
            tx.logs.failed(program, exc.reason)
            raise
        if not builtin:
            tx.logs.consumed(program, tx.used - start, budget)
        tx.logs.success(program)


def jitter(data: bytes, spread: int) -> int:
    """A deterministic 0..spread-1 offset from `data`, so compute units look measured."""
    return zlib.crc32(data) % max(spread, 1)
