"""The claim-format interface: what the fold, projections, settlement and API rely on.

A claim format fixes, for one on-chain program version, how a tree's input is ordered, how a
leaf is hashed, what `dataset_hash` means, and how a root is published. Callers hold a
`ClaimFormat` (from `core.claims.get_claim_format`) and never branch on which one it is:

1. `fmt.build(scope, inputs)` validates and orders the input and returns a `ClaimTree`
   (root, dataset_hash, entries in leaf order, levels, proofs); it is the one place that
   defines leaf order and dataset_hash (`fmt.build_from_amounts(scope, amounts)` is the same
   tree from a wallet -> amount mapping, the fold's shape, without a `ClaimInput` per wallet);
2. `fmt.leaf(scope, wallet, amount, index)` recomputes one leaf (e.g. to verify a claim);
3. `fmt.publish_instruction(scope, payer=..., root=..., dataset_hash=...)` publishes a root;
4. `fmt.root_account(scope)` / `fmt.published_root(scope, data)` read back what is on-chain.

`amount_basis` says which amount a format's leaves commit to ("cumulative": a wallet's
all-time total; "epoch": the wallet's amount in that epoch only), so the fold passes the right one.
"""

from __future__ import annotations

import struct
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from operator import add, itemgetter
from typing import Any, ClassVar, Literal, NamedTuple

from solders.instruction import Instruction
from solders.pubkey import Pubkey

from aop.core.channel import validate_channel_name
from aop.core.errors import (
    DuplicateWalletError,
    InvalidAmountError,
    InvalidClaimInputError,
    InvalidIntegerError,
    InvalidWalletError,
    NoChannelError,
    WalletNotInTreeError,
)
from aop.core.merkle import MerkleTree
from aop.core.pda import (
    GlobalProtocolSeeds,
    channel_config_address,
    global_protocol_state_address,
    protocol_state_address,
)
from aop.core.validation import U64_MAX, check_uint, describe_wallet

__all__ = [
    "AmountBasis",
    "ClaimEntry",
    "ClaimFormat",
    "ClaimInput",
    "ClaimTree",
    "DatasetLayout",
    "TreeScope",
    "check_no_bonus",
    "check_one_part",
    "entry_error",
    "unique_wallet_amounts",
]

AmountBasis = Literal["cumulative", "epoch"]


@dataclass(frozen=True)
class TreeScope:
    """Where a tree's root goes: the program, mint, channel, and its sequence numbers.

    `root_seq` keys cumulative-v2 and global roots (it is inside every leaf); `epoch` keys
    ring-v0 roots (it is inside the claim id and picks the ring slot). Each format reads the
    one it needs; pass both, as the fold and the combiner know both. `channel` is None for the
    global formats (one root per mint, across channels); `global_protocol` picks which
    ProtocolState their instructions name (`core.pda.GlobalProtocolSeeds`).

    Raises:
        InvalidChannelNameError: `channel` is not 1-64 ASCII characters (nor None).
        InvalidIntegerError: `root_seq` or `epoch` is not a u64.
    """

    program_id: Pubkey
    mint: Pubkey
    channel: str | None
    root_seq: int
    epoch: int
    global_protocol: GlobalProtocolSeeds = "singleton"

    def __post_init__(self) -> None:
        if self.channel is not None:
            validate_channel_name(self.channel)
        check_uint("root_seq", self.root_seq)
        check_uint("epoch", self.epoch)

    @property
    def channel_name(self) -> str:
        """The channel, for the formats that have one.

        Raises:
            NoChannelError: this is a global scope (channel None).
        """
        if self.channel is None:
            raise NoChannelError("this tree scope is global (one root per mint): it has no channel")
        return self.channel

    @property
    def label(self) -> str:
        """`channel 'x'` or `the global root`, for messages."""
        return "the global root" if self.channel is None else f"channel {self.channel!r}"

    @cached_property
    def protocol_state(self) -> Pubkey:
        """The ProtocolState PDA of the mint (["protocol", mint], the per-channel formats')."""
        return protocol_state_address(program_id=self.program_id, mint=self.mint).address

    @cached_property
    def global_protocol_state(self) -> Pubkey:
        """The ProtocolState the global instructions name (`global_protocol`)."""
        return global_protocol_state_address(
            program_id=self.program_id, mint=self.mint, seeds=self.global_protocol
        ).address

    @cached_property
    def channel_config(self) -> Pubkey:
        """The channel's ChannelConfigV2 PDA (inside cumulative-v2 leaves).

        Raises:
            NoChannelError: a global scope.
        """
        return channel_config_address(
            program_id=self.program_id, mint=self.mint, channel=self.channel_name
        ).address


