"""An independent re-statement of the program's rules, for tests only.

Written straight from the reference (§2, §3, §9), sharing no code with `core/`: keccak comes
from pycryptodome (not the `sha3` binding core uses), trees are built recursively, proofs are
folded here. Tests compare `core/` against these functions, never against values `core/`
produced itself.
"""

from __future__ import annotations

from Crypto.Hash import keccak as _keccak


def keccak(*parts: bytes) -> bytes:
    h = _keccak.new(digest_bits=256)
    for part in parts:
        h.update(part)
    return h.digest()


def parent(a: bytes, b: bytes) -> bytes:
    """Sorted pair: keccak(min || max), bytewise."""
    return keccak(min(a, b), max(a, b))


def fold(leaf: bytes, proof: list[bytes]) -> bytes:
    """The root the program computes from a leaf and its proof."""
    node = leaf
    for sibling in proof:
        node = parent(node, sibling)
    return node


def program_verifies(leaf: bytes, proof: list[bytes], root: bytes) -> bool:
    """The claim handler: at most 32 proof nodes, then fold and compare."""
    return len(proof) <= 32 and fold(leaf, proof) == root


def root_of(leaves: list[bytes]) -> bytes:
    """The repository builders' root: pairs in order, odd tail paired with itself."""
    if not leaves:
        return bytes(32)
    level = leaves
    while len(level) > 1:
        padded = [*level, level[-1]] if len(level) % 2 else level
        level = [parent(padded[i], padded[i + 1]) for i in range(0, len(padded), 2)]
    return level[0]


def proof_of(leaves: list[bytes], index: int) -> list[bytes]:
    """The repository builders' proof: siblings up the tree, the odd tail its own sibling."""
    proof = []
    level = leaves
    while len(level) > 1:
        padded = [*level, level[-1]] if len(level) % 2 else level
        proof.append(padded[index ^ 1])
        level = [parent(padded[i], padded[i + 1]) for i in range(0, len(padded), 2)]
        index //= 2
    return proof


def u64(value: int) -> bytes:
    return value.to_bytes(8, "little")


def cumulative_leaf(cfg: bytes, mint: bytes, root_seq: int, wallet: bytes, total: int) -> bytes:
    return keccak(b"TWZRD:CUMULATIVE_V2", cfg, mint, u64(root_seq), wallet, u64(total))


def ring_leaf(claimer: bytes, index: int, amount: int, claim_id: str) -> bytes:
    return keccak(claimer, index.to_bytes(4, "little"), u64(amount), claim_id.encode())


def subject(channel: str) -> bytes:
    lowered = bytes(c + 32 if 65 <= c <= 90 else c for c in channel.encode("ascii"))
    return keccak(b"channel:", lowered)


def global_v4_leaf(mint: bytes, root_seq: int, wallet: bytes, total: int) -> bytes:
    """Reference §G1: the 95-byte V4 preimage."""
    return keccak(b"TWZRD:GLOBAL_V4", mint, u64(root_seq), wallet, u64(total))


def global_v5_leaf(mint: bytes, root_seq: int, wallet: bytes, base: int, bonus: int) -> bytes:
    """Reference §G1: the 103-byte V5 preimage (no total)."""
    return keccak(b"TWZRD:GLOBAL_V5", mint, u64(root_seq), wallet, u64(base), u64(bonus))
