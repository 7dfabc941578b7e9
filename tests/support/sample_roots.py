"""Build EpochRoot + LeafChunk records the way the fold emits them (tests, bench, demo).

The records are real: the tree is built with `core`, the entries use the log layout of
`projections.dataset`, and the result decodes and verifies like the fold's output.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from solders.pubkey import Pubkey

from aop.core.claims import ClaimInput, ClaimTree, TreeScope, get_claim_format

__all__ = ["SampleRoot", "build_sample_root"]

#: entries per chunk so a chunk stays well under 1 MB (25,000 x 40 B = 1,000,000 B is too close).
DEFAULT_CHUNK_ENTRIES = 20_000


@dataclass(frozen=True, eq=False)
class SampleRoot:
    """An EpochRoot value, its LeafChunk values (in order) and the tree they describe."""

    root: dict[str, Any]
    chunks: list[dict[str, Any]]
    tree: ClaimTree

    def records(self) -> list[tuple[str, dict[str, Any]]]:
        """(record type, value) in the order the fold writes them."""
        return [("EpochRoot", self.root), *(("LeafChunk", c) for c in self.chunks)]


def _entry(format_name: str, index: int, wallet: bytes, amount: int) -> bytes:
    if format_name == "cumulative-v2":
        return wallet + amount.to_bytes(8, "little")
    return wallet + index.to_bytes(4, "little") + amount.to_bytes(8, "little")


def build_sample_root(
    *,
    channel: str,
    root_seq: int,
    epoch: int,
    amounts: Mapping[bytes, int] | Sequence[tuple[bytes, int]],
    program_id: Pubkey,
    mint: Pubkey,
    format_name: str = "cumulative-v2",
    chunk_entries: int = DEFAULT_CHUNK_ENTRIES,
    emission: int | None = None,
    closed_at_slot: int = 0,
    input_ranges: Sequence[Mapping[str, int]] = (),
) -> SampleRoot:
    """The records of one root over `amounts` (wallet -> amount; order = first_seen for ring-v0).

    Raises:
        CoreError: invalid amounts or wallets (as `ClaimFormat.build` raises them).
    """
    fmt = get_claim_format(format_name)
    scope = TreeScope(
        program_id=program_id, mint=mint, channel=channel, root_seq=root_seq, epoch=epoch
    )
    pairs = list(amounts.items()) if isinstance(amounts, Mapping) else list(amounts)
    tree = fmt.build(scope, [ClaimInput(w, a, i) for i, (w, a) in enumerate(pairs)])
    config = str(fmt.root_account(scope))
    entries = [
        _entry(format_name, i, w, a)
        for i, (w, a) in enumerate(zip(tree.wallets, tree.amounts, strict=True))
    ]
    chunks = []
    starts = range(0, len(entries), chunk_entries)
    for index, start in enumerate(starts):
        chunks.append(
            {
                "channel_config": config,
                "root_seq": root_seq,
                "chunk_index": index,
                "chunk_count": len(starts),
                "first_leaf": start,
                "entries": b"".join(entries[start : start + chunk_entries]),
            }
        )
    root = {
        "channel": channel,
        "channel_config": config,
        "program_id": str(program_id),
        "mint": str(mint),
        "format": format_name,
        "epoch": epoch,
        "root_seq": root_seq,
        "root": tree.root,
        "dataset_hash": tree.dataset_hash,
        "leaf_count": tree.leaf_count,
        "total": str(tree.total),
        "emission": str(tree.total if emission is None else emission),
        "chunk_count": len(chunks),
        "closed_at_slot": closed_at_slot,
        "input": [dict(r) for r in input_ranges],
    }
    return SampleRoot(root=root, chunks=chunks, tree=tree)
