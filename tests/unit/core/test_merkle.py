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
    cut_proof,
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


#: trees whose levels have odd tails at several depths, and the powers of two around them.
CUT_SIZES = [1, 2, 3, 5, 6, 7, 11, 13, 31, 32, 33, 63, 64, 65, 127, 128, 129]


def _path_pairs(levels: Sequence[bytes], index: int, *, doubled: bool) -> list[bytes]:
    """What a store cuts per level with one slice: the 64 bytes from node (i & ~1), i.e. the
    pair on the path, which at an odd tail is node i alone (or, `doubled`, node i twice)."""
    out = []
    for level, whole in enumerate(levels):
        start = ((index >> level) & ~1) * 32
        pair = whole[start : start + 64]
        out.append(pair + pair if doubled and len(pair) == 32 else pair)
    return out


@pytest.mark.parametrize("size", CUT_SIZES)
def test_cut_proof_from_whole_levels_and_pairs_equals_independent_proof(size: int) -> None:
    """Every leaf, every split between pair levels and whole levels, tails raw or doubled."""
    leaves = leaves_of(size, 7)
    below_root = MerkleTree(leaves).levels[:-1] or MerkleTree(leaves).levels
    for index in range(size):
        expected = independent.proof_of(leaves, index)
        for doubled in (False, True):
            pairs = _path_pairs(below_root, index, doubled=doubled)
            for split in range(len(below_root) + 1):
                levels = [*pairs[:split], *below_root[split:]]
                leaf, proof = cut_proof(levels, index, pairs=split)
                assert leaf == leaves[index]
                assert proof[: len(expected)] == expected
                assert len(proof) == max(len(expected), 1)


def test_cut_proof_lists_the_odd_last_node_as_its_own_sibling() -> None:
    nodes = [bytes([n]) * 32 for n in range(5)]
    level = b"".join(nodes)
    assert cut_proof([level], 4) == (nodes[4], [nodes[4]])
    assert cut_proof([nodes[4]], 4, pairs=1) == (nodes[4], [nodes[4]])
    assert cut_proof([level], 3) == (nodes[3], [nodes[2]])
    assert cut_proof([nodes[2] + nodes[3]], 3, pairs=1) == (nodes[3], [nodes[2]])


@pytest.mark.parametrize(
    ("levels", "index", "pairs", "message"),
    [
        ([bytes(32) * 4], 5, 0, "level 0 \\(128 bytes\\) holds neither node 5"),
        ([bytes(32) * 4], 4, 0, "neither node 4"),
        ([bytes(32) * 3 + bytes(16)], 2, 0, "neither node 2"),
        ([bytes(32)], 1, 1, "neither node 1"),
        ([bytes(48)], 0, 1, "neither node 0"),
        ([bytes(128), bytes(32)], 3, 0, "level 1 \\(32 bytes\\) holds neither node 1"),
    ],
)
def test_cut_proof_refuses_levels_without_the_node(
    levels: list[bytes], index: int, pairs: int, message: str
) -> None:
    with pytest.raises(MalformedLevelsError, match=message):
        cut_proof(levels, index, pairs=pairs)
