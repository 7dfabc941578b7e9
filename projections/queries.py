"""Read queries over the projection tables: what a wallet needs to claim, cut in SQL.

These are the statements the API runs (it may import them); each reads a handful of rows
through the indexes, never a whole tree level.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

__all__ = ["CLAIM_SQL", "PROOF_SQL", "ClaimRow", "claim_for", "proof"]

#: the leaf of `wallet` in (channel_config, root_seq), with its leaf hash cut from level 0.
CLAIM_SQL = text(
    """
    SELECT r.root_id, r.channel, r.channel_config, r.root_seq, r.epoch, r.format, r.root,
           r.dataset_hash, r.tree_depth, l.leaf_index, l.amount,
           substring(t.nodes FROM CAST(32 * l.leaf_index + 1 AS integer) FOR 32) AS leaf
      FROM roots r
      JOIN leaves l ON l.root_id = r.root_id AND l.wallet = :wallet
      JOIN tree_levels t ON t.root_id = r.root_id AND t.level = 0
     WHERE r.channel_config = :channel_config AND r.root_seq = :root_seq
    """
)

#: the proof of leaf :leaf_index of root :root_id: one 32-byte sibling per level below the
#: root. An odd level's last node is its own sibling (least(..., node_count - 1)).
PROOF_SQL = text(
    """
    SELECT t.level,
           substring(t.nodes
                     FROM CAST(32 * least((CAST(:leaf_index AS bigint) >> t.level) # 1,
                                          t.node_count - 1) + 1 AS integer)
                     FOR 32) AS sibling
      FROM tree_levels t
     WHERE t.root_id = :root_id AND t.level < :tree_depth
     ORDER BY t.level
    """
)


@dataclass(frozen=True)
class ClaimRow:
    """Everything a claim transaction needs for one wallet in one root."""

    channel: str
    channel_config: str
    root_seq: int
    epoch: int
    format: str
    root: bytes
    dataset_hash: bytes
    leaf_index: int
    amount: int
    leaf: bytes
    proof: list[bytes]


def proof(conn: Connection, *, root_id: int, leaf_index: int, tree_depth: int) -> list[bytes]:
    """The siblings of leaf `leaf_index` from the leaf up, sliced in SQL."""
    rows = conn.execute(
        PROOF_SQL, {"root_id": root_id, "leaf_index": leaf_index, "tree_depth": tree_depth}
    ).all()
    return [bytes(row.sibling) for row in rows]


def claim_for(
    conn: Connection, *, channel_config: str, root_seq: int, wallet: bytes
) -> ClaimRow | None:
    """The claim data of `wallet` in (channel_config, root_seq), or None without a leaf."""
    row: Any = (
        conn.execute(
            CLAIM_SQL, {"channel_config": channel_config, "root_seq": root_seq, "wallet": wallet}
        )
        .mappings()
        .one_or_none()
    )
    if row is None:
        return None
    return ClaimRow(
        channel=row["channel"],
        channel_config=row["channel_config"],
        root_seq=int(row["root_seq"]),
        epoch=int(row["epoch"]),
        format=row["format"],
        root=bytes(row["root"]),
        dataset_hash=bytes(row["dataset_hash"]),
        leaf_index=int(row["leaf_index"]),
        amount=int(row["amount"]),
        leaf=bytes(row["leaf"]),
        proof=proof(
            conn,
            root_id=int(row["root_id"]),
            leaf_index=int(row["leaf_index"]),
            tree_depth=int(row["tree_depth"]),
        ),
    )