class ClaimInput(NamedTuple):
    """One wallet's amount as the fold hands it to `ClaimFormat.build`.

    `wallet` is the raw 32-byte public key. `amount` is what the format's `amount_basis` says
    (global-v5: the `base_yield` part). `first_seen` orders ring-v0 leaves (e.g. the wallet's
    first slot in the epoch); the other formats ignore it. `bonus` is global-v5's
    `attention_bonus` part; it must be 0 for every other format. `claim_id` is the leaf's own
    claim id, for the formats with one per leaf (ring-v0-legacy); the others ignore it.
    """

    wallet: bytes
    amount: int
    first_seen: int = 0
    bonus: int = 0
    claim_id: str = ""


@dataclass(frozen=True, slots=True)
class ClaimEntry:
    """One leaf's data, in leaf order: its `index` is its position in the tree."""

    index: int
    wallet: bytes
    amount: int


class DatasetLayout(NamedTuple):
    """The record layout of a format's dataset: fixed-size records, the wallet at offset 0.

    `amount_offset` is where the record's u64le amount starts; a two-part format (global-v5)
    also has `bonus_offset`, its second u64le part, and a record's amount is then the sum of
    the two (the total the program pays up to).
    """

    record_size: int
    amount_offset: int
    bonus_offset: int | None = None


_FIRST = itemgetter(0)


@dataclass(frozen=True, eq=False)
class ClaimTree:
    """A built tree of claims: what projections store and the API serves.

    `dataset` is the canonical dataset, one fixed-size record per leaf in leaf order (the
    layout is the format's: a wallet at offset 0, a u64le amount at `layout.amount_offset`);
    `dataset_hash` = keccak(dataset). Anyone holding the dataset can rebuild the tree, so a
    store can keep it as one blob. `wallets`, `amounts` and `entries` are views of it; leaf i
    commits to (wallets[i], amounts[i], i). Build it with `ClaimFormat.build`.
    """

    format_name: str
    scope: TreeScope
    dataset: bytes = field(repr=False)
    layout: DatasetLayout
    dataset_hash: bytes
    merkle: MerkleTree = field(repr=False)

    @cached_property
    def wallets(self) -> list[bytes]:
        """The wallets in leaf order."""
        skip = self.layout.record_size - 32
        return list(map(_FIRST, struct.iter_unpack(f"<32s{skip}x", self.dataset)))

    @cached_property
    def amounts(self) -> list[int]:
        """The amounts in leaf order (what `amount_basis` says they are; a two-part format's
        amount is the sum of its parts)."""
        if self.layout.bonus_offset is None:
            return self._u64_column(self.layout.amount_offset)
        return list(map(add, self.base_amounts, self.bonus_amounts))

    @cached_property
    def base_amounts(self) -> list[int]:
        """The first u64 part of every record in leaf order (global-v5: `base_yield`)."""
        return self._u64_column(self.layout.amount_offset)

    @cached_property
    def bonus_amounts(self) -> list[int]:
        """The second part (global-v5: `attention_bonus`); zeros for one-part formats."""
        if self.layout.bonus_offset is None:
            return [0] * self.leaf_count
        return self._u64_column(self.layout.bonus_offset)

    def _u64_column(self, start: int) -> list[int]:
        rest = self.layout.record_size - start - 8
        return list(map(_FIRST, struct.iter_unpack(f"<{start}xQ{rest}x", self.dataset)))

    @property
    def root(self) -> bytes:
        return self.merkle.root

    @property
    def leaf_count(self) -> int:
        return self.merkle.leaf_count

    @property
    def levels(self) -> tuple[bytes, ...]:
        """The compact tree levels (see `core.merkle`)."""
        return self.merkle.levels

    @property
    def leaves(self) -> list[bytes]:
        return self.merkle.leaves

    @cached_property
    def total(self) -> int:
        """The sum of the amounts."""
        return sum(self.amounts)

    @property
    def entries(self) -> list[ClaimEntry]:
        """(index, wallet, amount) of every leaf, in leaf order."""
        return [
            ClaimEntry(i, w, a)
            for i, (w, a) in enumerate(zip(self.wallets, self.amounts, strict=True))
        ]

    @cached_property
    def _index_by_wallet(self) -> dict[bytes, int]:
        return {wallet: i for i, wallet in enumerate(self.wallets)}

    def index_of(self, wallet: bytes) -> int:
        """The leaf index of `wallet`.

        Raises:
            WalletNotInTreeError: the wallet has no leaf (never seen, or a zero amount).
        """
        try:
            return self._index_by_wallet[bytes(wallet)]
        except KeyError:
            raise WalletNotInTreeError(
                f"wallet {describe_wallet(wallet)} has no leaf in the {self.format_name} tree "
                f"of {self.scope.label}"
            ) from None

    def leaf(self, index: int) -> bytes:
        return self.merkle.leaf(index)

    def proof(self, index: int) -> list[bytes]:
        """The proof of leaf `index` (see `core.merkle.proof_from_levels`)."""
        return self.merkle.proof(index)

    def proof_for(self, wallet: bytes) -> list[bytes]:
        """The proof of `wallet`'s leaf.

        Raises:
            WalletNotInTreeError: the wallet has no leaf.
        """
        return self.merkle.proof(self.index_of(wallet))


