"""Row counts and content digests of a projection schema, computed in SQL (read-only).

A digest covers every column that carries meaning and none that does not: `root_id` (a
surrogate key) is replaced by the root's (channel_config, root_seq), and timestamps
(`created_at`, `updated_at`, `at`) and `attempt_id` are left out. Two schemas projected
from the same log have equal digests. Leaves and tree levels are hashed per root first
(md5 over the root's rows in leaf/level order), then over the roots in key order, so no
single aggregate grows past one root's rows.

Proof retention (`projections.retention`) deletes the leaves and levels of old roots: two
schemas projected from the same log with the same AOP_PROOF_ROOTS_KEPT have equal digests;
with different ones, `root_digests` still lets their common roots be compared by row.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

__all__ = ["DIGEST_TABLES", "RootDigest", "TableDigest", "root_digests", "schema_digests"]

_ROOT_KEY = "r.channel_config || '/' || r.root_seq"

_SQL = {
    "channels": (
        "SELECT count(*), md5(coalesce(string_agg(concat_ws('|', channel_config, name, "
        "encode(subject_id, 'hex'), format, program_id, mint, latest_root_seq, latest_epoch), "
        "E'\\n' ORDER BY channel_config), '')) FROM {s}.channels"
    ),
    "roots": (
        "SELECT count(*), md5(coalesce(string_agg(concat_ws('|', channel_config, root_seq, "
        "channel, epoch, format, program_id, mint, encode(root, 'hex'), "
        "encode(dataset_hash, 'hex'), leaf_count, tree_depth, total, emission, closed_at_slot, "
        "input_offsets::text, source_partition, source_offset), E'\\n' "
        "ORDER BY channel_config, root_seq), '')) FROM {s}.roots"
    ),
    "leaves": (
        "SELECT coalesce(sum(n), 0), md5(coalesce(string_agg(k || ':' || d, E'\\n' ORDER BY k), "
        "'')) FROM (SELECT " + _ROOT_KEY + " AS k, count(*) AS n, md5(string_agg("
        "l.leaf_index || '|' || encode(l.wallet, 'hex') || '|' || l.amount, E'\\n' "
        "ORDER BY l.leaf_index)) AS d FROM {s}.leaves l JOIN {s}.roots r "
        "ON r.root_id = l.root_id GROUP BY r.channel_config, r.root_seq) t"
    ),
    "tree_levels": (
        "SELECT coalesce(sum(n), 0), md5(coalesce(string_agg(k || ':' || d, E'\\n' ORDER BY k), "
        "'')) FROM (SELECT " + _ROOT_KEY + " AS k, count(*) AS n, md5(string_agg("
        "t.level || '|' || t.node_count || '|' || md5(t.nodes), E'\\n' ORDER BY t.level)) AS d "
        "FROM {s}.tree_levels t JOIN {s}.roots r ON r.root_id = t.root_id "
        "GROUP BY r.channel_config, r.root_seq) x"
    ),
    "claimed_totals": (
        "SELECT count(*), md5(coalesce(string_agg(concat_ws('|', channel_config, "
        "encode(wallet, 'hex'), claimed_total, root_seq, slot, signature), E'\\n' "
        "ORDER BY channel_config, wallet), '')) FROM {s}.claimed_totals"
    ),
    "settlement_outbox": (
        "SELECT count(*), md5(coalesce(string_agg(concat_ws('|', channel_config, root_seq, "
        "channel, format, epoch, status, signature, slot, attempts, detail), E'\\n' "
        "ORDER BY channel_config, root_seq), '')) FROM {s}.settlement_outbox"
    ),
    "settlement_attempts": (
        "SELECT count(*), md5(coalesce(string_agg(concat_ws('|', channel_config, root_seq, "
        "outcome, signature, slot, error, blockhash, last_valid_block_height, message_b64, "
        "transaction_b64, emitted), E'\\n' ORDER BY attempt_id), '')) "
        "FROM {s}.settlement_attempts"
    ),
}

#: tables compared, in report order.
DIGEST_TABLES = tuple(_SQL)


@dataclass(frozen=True)
class TableDigest:
    """A table's row count and content digest (None when the table cannot be read)."""

    rows: int | None
    digest: str | None
    error: str = ""


def schema_digests(
    conn: Connection, schema: str, tables: tuple[str, ...] = DIGEST_TABLES
) -> dict[str, TableDigest]:
    """Digest `tables` of `schema` (a plain identifier) on `conn`.

    A table that does not exist (or a broken join) gives a digest with `error` set; each
    table is read under a savepoint, so one failure does not abort the caller's transaction.
    """
    quoted = f'"{schema}"'
    out: dict[str, TableDigest] = {}
    for table in tables:
        savepoint = conn.begin_nested()
        try:
            rows, digest = conn.execute(text(_SQL[table].format(s=quoted))).one()
        except DBAPIError as exc:  # missing table or column: the schema is damaged
            savepoint.rollback()
            first = str(exc).splitlines()[0]
            out[table] = TableDigest(None, None, first)
            continue
        savepoint.commit()
        out[table] = TableDigest(int(rows), str(digest))
    return out


@dataclass(frozen=True)
class RootDigest:
    """One root's digests: its row, and its leaves and tree levels (None: pruned)."""

    row: str
    proofs: str | None

    def differs_from(self, other: RootDigest) -> bool:
        """Whether the two differ where both hold data: the rows, and the proofs when neither
        was pruned (schemas pruned with different AOP_PROOF_ROOTS_KEPT stay comparable)."""
        if self.row != other.row:
            return True
        return self.proofs is not None and other.proofs is not None and self.proofs != other.proofs


def root_digests(conn: Connection, schema: str) -> dict[tuple[str, int], RootDigest]:
    """(channel_config, root_seq) -> digests of the root's row and of its leaves and levels
    (a schema from before proof retention, revision < 0005, has no pruned root)."""
    s = f'"{schema}"'
    has_flag = conn.execute(
        text(
            "SELECT count(*) FROM information_schema.columns WHERE table_schema = :s "
            "AND table_name = 'roots' AND column_name = 'proofs_pruned'"
        ),
        {"s": schema},
    ).scalar_one()
    pruned = "r.proofs_pruned" if has_flag else "false"
    rows = conn.execute(
        text(
            "SELECT r.channel_config, r.root_seq, md5(concat_ws('|', r.channel, r.epoch, "
            "r.format, r.program_id, r.mint, encode(r.root, 'hex'), encode(r.dataset_hash, "
            "'hex'), r.leaf_count, r.tree_depth, r.total, r.emission, r.closed_at_slot, "
            "r.input_offsets::text, r.source_partition, r.source_offset)), "
            f"CASE WHEN {pruned} THEN NULL ELSE md5(concat_ws('|', "
            f"(SELECT md5(string_agg(l.leaf_index || '|' || encode(l.wallet, 'hex') || '|' || "
            f"l.amount, E'\\n' ORDER BY l.leaf_index)) FROM {s}.leaves l "
            "WHERE l.root_id = r.root_id), "
            f"(SELECT md5(string_agg(t.level || '|' || t.node_count || '|' || md5(t.nodes), "
            f"E'\\n' ORDER BY t.level)) FROM {s}.tree_levels t WHERE t.root_id = r.root_id))) "
            f"END FROM {s}.roots r"
        )
    ).all()
    return {
        (str(c), int(q)): RootDigest(str(d), None if p is None else str(p)) for c, q, d, p in rows
    }
