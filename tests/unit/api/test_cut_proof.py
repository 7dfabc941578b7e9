"""Proofs cut from (node, sibling) pairs and cached levels equal core's proofs, for any split."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sha3 import keccak_256

from aop.api.errors import DatabaseUnavailableError
from aop.api.reader import cut_proof, is_stale
from aop.core.merkle import build_levels, proof_from_levels


def _pairs(levels: tuple[bytes, ...], index: int, count: int) -> bytes:
    """What CLAIMS_BATCH_SQL returns for the lowest `count` levels (odd tails doubled)."""
    out = b""
    for level in range(count):
        i = index >> level
        pair = levels[level][(i >> 1) * 64 : (i >> 1) * 64 + 64]
        out += pair if len(pair) == 64 else pair + pair
    return out


@settings(max_examples=200, deadline=None)
@given(count=st.integers(1, 300), data=st.data())
def test_cut_proof_matches_core_for_every_split(count: int, data: st.DataObject) -> None:
    leaves = [keccak_256(i.to_bytes(4, "little")).digest() for i in range(count)]
    levels = build_levels(leaves)
    depth = len(levels) - 1
    index = data.draw(st.integers(0, count - 1))
    in_sql = data.draw(st.integers(0, max(depth, 1)))
    cached = {level: levels[level] for level in range(in_sql, len(levels))}
    leaf, proof = cut_proof(index, depth, _pairs(levels, index, in_sql), cached)
    assert leaf == leaves[index]
    assert proof == proof_from_levels(levels, index)


def test_missing_cached_level_is_a_database_error() -> None:
    levels = build_levels([bytes([i]) * 32 for i in range(5)])
    with pytest.raises(DatabaseUnavailableError, match="tree level 1 is missing"):
        cut_proof(0, 3, _pairs(levels, 0, 1), {})


def test_short_level_is_a_database_error() -> None:
    with pytest.raises(DatabaseUnavailableError, match=r"level 0 \(32 bytes\) holds neither"):
        cut_proof(1, 1, b"", {0: b"\x00" * 32})


@pytest.mark.parametrize("count", [1, 2, 3, 5, 7, 8, 9, 16, 17])
def test_every_leaf_of_small_trees_from_sql_pairs_only(count: int) -> None:
    """k = 0: every level below the root comes from SQL, odd tails doubled."""
    leaves = [keccak_256(i.to_bytes(4, "little")).digest() for i in range(count)]
    levels = build_levels(leaves)
    depth = len(levels) - 1
    for index in range(count):
        leaf, proof = cut_proof(index, depth, _pairs(levels, index, max(depth, 1)), {})
        assert (leaf, proof) == (leaves[index], proof_from_levels(levels, index))


def test_stale_rules_per_format() -> None:
    """cumulative-v2 keeps the 4 newest root_seqs; ring-v0 the 10 newest epochs."""
    assert not is_stale("cumulative-v2", root_seq=6, epoch=0, latest_root_seq=9, latest_epoch=0)
    assert is_stale("cumulative-v2", root_seq=5, epoch=0, latest_root_seq=9, latest_epoch=0)
    assert not is_stale("ring-v0", root_seq=0, epoch=11, latest_root_seq=0, latest_epoch=20)
    assert is_stale("ring-v0", root_seq=0, epoch=10, latest_root_seq=0, latest_epoch=20)
