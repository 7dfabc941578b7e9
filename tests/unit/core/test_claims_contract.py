"""The ClaimFormat contract, run against every registered format."""

from __future__ import annotations

import random

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from solders.pubkey import Pubkey

from aop.core.claims import (
    CLAIM_FORMATS,
    DEFAULT_CLAIM_FORMAT,
    ClaimFormat,
    ClaimInput,
    TreeScope,
    get_claim_format,
)
from aop.core.errors import (
    DuplicateWalletError,
    InvalidAmountError,
    InvalidWalletError,
    UnknownClaimFormatError,
    WalletNotInTreeError,
)
from aop.core.merkle import verify_proof
from tests.unit.core import independent
from tests.unit.core.strategies import U64_MAX, pubkeys, ring_datasets
from tests.unit.core.vectors import CCM_MINT, PROGRAM_ID

SCOPE = TreeScope(Pubkey.from_string(PROGRAM_ID), Pubkey.from_string(CCM_MINT), "twitch:unit", 3, 7)


#: the contract runs against every registered format with one leaf per wallet; ring-v0-legacy
#: (a leaf per claim id, wallets may repeat) has its own tests (test_ring_v0_legacy.py).
_WALLET_KEYED = sorted(n for n, f in CLAIM_FORMATS.items() if not f.per_leaf_claim_id)
each_format = pytest.mark.parametrize(
    "fmt", [get_claim_format(name) for name in _WALLET_KEYED], ids=_WALLET_KEYED
)


def test_registry_knows_every_format_and_defaults_to_cumulative_v2() -> None:
    assert sorted(CLAIM_FORMATS) == [
        "cumulative-v2",
        "global-v4",
        "global-v5",
        "ring-v0",
        "ring-v0-legacy",
    ]
    assert _WALLET_KEYED == ["cumulative-v2", "global-v4", "global-v5", "ring-v0"]
    assert get_claim_format().name == DEFAULT_CLAIM_FORMAT == "cumulative-v2"


def test_unknown_format_name_raises_listing_known_ones() -> None:
    with pytest.raises(
        UnknownClaimFormatError,
        match=r"claim format must be one of cumulative-v2, global-v4, global-v5, ring-v0, "
        r"ring-v0-legacy \(got 'v9'\)",
    ):
        get_claim_format("v9")


@each_format
@settings(max_examples=30, deadline=None)
@given(ring_datasets())
def test_build_gives_leaves_that_verify_and_match_leaf(
    fmt: ClaimFormat, inputs: list[ClaimInput]
) -> None:
    tree = fmt.build(SCOPE, inputs)
    amounts = {i.wallet: i.amount for i in inputs}
    assert sorted(tree.wallets) == sorted(amounts)
    assert tree.total == sum(amounts.values())
    assert tree.root == independent.root_of(tree.leaves)
    assert tree.dataset_hash == independent.keccak(tree.dataset)
    for entry in tree.entries:
        assert entry.amount == amounts[entry.wallet]
        leaf = fmt.leaf(SCOPE, entry.wallet, entry.amount, entry.index)
        assert leaf == tree.leaf(entry.index)
        assert tree.index_of(entry.wallet) == entry.index
        proof = tree.proof_for(entry.wallet)
        assert independent.program_verifies(leaf, proof, tree.root)
        assert verify_proof(leaf, proof, tree.root)


@each_format
@settings(max_examples=30, deadline=None)
@given(ring_datasets(), st.randoms())
def test_root_does_not_depend_on_input_order(
    fmt: ClaimFormat, inputs: list[ClaimInput], rng: random.Random
) -> None:
    shuffled = list(inputs)
    rng.shuffle(shuffled)
    first, second = fmt.build(SCOPE, inputs), fmt.build(SCOPE, shuffled)
    assert (first.root, first.dataset_hash, first.dataset) == (
        second.root,
        second.dataset_hash,
        second.dataset,
    )


@each_format
def test_empty_dataset_gives_zero_root_and_keccak_of_nothing(fmt: ClaimFormat) -> None:
    tree = fmt.build(SCOPE, [])
    assert (tree.root, tree.leaf_count, tree.total) == (bytes(32), 0, 0)
    assert tree.dataset_hash == independent.keccak(b"")


@each_format
def test_zero_amounts_get_no_leaf(fmt: ClaimFormat) -> None:
    tree = fmt.build(SCOPE, [ClaimInput(b"\x01" * 32, 0), ClaimInput(b"\x02" * 32, 5)])
    assert tree.wallets == [b"\x02" * 32]
    with pytest.raises(
        WalletNotInTreeError, match=r"has no leaf in the .* tree of channel 'twitch:unit'"
    ):
        tree.index_of(b"\x01" * 32)


@each_format
@given(pubkeys)
def test_duplicate_wallet_raises_naming_both_entries(fmt: ClaimFormat, wallet: bytes) -> None:
    assume(wallet != b"\xff" * 32)
    inputs = [ClaimInput(b"\xff" * 32, 1), ClaimInput(wallet, 1), ClaimInput(wallet, 0)]
    with pytest.raises(
        DuplicateWalletError, match=rf"entry 2: wallet {Pubkey(wallet)} repeats entry 1"
    ):
        fmt.build(SCOPE, inputs)


@each_format
@pytest.mark.parametrize("amount", [-1, 2**64, 1.0, True, "5"])
def test_amount_outside_u64_raises_naming_entry(fmt: ClaimFormat, amount: object) -> None:
    inputs = [ClaimInput(b"\x01" * 32, 1), ClaimInput(b"\x02" * 32, amount)]  # type: ignore[arg-type]
    with pytest.raises(
        InvalidAmountError,
        match=rf"entry 1: {fmt.amount_key} must be an integer in 0\.\.{U64_MAX} \(got {amount!r}\)",
    ):
        fmt.build(SCOPE, inputs)


@each_format
@pytest.mark.parametrize("wallet", [b"\x01" * 31, "2pHjZLqsSqi35xuYHmZbZBM1xfYV6Ruv57r3eFPvZZaD"])
def test_wallet_not_32_bytes_raises_naming_entry(fmt: ClaimFormat, wallet: object) -> None:
    with pytest.raises(InvalidWalletError, match=r"entry 0: wallet must be 32 raw bytes"):
        fmt.build(SCOPE, [ClaimInput(wallet, 1)])  # type: ignore[arg-type]


@each_format
def test_publish_instruction_targets_the_program_and_root_account(fmt: ClaimFormat) -> None:
    payer = Pubkey.new_unique()
    ix = fmt.publish_instruction(SCOPE, payer=payer, root=b"\x07" * 32, dataset_hash=b"\x08" * 32)
    assert ix.program_id == SCOPE.program_id
    assert ix.accounts[0].pubkey == payer and ix.accounts[0].is_signer
    assert fmt.root_account(SCOPE) in [meta.pubkey for meta in ix.accounts]
