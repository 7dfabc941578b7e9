"""What the projections hold for a root, read back for comparison (read-only SQL).

Reads go through the settings' engine (`projections.db.engine_for`: `search_path` is the
schema), so the same code reads the live schema, a rebuild's fresh schema or an old one.
A root's row and its leaves and levels are read in one REPEATABLE READ snapshot, so a root the
projector prunes meanwhile (`projections.retention`) is read either whole or flagged
`pruned` (with no leaves or levels), never half.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, RowMapping, text

__all__ = ["RootStore", "StoredChannel", "StoredDigest", "StoredRoot"]

T = TypeVar("T")


@dataclass(frozen=True, eq=False)
class StoredRoot:
    """One `roots` row with its leaves and tree levels."""

    row: dict[str, Any]
    #: (leaf_index, wallet, amount) ordered by leaf_index.
    leaves: list[tuple[int, bytes, int]]
    #: (level, node_count, nodes) ordered by level.
    levels: list[tuple[int, int, bytes]]

    @property
    def root_seq(self) -> int:
        return int(self.row["root_seq"])

    @property
    def epoch(self) -> int:
        return int(self.row["epoch"])

    @property
    def pruned(self) -> bool:
        """Its leaves and levels were deleted by proof retention (only the row is left)."""
        return bool(self.row.get("proofs_pruned", False))


@dataclass(frozen=True, eq=False)
class StoredDigest:
    """One `roots` row with digests of its leaves and tree levels, computed by the server.

    `leaves_sha256` = sha256 of every leaf in leaf_index order, each `wallet(32) ||
    decimal(amount) || ","` (`leaves_digest` computes the same over replayed leaves); levels
    are (level, node_count, sha256(nodes)) in level order.
    """

    row: dict[str, Any]
    leaf_count: int
    #: whether leaf_index runs 0..leaf_count-1.
    contiguous: bool
    leaves_sha256: bytes | None
    levels: list[tuple[int, int, bytes]]

    @property
    def pruned(self) -> bool:
        """Its leaves and levels were deleted by proof retention (only the row is left)."""
        return bool(self.row.get("proofs_pruned", False))


@dataclass(frozen=True)
class StoredChannel:
    """One `channels` row."""

    channel_config: str
    name: str
    format: str
    latest_root_seq: int


def _int(value: Any) -> int:
    return int(value) if isinstance(value, Decimal | int) else int(str(value))


class RootStore:
    """Read access to the projection tables of one schema."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def channels(self) -> list[StoredChannel]:
        """Every channel with a projected root."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT channel_config, name, format, latest_root_seq FROM channels "
                    "ORDER BY name, channel_config"
                )
            ).all()
        return [StoredChannel(str(c), str(n), str(f), int(s)) for c, n, f, s in rows]

    def root_epochs(self, channel_config: str) -> dict[int, int]:
        """root_seq -> epoch of every stored root of the channel."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                text("SELECT root_seq, epoch FROM roots WHERE channel_config = :c"),
                {"c": channel_config},
            ).all()
        return {int(s): int(e) for s, e in rows}

    def newest_root_seqs(self, channel_config: str, count: int) -> list[int]:
        """The `count` newest stored root_seqs of the channel, ascending."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT root_seq FROM roots WHERE channel_config = :c "
                    "ORDER BY root_seq DESC LIMIT :n"
                ),
                {"c": channel_config, "n": count},
            ).all()
        return sorted(int(r[0]) for r in rows)

    def _read_root(
        self, channel_config: str, root_seq: int, read: Callable[[Any, int], T]
    ) -> tuple[RowMapping, T] | None:
        """The `roots` row of (channel, root_seq) and what `read(cursor, root_id)` reads of
        its leaves and levels on the same connection (a driver cursor); None: no such root."""
        with self._engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
            row = _root_row(conn, channel_config, root_seq)
            if row is None:
                return None
            driver = conn.connection.driver_connection
            with driver.cursor() as cursor:  # type: ignore[union-attr]
                return row, read(cursor, int(row["root_id"]))

    def root(self, channel_config: str, root_seq: int) -> StoredRoot | None:
        """The stored root with its leaves and levels, or None."""
        found = self._read_root(channel_config, root_seq, _leaves_and_levels)
        if found is None:
            return None
        row, (leaves, levels) = found
        return StoredRoot(dict(row), leaves, levels)

    def root_digest(self, channel_config: str, root_seq: int) -> StoredDigest | None:
        """The stored root with digests of its leaves and levels (nothing big crosses the
        wire), or None."""
        found = self._read_root(channel_config, root_seq, _digests)
        if found is None:
            return None
        row, ((count, low, high, digest), levels) = found
        return StoredDigest(
            dict(row),
            int(count),
            int(low) == 0 and int(high) == int(count) - 1,
            None if digest is None else bytes(digest),
            levels,
        )

    def attention_closed_ms(self, keys: Sequence[str]) -> dict[str, int]:
        """Attention root key -> the largest `closed_at_ms` of its stored roots: its
        partition's attention watermark had reached it (keys without a root left out)."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT channel_config, max(closed_at_ms) FROM roots "
                    "WHERE channel_config = ANY(:k) AND closed_at_ms IS NOT NULL "
                    "GROUP BY channel_config"
                ),
                {"k": list(keys)},
            ).all()
        return {str(k): int(ms) for k, ms in rows}

    def epoch_roots(self, keys: Sequence[str], claim_format: str) -> list[tuple[str, int, bytes]]:
        """(root key, epoch, root) of every stored root of `keys` in `claim_format`, by key
        and epoch (the attention roots of ring-v0-legacy channels: one per epoch)."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT channel_config, epoch, root FROM roots "
                    "WHERE channel_config = ANY(:k) AND format = :f ORDER BY channel_config, epoch"
                ),
                {"k": list(keys), "f": claim_format},
            ).all()
        return [(str(k), int(e), bytes(r)) for k, e, r in rows]

    def pruned_root_seqs(self, channel_config: str) -> frozenset[int]:
        """The root_seqs of the channel's roots whose proofs were pruned (no leaves stored)."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                text("SELECT root_seq FROM roots WHERE channel_config = :c AND proofs_pruned"),
                {"c": channel_config},
            ).all()
        return frozenset(int(r[0]) for r in rows)

    def wallet_amounts(
        self, channel_config: str, wallets: Sequence[bytes]
    ) -> dict[bytes, dict[int, int]]:
        """wallet -> {root_seq: stored amount} over every stored root of the channel that
        still holds its leaves (`pruned_root_seqs` lists the others)."""
        out: dict[bytes, dict[int, int]] = {bytes(w): {} for w in wallets}
        if not wallets:
            return out
        with self._engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT l.wallet, r.root_seq, l.amount FROM roots r "
                    "JOIN leaves l ON l.root_id = r.root_id "
                    "WHERE r.channel_config = :c AND l.wallet = ANY(:w)"
                ),
                {"c": channel_config, "w": list(out)},
            ).all()
        for wallet, root_seq, amount in rows:
            out[bytes(wallet)][int(root_seq)] = _int(amount)
        return out


