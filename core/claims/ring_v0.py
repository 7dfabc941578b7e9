"""ring-v0: the claim model of the program at v0.2.1-clean (reference §9), as the legacy
aggregator served it.

* one tree per (channel, epoch) over that epoch's amounts (not cumulative);
* index assignment: first_seen ascending, then wallet bytes ascending; leaf order = index
  order; wallets with a zero amount get no leaf; at most 1024 claims (the on-chain bitmap);
* leaf = keccak(claimer(32) || u32le(index) || u64le(amount) || id utf-8), where the claim id
  is f"{channel}:{epoch}" (the channel name as given), at most 64 bytes;
* dataset_hash (OUR definition; the program stores none) = keccak over claimer(32) ||
  u32le(index) || u64le(amount) per entry in index order (keccak(b"") when empty);
* publish: `set_channel_merkle_root(channel, epoch, root)` into ring slot `epoch % 10` of the
  ChannelState PDA, which the program creates on first use.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence

from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey

from aop.core.accounts import CHANNEL_RING_SLOTS, ChannelState
from aop.core.anchor import instruction_discriminator
from aop.core.borsh import Writer
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
from aop.core.errors import ClaimIdTooLongError, TooManyClaimsError
from aop.core.keccak import keccak256
from aop.core.merkle import MerkleTree
from aop.core.pda import associated_token_address, channel_state_address, protocol_state_address
from aop.core.program_ids import (
    ASSOCIATED_TOKEN_PROGRAM_ID,
    SYSTEM_PROGRAM_ID,
    TOKEN_2022_PROGRAM_ID,
)
from aop.core.validation import check_pubkey_bytes, check_uint

__all__ = [
    "DATASET_LAYOUT",
    "MAX_CLAIMS",
    "MAX_ID_BYTES",
    "RingV0",
    "claim_channel_open_instruction",
    "ring_claim_id",
    "ring_leaf",
    "ring_slot",
    "set_channel_merkle_root_instruction",
]

#: CHANNEL_MAX_CLAIMS: the claimed bitmap has 1024 bits.
MAX_CLAIMS = 1024
#: MAX_ID_BYTES of the program.
MAX_ID_BYTES = 64


_RECORD = struct.Struct("<32sIQ")  # one dataset entry: wallet || u32le(index) || u64le(amount)
#: ring-v0 dataset records: wallet(32) || u32le(index) || u64le(amount).
DATASET_LAYOUT = DatasetLayout(record_size=_RECORD.size, amount_offset=36)


def ring_claim_id(channel: str, epoch: int) -> str:
    """The claim id of (channel, epoch): f"{channel}:{epoch}".

    Raises:
        ClaimIdTooLongError: the id is longer than 64 UTF-8 bytes.
    """
    value = f"{channel}:{epoch}"
    if len(value.encode("utf-8")) > MAX_ID_BYTES:
        raise ClaimIdTooLongError(
            f"claim id {value!r} must be at most {MAX_ID_BYTES} bytes "
            f"(got {len(value.encode('utf-8'))}); use a shorter channel name"
        )
    return value


def ring_slot(epoch: int) -> int:
    """The ChannelState ring slot of `epoch`: epoch % 10."""
    return epoch % CHANNEL_RING_SLOTS


def ring_leaf(wallet: bytes, index: int, amount: int, claim_id: str) -> bytes:
    """keccak(wallet(32) || u32le(index) || u64le(amount) || claim_id utf-8), as the program checks.

    Raises:
        InvalidPubkeyError: `wallet` is not 32 bytes.
        InvalidIntegerError: `amount` not a u64 or `index` not a u32.
    """
    check_pubkey_bytes("wallet", wallet)
    check_uint("amount", amount)
    check_uint("index", index, bits=32)
    return keccak256(
        wallet, index.to_bytes(4, "little"), amount.to_bytes(8, "little"), claim_id.encode("utf-8")
    )


class RingV0(ClaimFormat):
    """The ring-v0 claim format (see the module docstring)."""

    name = "ring-v0"
    layout = DATASET_LAYOUT
    amount_basis = "epoch"
    amount_key = "amount"
    parts = ("amount",)
    sequence_key = "epoch"

    def build(self, scope: TreeScope, inputs: Iterable[ClaimInput]) -> ClaimTree:
        """The tree of `inputs` (epoch amounts), indexed by (first_seen, wallet), zeros dropped.

        Raises:
            InvalidWalletError, InvalidAmountError, DuplicateWalletError: a bad entry.
            TooManyClaimsError: more than 1024 non-zero claims.
            ClaimIdTooLongError: the claim id of `scope` is longer than 64 bytes.
        """
        claim_id = ring_claim_id(scope.channel_name, scope.epoch)
        entries = inputs if isinstance(inputs, list) else list(inputs)
        check_one_part(entries, self.amount_key)
        by_wallet = unique_wallet_amounts(
            entries, amount_name=self.amount_key, check_first_seen=True
        )
        ordered = sorted(
            (first_seen, wallet, amount)
            for wallet, (amount, first_seen, _) in by_wallet.items()
            if amount
        )
        if len(ordered) > MAX_CLAIMS:
            raise TooManyClaimsError(
                f"channel {scope.channel!r} epoch {scope.epoch} has {len(ordered)} claims; "
                f"ring-v0 holds at most {MAX_CLAIMS} per (channel, epoch) on-chain"
            )
        dataset = b"".join(
            _RECORD.pack(wallet, index, amount) for index, (_, wallet, amount) in enumerate(ordered)
        )
        return ClaimTree(
            format_name=self.name,
            scope=scope,
            dataset=dataset,
            layout=DATASET_LAYOUT,
            dataset_hash=keccak256(dataset),
            merkle=MerkleTree(
                [
                    ring_leaf(wallet, index, amount, claim_id)
                    for index, (_, wallet, amount) in enumerate(ordered)
                ]
            ),
        )

    def leaf(
        self, scope: TreeScope, wallet: bytes, amount: int, index: int, *, bonus: int = 0
    ) -> bytes:
        """keccak(wallet || u32le(index) || u64le(amount) || claim id of `scope`).

        Raises:
            InvalidPubkeyError: `wallet` is not 32 bytes.
            InvalidIntegerError: `amount` not a u64 or `index` not a u32.
            ClaimIdTooLongError: the claim id of `scope` is longer than 64 bytes.
        """
        check_no_bonus(self.name, bonus)
        return ring_leaf(wallet, index, amount, ring_claim_id(scope.channel_name, scope.epoch))

    def publish_instruction(
        self, scope: TreeScope, *, payer: Pubkey, root: bytes, dataset_hash: bytes
    ) -> Instruction:
        """`set_channel_merkle_root`; `dataset_hash` is not sent (the program has no field)."""
        return set_channel_merkle_root_instruction(
            program_id=scope.program_id,
            mint=scope.mint,
            payer=payer,
            channel=scope.channel_name,
            epoch=scope.epoch,
            root=root,
        )

    def root_account(self, scope: TreeScope) -> Pubkey:
        """The channel's ChannelState PDA."""
        return channel_state_address(
            program_id=scope.program_id, mint=scope.mint, channel=scope.channel_name
        ).address

    def published_root(self, scope: TreeScope, account_data: bytes) -> bytes | None:
        slot = ChannelState.decode(account_data).slot_for(scope.epoch)
        return slot.root if slot is not None else None


