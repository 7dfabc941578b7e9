"""core.merkle: the §12 tree, and properties checked against an independent builder."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aop.core.errors import InvalidNodeError, LeafIndexError, MalformedLevelsError, TreeTooDeepError
from aop.core.merkle import (
    MAX_PROOF_LEN,
    ZERO_ROOT,
    MerkleTree,
    hash_pair,
    proof_from_levels,
    verify_proof,
)
from tests.unit.core import independent
from tests.unit.core.strategies import edge_sizes, leaf_lists, nodes
from tests.unit.core.vectors import LEAVES, PROOFS, ROOT

EXAMPLE = [bytes.fromhex(leaf) for leaf in LEAVES]


def leaves_of(size: int, seed: int) -> list[bytes]:
    return [
        independent.keccak(seed.to_bytes(4, "little"), i.to_bytes(4, "little")) for i in range(size)
    ]


def test_example_tree_root_matches_reference() -> None:
    assert MerkleTree(EXAMPLE).root.hex() == ROOT


@pytest.mark.parametrize("index", [0, 1, 2])
def test_example_tree_proof_matches_reference(index: int) -> None:
    expected = [bytes.fromhex(node) for node in PROOFS[index]]
    assert MerkleTree(EXAMPLE).proof(index) == expected


def test_odd_last_leaf_lists_itself_as_sibling() -> None:
    assert MerkleTree(EXAMPLE).proof(2)[0] == EXAMPLE[2]


def test_empty_tree_has_zero_root_and_no_levels() -> None:
    tree = MerkleTree([])
    assert (tree.root, tree.levels, tree.leaf_count, tree.leaves) == (ZERO_ROOT, (), 0, [])


def test_single_leaf_tree_root_is_the_leaf_with_empty_proof() -> None:
    leaf = EXAMPLE[0]
    tree = MerkleTree([leaf])
    assert (tree.root, tree.proof(0), tree.depth) == (leaf, [], 0)
    assert verify_proof(leaf, [], leaf)


def test_hash_pair_sorts_children_bytewise() -> None:
    a, b = EXAMPLE[0], EXAMPLE[1]
    assert hash_pair(a, b) == hash_pair(b, a) == independent.keccak(min(a, b), max(a, b))


@settings(max_examples=40, deadline=None)
@given(edge_sizes, st.integers(0, 2**32 - 1))
def test_tree_of_edge_size_matches_independent_builder(size: int, seed: int) -> None:
    leaves = leaves_of(size, seed)
    tree = MerkleTree(leaves)
    assert tree.root == independent.root_of(leaves)
    for index in {0, size // 2, size - 1} if size else set():
        proof = tree.proof(index)
        assert proof == independent.proof_of(leaves, index)
        assert independent.program_verifies(leaves[index], proof, tree.root)


@settings(max_examples=60, deadline=None)
@given(leaf_lists(max_size=200).filter(bool), st.data())
def test_every_proof_verifies_under_the_program_rule(
    leaves: list[bytes], data: st.DataObject
) -> None:
    tree = MerkleTree(leaves)
    for index, leaf in enumerate(leaves):
        proof = tree.proof(index)
        assert independent.program_verifies(leaf, proof, tree.root)
        assert verify_proof(leaf, proof, tree.root)


@settings(max_examples=60, deadline=None)
@given(leaf_lists(max_size=200).filter(lambda leaves: len(leaves) > 1), st.data())
def test_changing_any_proof_node_fails_verification(
    leaves: list[bytes], data: st.DataObject
) -> None:
    tree = MerkleTree(leaves)
    index = data.draw(st.integers(0, len(leaves) - 1))
    proof = tree.proof(index)
    at = data.draw(st.integers(0, len(proof) - 1))
    bit = data.draw(st.integers(0, 255))
    tampered = list(proof)
    tampered[at] = (int.from_bytes(proof[at], "big") ^ (1 << bit)).to_bytes(32, "big")
    assert not independent.program_verifies(leaves[index], tampered, tree.root)
    assert not verify_proof(leaves[index], tampered, tree.root)


@settings(max_examples=60, deadline=None)
@given(leaf_lists(max_size=300), st.data())
def test_levels_round_trip_and_proof_from_levels_equals_tree_proof(
    leaves: list[bytes], data: st.DataObject
) -> None:
    tree = MerkleTree(leaves)
    stored = [bytes(level) for level in tree.levels]
    restored = MerkleTree.from_levels(stored)
    assert (restored.root, restored.levels, restored.leaves) == (tree.root, tree.levels, leaves)
    if leaves:
        index = data.draw(st.integers(0, len(leaves) - 1))
        assert proof_from_levels(stored, index) == tree.proof(index) == restored.proof(index)


def test_levels_are_concatenated_nodes_leaves_first_root_last() -> None:
    tree = MerkleTree(EXAMPLE)
    level1 = [
        independent.parent(EXAMPLE[0], EXAMPLE[1]),
        independent.parent(EXAMPLE[2], EXAMPLE[2]),
    ]
    assert tree.levels == (b"".join(EXAMPLE), b"".join(level1), bytes.fromhex(ROOT))


def test_build_rejects_leaf_not_32_bytes() -> None:
    with pytest.raises(InvalidNodeError, match=r"leaf 1 must be 32 bytes \(got 31 bytes\)"):
        MerkleTree([EXAMPLE[0], b"\x00" * 31])


class _HugeLeaves(Sequence[bytes]):
    """Claims 2^32 + 1 leaves without holding them: the depth check comes first."""

    def __len__(self) -> int:
        return 2**32 + 1

    def __getitem__(self, index: object) -> bytes:  # type: ignore[override]
        raise AssertionError("the depth check must refuse before reading leaves")


def test_build_refuses_tree_deeper_than_32_levels() -> None:
    with pytest.raises(
        TreeTooDeepError, match=r"4294967297 leaves needs 33-node proofs; .* at most 32"
    ):
        MerkleTree(_HugeLeaves())


def test_from_levels_refuses_more_than_33_levels() -> None:
    with pytest.raises(MalformedLevelsError, match=r"at most 33 levels \(got 34\)"):
        MerkleTree.from_levels([bytes(32)] * 34)


@pytest.mark.parametrize(
    ("levels", "message"),
    [
        ([b"\x00" * 33], r"level 0 must be a non-empty multiple of 32 bytes \(got 33\)"),
        ([bytes(96), bytes(32)], r"level 1 must be 64 bytes \(got 32\)"),
        ([bytes(64)], r"the last level must be the root \(got 2 nodes\)"),
        ([bytes(32), bytes(32)], r"level 0 is the root, but 1 follows it"),
    ],
)
def test_from_levels_rejects_malformed_shape(levels: list[bytes], message: str) -> None:
    with pytest.raises(MalformedLevelsError, match=message):
        MerkleTree.from_levels(levels)


@pytest.mark.parametrize("index", [-1, 3, 10])
def test_proof_of_index_outside_tree_raises(index: int) -> None:
    with pytest.raises(LeafIndexError, match=rf"leaf index must be in 0\.\.2 \(got {index}\)"):
        MerkleTree(EXAMPLE).proof(index)


def test_proof_from_empty_levels_raises() -> None:
    with pytest.raises(LeafIndexError, match=r"leaf index must be in 0\.\.-1 \(got 0\)"):
        proof_from_levels((), 0)


def test_verify_proof_rejects_more_than_32_nodes() -> None:
    leaf = EXAMPLE[0]
    proof = [leaf] * (MAX_PROOF_LEN + 1)
    assert not verify_proof(leaf, proof, independent.fold(leaf, proof))


def test_verify_proof_accepts_exactly_32_nodes() -> None:
    leaf = EXAMPLE[0]
    proof = [leaf] * MAX_PROOF_LEN
    assert verify_proof(leaf, proof, independent.fold(leaf, proof))


@given(nodes, st.binary(max_size=40).filter(lambda b: len(b) != 32))
def test_verify_proof_rejects_node_not_32_bytes(leaf: bytes, bad: bytes) -> None:
    with pytest.raises(InvalidNodeError, match=r"proof node 0 must be 32 bytes"):
        verify_proof(leaf, [bad], leaf)