def unique_wallet_amounts(
    inputs: Iterable[ClaimInput], *, amount_name: str, check_first_seen: bool
) -> dict[bytes, tuple[int, int, int]]:
    """Validate `inputs`; map each wallet to (amount, first_seen, input position).

    Args:
        inputs: the tree's input entries.
        amount_name: what the format calls the amount, for messages ("cumulative_total").
        check_first_seen: whether `first_seen` must be an int (formats that order by it).
    Raises:
        InvalidWalletError: a wallet is not 32 bytes.
        InvalidAmountError: an amount is not an int in 0..2^64-1, or first_seen not an int.
        DuplicateWalletError: a wallet appears twice.
    """
    by_wallet: dict[bytes, tuple[int, int, int]] = {}
    for position, entry in enumerate(inputs):
        wallet, amount, first_seen = entry[0], entry[1], entry[2]
        if (
            type(wallet) is not bytes
            or len(wallet) != 32
            or type(amount) is not int
            or not 0 <= amount <= U64_MAX
            or (check_first_seen and type(first_seen) is not int)
        ):
            raise entry_error(position, entry, amount_name=amount_name)
        seen = by_wallet.setdefault(wallet, (amount, first_seen, position))
        if seen[2] != position:
            raise DuplicateWalletError(
                position,
                f"wallet {describe_wallet(wallet)} repeats entry {seen[2]}",
                first_position=seen[2],
            )
    return by_wallet


def entry_error(position: int, entry: Sequence[Any], *, amount_name: str) -> InvalidClaimInputError:
    """The error of a tree input entry whose wallet, amount or first_seen is invalid (the
    callers test the fast conditions inline: this builds the message, once for every format).
    """
    wallet, amount, first_seen = entry[0], entry[1], entry[2]
    if type(wallet) is not bytes or len(wallet) != 32:
        return InvalidWalletError(
            position, f"wallet must be 32 raw bytes (got {describe_wallet(wallet)})"
        )
    if type(amount) is not int or not 0 <= amount <= U64_MAX:
        return InvalidAmountError(
            position, f"{amount_name} must be an integer in 0..{U64_MAX} (got {amount!r})"
        )
    return InvalidAmountError(position, f"first_seen must be an integer (got {first_seen!r})")


def check_one_part(entries: Iterable[Sequence[object]], amount_name: str) -> None:
    """Refuse a `ClaimInput.bonus` given to a format whose leaves have one amount.

    Raises:
        InvalidAmountError: naming the entry's position.
    """
    for position, entry in enumerate(entries):
        if len(entry) > 3 and entry[3] != 0:
            raise InvalidAmountError(
                position,
                f"{amount_name} is this format's only amount: bonus must be 0 (got {entry[3]!r})",
            )


