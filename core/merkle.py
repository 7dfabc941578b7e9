"""The program's Merkle tree: Keccak-256 sorted pairs, built the way the program's tests build it.

Rules (reference §2; the verifier accepts any tree, so these fix which tree we build):

* inner node = keccak(min(a, b) || max(a, b)), min/max by bytewise comparison of the 32-byte
  children, so a proof is just the siblings from leaf to root, without direction bits;
* pairs are (0, 1), (2, 3), ... in leaf order; an odd last node is paired with ITSELF
  (keccak(x || x)) and its proof lists itself as the sibling;
* one leaf: root = the leaf, empty proof; no leaves: root = 32 zero bytes (`ZERO_ROOT`) and no
  levels (the program has no notion of an empty tree; this root verifies nothing);
* a proof has at most 32 nodes (`MAX_PROOF_LEN`), so a tree has at most 2^32 leaves.

Levels are kept compact: each level is ONE `bytes` of its nodes concatenated (level 0 = the
leaves, the last level = the 32-byte root). A store can keep one blob per level and cut a proof
out with `proof_from_levels` (32 bytes at offset (i ^ 1) * 32 of each level) without rebuilding.

`cut_proof` is the one place that applies the odd-tail rule when a proof is cut: every path
that cuts proofs (`proof_from_levels`, the API's hot roots and its SQL pairs) calls it, and
the SQL statements that apply the rule themselves are tested against it.
"""

from __future__ import annotations

from collections.abc import Sequence

from sha3 import keccak_256

from aop.core.errors import InvalidNodeError, LeafIndexError, MalformedLevelsError, TreeTooDeepError

__all__ = [
    "MAX_PROOF_LEN",
    "NODE_LEN",
    "ZERO_ROOT",
    "MerkleTree",
    "build_levels",
    "cut_proof",
    "hash_pair",
    "proof_from_levels",
    "verify_proof",
]

NODE_LEN = 32
MAX_PROOF_LEN = 32
MAX_LEAVES = 2**MAX_PROOF_LEN
ZERO_ROOT = bytes(NODE_LEN)


def hash_pair(a: bytes, b: bytes) -> bytes:
    """keccak(min(a, b) || max(a, b)): the program's inner node."""
    return bytes(keccak_256(a + b if a < b else b + a).digest())


def _check_node(node: bytes, what: str) -> None:
    if not isinstance(node, bytes) or len(node) != NODE_LEN:
        got = f"{len(node)} bytes" if isinstance(node, bytes) else repr(node)
        raise InvalidNodeError(f"{what} must be {NODE_LEN} bytes (got {got})")


def build_levels(leaves: Sequence[bytes]) -> tuple[bytes, ...]:
    """Hash `leaves` up to the root; returns the levels, leaves first, root last.

    Raises:
        InvalidNodeError: a leaf is not 32 bytes.
        TreeTooDeepError: more than 2^32 leaves (proofs would exceed 32 nodes).
    """
    count = len(leaves)
    if count > MAX_LEAVES:
        raise TreeTooDeepError(
            f"a tree of {count} leaves needs {(count - 1).bit_length()}-node proofs; "
            f"the program accepts at most {MAX_PROOF_LEN} (at most {MAX_LEAVES} leaves)"
        )
    if count == 0:
        return ()
    if set(map(len, leaves)) != {NODE_LEN}:
        for i, leaf in enumerate(leaves):
            _check_node(leaf, f"leaf {i}")
    levels = [b"".join(leaves)]
    nodes: Sequence[bytes] = leaves
    keccak = keccak_256
    while len(nodes) > 1:
        pairs = iter(nodes)  # zip(pairs, pairs) yields (0, 1), (2, 3), ...; the odd tail below
        parents = [
            keccak(a + b if a < b else b + a).digest() for a, b in zip(pairs, pairs, strict=False)
        ]
        if len(nodes) & 1:
            last = nodes[-1]
            parents.append(keccak(last + last).digest())
        levels.append(b"".join(parents))
        nodes = parents
    return tuple(levels)


def proof_from_levels(levels: Sequence[bytes], index: int) -> list[bytes]:
    """The proof of leaf `index`, cut from stored levels: no hashing, O(depth) slices.

    Args:
        levels: the tree's levels as `MerkleTree.levels` gives them (leaves first).
        index: the leaf's position in level 0.
    Raises:
        LeafIndexError: `index` is not a leaf of the tree.
    """
    count = len(levels[0]) // NODE_LEN if levels else 0
    if type(index) is not int or not 0 <= index < count:
        raise LeafIndexError(f"leaf index must be in 0..{count - 1} (got {index!r})")
    return cut_proof(levels[:-1], index)[1]


