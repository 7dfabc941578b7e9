"""Column checks, the record sort and the tree of records the fast tree builders share
(cumulative-v2, global-v4, global-v5).

A builder takes a wallet column and an amount column, checks them in C passes
(`valid_and_unique`; on failure the caller re-runs the precise per-entry check for the
message), packs one fixed-size record per wallet (wallet first) and sorts the records, which
sorts them by wallet: the leaf order and the dataset at once. Each leaf is
keccak(prefix || record) and the dataset is the records end to end (`prefixed_record_tree`).
"""

from __future__ import annotations

from itertools import chain

from sha3 import keccak_256

from aop.core.claims.base import ClaimTree, DatasetLayout, TreeScope
from aop.core.keccak import keccak256
from aop.core.merkle import MerkleTree
from aop.core.validation import U64_MAX

__all__ = ["prefixed_record_tree", "sorted_records", "valid_and_unique"]


def valid_and_unique(wallets: list[bytes], amounts: list[int]) -> bool:
    """All wallets distinct 32-byte bytes, all amounts u64 ints (each check runs in C)."""
    return not wallets or (
        set(map(type, wallets)) == {bytes}
        and set(map(len, wallets)) == {32}
        and set(map(type, amounts)) == {int}
        and min(amounts) >= 0
        and max(amounts) <= U64_MAX
        and len(set(wallets)) == len(wallets)
    )


def sorted_records(items: list[bytes]) -> list[bytes]:
    """`sorted(items)` for many random byte strings, faster: bucket by first byte, then sort.

    Sorting 256 cache-sized buckets beats one sort over a million scattered objects (~1.5x).
    """
    buckets: list[list[bytes]] = [[] for _ in range(256)]
    for item in items:
        buckets[item[0]].append(item)
    for bucket in buckets:
        bucket.sort()
    return list(chain.from_iterable(buckets))


def prefixed_record_tree(
    format_name: str,
    scope: TreeScope,
    layout: DatasetLayout,
    prefix: bytes,
    records: list[bytes],
) -> ClaimTree:
    """The tree whose leaves are keccak(prefix || record), in the order of `records` (sorted
    by the caller), and whose dataset is the records end to end.

    Built for speed on millions of wallets (see bench/merkle.py): one comprehension hashes
    every leaf, and the dataset is one contiguous blob.
    """
    keccak = keccak_256
    leaves = [keccak(prefix + record).digest() for record in records]
    dataset = b"".join(records)
    return ClaimTree(
        format_name=format_name,
        scope=scope,
        dataset=dataset,
        layout=layout,
        dataset_hash=keccak256(dataset),
        merkle=MerkleTree(leaves),
    )