def _root_row(conn: Connection, channel_config: str, root_seq: int) -> RowMapping | None:
    """The `roots` row of (channel, root_seq), or None."""
    return (
        conn.execute(
            text("SELECT * FROM roots WHERE channel_config = :c AND root_seq = :s"),
            {"c": channel_config, "s": root_seq},
        )
        .mappings()
        .one_or_none()
    )


def _leaves_and_levels(
    cursor: Any, root_id: int
) -> tuple[list[tuple[int, bytes, int]], list[tuple[int, int, bytes]]]:
    cursor.execute(
        "SELECT leaf_index, wallet, amount FROM leaves WHERE root_id = %s ORDER BY leaf_index",
        (root_id,),
    )
    leaves = [(int(i), bytes(w), _int(a)) for i, w, a in cursor.fetchall()]
    cursor.execute(
        "SELECT level, node_count, nodes FROM tree_levels WHERE root_id = %s ORDER BY level",
        (root_id,),
    )
    return leaves, [(int(lv), int(n), bytes(b)) for lv, n, b in cursor.fetchall()]


def _digests(cursor: Any, root_id: int) -> tuple[tuple[Any, ...], list[tuple[int, int, bytes]]]:
    """(count, min leaf_index, max leaf_index, sha256 of the leaves) and per-level digests."""
    cursor.execute(
        "SELECT count(*), coalesce(min(leaf_index), 0), "
        "coalesce(max(leaf_index), -1), sha256(string_agg(wallet || "
        "convert_to(amount::text || ',', 'UTF8'), ''::bytea ORDER BY leaf_index)) "
        "FROM leaves WHERE root_id = %s",
        (root_id,),
    )
    leaves = tuple(cursor.fetchone())
    cursor.execute(
        "SELECT level, node_count, sha256(nodes) FROM tree_levels WHERE root_id = %s "
        "ORDER BY level",
        (root_id,),
    )
    return leaves, [(int(lv), int(n), bytes(d)) for lv, n, d in cursor.fetchall()]
