"""The SQL that cuts proofs applies core's rule (an odd level's last node is its own sibling).

Two statements apply the rule in Postgres rather than call `core.merkle.cut_proof`:
PROOF_SQL (`projections.queries`, a given root's proof: one sibling per level, `least(i # 1,
node_count - 1)`) and CLAIMS_BATCH_SQL (`api.queries`, the hot path: the 64-byte pair on
the path per level, an odd tail doubled, cut by `core.merkle.cut_proof`). For every leaf of
roots whose trees have odd levels at several depths (1, 2, 3, 5, 7, 2^k and 2^k + 1
leaves, and more), stored by the projections writer, both give the proof the independent
builder (`tests/unit/core/independent.py`) makes and core cuts, for every split between
levels cut in SQL and levels cached whole.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
from psycopg import sql
from solders.pubkey import Pubkey

from aop.api import queries
from aop.api.reader import cut_proof
from aop.core.merkle import MerkleTree
from aop.projections.db import engine_for, libpq_options, libpq_url, upgrade
from aop.runtime.settings import Settings, load_settings
from tests.support.api_sample import random_amounts, write_sample_root
from tests.unit.core import independent

SIZES = [1, 2, 3, 5, 6, 7, 8, 9, 11, 13, 16, 17, 31, 32, 33, 64, 65]


@dataclass
class StoredRoot:
    channel_config: str
    root_id: int
    tree_depth: int
    leaves: list[bytes]  # level 0, in leaf order
    wallets: list[bytes]  # the wallet of each leaf, in leaf order


@pytest.fixture(scope="module")
def stored(database_url: str) -> Iterator[tuple[Settings, dict[int, StoredRoot]]]:
    """One cumulative-v2 root per size in SIZES, in a schema of its own."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    settings = load_settings({"AOP_DATABASE_URL": database_url, "AOP_DATABASE_SCHEMA": schema})
    with psycopg.connect(libpq_url(settings), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        upgrade(settings)
        engine = engine_for(settings)
        rng = random.Random(16)
        try:
            for size in SIZES:
                write_sample_root(
                    engine, channel=f"c{size}", root_seq=1, amounts=random_amounts(size, rng),
                    program_id=Pubkey.from_string(settings.program_id),
                    mint=Pubkey.from_string(settings.mint),
                )  # fmt: skip
        finally:
            engine.dispose()
        yield settings, _read_roots(settings)
    finally:
        with psycopg.connect(libpq_url(settings), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def _connect(settings: Settings) -> psycopg.Connection:
    return psycopg.connect(libpq_url(settings), options=libpq_options(settings), autocommit=True)


def _read_roots(settings: Settings) -> dict[int, StoredRoot]:
    out = {}
    with _connect(settings) as conn:
        rows = conn.execute(
            "SELECT r.root_id, r.channel_config, r.tree_depth, r.leaf_count, t.nodes"
            "  FROM roots r JOIN tree_levels t ON t.root_id = r.root_id AND t.level = 0"
        ).fetchall()
        for root_id, config, depth, count, level0 in rows:
            wallets = [
                bytes(w)
                for (w,) in conn.execute(
                    "SELECT wallet FROM leaves WHERE root_id = %s ORDER BY leaf_index", (root_id,)
                )
            ]
            nodes = bytes(level0)
            leaves = [nodes[i : i + 32] for i in range(0, len(nodes), 32)]
            out[int(count)] = StoredRoot(config, int(root_id), int(depth), leaves, wallets)
    assert sorted(out) == SIZES
    return out


def _expected(root: StoredRoot, index: int) -> list[bytes]:
    """The independent builder's proof, which core's cut must equal too."""
    proof = independent.proof_of(root.leaves, index)
    assert MerkleTree(root.leaves).proof(index) == proof
    return proof


def test_proof_sql_gives_the_independent_proof_of_every_leaf(
    stored: tuple[Settings, dict[int, StoredRoot]],
) -> None:
    settings, roots = stored
    with _connect(settings) as conn:
        for size, root in roots.items():
            assert root.tree_depth == (size - 1).bit_length()
            for index in range(size):
                params = {"root_id": root.root_id, "leaf_index": index,
                          "tree_depth": root.tree_depth}  # fmt: skip
                rows = conn.execute(queries.PROOF_AT_SQL, params).fetchall()
                assert [bytes(sibling) for _, sibling in rows] == _expected(root, index), (
                    size,
                    index,
                )


@pytest.mark.parametrize("k", [0, 1, 2, 4, 9, 2**31 - 1])
def test_claims_batch_sql_pairs_cut_by_core_give_the_independent_proof(
    stored: tuple[Settings, dict[int, StoredRoot]], k: int
) -> None:
    """k: levels of at most k nodes come from the cache (ROOT_LEVELS_SQL), the others as
    pairs from CLAIMS_BATCH_SQL (k = 0: every level below the root from SQL)."""
    settings, roots = stored
    asked = [(root, index) for root in roots.values() for index in range(len(root.leaves))]
    with _connect(settings) as conn:
        rows = conn.execute(
            queries.CLAIMS_BATCH_SQL,
            {
                "configs": [root.channel_config for root, _ in asked],
                "wallets": [root.wallets[index] for root, index in asked],
                "k": k,
            },
        ).fetchall()
        assert sorted(int(row[0]) for row in rows) == list(range(1, len(asked) + 1))
        for row in rows:
            root, index = asked[int(row[0]) - 1]
            root_id, depth, leaf_index, pairs = int(row[3]), int(row[7]), int(row[8]), row[10]
            assert (root_id, depth, leaf_index) == (root.root_id, root.tree_depth, index)
            cached = {
                int(level): bytes(nodes)
                for level, nodes in conn.execute(
                    queries.ROOT_LEVELS_SQL, {"root_id": root_id, "k": k}
                )
            }
            leaf, proof = cut_proof(leaf_index, depth, bytes(pairs or b""), cached)
            assert leaf == root.leaves[index]
            assert proof == _expected(root, index), (len(root.leaves), index)
