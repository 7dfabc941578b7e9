"""global-v4 and global-v5: the claim models of the program as deployed today (reference §G).

One root per mint covers every wallet across every channel, stored in the mint's
GlobalRootConfig ring (`["global_root", mint]`, 4 roots, `root_seq % 4`). Both versions share
the sorted-pair tree, the ring, `publish_global_root` and one ClaimStateGlobal per wallet
(`["claim_global", mint, wallet]`), so a wallet's V5 base + bonus continues the cumulative
scale of any earlier V4 total.

* global-v4 leaf = keccak("TWZRD:GLOBAL_V4" || mint || u64le(root_seq) || wallet ||
  u64le(cumulative_total)), a 95-byte preimage; claimed with `claim_global[_sponsored]`;
* global-v5 leaf = keccak("TWZRD:GLOBAL_V5" || mint || u64le(root_seq) || wallet ||
  u64le(base_yield) || u64le(attention_bonus)), a 103-byte preimage with no total: the
  program adds the parts with a checked add. Claimed with `claim_global[_sponsored]_v2`. (An
  unmerged branch, 484c48e, had `cumulative_total` inside the V5 leaf and the args; the
  deployed program, its Pinocchio twin and the SDK do not: reference §G8.2, §G9.1.)
* leaf order (ours, so anyone holding the dataset rebuilds the root): wallet bytes ascending,
  one leaf per wallet, wallets whose total is zero left out;
* dataset (ours; the program stores `dataset_hash` unchecked): one record per leaf in leaf
  order, v4 `wallet(32) || u64le(cumulative_total)`, v5 `wallet(32) || u64le(base_yield) ||
  u64le(attention_bonus)`; `dataset_hash` = keccak(dataset). A leaf's preimage is the root's
  prefix followed by its record, which is how the builder hashes it.

Which ProtocolState the instructions name is a deployment fact the reference could not settle
from the source alone (§G10.1): `TreeScope.global_protocol` picks the singleton
`["protocol_state"]` (HEAD, Pinocchio, SDK; the default) or the mint-keyed `["protocol",
mint]` (385f929); the treasury ATA the claims pay from is that account's ATA.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from operator import add, itemgetter

from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey

from aop.core.accounts import GlobalRootConfig
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
from aop.core.errors import InvalidAmountError, InvalidIntegerError
from aop.core.keccak import keccak256
from aop.core.pda import (
    GlobalProtocolSeeds,
    associated_token_address,
    claim_state_global_address,
    global_protocol_state_address,
    global_root_config_address,
)
from aop.core.program_ids import (
    ASSOCIATED_TOKEN_PROGRAM_ID,
    SYSTEM_PROGRAM_ID,
    TOKEN_2022_PROGRAM_ID,
)
from aop.core.validation import U64_MAX, check_pubkey_bytes, check_uint, describe_wallet

__all__ = [
    "V4_DATASET_LAYOUT",
    "V4_LEAF_DOMAIN",
    "V5_DATASET_LAYOUT",
    "V5_LEAF_DOMAIN",
    "GlobalFormat",
    "GlobalV4",
    "GlobalV5",
    "claim_global_instruction",
    "claim_global_v2_instruction",
    "global_v4_leaf",
    "global_v5_leaf",
    "initialize_global_root_instruction",
    "publish_global_root_instruction",
]

V4_LEAF_DOMAIN = b"TWZRD:GLOBAL_V4"
V5_LEAF_DOMAIN = b"TWZRD:GLOBAL_V5"

_V4_RECORD = struct.Struct("<32sQ")  # wallet || u64le(cumulative_total)
_V5_RECORD = struct.Struct("<32sQQ")  # wallet || u64le(base_yield) || u64le(attention_bonus)
#: global-v4 dataset records: wallet(32) || u64le(cumulative_total).
V4_DATASET_LAYOUT = DatasetLayout(record_size=_V4_RECORD.size, amount_offset=32)
#: global-v5 dataset records: wallet(32) || u64le(base_yield) || u64le(attention_bonus).
V5_DATASET_LAYOUT = DatasetLayout(record_size=_V5_RECORD.size, amount_offset=32, bonus_offset=40)


def _prefix(domain: bytes, mint: Pubkey, root_seq: int) -> bytes:
    check_uint("root_seq", root_seq)
    return domain + bytes(mint) + root_seq.to_bytes(8, "little")


def global_v4_leaf(*, mint: Pubkey, root_seq: int, wallet: bytes, cumulative_total: int) -> bytes:
    """The leaf `claim_global` recomputes (95-byte preimage).

    Raises:
        InvalidPubkeyError: `wallet` is not 32 bytes.
        InvalidIntegerError: `root_seq` or `cumulative_total` is not a u64.
    """
    check_pubkey_bytes("wallet", wallet)
    check_uint("cumulative_total", cumulative_total)
    return keccak256(
        _prefix(V4_LEAF_DOMAIN, mint, root_seq), wallet, cumulative_total.to_bytes(8, "little")
    )


def global_v5_leaf(
    *, mint: Pubkey, root_seq: int, wallet: bytes, base_yield: int, attention_bonus: int
) -> bytes:
    """The leaf `claim_global_v2` recomputes (103-byte preimage, no total).

    Raises:
        InvalidPubkeyError: `wallet` is not 32 bytes.
        InvalidIntegerError: a number is not a u64, or base_yield + attention_bonus is not
            (the program's checked add fails with MathOverflow, so such a leaf is unclaimable).
    """
    check_pubkey_bytes("wallet", wallet)
    check_uint("base_yield", base_yield)
    check_uint("attention_bonus", attention_bonus)
    if base_yield + attention_bonus > U64_MAX:
        raise InvalidIntegerError(
            f"base_yield + attention_bonus must fit a u64 (got {base_yield} + {attention_bonus})"
        )
    return keccak256(
        _prefix(V5_LEAF_DOMAIN, mint, root_seq),
        wallet,
        base_yield.to_bytes(8, "little"),
        attention_bonus.to_bytes(8, "little"),
    )


class GlobalFormat(ClaimFormat):
    """What global-v4 and global-v5 share: the scope (no channel), the ring, publishing."""

    amount_basis = "cumulative"
    sequence_key = "root_seq"
    is_global = True

    def build_from_parts(self, scope: TreeScope, parts: Mapping[bytes, Sequence[int]]) -> ClaimTree:
        """The tree of wallet -> (base, bonus): the combiner's shape.

        global-v5 keeps the two parts; global-v4 commits to their sum.

        Raises:
            InvalidWalletError, InvalidAmountError: a bad entry (a part not a u64, or a sum
                over u64).
        """
        raise NotImplementedError  # pragma: no cover - each subclass implements it

    def _tree(
        self, scope: TreeScope, domain: bytes, records: list[bytes], layout: DatasetLayout
    ) -> ClaimTree:
        prefix = _prefix(domain, scope.mint, scope.root_seq)
        return prefixed_record_tree(self.name, scope, layout, prefix, records)

    def publish_instruction(
        self, scope: TreeScope, *, payer: Pubkey, root: bytes, dataset_hash: bytes
    ) -> Instruction:
        return publish_global_root_instruction(
            program_id=scope.program_id,
            mint=scope.mint,
            payer=payer,
            root_seq=scope.root_seq,
            root=root,
            dataset_hash=dataset_hash,
            protocol_seeds=scope.global_protocol,
        )

    def root_account(self, scope: TreeScope) -> Pubkey:
        """The mint's GlobalRootConfig PDA."""
        return global_root_config_address(program_id=scope.program_id, mint=scope.mint).address

    def published_root(self, scope: TreeScope, account_data: bytes) -> bytes | None:
        entry = GlobalRootConfig.decode(account_data).root_entry(scope.root_seq)
        return entry.root if entry is not None else None


class GlobalV4(GlobalFormat):
    """global-v4: one cumulative total per wallet (see the module docstring)."""

    name = "global-v4"
    layout = V4_DATASET_LAYOUT
    amount_key = "cumulative_total"
    parts = ("cumulative_total",)

    def build(self, scope: TreeScope, inputs: Iterable[ClaimInput]) -> ClaimTree:
        """The tree of `inputs` (cumulative totals), wallets ascending, zero totals dropped.

        Raises:
            InvalidWalletError, InvalidAmountError, DuplicateWalletError: a bad entry.
        """
        entries = inputs if isinstance(inputs, list) else list(inputs)
        check_one_part(entries, self.amount_key)
        wallets: list[bytes] = list(map(itemgetter(0), entries))
        totals: list[int] = list(map(itemgetter(1), entries))
        return self._columns(scope, wallets, totals, entries)

    def build_from_amounts(
        self,
        scope: TreeScope,
        amounts: Mapping[bytes, int],
        first_seen: Mapping[bytes, int] | None = None,
    ) -> ClaimTree:
        wallets, totals = list(amounts), list(amounts.values())
        return self._columns(scope, wallets, totals, None)

    def build_from_parts(self, scope: TreeScope, parts: Mapping[bytes, Sequence[int]]) -> ClaimTree:
        wallets = list(parts)
        totals = [base + bonus for base, bonus in parts.values()]
        return self._columns(scope, wallets, totals, None)

    def _columns(
        self,
        scope: TreeScope,
        wallets: list[bytes],
        totals: list[int],
        entries: list[ClaimInput] | None,
    ) -> ClaimTree:
        if not valid_and_unique(wallets, totals):
            unique_wallet_amounts(  # raises the precise error
                entries if entries is not None else map(ClaimInput, wallets, totals),
                amount_name=self.amount_key,
                check_first_seen=False,
            )
        pack = _V4_RECORD.pack
        records = sorted_records([pack(w, t) for w, t in zip(wallets, totals, strict=True) if t])
        return self._tree(scope, V4_LEAF_DOMAIN, records, V4_DATASET_LAYOUT)

    def leaf(
        self, scope: TreeScope, wallet: bytes, amount: int, index: int, *, bonus: int = 0
    ) -> bytes:
        """The leaf of (wallet, cumulative_total = amount); `index` does not enter it.

        Raises:
            InvalidPubkeyError, InvalidIntegerError: a bad argument, or a non-zero bonus.
        """
        check_no_bonus(self.name, bonus)
        return global_v4_leaf(
            mint=scope.mint, root_seq=scope.root_seq, wallet=wallet, cumulative_total=amount
        )


class GlobalV5(GlobalFormat):
    """global-v5: base_yield and attention_bonus per wallet (see the module docstring)."""

    name = "global-v5"
    layout = V5_DATASET_LAYOUT
    amount_key = "base_yield"
    parts = ("base_yield", "attention_bonus")

    def build(self, scope: TreeScope, inputs: Iterable[ClaimInput]) -> ClaimTree:
        """The tree of `inputs` (`amount` = base_yield, `bonus` = attention_bonus), wallets
        ascending, wallets with base + bonus = 0 dropped.

        Raises:
            InvalidWalletError, InvalidAmountError, DuplicateWalletError: a bad entry (a part
                not a u64, or base + bonus over a u64).
        """
        entries = inputs if isinstance(inputs, list) else list(inputs)
        by_wallet = unique_wallet_amounts(entries, amount_name="base_yield", check_first_seen=False)
        parts: dict[bytes, tuple[int, int]] = {}
        for wallet, (base, _, position) in by_wallet.items():
            entry = entries[position]
            bonus = entry[3] if len(entry) > 3 else 0
            self._check_parts(position, wallet, base, bonus)
            parts[wallet] = (base, bonus)
        return self._records(scope, parts)

    def build_from_amounts(
        self,
        scope: TreeScope,
        amounts: Mapping[bytes, int],
        first_seen: Mapping[bytes, int] | None = None,
    ) -> ClaimTree:
        """`amounts` as base_yield, every attention_bonus 0."""
        return self.build_from_parts(scope, {w: (a, 0) for w, a in amounts.items()})

    def build_from_parts(self, scope: TreeScope, parts: Mapping[bytes, Sequence[int]]) -> ClaimTree:
        wallets = list(parts)
        bases = list(map(itemgetter(0), parts.values()))
        bonuses = list(map(itemgetter(1), parts.values()))
        valid = valid_and_unique(wallets, bases) and valid_and_unique(wallets, bonuses)
        if not valid or (bases and max(map(add, bases, bonuses)) > U64_MAX):
            unique_wallet_amounts(  # a bad wallet or base_yield: the precise error
                map(ClaimInput, wallets, bases), amount_name="base_yield", check_first_seen=False
            )
            for position, (wallet, (base, bonus)) in enumerate(parts.items()):
                self._check_parts(position, wallet, base, bonus)
        return self._records(scope, parts)

    @staticmethod
    def _check_parts(position: int, wallet: bytes, base: object, bonus: object) -> None:
        for name, value in (("base_yield", base), ("attention_bonus", bonus)):
            if type(value) is not int or not 0 <= value <= U64_MAX:
                raise InvalidAmountError(
                    position, f"{name} must be an integer in 0..{U64_MAX} (got {value!r})"
                )
        if base + bonus > U64_MAX:  # type: ignore[operator]
            raise InvalidAmountError(
                position,
                f"base_yield + attention_bonus of wallet {describe_wallet(wallet)} must fit a "
                f"u64 (got {base} + {bonus}); the program's checked add would refuse the claim",
            )

    def _records(self, scope: TreeScope, parts: Mapping[bytes, Sequence[int]]) -> ClaimTree:
        pack = _V5_RECORD.pack
        records = sorted_records(
            [pack(w, base, bonus) for w, (base, bonus) in parts.items() if base or bonus]
        )
        return self._tree(scope, V5_LEAF_DOMAIN, records, V5_DATASET_LAYOUT)

    def leaf(
        self, scope: TreeScope, wallet: bytes, amount: int, index: int, *, bonus: int = 0
    ) -> bytes:
        """The leaf of (wallet, base_yield = amount, attention_bonus = bonus).

        Raises:
            InvalidPubkeyError, InvalidIntegerError: a bad argument.
        """
        return global_v5_leaf(
            mint=scope.mint,
            root_seq=scope.root_seq,
            wallet=wallet,
            base_yield=amount,
            attention_bonus=bonus,
        )


# -- instructions (reference §G3) ----------------------------------------------------------


def _accounts(*metas: tuple[Pubkey, bool, bool]) -> list[AccountMeta]:
    return [
        AccountMeta(key, is_signer=signer, is_writable=writable) for key, signer, writable in metas
    ]


def publish_global_root_instruction(
    *,
    program_id: Pubkey,
    mint: Pubkey,
    payer: Pubkey,
    root_seq: int,
    root: bytes,
    dataset_hash: bytes,
    protocol_seeds: GlobalProtocolSeeds = "singleton",
) -> Instruction:
    """`publish_global_root(root_seq, root, dataset_hash)` (disc 518de216fea762ff, 80 bytes).

    Accounts: payer (signer, writable; admin or publisher), protocol_state (read-only),
    global_root_config (writable). `root_seq` must be the config's latest + 1.

    Raises:
        BorshEncodeError: `root_seq` not a u64, `root`/`dataset_hash` not 32 bytes.
    """
    data = (
        Writer()
        .fixed(instruction_discriminator("publish_global_root"), 8)
        .u64(root_seq)
        .pubkey(root)
        .pubkey(dataset_hash)
        .to_bytes()
    )
    protocol_state = global_protocol_state_address(
        program_id=program_id, mint=mint, seeds=protocol_seeds
    ).address
    config = global_root_config_address(program_id=program_id, mint=mint).address
    accounts = _accounts((payer, True, True), (protocol_state, False, False), (config, False, True))
    return Instruction(program_id, data, accounts)


def initialize_global_root_instruction(
    *,
    program_id: Pubkey,
    mint: Pubkey,
    payer: Pubkey,
    protocol_seeds: GlobalProtocolSeeds = "singleton",
) -> Instruction:
    """`initialize_global_root()` (disc ca366bf618f74bfd): creates the 370-byte config.

    Accounts: payer (signer, writable), protocol_state, global_root_config (writable),
    system_program.
    """
    data = instruction_discriminator("initialize_global_root")
    protocol_state = global_protocol_state_address(
        program_id=program_id, mint=mint, seeds=protocol_seeds
    ).address
    config = global_root_config_address(program_id=program_id, mint=mint).address
    accounts = _accounts(
        (payer, True, True),
        (protocol_state, False, False),
        (config, False, True),
        (SYSTEM_PROGRAM_ID, False, False),
    )
    return Instruction(program_id, data, accounts)


def _claim_accounts(
    *,
    program_id: Pubkey,
    mint: Pubkey,
    claimer: Pubkey,
    payer: Pubkey | None,
    protocol_seeds: GlobalProtocolSeeds,
    token_program: Pubkey,
) -> list[AccountMeta]:
    """The `ClaimGlobal` accounts (self-claim), or `ClaimGlobalSponsored`'s when `payer` is a
    relayer: payer first, then the claimer as an unchecked read-only account (§G3.1)."""
    protocol_state = global_protocol_state_address(
        program_id=program_id, mint=mint, seeds=protocol_seeds
    ).address
    config = global_root_config_address(program_id=program_id, mint=mint).address
    claim_state = claim_state_global_address(program_id=program_id, mint=mint, wallet=claimer)
    head = (
        [(claimer, True, True)] if payer is None else [(payer, True, True), (claimer, False, False)]
    )
    return _accounts(
        *head,
        (protocol_state, False, True),
        (config, False, False),
        (claim_state.address, False, True),
        (mint, False, False),
        (
            associated_token_address(owner=protocol_state, mint=mint, token_program=token_program),
            False,
            True,
        ),
        (
            associated_token_address(owner=claimer, mint=mint, token_program=token_program),
            False,
            True,
        ),
        (token_program, False, False),
        (ASSOCIATED_TOKEN_PROGRAM_ID, False, False),
        (SYSTEM_PROGRAM_ID, False, False),
    )


def claim_global_instruction(
    *,
    program_id: Pubkey,
    mint: Pubkey,
    claimer: Pubkey,
    root_seq: int,
    cumulative_total: int,
    proof: Sequence[bytes],
    payer: Pubkey | None = None,
    protocol_seeds: GlobalProtocolSeeds = "singleton",
    token_program: Pubkey = TOKEN_2022_PROGRAM_ID,
) -> Instruction:
    """`claim_global(root_seq, cumulative_total, proof)` (V4 leaf; disc 36b4975b48f36ef7), or
    `claim_global_sponsored` (disc 1573d04978f0f494) when a relayer `payer` is given.

    Accounts (self-claim): 0 claimer (signer, writable), 1 protocol_state (writable),
    2 global_root_config, 3 claim_state (writable), 4 mint, 5 treasury ATA (writable),
    6 claimer ATA (writable), 7 token program, 8 associated token program, 9 system program.
    Sponsored: the relayer first, then the claimer (read-only, not a signer), then as above.

    Raises:
        BorshEncodeError: an argument of the wrong type, range or length.
    """
    name = "claim_global" if payer is None else "claim_global_sponsored"
    data = (
        Writer()
        .fixed(instruction_discriminator(name), 8)
        .u64(root_seq)
        .u64(cumulative_total)
        .vec_bytes32(proof)
        .to_bytes()
    )
    accounts = _claim_accounts(
        program_id=program_id,
        mint=mint,
        claimer=claimer,
        payer=payer,
        protocol_seeds=protocol_seeds,
        token_program=token_program,
    )
    return Instruction(program_id, data, accounts)


def claim_global_v2_instruction(
    *,
    program_id: Pubkey,
    mint: Pubkey,
    claimer: Pubkey,
    root_seq: int,
    base_yield: int,
    attention_bonus: int,
    proof: Sequence[bytes],
    payer: Pubkey | None = None,
    protocol_seeds: GlobalProtocolSeeds = "singleton",
    token_program: Pubkey = TOKEN_2022_PROGRAM_ID,
) -> Instruction:
    """`claim_global_v2(root_seq, base_yield, attention_bonus, proof)` (V5 leaf; disc
    f82caa6531aa8c7e), or `claim_global_sponsored_v2` (disc 595484508b5c5e04) with a relayer
    `payer`. Accounts as `claim_global_instruction`.

    Raises:
        BorshEncodeError: an argument of the wrong type, range or length.
    """
    name = "claim_global_v2" if payer is None else "claim_global_sponsored_v2"
    data = (
        Writer()
        .fixed(instruction_discriminator(name), 8)
        .u64(root_seq)
        .u64(base_yield)
        .u64(attention_bonus)
        .vec_bytes32(proof)
        .to_bytes()
    )
    accounts = _claim_accounts(
        program_id=program_id,
        mint=mint,
        claimer=claimer,
        payer=payer,
        protocol_seeds=protocol_seeds,
        token_program=token_program,
    )
    return Instruction(program_id, data, accounts)
