"""cumulative-v2: the claim model of the program at tag v0.2.2 (Genesis), reference §2-§3.

* leaf = keccak("TWZRD:CUMULATIVE_V2" || channel_config(32) || mint(32) || u64le(root_seq) ||
  wallet(32) || u64le(cumulative_total)), a 131-byte preimage; `root_seq` is inside every leaf,
  so each publication needs fresh leaves;
* leaf order (ours, so anyone holding the dataset rebuilds the same root): wallet bytes
  ascending, one leaf per wallet, wallets with a zero total left out;
* dataset_hash (ours; the program stores it without checking it) = keccak over the entries in
  leaf order, each wallet(32) || u64le(cumulative_total). For an empty dataset that is
  keccak(b""), c5d24601...5a470;
* publish: `publish_cumulative_root(channel, root_seq, root, dataset_hash)` into slot
  `root_seq % 4` of the ChannelConfigV2; `root_seq` must be the account's latest + 1.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from operator import itemgetter

from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey

from aop.core.accounts import ChannelConfigV2
from aop.core.anchor import instruction_discriminator
from aop.core.borsh import Writer
from aop.core.claims._columns import prefixed_record_tree, sorted_records, valid_and_unique
from aop.core.claims.base import (
    ClaimFormat,
    ClaimInput,
    ClaimTree,
    DatasetLayout,
    TreeScope,
    check_no_bonus,
    check_one_part,
    unique_wallet_amounts,
)
from aop.core.keccak import keccak256
from aop.core.pda import (
    associated_token_address,
    channel_config_address,
    claim_state_address,
    protocol_state_address,
)
from aop.core.program_ids import (
    ASSOCIATED_TOKEN_PROGRAM_ID,
    SYSTEM_PROGRAM_ID,
    TOKEN_2022_PROGRAM_ID,
)
from aop.core.validation import check_pubkey_bytes, check_uint

__all__ = [
    "DATASET_LAYOUT",
    "LEAF_DOMAIN",
    "CumulativeV2",
    "claim_cumulative_instruction",
    "cumulative_leaf",
    "leaf_prefix",
    "publish_cumulative_root_instruction",
]

LEAF_DOMAIN = b"TWZRD:CUMULATIVE_V2"


def leaf_prefix(*, channel_config: Pubkey, mint: Pubkey, root_seq: int) -> bytes:
    """The 91 bytes every leaf of a root starts with: domain, config PDA, mint, u64le(root_seq).

    Raises:
        InvalidIntegerError: `root_seq` is not a u64.
    """
    check_uint("root_seq", root_seq)
    return LEAF_DOMAIN + bytes(channel_config) + bytes(mint) + root_seq.to_bytes(8, "little")


def cumulative_leaf(
    *, channel_config: Pubkey, mint: Pubkey, root_seq: int, wallet: bytes, cumulative_total: int
) -> bytes:
    """The leaf the program recomputes in `claim_cumulative` (131-byte preimage).

    Raises:
        InvalidPubkeyError: `wallet` is not 32 bytes.
        InvalidIntegerError: `root_seq` or `cumulative_total` is not a u64.
    """
    check_pubkey_bytes("wallet", wallet)
    check_uint("cumulative_total", cumulative_total)
    prefix = leaf_prefix(channel_config=channel_config, mint=mint, root_seq=root_seq)
    return keccak256(prefix, wallet, cumulative_total.to_bytes(8, "little"))


_RECORD = struct.Struct("<32sQ")  # one dataset entry: wallet || u64le(cumulative_total)
#: cumulative-v2 dataset records: wallet(32) || u64le(cumulative_total).
DATASET_LAYOUT = DatasetLayout(record_size=_RECORD.size, amount_offset=32)


def _scope_prefix(scope: TreeScope) -> bytes:
    return leaf_prefix(
        channel_config=scope.channel_config, mint=scope.mint, root_seq=scope.root_seq
    )


class CumulativeV2(ClaimFormat):
    """The cumulative-v2 claim format (see the module docstring)."""

    name = "cumulative-v2"
    layout = DATASET_LAYOUT
    amount_basis = "cumulative"
    amount_key = "cumulative_total"
    parts = ("cumulative_total",)
    sequence_key = "root_seq"

    def build(self, scope: TreeScope, inputs: Iterable[ClaimInput]) -> ClaimTree:
        """The tree of `inputs` (cumulative totals), wallets ascending, zero totals dropped.

        Raises:
            InvalidWalletError, InvalidAmountError, DuplicateWalletError: a bad entry (the
                message names its input position).
        """
        entries = inputs if isinstance(inputs, list) else list(inputs)
        check_one_part(entries, self.amount_key)
        wallets: list[bytes] = list(map(itemgetter(0), entries))
        amounts: list[int] = list(map(itemgetter(1), entries))
        if not valid_and_unique(wallets, amounts):
            unique_wallet_amounts(
                entries, amount_name=self.amount_key, check_first_seen=False
            )  # raises the precise error
        return self._tree(scope, wallets, amounts)

    def build_from_amounts(
        self,
        scope: TreeScope,
        amounts: Mapping[bytes, int],
        first_seen: Mapping[bytes, int] | None = None,
    ) -> ClaimTree:
        """`build` over wallet -> cumulative total (`first_seen` is not used), without a
        `ClaimInput` per wallet.

        Raises:
            InvalidWalletError, InvalidAmountError: a bad entry.
        """
        wallets, totals = list(amounts), list(amounts.values())
        if not valid_and_unique(wallets, totals):
            unique_wallet_amounts(
                map(ClaimInput, wallets, totals),
                amount_name=self.amount_key,
                check_first_seen=False,
            )  # raises the precise error
        return self._tree(scope, wallets, totals)

    def _tree(self, scope: TreeScope, wallets: list[bytes], amounts: list[int]) -> ClaimTree:
        """The tree of validated, distinct (wallet, total) columns.

        Built for speed on millions of wallets (see bench/merkle.py): each step is one
        comprehension, and after the sort the data lives in one contiguous blob of records
        wallet || u64le(total): the dataset itself.
        """
        pack = _RECORD.pack
        records = sorted_records([pack(w, a) for w, a in zip(wallets, amounts, strict=True) if a])
        return prefixed_record_tree(self.name, scope, DATASET_LAYOUT, _scope_prefix(scope), records)

    def leaf(
        self, scope: TreeScope, wallet: bytes, amount: int, index: int, *, bonus: int = 0
    ) -> bytes:
        """The leaf of (wallet, cumulative_total = amount); `index` does not enter it.

        Raises:
            InvalidPubkeyError: `wallet` is not 32 bytes.
            InvalidIntegerError: `amount` is not a u64.
        """
        check_no_bonus(self.name, bonus)
        return cumulative_leaf(
            channel_config=scope.channel_config,
            mint=scope.mint,
            root_seq=scope.root_seq,
            wallet=wallet,
            cumulative_total=amount,
        )

    def publish_instruction(
        self, scope: TreeScope, *, payer: Pubkey, root: bytes, dataset_hash: bytes
    ) -> Instruction:
        return publish_cumulative_root_instruction(
            program_id=scope.program_id,
            mint=scope.mint,
            payer=payer,
            channel=scope.channel_name,
            root_seq=scope.root_seq,
            root=root,
            dataset_hash=dataset_hash,
        )

    def root_account(self, scope: TreeScope) -> Pubkey:
        """The channel's ChannelConfigV2 PDA."""
        return scope.channel_config

    def published_root(self, scope: TreeScope, account_data: bytes) -> bytes | None:
        entry = ChannelConfigV2.decode(account_data).root_entry(scope.root_seq)
        return entry.root if entry is not None else None


