"""The roots purge on the real broker and database: with K = 2, the log start offsets of
aop.epoch.roots move exactly to the header of the oldest kept root (derived here from the
records produced: each root is 1 header + ceil(wallets / 2) chunks, one after the other), the
projector continues after it, and the readers that cannot continue refuse."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import text

from aop.log.avro import codec_for
from aop.log.kafka import CHAIN_EVENTS, EPOCH_ROOTS, GLOBAL_ROOTS, ensure_topics
from aop.log.purge import NotPurgeableError, delete_below
from aop.log.reader import log_bounds
from aop.projections.db import engine_for, upgrade
from aop.projections.errors import LogStartAheadError
from aop.projections.projector import Projector
from aop.projections.purge import purge_roots
from aop.runtime.settings import Settings
from aop.streams.combiner.recovery import CombinerRecoveryError, recover_state
from tests.integration.test_projections import produce, run_projector, sample

SettingsFactory = Callable[..., Settings]
K = 2
WALLETS = 5  # chunk_entries 2: 3 chunks, so 4 records per root


def stored_seqs(settings: Settings) -> list[int]:
    engine = engine_for(settings)
    try:
        with engine.connect() as conn:
            return [int(s) for (s,) in conn.execute(text("SELECT root_seq FROM roots ORDER BY 1"))]
    finally:
        engine.dispose()


@pytest.fixture
def purge_settings(settings_factory: SettingsFactory) -> Settings:
    settings = settings_factory(
        {
            "AOP_PROOF_ROOTS_KEPT": str(K),
            "AOP_PROJECTION_POLL_TIMEOUT_S": "0.2",
            "AOP_SETTLEMENT_TARGET": "channel",
            "AOP_ROOTS_PURGE": "false",  # the test runs the purge itself
        }
    )
    upgrade(settings)
    ensure_topics(settings)
    return settings


def test_purge_moves_the_log_start_to_the_oldest_kept_header_and_projection_goes_on(
    purge_settings: Settings,
) -> None:
    settings = purge_settings
    per_root = 1 + -(-WALLETS // 2)
    assert per_root == 4
    roots = [sample(s, wallets=WALLETS) for s in range(1, 6)]
    assert all(len(r.records()) == per_root for r in roots)
    produce(settings, [rec for r in roots for rec in r.records()])  # partition 1
    header = {s: (s - 1) * per_root for s in range(1, 7)}  # root s's header offset
    engine = engine_for(settings)
    topic = settings.topic(EPOCH_ROOTS)
    try:
        # before the projector committed anything: nothing goes
        plan = purge_roots(settings, engine, codec_for(settings), dry_run=True)
        assert plan.topics[0].points == {0: 0, 1: 0, 2: 0, 3: 0}
        run_projector(settings, engine, lambda: len(stored_seqs(settings)) == 5)

        # committed 20 on partition 1; the newest K=2 roots are 4 and 5: point = header(4)
        dry = purge_roots(settings, engine, codec_for(settings), dry_run=True)
        assert dry.topics[0].points == {0: 0, 1: header[4], 2: 0, 3: 0}
        assert dry.topics[0].records == header[4] == 12
        assert {p: b.low for p, b in log_bounds(settings, topic, range(4)).items()} == {
            0: 0,
            1: 0,
            2: 0,
            3: 0,
        }
        purge_roots(settings, engine, codec_for(settings))
        assert {p: b.low for p, b in log_bounds(settings, topic, range(4)).items()} == {
            0: 0,
            1: 12,
            2: 0,
            3: 0,
        }
        # nothing on the global topic is touched (no global roots, nothing committed there)
        assert log_bounds(settings, settings.topic(GLOBAL_ROOTS), [0])[0].low == 0

        # the projector (a new process: it seeks to its stored offset 20) goes on
        produce(settings, sample(6, wallets=WALLETS).records())
        run_projector(settings, engine, lambda: stored_seqs(settings) == [1, 2, 3, 4, 5, 6])
        purge_roots(settings, engine, codec_for(settings))
        assert log_bounds(settings, topic, [1])[1].low == header[5] == 16

        # a purge again with nothing new moves nothing
        again = purge_roots(settings, engine, codec_for(settings))
        assert again.topics[0].records == 0

        # a stored offset below the log start (roots deleted unseen): the projector stops
        with engine.begin() as conn:
            conn.execute(
                text(
                    "UPDATE consumer_offsets SET next_offset = 3 WHERE topic = :t AND partition = 1"
                ),
                {"t": topic},
            )
        projector = Projector(settings, engine)
        try:
            with pytest.raises(
                LogStartAheadError, match=rf"{topic}\[1\] is 3, below its log start 16"
            ):
                for _ in range(100):
                    projector.poll_once()
        finally:
            projector.close()
    finally:
        engine.dispose()


def test_global_roots_expected_but_none_yet_hold_the_epoch_roots(
    settings_factory: SettingsFactory,
) -> None:
    settings = settings_factory(
        {
            "AOP_PROOF_ROOTS_KEPT": "1",
            "AOP_SETTLEMENT_TARGET": "global-v5",
            "AOP_ROOTS_PURGE": "false",
        }
    )
    upgrade(settings)
    ensure_topics(settings)
    produce(settings, [rec for s in (1, 2) for rec in sample(s, wallets=WALLETS).records()])
    engine = engine_for(settings)
    try:
        run_projector(settings, engine, lambda: len(stored_seqs(settings)) == 2)
        plan = purge_roots(settings, engine, codec_for(settings))
        assert "global roots are expected" in plan.held
        assert plan.topics[0].points == {0: 0, 1: 0, 2: 0, 3: 0}
        assert log_bounds(settings, settings.topic(EPOCH_ROOTS), [1])[1].low == 0
    finally:
        engine.dispose()


def test_source_topics_are_never_purged(purge_settings: Settings) -> None:
    topic = purge_settings.topic(CHAIN_EVENTS)
    with pytest.raises(NotPurgeableError, match=f"refusing to delete records of {topic}"):
        delete_below(purge_settings, topic, {0: 1})


def test_combiner_refuses_a_fresh_start_over_a_purged_roots_topic(
    purge_settings: Settings,
) -> None:
    settings = purge_settings
    produce(settings, sample(1, wallets=WALLETS).records())
    assert delete_below(settings, settings.topic(EPOCH_ROOTS), {1: 4}) == {1: 4}
    with pytest.raises(
        CombinerRecoveryError,
        match=rf"{settings.topic(EPOCH_ROOTS)}\[1\] starts at offset 4.*operator action",
    ):
        recover_state(settings, codec_for(settings))
