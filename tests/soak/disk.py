"""Disk use per component of a running pipeline, and its growth per million events.

What a component holds on disk is what `du` charges it (allocated blocks, so a sparse or
preallocated Kafka index counts as what it really takes). PostgreSQL's share is per table:
heap (with TOAST) and indexes apart, from `pg_table_size` and `pg_indexes_size`, since a
projection that keeps every root's leaves grows in both.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from tests.conftest import libpq_url

__all__ = ["DiskSample", "growth_per_million", "kafka_topic_bytes", "postgres_bytes", "tree_bytes"]

MILLION = 1_000_000


def tree_bytes(roots: Iterable[Path]) -> int:
    """Allocated bytes of every file under `roots` (files that vanish meanwhile count 0)."""
    total = 0
    for root in roots:
        if root.is_file():
            total += root.stat().st_blocks * 512
            continue
        for folder, _dirs, files in os.walk(root):
            for name in files:
                try:
                    total += os.lstat(os.path.join(folder, name)).st_blocks * 512
                except OSError:
                    continue  # a segment deleted or rolled while walking
    return total


def kafka_topic_bytes(data_dirs: Iterable[Path], prefix: str) -> dict[str, int]:
    """`kafka <topic>` bytes over every node's data directory, partitions and replicas
    summed; `prefix` (the run's topic prefix) is cut from the name, internal topics keep
    theirs (`__transaction_state`, ...), and the rest of a node's directory (checkpoints,
    the KRaft metadata log) counts under `kafka other`."""
    sizes: dict[str, int] = {}
    for data in data_dirs:
        for entry in data.iterdir() if data.is_dir() else ():
            topic, dash, partition = entry.name.rpartition("-")
            if entry.is_dir() and dash and partition.isdigit():
                name = f"kafka {topic.removeprefix(prefix)}"
            else:
                name = "kafka other"
            sizes[name] = sizes.get(name, 0) + tree_bytes([entry])
    return sizes


def postgres_bytes(database_url: str, schema: str) -> dict[str, int]:
    """`pg <table>` (heap + TOAST) and `pg <table> indexes` of every table of `schema`."""
    query = """
        SELECT c.relname, pg_table_size(c.oid), pg_indexes_size(c.oid)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = %s AND c.relkind IN ('r', 'p')
    """
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        rows = conn.execute(query, (schema,)).fetchall()
    sizes: dict[str, int] = {}
    for table, heap, indexes in rows:
        sizes[f"pg {table}"] = int(heap)
        sizes[f"pg {table} indexes"] = int(indexes)
    return sizes


@dataclass(frozen=True)
class DiskSample:
    """Bytes per component when `events` chain events had been emitted."""

    at: float
    events: int
    components: Mapping[str, int]


def growth_per_million(first: DiskSample, last: DiskSample) -> dict[str, float]:
    """Bytes each component grew per million events between two samples (components only
    in `last` grew from 0)."""
    events = last.events - first.events
    if events <= 0:
        raise ValueError(f"no events between the samples ({first.events} -> {last.events})")
    return {
        name: (size - first.components.get(name, 0)) * MILLION / events
        for name, size in last.components.items()
    }


@dataclass(frozen=True)
class ProofStore:
    """What PostgreSQL's proof tables hold against what proof retention says they may
    (`projections.retention`: the leaves and tree levels of the newest K roots of each root
    account): counted independently of the code that prunes, from the `roots` rows."""

    #: the most roots of one account still holding proofs (at most K).
    most_kept: int
    #: rows of `leaves` / the leaf_count of the roots holding proofs, summed.
    leaves: int
    leaves_expected: int
    #: rows of `tree_levels` / (tree_depth + 1) of the roots holding proofs with leaves.
    levels: int
    levels_expected: int
    #: rows of `leaves` or `tree_levels` of a root flagged pruned (none may be left).
    of_pruned: int


def proof_store(database_url: str, schema: str) -> ProofStore:
    """The proof tables of `schema` against the retention rule (`ProofStore`)."""
    s = sql.Identifier(schema)
    queries = {
        "most_kept": "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM {s}.roots "
        "WHERE NOT proofs_pruned GROUP BY channel_config) k",
        "leaves": "SELECT count(*) FROM {s}.leaves",
        "leaves_expected": "SELECT coalesce(sum(leaf_count), 0) FROM {s}.roots "
        "WHERE NOT proofs_pruned",
        "levels": "SELECT count(*) FROM {s}.tree_levels",
        "levels_expected": "SELECT coalesce(sum(tree_depth + 1), 0) FROM {s}.roots "
        "WHERE NOT proofs_pruned AND leaf_count > 0",
        "of_pruned": "SELECT (SELECT count(*) FROM {s}.leaves l JOIN {s}.roots r USING (root_id) "
        "WHERE r.proofs_pruned) + (SELECT count(*) FROM {s}.tree_levels t JOIN {s}.roots r "
        "USING (root_id) WHERE r.proofs_pruned)",
    }
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        values = {
            name: int(conn.execute(sql.SQL(q).format(s=s)).fetchone()[0])  # type: ignore[index]
            for name, q in queries.items()
        }
    return ProofStore(**values)