def publish_cumulative_root_instruction(
    *,
    program_id: Pubkey,
    mint: Pubkey,
    payer: Pubkey,
    channel: str,
    root_seq: int,
    root: bytes,
    dataset_hash: bytes,
) -> Instruction:
    """`publish_cumulative_root(channel, root_seq, root, dataset_hash)` (disc 38c189e2399b4019).

    Accounts: payer (signer, writable; admin or publisher), protocol_state (read-only),
    channel_config (writable).

    Raises:
        InvalidChannelNameError: `channel` is not 1-64 ASCII characters.
        BorshEncodeError: `root_seq` not a u64, `root`/`dataset_hash` not 32 bytes.
    """
    data = (
        Writer()
        .fixed(instruction_discriminator("publish_cumulative_root"), 8)
        .string(channel)
        .u64(root_seq)
        .pubkey(root)
        .pubkey(dataset_hash)
        .to_bytes()
    )
    protocol_state = protocol_state_address(program_id=program_id, mint=mint).address
    config = channel_config_address(program_id=program_id, mint=mint, channel=channel).address
    accounts = [
        AccountMeta(payer, is_signer=True, is_writable=True),
        AccountMeta(protocol_state, is_signer=False, is_writable=False),
        AccountMeta(config, is_signer=False, is_writable=True),
    ]
    return Instruction(program_id, data, accounts)


