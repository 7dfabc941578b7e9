"""`aop log export` / `aop log import` of a purged roots topic, on the real broker and database.

The layouts are written by hand on aop.epoch.roots, so every offset below is derived from
them (each `sample` root with 5 wallets is 1 header + 3 chunks, one after the other) and the
purge rule written out: per partition, the header of the oldest of the newest K = 2 roots of
each account (the projector has committed every record).

Partition 1 (interleaved, as in test_roots_purge_rebuild):

    0 alpha#1 header   1 alpha#1 chunk 0   2 beta#1 header   3 alpha#1 chunk 1
    4 alpha#1 chunk 2  5 beta#1 chunk 0    6..9 alpha#2      10..13 alpha#3

kept alpha#2 (6), alpha#3 (10), beta#1 (2): point 2. Partition 2: gamma#1..#5 at 0, 4, .., 16,
kept gamma#4 (12) and gamma#5 (16): point 12.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient
from sqlalchemy import Engine, text

from aop.log.avro import codec_for
from aop.log.backup import LogGapError, export_log, import_log, latest_manifest
from aop.log.kafka import CHAIN_EVENTS, EPOCH_ROOTS, ensure_topics
from aop.log.reader import log_bounds
from aop.projections.db import engine_for, upgrade
from aop.projections.purge import purge_roots
from aop.replay.load import load_schema
from aop.runtime.settings import Settings
from tests.conftest import new_topic_prefix
from tests.integration import test_replay_rebuild as rebuild_base
from tests.integration.test_projections import produce, run_projector, sample
from tests.integration.test_roots_purge import stored_seqs
from tests.integration.test_roots_purge_rebuild import root_rows
from tests.support.kafka_log import PipelineLikeWriter, Rec, read_partition

SettingsFactory = Callable[..., Settings]
ENV = {
    "AOP_PROOF_ROOTS_KEPT": "2",
    "AOP_PROJECTION_POLL_TIMEOUT_S": "0.2",
    "AOP_SETTLEMENT_TARGET": "channel",
    "AOP_ROOTS_PURGE": "false",  # the test runs the purge itself
}
PER_ROOT = 4  # 1 header + ceil(5 wallets / chunk_entries 2)


@pytest.fixture
def project_settings(settings_factory: SettingsFactory) -> Settings:
    """The live pipeline (the `engine` fixture of tests/integration/conftest.py is its)."""
    settings = settings_factory(ENV)
    upgrade(settings)
    ensure_topics(settings)
    return settings


@pytest.fixture
def live(project_settings: Settings) -> Settings:
    return project_settings


@pytest.fixture
def imported(settings_factory: SettingsFactory, db_schema: str) -> Iterator[Settings]:
    """A fresh topic prefix and schema to import into and load from."""
    settings = settings_factory(
        {**ENV, "AOP_TOPIC_PREFIX": new_topic_prefix(), "AOP_DATABASE_SCHEMA": f"{db_schema}_imp"}
    )
    upgrade(settings)
    yield settings
    cleanup = engine_for(settings)
    try:
        with cleanup.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{db_schema}_imp" CASCADE'))
    finally:
        cleanup.dispose()


def load(settings: Settings) -> tuple[rebuild_base.Dump, tuple[int, list[object], int]]:
    """`replay.load` of `settings`' log into its (fresh) schema: the rows and the counts."""
    engine = engine_for(settings)
    try:
        result = load_schema(settings, engine)
        return rebuild_base.dump(engine), (result.written, result.rejected, result.purged_remainder)
    finally:
        engine.dispose()


def lows(settings: Settings, parts: range = range(4)) -> dict[int, int]:
    return {p: b.low for p, b in log_bounds(settings, settings.topic(EPOCH_ROOTS), parts).items()}


def test_a_purged_roots_topic_is_restored_at_its_offsets_from_its_log_start(
    live: Settings, engine: Engine, imported: Settings, tmp_path: Path
) -> None:
    """Export after the purge, import into a fresh prefix: every record at its offset, the
    partitions start where the source's do (2 and 12), and a load of the imported log writes
    the kept roots equal to the live rows, refusing nothing (alpha#1's 2 chunks above the
    log start are the purged remainder, as on the source)."""
    a1, a2, a3 = (sample(s, wallets=5) for s in (1, 2, 3))
    b1 = sample(1, wallets=2, channel="beta")
    ra1, rb1 = a1.records(), b1.records()
    produce(live, [ra1[0], ra1[1], rb1[0], ra1[2], ra1[3], rb1[1], *a2.records(), *a3.records()])
    gammas = [sample(s, wallets=5, channel="gamma") for s in range(1, 6)]
    produce(live, [rec for g in gammas for rec in g.records()], partition=2)
    run_projector(live, engine, lambda: len(stored_seqs(live)) == 4 + 5)
    purge_roots(live, engine, codec_for(live))
    assert lows(live) == {0: 0, 1: 2, 2: 3 * PER_ROOT, 3: 0}

    manifest = export_log(live, tmp_path).manifest
    assert manifest is not None
    roots = manifest.topic(EPOCH_ROOTS)
    assert roots is not None
    assert [(c.start, c.end, c.records) for c in roots.coverage] == [
        (0, 0, 0),
        (2, 14, 12),
        (12, 20, 8),
        (0, 0, 0),
    ]

    import_log(imported, tmp_path)
    for p, start in ((1, 2), (2, 12)):
        source, _ = read_partition(live, EPOCH_ROOTS, p)
        got, _ = read_partition(imported, EPOCH_ROOTS, p)
        assert [r.offset for r in source] == list(range(start, 14 if p == 1 else 20))
        assert got == source, f"{EPOCH_ROOTS}[{p}]"
    assert lows(imported) == {0: 0, 1: 2, 2: 12, 3: 0}

    rows, counts = load(imported)
    assert counts == (3 + 2, [], 2)
    gamma = str(gammas[0].records()[0][1]["channel_config"])
    purged = {(str(ra1[0][1]["channel_config"]), 1)} | {(gamma, s) for s in (1, 2, 3)}
    assert len(purged) == 4
    want = root_rows(rebuild_base.dump(engine), purged)
    assert len(want["roots"]) == 5
    assert root_rows(rows, set()) == want


