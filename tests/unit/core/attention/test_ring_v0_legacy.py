"""ring-v0-legacy: the legacy aggregator's trees, checked against an independent statement of
the rules (tests.unit.core.independent) on hand-picked examples."""

from __future__ import annotations

import pytest
from solders.pubkey import Pubkey

from aop.core.attention.legacy import (
    InvalidTemplateError,
    check_claim_id_template,
    claim_id,
    legacy_inputs,
    user_hash,
)
from aop.core.claims import ClaimInput, TreeScope, get_claim_format
from aop.core.errors import (
    ClaimIdTooLongError,
    DuplicateClaimIdError,
    MissingClaimIdError,
    TooManyClaimsError,
)
from tests.unit.core import independent
from tests.unit.core.vectors import CCM_MINT, PROGRAM_ID, RING_LEAF

FMT = get_claim_format("ring-v0-legacy")
EPOCH = 1_796_666_400
PROGRAM, MINT = Pubkey.from_string(PROGRAM_ID), Pubkey.from_string(CCM_MINT)
SCOPE = TreeScope(PROGRAM, MINT, "lofigirl", 1, EPOCH)
W1, W2 = b"\x11" * 32, b"\x22" * 32
TEMPLATE = "twitch:{channel}:{user}"


def test_leaf_is_the_reference_ring_leaf_with_the_claims_own_id() -> None:
    """§12: keccak([07]*32 || u32 5 || u64 123456 || "twitch:unit:alice")."""
    leaf = FMT.leaf(SCOPE, b"\x07" * 32, 123456, 5, claim_id="twitch:unit:alice")
    assert leaf.hex() == RING_LEAF


def test_user_hash_is_keccak_of_the_lowercase_name() -> None:
    assert user_hash("Alice") == independent.keccak(b"alice")
    assert user_hash("Alice").hex().startswith("9c0257114eb9399a")


def test_the_legacy_epoch_indexes_by_first_seen_then_user_hash() -> None:
    """carol first seen at 500 ms gets index 0; alice and bob both at 1000 ms go by user_hash:
    keccak("bob") = 38e47a7b... < keccak("alice") = 9c025711..., so bob 1, alice 2. carol and
    alice share wallet W1 (two leaves, two ids); dave (amount 0) gets no index."""
    claims = [
        ("Alice", 1000, W1, 5),
        ("bob", 1000, W2, 7),
        ("carol", 500, W1, 3),
        ("dave", 10, W2, 0),
    ]
    tree = FMT.build(SCOPE, legacy_inputs(TEMPLATE, "lofigirl", EPOCH, claims))
    expected = [
        (W1, 3, "twitch:lofigirl:carol"),
        (W2, 7, "twitch:lofigirl:bob"),
        (W1, 5, "twitch:lofigirl:alice"),
    ]
    leaves = [independent.ring_leaf(w, i, a, cid) for i, (w, a, cid) in enumerate(expected)]
    assert tree.leaves == leaves
    assert tree.root == independent.root_of(leaves)
    assert tree.wallets == [W1, W2, W1]
    assert tree.amounts == [3, 7, 5]
    assert FMT.dataset_claim_ids(tree.dataset) == [cid for _, _, cid in expected]
    records = [
        w
        + i.to_bytes(4, "little")
        + independent.u64(a)
        + bytes([len(cid)])
        + cid.encode().ljust(64, b"\0")
        for i, (w, a, cid) in enumerate(expected)
    ]
    assert tree.dataset == b"".join(records)
    assert tree.dataset_hash == independent.keccak(*records)
    for index, (wallet, amount, cid) in enumerate(expected):
        proof = tree.proof(index)
        leaf = FMT.leaf(SCOPE, wallet, amount, index, claim_id=cid)
        assert independent.program_verifies(leaf, proof, tree.root)


def test_rebuilding_from_the_dataset_gives_the_same_tree() -> None:
    """What the projector does: ids from the dataset, first_seen = position."""
    claims = [(f"u{n}", n % 3, W1 if n % 2 else W2, n + 1) for n in range(9)]
    tree = FMT.build(SCOPE, legacy_inputs(TEMPLATE, "lofigirl", EPOCH, claims))
    again = FMT.build(
        SCOPE,
        [
            ClaimInput(w, a, i, 0, cid)
            for i, (w, a, cid) in enumerate(
                zip(tree.wallets, tree.amounts, FMT.dataset_claim_ids(tree.dataset), strict=True)
            )
        ],
    )
    assert (again.root, again.dataset) == (tree.root, tree.dataset)


def test_templates_fill_channel_user_and_epoch_and_refuse_other_fields() -> None:
    assert claim_id("{channel}/{epoch}/{user}", channel="c", user="Bob", epoch=7) == "c/7/bob"
    assert check_claim_id_template(TEMPLATE) == TEMPLATE
    for bad in ("{wallet}", "{user!r}", "{epoch:08}", "{user"):
        with pytest.raises(InvalidTemplateError):
            check_claim_id_template(bad)


def test_limits_duplicate_ids_and_missing_ids_are_refused() -> None:
    with pytest.raises(TooManyClaimsError, match=r"has 1025 claims; ring-v0 holds at most 1024"):
        FMT.build(SCOPE, [ClaimInput(W1, 1, n, 0, f"id{n}") for n in range(1025)])
    with pytest.raises(DuplicateClaimIdError, match=r"entry 1: claim id 'x' repeats entry 0"):
        FMT.build(SCOPE, [ClaimInput(W1, 1, 0, 0, "x"), ClaimInput(W2, 1, 1, 0, "x")])
    with pytest.raises(ClaimIdTooLongError, match=r"must be 1-64 bytes \(got 65\)"):
        FMT.build(SCOPE, [ClaimInput(W1, 1, 0, 0, "i" * 65)])
    with pytest.raises(MissingClaimIdError):
        FMT.leaf(SCOPE, W1, 1, 0)
