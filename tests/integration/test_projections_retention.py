"""Proof retention on the real database: the writer keeps the leaves and tree levels of the
newest AOP_PROOF_ROOTS_KEPT roots of each root account and flags the older ones.

Expected values are derived here, not read from the code under test: which root_seqs are
beyond the newest K (sorted, all but the last K), each kept root's leaf count (the wallets
written) and its level count (ceil(log2(n)) + 1 for n leaves, 1 for one leaf).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from sqlalchemy import Engine, text

from aop.log.kafka import ensure_topics
from aop.projections.dataset import decode_root
from aop.projections.db import engine_for, upgrade
from aop.projections.writer import ProjectionWriter
from aop.runtime.settings import Settings
from tests.integration.test_projections import dump, produce, run_projector, sample
from tests.support.sample_roots import SampleRoot

SettingsFactory = Callable[..., Settings]
K = 3


def levels_of(leaves: int) -> int:
    """Tree levels of `leaves` leaves: the leaf level, then one per halving up to one node."""
    count, levels = leaves, 1
    while count > 1:
        count = (count + 1) // 2
        levels += 1
    return levels


def wallets_of(root_seq: int) -> int:
    """A different leaf count (and so depth) per root: 3, 6, 9, ... wallets."""
    return 3 * root_seq


def write(writer: ProjectionWriter, root: SampleRoot, offset: int) -> str:
    decoded = decode_root(root.root, [bytes(c["entries"]) for c in root.chunks])
    return writer.write_root(decoded, source_partition=0, source_offset=offset, offsets=())


def proof_rows(engine: Engine, config: str) -> dict[int, tuple[bool, int, int, int]]:
    """root_seq -> (proofs_pruned, leaf_count, leaves rows, tree_levels rows) of an account."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT r.root_seq, r.proofs_pruned, r.leaf_count, "
                "(SELECT count(*) FROM leaves l WHERE l.root_id = r.root_id), "
                "(SELECT count(*) FROM tree_levels t WHERE t.root_id = r.root_id) "
                "FROM roots r WHERE r.channel_config = :c"
            ),
            {"c": config},
        ).all()
    return {int(s): (bool(p), int(n), int(lv), int(tl)) for s, p, n, lv, tl in rows}


@pytest.fixture
def retention_settings(settings_factory: SettingsFactory) -> Settings:
    settings = settings_factory(
        {"AOP_PROOF_ROOTS_KEPT": str(K), "AOP_PROJECTION_POLL_TIMEOUT_S": "0.2"}
    )
    upgrade(settings)
    return settings


def test_writer_keeps_the_newest_k_roots_proofs_per_account_and_flags_the_rest(
    retention_settings: Settings,
) -> None:
    """K + 3 roots of one channel, written out of order, with another channel's roots in
    between: the first channel's three oldest lose their rows and get the flag; its newest K
    and the other channel's roots keep every leaf and level."""
    engine = engine_for(retention_settings)
    writer = ProjectionWriter(
        engine, consumer="test", proof_roots_kept=retention_settings.proof_roots_kept
    )
    seqs = list(range(1, K + 4))
    order = [2, 1, 3, 5, 4, 6]
    assert sorted(order) == seqs
    roots = {s: sample(s, wallets=wallets_of(s)) for s in seqs}
    others = {s: sample(s, wallets=2 + s, channel="other_channel") for s in (1, 2)}
    try:
        for offset, seq in enumerate(order):
            assert write(writer, roots[seq], offset) == "written"
            if seq in others:
                assert write(writer, others[seq], 100 + offset) == "written"
        config = roots[1].root["channel_config"]
        beyond = sorted(seqs)[:-K]
        assert beyond == [1, 2, 3]
        expected = {
            s: (True, wallets_of(s), 0, 0)
            if s in beyond
            else (False, wallets_of(s), wallets_of(s), levels_of(wallets_of(s)))
            for s in seqs
        }
        assert proof_rows(engine, config) == expected
        other_config = others[1].root["channel_config"]
        assert proof_rows(engine, other_config) == {
            s: (False, 2 + s, 2 + s, levels_of(2 + s)) for s in (1, 2)
        }

        # redeliveries (a kept root, a pruned one): nothing changes, nothing fails
        before = dump(engine)
        assert write(writer, roots[6], 50) == "duplicate"
        assert write(writer, roots[2], 51) == "duplicate"
        assert dump(engine) == before

        # one more root prunes exactly one more (root_seq 4), and only in its account
        newer = sample(7, wallets=wallets_of(7))
        assert write(writer, newer, 60) == "written"
        expected[4] = (True, wallets_of(4), 0, 0)
        expected[7] = (False, wallets_of(7), wallets_of(7), levels_of(wallets_of(7)))
        assert proof_rows(engine, config) == expected
        assert proof_rows(engine, other_config)[2] == (False, 4, 4, levels_of(4))
    finally:
        engine.dispose()


def test_same_roots_in_another_order_end_in_the_same_rows(
    retention_settings: Settings,
) -> None:
    """The rule depends only on the roots stored: ascending order and a shuffled one give the
    same leaves, levels and flags (what a rebuild relies on)."""
    roots = {s: sample(s, wallets=wallets_of(s)) for s in range(1, 7)}
    digests = []
    for order in ([1, 2, 3, 4, 5, 6], [6, 1, 5, 2, 4, 3]):
        engine = engine_for(retention_settings)
        try:
            with engine.begin() as conn:  # a fresh start in the same schema
                conn.execute(
                    text(
                        "TRUNCATE settlement_outbox, leaves, tree_levels, roots, channels "
                        "RESTART IDENTITY CASCADE"
                    )
                )
            writer = ProjectionWriter(engine, consumer="test", proof_roots_kept=K)
            for offset, seq in enumerate(order):
                write(writer, roots[seq], offset)
            config = roots[1].root["channel_config"]
            state = proof_rows(engine, config)
            with engine.connect() as conn:
                leaves = conn.execute(
                    text(
                        "SELECT r.root_seq, l.leaf_index, l.wallet, l.amount FROM leaves l "
                        "JOIN roots r ON r.root_id = l.root_id ORDER BY 1, 2"
                    )
                ).all()
            digests.append((state, hashlib.sha256(repr(leaves).encode()).hexdigest()))
        finally:
            engine.dispose()
    assert digests[0] == digests[1]
    assert {s for s, row in digests[0][0].items() if row[0]} == {1, 2, 3}


def test_writer_refuses_k_below_one(retention_settings: Settings) -> None:
    engine = engine_for(retention_settings)
    try:
        with pytest.raises(ValueError, match=r"proof_roots_kept must be at least 1 \(got 0\)"):
            ProjectionWriter(engine, consumer="test", proof_roots_kept=0)
    finally:
        engine.dispose()


def test_projector_prunes_by_the_setting(retention_settings: Settings) -> None:
    """`aop project` from the log: AOP_PROOF_ROOTS_KEPT reaches the writer."""
    settings = retention_settings
    ensure_topics(settings)
    roots = [sample(s, wallets=wallets_of(s)) for s in range(1, K + 3)]
    produce(settings, [r for root in roots for r in root.records()])
    engine = engine_for(settings)
    config = roots[0].root["channel_config"]
    try:
        run_projector(settings, engine, lambda: len(proof_rows(engine, config)) == len(roots))
        state = proof_rows(engine, config)
        assert {s for s, row in state.items() if row[0]} == {1, 2}
        assert all(state[s][2:] == (wallets_of(s), levels_of(wallets_of(s))) for s in (3, 4, 5))
    finally:
        engine.dispose()