def claim_cumulative_instruction(
    *,
    program_id: Pubkey,
    mint: Pubkey,
    claimer: Pubkey,
    channel: str,
    root_seq: int,
    cumulative_total: int,
    proof: Sequence[bytes],
    creator_wallet: Pubkey,
    creator_ata: Pubkey | None = None,
) -> Instruction:
    """`claim_cumulative(channel, root_seq, cumulative_total, proof)` (disc a55803c451f8c98a).

    Accounts, in the program's order: 0 claimer (signer, writable), 1 protocol_state
    (writable), 2 channel_config, 3 claim_state (writable), 4 mint, 5 treasury ATA (writable),
    6 claimer ATA (writable), 7 creator_wallet (must equal the config's), 8 creator ATA
    (writable; the program id when None, Anchor's "absent optional account"; required when
    the channel's creator fee is non-zero), 9 Token-2022, 10 associated token program,
    11 system program. Transfer-hook extra accounts are not added (CCM has no hook).

    Raises:
        InvalidChannelNameError: `channel` is not 1-64 ASCII characters.
        BorshEncodeError: an argument of the wrong type, range or length.
    """
    data = (
        Writer()
        .fixed(instruction_discriminator("claim_cumulative"), 8)
        .string(channel)
        .u64(root_seq)
        .u64(cumulative_total)
        .vec_bytes32(proof)
        .to_bytes()
    )
    protocol_state = protocol_state_address(program_id=program_id, mint=mint).address
    config = channel_config_address(program_id=program_id, mint=mint, channel=channel).address
    claim_state = claim_state_address(
        program_id=program_id, channel_config=config, wallet=claimer
    ).address
    accounts = [
        AccountMeta(claimer, is_signer=True, is_writable=True),
        AccountMeta(protocol_state, is_signer=False, is_writable=True),
        AccountMeta(config, is_signer=False, is_writable=False),
        AccountMeta(claim_state, is_signer=False, is_writable=True),
        AccountMeta(mint, is_signer=False, is_writable=False),
        AccountMeta(
            associated_token_address(owner=protocol_state, mint=mint),
            is_signer=False,
            is_writable=True,
        ),
        AccountMeta(
            associated_token_address(owner=claimer, mint=mint), is_signer=False, is_writable=True
        ),
        AccountMeta(creator_wallet, is_signer=False, is_writable=False),
        AccountMeta(program_id, is_signer=False, is_writable=False)
        if creator_ata is None
        else AccountMeta(creator_ata, is_signer=False, is_writable=True),
        AccountMeta(TOKEN_2022_PROGRAM_ID, is_signer=False, is_writable=False),
        AccountMeta(ASSOCIATED_TOKEN_PROGRAM_ID, is_signer=False, is_writable=False),
        AccountMeta(SYSTEM_PROGRAM_ID, is_signer=False, is_writable=False),
    ]
    return Instruction(program_id, data, accounts)
