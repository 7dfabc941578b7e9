"""Proof retention: the leaves and tree levels of the newest K roots of each root account.

Why: every root carries every wallet that ever staked (cumulative totals), so keeping every
root's proofs grows PostgreSQL by (wallets ever x roots); claims use the newest root, and the
on-chain rings accept only the last 4 (global) or 10 (ring-v0 epochs) roots anyway.

The rule (here, and only here): a root of account `channel_config` is beyond retention when
K roots of the same account have a larger root_seq, K = AOP_PROOF_ROOTS_KEPT. It depends only
on the roots stored, so a rebuild that writes the same roots with the same K ends with the
same rows. Such a root keeps its `roots` row (root hash, fields, settlement status) with
`proofs_pruned` set; its `leaves` and `tree_levels` rows are deleted. Pruning never reverses.

`prune_proofs` runs inside `ProjectionWriter.write_root`'s transaction, after the new root's
rows: readers see the new root and the pruned old ones together, or neither.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

__all__ = ["prune_proofs"]

#: mark the account's roots beyond the newest :kept (by root_seq) that still hold proofs
#: (the partial index `ix_roots_channel_config_root_seq_kept` holds exactly those: a few
#: entries). The subquery is the :kept-th newest root_seq (NULL with fewer roots: none).
_MARK_SQL = text(
    """
    UPDATE roots SET proofs_pruned = true
     WHERE channel_config = :channel_config AND NOT proofs_pruned
       AND root_seq < (SELECT root_seq FROM roots WHERE channel_config = :channel_config
                        ORDER BY root_seq DESC OFFSET CAST(:kept AS bigint) - 1 LIMIT 1)
    RETURNING root_id, root_seq
    """
)
#: delete their rows through the primary keys, which lead with root_id.
_DELETE_LEVELS_SQL = text("DELETE FROM tree_levels WHERE root_id = ANY(CAST(:ids AS bigint[]))")
_DELETE_LEAVES_SQL = text("DELETE FROM leaves WHERE root_id = ANY(CAST(:ids AS bigint[]))")


def prune_proofs(conn: Connection, channel_config: str, *, kept: int) -> list[int]:
    """Delete the proofs of the account's roots beyond the newest `kept`, and flag them.

    Args:
        conn: a connection inside the caller's transaction (nothing is committed here).
        channel_config: the root account (`roots.channel_config`).
        kept: K, at least 1 (AOP_PROOF_ROOTS_KEPT).
    Returns:
        the root_seqs pruned now, ascending (roots pruned before are not counted again).
    Raises:
        ValueError: `kept` is below 1 (the newest root would lose its proofs).
    """
    if kept < 1:
        raise ValueError(f"kept must be at least 1 (got {kept})")
    rows = conn.execute(_MARK_SQL, {"channel_config": channel_config, "kept": kept}).all()
    if not rows:
        return []
    ids = [int(root_id) for root_id, _ in rows]
    conn.execute(_DELETE_LEVELS_SQL, {"ids": ids})
    conn.execute(_DELETE_LEAVES_SQL, {"ids": ids})
    return sorted(int(seq) for _, seq in rows)