def check_no_bonus(format_name: str, bonus: int) -> None:
    """`leaf(..., bonus=)` of a one-part format.

    Raises:
        InvalidIntegerError: `bonus` is not 0.
    """
    if bonus != 0:
        raise InvalidIntegerError(
            f"{format_name} leaves have one amount: bonus must be 0 (got {bonus!r})"
        )


class ClaimFormat(ABC):
    """One on-chain claim model; see the module docstring for how callers use it."""

    #: the registry name, e.g. "cumulative-v2".
    name: ClassVar[str]
    #: the dataset's record layout (also the LeafChunk entries' on the log).
    layout: ClassVar[DatasetLayout]
    #: which amount the leaves commit to.
    amount_basis: ClassVar[AmountBasis]
    #: the claim instruction's name for the amount ("cumulative_total" or "amount").
    amount_key: ClassVar[str]
    #: which `TreeScope` field keys this format's roots ("root_seq" or "epoch").
    sequence_key: ClassVar[Literal["root_seq", "epoch"]]
    #: the claim's amount fields, as the claim instruction names them, in leaf order: one for
    #: most formats (`amount_key`), ("base_yield", "attention_bonus") for global-v5.
    parts: ClassVar[tuple[str, ...]]
    #: whether the format has one root per mint (no channel in its scope) or per channel.
    is_global: ClassVar[bool] = False
    #: whether each leaf has its own claim id, kept in the dataset (`dataset_claim_ids`).
    per_leaf_claim_id: ClassVar[bool] = False

    @abstractmethod
    def build(self, scope: TreeScope, inputs: Iterable[ClaimInput]) -> ClaimTree:
        """Validate and order `inputs`, hash the leaves and the dataset, build the tree.

        Raises:
            InvalidClaimInputError: an entry is invalid (its subclasses name the problem).
            CoreError: a format-specific limit is exceeded (see the format).
        """

    def build_from_amounts(
        self,
        scope: TreeScope,
        amounts: Mapping[bytes, int],
        first_seen: Mapping[bytes, int] | None = None,
    ) -> ClaimTree:
        """`build` over wallet -> amount (and wallet -> first_seen, for formats that order by
        it): the same tree as `build` of the equivalent `ClaimInput`s. A format may override it
        to skip the per-wallet `ClaimInput` (the fold closes epochs of 10^5 wallets).

        Raises:
            as `build`.
        """
        seen = first_seen or {}
        return self.build(scope, [ClaimInput(w, a, seen.get(w, 0)) for w, a in amounts.items()])

    def dataset_claim_ids(self, dataset: bytes) -> list[str] | None:
        """The claim id of each record of `dataset` (the format's own layout), in leaf order,
        for a format with one per leaf; None for the others (their id, if any, is the
        scope's)."""
        return None

    @abstractmethod
    def leaf(
        self, scope: TreeScope, wallet: bytes, amount: int, index: int, *, bonus: int = 0
    ) -> bytes:
        """The leaf of one claim, equal to `build(...).leaf(index)` (a format may ignore
        `index`; `bonus` is global-v5's attention_bonus, `amount` then its base_yield).

        Raises:
            InvalidPubkeyError: `wallet` is not 32 bytes.
            InvalidIntegerError: `amount`, `bonus` or `index` out of range, or a bonus given
                to a one-part format.
        """

    @abstractmethod
    def publish_instruction(
        self, scope: TreeScope, *, payer: Pubkey, root: bytes, dataset_hash: bytes
    ) -> Instruction:
        """The instruction that publishes `root` for `scope` (payer = admin or publisher)."""

    @abstractmethod
    def root_account(self, scope: TreeScope) -> Pubkey:
        """The account that stores this format's roots for `scope`'s channel."""

    @abstractmethod
    def published_root(self, scope: TreeScope, account_data: bytes) -> bytes | None:
        """The root that `root_account(scope)` holds for `scope`'s sequence, or None if absent.

        Raises:
            AccountDecodeError: `account_data` is not this format's root account.
        """