def cut_proof(levels: Sequence[bytes], index: int, *, pairs: int = 0) -> tuple[bytes, list[bytes]]:
    """Leaf `index` and one sibling per level of `levels`, from the leaf up: THE proof cut.

    The sibling of node i is node i ^ 1; an odd level's last node (even i, no node i + 1) is
    its own sibling. No hashing: one or two slices per level.

    Args:
        levels: levels from level 0 up, as `MerkleTree.levels` holds them: pass the levels
            below the root for a proof (a one-leaf tree: level 0 alone, and drop its sibling).
        index: the leaf's position in level 0.
        pairs: how many of the lowest levels are given as only the PAIR on the path, as a
            store cuts them with one slice: the 64 bytes of nodes (i & ~1, i | 1) of that
            level (i = index >> level), or node i alone, or doubled, when it is the odd tail.
    Returns:
        (the leaf, the siblings from the leaf up).
    Raises:
        MalformedLevelsError: a level does not hold node i followed by its sibling or by
            nothing (its end).
    """
    proof: list[bytes] = []
    append = proof.append
    for level, nodes in enumerate(levels):
        i = index >> level
        if i & 1:
            mate = ((1 if level < pairs else i) - 1) * NODE_LEN
            sibling = nodes[mate : mate + NODE_LEN]
            if len(nodes) < mate + 2 * NODE_LEN:  # node i is missing (and maybe its sibling)
                raise _no_node(level, nodes, i)
        else:
            mate = (1 if level < pairs else i + 1) * NODE_LEN
            sibling = nodes[mate : mate + NODE_LEN]
            if len(sibling) != NODE_LEN:
                if len(nodes) != mate:
                    raise _no_node(level, nodes, i)
                sibling = nodes[mate - NODE_LEN : mate]  # the odd tail: node i ends the level
        append(sibling)
    at = ((index & 1) if pairs else index) * NODE_LEN
    leaf = levels[0][at : at + NODE_LEN] if levels else b""
    return leaf, proof


def _no_node(level: int, nodes: bytes, i: int) -> MalformedLevelsError:
    return MalformedLevelsError(
        f"level {level} ({len(nodes)} bytes) holds neither node {i} with its sibling nor "
        f"node {i} as its last node"
    )


def verify_proof(leaf: bytes, proof: Sequence[bytes], root: bytes) -> bool:
    """Whether folding `proof` into `leaf` with sorted pairs gives `root` (as the program does).

    A proof longer than 32 nodes is rejected (the claim handler's `InvalidProofLength`).

    Raises:
        InvalidNodeError: `leaf`, `root` or a proof node is not 32 bytes.
    """
    _check_node(leaf, "leaf")
    _check_node(root, "root")
    if len(proof) > MAX_PROOF_LEN:
        return False
    keccak = keccak_256
    node = leaf
    for i, sibling in enumerate(proof):
        _check_node(sibling, f"proof node {i}")
        node = keccak(node + sibling if node < sibling else sibling + node).digest()
    return bool(node == root)


def _check_levels(levels: Sequence[bytes]) -> None:
    if not levels:
        return
    if len(levels) > MAX_PROOF_LEN + 1:
        raise MalformedLevelsError(
            f"a tree has at most {MAX_PROOF_LEN + 1} levels (got {len(levels)})"
        )
    count, rest = divmod(len(levels[0]), NODE_LEN)
    if count == 0 or rest:
        raise MalformedLevelsError(
            f"level 0 must be a non-empty multiple of {NODE_LEN} bytes (got {len(levels[0])})"
        )
    for depth, level in enumerate(levels[1:], start=1):
        if count == 1:
            raise MalformedLevelsError(f"level {depth - 1} is the root, but {depth} follows it")
        count = (count + 1) // 2
        if len(level) != count * NODE_LEN:
            raise MalformedLevelsError(
                f"level {depth} must be {count * NODE_LEN} bytes (got {len(level)})"
            )
    if count != 1:
        raise MalformedLevelsError(f"the last level must be the root (got {count} nodes)")


class MerkleTree:
    """A built tree: its levels as compact bytes, its root, and proofs cut from the levels.

    `MerkleTree(leaves)` hashes the leaves; `MerkleTree.from_levels(levels)` restores a tree
    from stored levels without hashing (checking only their shape).
    """

    __slots__ = ("_levels",)

    def __init__(self, leaves: Sequence[bytes]) -> None:
        """Build the tree over `leaves` (32 bytes each), in the given order.

        Raises:
            InvalidNodeError: a leaf is not 32 bytes.
            TreeTooDeepError: more than 2^32 leaves.
        """
        self._levels = build_levels(leaves)

    @classmethod
    def from_levels(cls, levels: Sequence[bytes]) -> MerkleTree:
        """A tree from levels stored earlier (`MerkleTree.levels`); hashes are not re-checked.

        Raises:
            MalformedLevelsError: the levels do not have a tree's shape.
        """
        _check_levels(levels)
        tree = cls.__new__(cls)
        tree._levels = tuple(bytes(level) for level in levels)
        return tree

    @property
    def levels(self) -> tuple[bytes, ...]:
        """The levels, leaves first and the root last; () for an empty tree."""
        return self._levels

    @property
    def root(self) -> bytes:
        """The root; `ZERO_ROOT` for an empty tree."""
        return self._levels[-1] if self._levels else ZERO_ROOT

    @property
    def leaf_count(self) -> int:
        return len(self._levels[0]) // NODE_LEN if self._levels else 0

    def __len__(self) -> int:
        return self.leaf_count

    @property
    def depth(self) -> int:
        """The proof length of every leaf (0 for one leaf or none)."""
        return max(len(self._levels) - 1, 0)

    @property
    def leaves(self) -> list[bytes]:
        """The leaves in tree order (sliced from level 0)."""
        if not self._levels:
            return []
        level = self._levels[0]
        return [level[i : i + NODE_LEN] for i in range(0, len(level), NODE_LEN)]

    def leaf(self, index: int) -> bytes:
        """Leaf `index`.

        Raises:
            LeafIndexError: `index` is not a leaf of the tree.
        """
        if type(index) is not int or not 0 <= index < self.leaf_count:
            raise LeafIndexError(f"leaf index must be in 0..{self.leaf_count - 1} (got {index!r})")
        return self._levels[0][index * NODE_LEN : (index + 1) * NODE_LEN]

    def proof(self, index: int) -> list[bytes]:
        """The siblings of leaf `index` from the leaf up (see `proof_from_levels`)."""
        return proof_from_levels(self._levels, index)