def set_channel_merkle_root_instruction(
    *, program_id: Pubkey, mint: Pubkey, payer: Pubkey, channel: str, epoch: int, root: bytes
) -> Instruction:
    """`set_channel_merkle_root(channel, epoch, root)` (disc 411810063f69997b).

    Accounts: payer (signer, writable; admin or publisher), protocol_state (writable),
    channel_state (writable; created by the program on first use), system program.

    Raises:
        InvalidChannelNameError: `channel` is not 1-64 ASCII characters.
        BorshEncodeError: `epoch` not a u64 or `root` not 32 bytes.
    """
    data = (
        Writer()
        .fixed(instruction_discriminator("set_channel_merkle_root"), 8)
        .string(channel)
        .u64(epoch)
        .pubkey(root)
        .to_bytes()
    )
    accounts = [
        AccountMeta(payer, is_signer=True, is_writable=True),
        AccountMeta(
            protocol_state_address(program_id=program_id, mint=mint).address,
            is_signer=False,
            is_writable=True,
        ),
        AccountMeta(
            channel_state_address(program_id=program_id, mint=mint, channel=channel).address,
            is_signer=False,
            is_writable=True,
        ),
        AccountMeta(SYSTEM_PROGRAM_ID, is_signer=False, is_writable=False),
    ]
    return Instruction(program_id, data, accounts)


def claim_channel_open_instruction(
    *,
    program_id: Pubkey,
    mint: Pubkey,
    claimer: Pubkey,
    channel: str,
    epoch: int,
    index: int,
    amount: int,
    claim_id: str,
    proof: Sequence[bytes],
) -> Instruction:
    """`claim_channel_open(channel, epoch, index, amount, id, proof)` (disc dfabbb29a7470fb8).

    Accounts: claimer (signer, writable), protocol_state (writable), channel_state (writable),
    mint, treasury ATA (writable; the Token-2022 ATA of the ProtocolState PDA, as at Genesis),
    claimer ATA (writable), Token-2022, associated token program, system program.

    Raises:
        InvalidChannelNameError: `channel` is not 1-64 ASCII characters.
        BorshEncodeError: an argument of the wrong type, range or length.
    """
    data = (
        Writer()
        .fixed(instruction_discriminator("claim_channel_open"), 8)
        .string(channel)
        .u64(epoch)
        .u32(index)
        .u64(amount)
        .string(claim_id)
        .vec_bytes32(proof)
        .to_bytes()
    )
    protocol_state = protocol_state_address(program_id=program_id, mint=mint).address
    accounts = [
        AccountMeta(claimer, is_signer=True, is_writable=True),
        AccountMeta(protocol_state, is_signer=False, is_writable=True),
        AccountMeta(
            channel_state_address(program_id=program_id, mint=mint, channel=channel).address,
            is_signer=False,
            is_writable=True,
        ),
        AccountMeta(mint, is_signer=False, is_writable=False),
        AccountMeta(
            associated_token_address(owner=protocol_state, mint=mint),
            is_signer=False,
            is_writable=True,
        ),
        AccountMeta(
            associated_token_address(owner=claimer, mint=mint), is_signer=False, is_writable=True
        ),
        AccountMeta(TOKEN_2022_PROGRAM_ID, is_signer=False, is_writable=False),
        AccountMeta(ASSOCIATED_TOKEN_PROGRAM_ID, is_signer=False, is_writable=False),
        AccountMeta(SYSTEM_PROGRAM_ID, is_signer=False, is_writable=False),
    ]
    return Instruction(program_id, data, accounts)