def test_a_purge_between_two_exports_leaves_a_hole_that_import_keeps_at_its_offsets(
    live: Settings, engine: Engine, imported: Settings, tmp_path: Path
) -> None:
    """gamma#1..#3 (offsets 0..11) exported; gamma#4..#6 (12..23) added and projected; the
    purge moves partition 2's start to gamma#5's header, 16, above the first export's end 12:
    the second export covers 16..24, so offsets 12..15 (gamma#4) are in no segment. The import
    puts both parts back at their offsets; the load writes every root but gamma#4."""
    gammas = [sample(s, wallets=5, channel="gamma") for s in range(1, 7)]
    produce(live, [rec for g in gammas[:3] for rec in g.records()], partition=2)
    first = export_log(live, tmp_path).manifest
    assert first is not None
    before, _ = read_partition(live, EPOCH_ROOTS, 2)
    assert [r.offset for r in before] == list(range(12))

    produce(live, [rec for g in gammas[3:] for rec in g.records()], partition=2)
    run_projector(live, engine, lambda: len(stored_seqs(live)) == 6)
    purge_roots(live, engine, codec_for(live))
    assert lows(live, range(2, 3)) == {2: 4 * PER_ROOT}
    after, _ = read_partition(live, EPOCH_ROOTS, 2)
    assert [r.offset for r in after] == list(range(16, 24))

    second = export_log(live, tmp_path)
    assert second.manifest is not None and second.manifest.seq == 2
    new = {(r.topic, r.partition): (r.start, r.end) for r in second.ranges}
    assert new[(EPOCH_ROOTS, 2)] == (16, 24)
    roots = second.manifest.topic(EPOCH_ROOTS)
    assert roots is not None
    coverage = roots.coverage[2]
    assert (coverage.start, coverage.end, coverage.records) == (0, 24, 20)
    assert [(s.start, s.end) for s in coverage.segments] == [(0, 12), (16, 24)]

    import_log(imported, tmp_path)
    got, end = read_partition(imported, EPOCH_ROOTS, 2)
    expected: list[Rec] = before + after
    assert got == expected
    assert 24 <= end <= 26
    assert lows(imported, range(2, 3)) == {2: 0}  # the export holds offset 0: nothing purged

    rows, counts = load(imported)
    assert counts == (5, [], 0)
    gamma = str(gammas[0].records()[0][1]["channel_config"])
    assert sorted(int(r[1]) for r in rows["roots"]) == [1, 2, 3, 5, 6]
    # the roots the live schema keeps with proofs (the newest K = 2) are equal row for row
    old = {(gamma, s) for s in (1, 2, 3, 4)}
    assert root_rows(rows, old) == root_rows(rebuild_base.dump(engine), old)


def test_a_source_topic_whose_log_start_passed_the_export_is_refused(
    live: Settings, tmp_path: Path
) -> None:
    """aop.chain.events is the source of truth: records deleted before they were exported
    are a LogGapError naming the partition and the missing offsets; no manifest is added."""
    writer = PipelineLikeWriter(live)
    for i in range(3):
        writer.listener_range(dead=0, abort=False, per_partition=1 + i % 2)
    first = export_log(live, tmp_path).manifest
    assert first is not None
    chain = first.topic(CHAIN_EVENTS)
    assert chain is not None
    exported_end = chain.coverage[0].end
    for _ in range(3):
        writer.listener_range(dead=0, abort=False, per_partition=2)
    writer.close()
    _, end = read_partition(live, CHAIN_EVENTS, 0)
    cut = exported_end + 2
    assert cut < end
    name = live.topic(CHAIN_EVENTS)
    admin = AdminClient({"bootstrap.servers": live.kafka_bootstrap})
    for future in admin.delete_records([TopicPartition(name, 0, cut)]).values():
        assert future.result().low_watermark == cut
    with pytest.raises(
        LogGapError,
        match=rf"{name}\[0\] no longer holds offsets {exported_end}..{cut - 1} "
        rf"\(its first offset is {cut}\)",
    ):
        export_log(live, tmp_path)
    assert latest_manifest(tmp_path) == (tmp_path / "manifests" / "00000001.json", first)
