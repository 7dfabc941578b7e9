"""ring-v0-legacy: the ring-v0 program's claims as the legacy aggregator sealed them.

The on-chain model is ring-v0's (program v0.2.1-clean, reference §9): one tree per (channel,
epoch) of that epoch's amounts, leaf = keccak(claimer(32) || u32le(index) || u64le(amount) ||
id), published with `set_channel_merkle_root` into the ChannelState ring, at most 1024 claims.
What differs from `ring-v0` (the stake-time fold's) is who a leaf is and which id it carries:

* one leaf per claim, each with its OWN claim id (the legacy: `twitch:<channel>:<user>`), so
  a wallet may hold several leaves (two users bound to one wallet); ids are unique;
* leaf order = index order = `ClaimInput.first_seen` ascending, then claim id bytes (the
  attention policy passes each claim's rank in the legacy order, `core.attention.legacy`);
  zero amounts get no leaf;
* dataset record (ours: the ids must travel with the dataset so anyone can rebuild the leaves)
  = wallet(32) || u32le(index) || u64le(amount) || u8(id length) || id UTF-8 zero-padded to
  64 bytes: 109 bytes; dataset_hash = keccak(dataset).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

from solders.instruction import Instruction
from solders.pubkey import Pubkey

from aop.core.claims.base import (
    ClaimFormat,
    ClaimInput,
    ClaimTree,
    DatasetLayout,
    TreeScope,
    check_no_bonus,
    check_one_part,
    entry_error,
)
from aop.core.claims.ring_v0 import MAX_CLAIMS, MAX_ID_BYTES, RingV0, ring_leaf
from aop.core.errors import (
    ClaimIdTooLongError,
    DuplicateClaimIdError,
    MissingClaimIdError,
    TooManyClaimsError,
)
from aop.core.keccak import keccak256
from aop.core.merkle import MerkleTree
from aop.core.validation import U64_MAX

__all__ = ["DATASET_LAYOUT", "RingV0Legacy"]

_RECORD = struct.Struct(f"<32sIQB{MAX_ID_BYTES}s")
#: ring-v0-legacy dataset records (module docstring).
DATASET_LAYOUT = DatasetLayout(record_size=_RECORD.size, amount_offset=36)
_RING = RingV0()


class RingV0Legacy(ClaimFormat):
    """The ring-v0-legacy claim format (see the module docstring)."""

    name = "ring-v0-legacy"
    layout = DATASET_LAYOUT
    amount_basis = "epoch"
    amount_key = "amount"
    parts = ("amount",)
    sequence_key = "epoch"
    per_leaf_claim_id = True

    def build(self, scope: TreeScope, inputs: Iterable[ClaimInput]) -> ClaimTree:
        """The tree of `inputs` (epoch amounts, each with its claim id), in (first_seen, id)
        order, zeros dropped.

        Raises:
            InvalidWalletError, InvalidAmountError, DuplicateClaimIdError: a bad entry.
            ClaimIdTooLongError: an id is empty or longer than 64 UTF-8 bytes.
            TooManyClaimsError: more than 1024 non-zero claims.
        """
        entries = inputs if isinstance(inputs, list) else list(inputs)
        check_one_part(entries, self.amount_key)
        seen: dict[bytes, int] = {}
        rows: list[tuple[int, bytes, bytes, int]] = []
        for position, entry in enumerate(entries):
            wallet, amount, first_seen = entry[0], entry[1], entry[2]
            claim_id = entry[4] if len(entry) > 4 else ""
            if (
                type(wallet) is not bytes
                or len(wallet) != 32
                or type(amount) is not int
                or not 0 <= amount <= U64_MAX
                or type(first_seen) is not int
            ):
                raise entry_error(position, entry, amount_name=self.amount_key)
            raw = str(claim_id).encode("utf-8")
            if not 1 <= len(raw) <= MAX_ID_BYTES:
                raise ClaimIdTooLongError(
                    f"entry {position}: claim id {claim_id!r} must be 1-{MAX_ID_BYTES} bytes "
                    f"(got {len(raw)})"
                )
            if raw in seen:
                raise DuplicateClaimIdError(
                    position, f"claim id {claim_id!r} repeats entry {seen[raw]}"
                )
            seen[raw] = position
            if amount:
                rows.append((first_seen, raw, wallet, amount))
        rows.sort()
        if len(rows) > MAX_CLAIMS:
            raise TooManyClaimsError(
                f"channel {scope.channel!r} epoch {scope.epoch} has {len(rows)} claims; "
                f"ring-v0 holds at most {MAX_CLAIMS} per (channel, epoch) on-chain"
            )
        dataset = b"".join(
            _RECORD.pack(wallet, index, amount, len(raw), raw)
            for index, (_, raw, wallet, amount) in enumerate(rows)
        )
        return ClaimTree(
            format_name=self.name,
            scope=scope,
            dataset=dataset,
            layout=DATASET_LAYOUT,
            dataset_hash=keccak256(dataset),
            merkle=MerkleTree(
                [
                    ring_leaf(wallet, index, amount, raw.decode("utf-8"))
                    for index, (_, raw, wallet, amount) in enumerate(rows)
                ]
            ),
        )

    def dataset_claim_ids(self, dataset: bytes) -> list[str]:
        """The claim id of each record, in leaf order."""
        return [raw[:size].decode("utf-8") for _, _, _, size, raw in _RECORD.iter_unpack(dataset)]

    def leaf(
        self,
        scope: TreeScope,
        wallet: bytes,
        amount: int,
        index: int,
        *,
        bonus: int = 0,
        claim_id: str | None = None,
    ) -> bytes:
        """keccak(wallet || u32le(index) || u64le(amount) || `claim_id`).

        Raises:
            MissingClaimIdError: no `claim_id` (this format's ids are per leaf).
            InvalidPubkeyError, InvalidIntegerError: see `ring_v0.ring_leaf`.
        """
        check_no_bonus(self.name, bonus)
        if not claim_id:
            raise MissingClaimIdError(
                f"a {self.name} leaf needs its own claim id (the dataset record's)"
            )
        return ring_leaf(wallet, index, amount, claim_id)

    def publish_instruction(
        self, scope: TreeScope, *, payer: Pubkey, root: bytes, dataset_hash: bytes
    ) -> Instruction:
        """`set_channel_merkle_root`, as ring-v0."""
        return _RING.publish_instruction(scope, payer=payer, root=root, dataset_hash=dataset_hash)

    def root_account(self, scope: TreeScope) -> Pubkey:
        """The channel's ChannelState PDA, as ring-v0."""
        return _RING.root_account(scope)

    def published_root(self, scope: TreeScope, account_data: bytes) -> bytes | None:
        return _RING.published_root(scope, account_data)
