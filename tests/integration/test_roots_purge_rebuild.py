"""Readers of a purged aop.epoch.roots on the real broker and database: `aop log purge`
(--dry-run and not, exact points), `aop rebuild` after it, and the rebuild's loader over a
partition whose roots interleave (chunks of a purged root above the log start).

The expected points are derived here from the records produced (every root is 1 header +
its chunks, one after the other on its partition) with the rule written out once more:
per partition, min(the projector's committed offset = the partition's end, the header of
the oldest of the newest K roots of each account)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import pytest
from sqlalchemy import Engine, text

from aop.core.fold import fold_log
from aop.core.fold_output import RootOutput
from aop.log.avro import codec_for
from aop.log.kafka import EPOCH_ROOTS, GLOBAL_ROOTS, ensure_topics
from aop.log.reader import log_bounds
from aop.projections.db import engine_for, upgrade
from aop.projections.purge import purge_roots
from aop.replay.load import load_schema
from aop.runtime.settings import Settings, load_settings
from aop.streams.fold.config import fold_config
from tests.integration import test_replay_rebuild as rebuild_base
from tests.integration.test_projections import produce, run_projector, sample
from tests.integration.test_roots_purge import stored_seqs
from tests.support.fold_logs import random_log

AopRunner = rebuild_base.AopRunner
# fixtures (pytest finds them in this module's namespace)
replay_env = rebuild_base.replay_env
settings = rebuild_base.settings
engine = rebuild_base.engine
aop = rebuild_base.aop
schemas_left = rebuild_base.schemas_left

SettingsFactory = Callable[..., Settings]
K = 2
ROOT_TABLES = ("roots", "leaves", "tree_levels")


def expected_points(roots: Sequence[RootOutput], partitions: int, kept: int) -> dict[int, int]:
    """The purge point of each partition when `roots` were produced in order and all projected."""
    header = header_offsets(roots)
    ends: dict[int, int] = {}
    for root in roots:
        ends[root.partition] = ends.get(root.partition, 0) + 1 + len(root.chunks)
    points = {p: ends.get(p, 0) for p in range(partitions)}  # committed: every record
    for account in {a for a, _ in header}:
        for seq in sorted(s for a, s in header if a == account)[-kept:]:
            part, at = header[(account, seq)]
            points[part] = min(points[part], at)
    return points


def header_offsets(roots: Sequence[RootOutput]) -> dict[tuple[str, int], tuple[int, int]]:
    """(account, root_seq) -> (partition, header offset) of roots produced in order."""
    out: dict[tuple[str, int], tuple[int, int]] = {}
    offset: dict[int, int] = {}
    for root in roots:
        at = offset.get(root.partition, 0)
        out[(root.key.decode(), root.root_seq)] = (root.partition, at)
        offset[root.partition] = at + 1 + len(root.chunks)
    return out


def root_rows(dumped: rebuild_base.Dump, drop: set[tuple[str, int]]) -> rebuild_base.Dump:
    """The roots, leaves and tree_levels rows of `dumped` but those of the `drop` roots."""
    return {
        t: [row for row in dumped[t] if (str(row[0]), int(row[1])) not in drop] for t in ROOT_TABLES
    }


def test_purge_cli_then_rebuild_restores_the_kept_roots_and_counts_the_purged(
    replay_env: dict[str, str],
    engine: Engine,
    aop: AopRunner,
    monkeypatch: pytest.MonkeyPatch,
    schemas_left: None,
) -> None:
    """K=2: `aop log purge --dry-run --json` names each partition's point and deletes nothing;
    `aop log purge` moves the log starts there; `aop rebuild` switches in a schema whose
    roots, leaves and levels equal the live ones but for the roots whose header was purged,
    which it reports as expected-absent with their exact count."""
    env = {**replay_env, "AOP_PROOF_ROOTS_KEPT": str(K), "AOP_SETTLEMENT_TARGET": "channel"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    live = load_settings(env)
    config = fold_config(live)
    batches = random_log(config, seed=3, batches=16, events_per_batch=10, slots_per_batch=25)
    stored = rebuild_base.produce_log(live, batches, transactional=True)
    roots = fold_log(stored, config)
    rebuild_base.project(live, engine, roots, stored)
    before = rebuild_base.dump(engine)
    topic = live.topic(EPOCH_ROOTS)

    points = expected_points(roots, live.chain_partitions, K)
    headers = header_offsets(roots)
    purged = {key for key, (part, at) in headers.items() if at < points[part]}
    assert purged and len(purged) < len(roots), (points, sorted(headers.values()))
    partitions = [
        {"partition": p, "log_start": 0, "point": points[p]} for p in range(live.chain_partitions)
    ]
    code, out = aop("log", "purge", "--dry-run", "--json")
    assert code == 0, aop.err
    assert json.loads(out) == {
        "dry_run": True,
        "held": "",
        "topics": [
            {"topic": topic, "records": sum(points.values()), "partitions": partitions},
            {
                "topic": live.topic(GLOBAL_ROOTS),
                "records": 0,
                "partitions": [{"partition": 0, "log_start": 0, "point": 0}],
            },
        ],
    }
    lows = {p: b.low for p, b in log_bounds(live, topic, range(4)).items()}
    assert lows == dict.fromkeys(range(4), 0)  # the dry run deleted nothing

    code, out = aop("log", "purge")
    assert code == 0, aop.err
    lines = out.splitlines()
    assert lines[0] == f"{topic}: deleted {sum(points.values()):,} offsets"
    assert lines[1:5] == [
        f"  [{p}] log start 0 -> {points[p]} (purge point {points[p]})" for p in range(4)
    ]
    lows = {p: b.low for p, b in log_bounds(live, topic, range(4)).items()}
    assert lows == points

    code, out = aop("rebuild", "--json")
    report = json.loads(out)
    assert code == 0, report["reason"]
    assert (report["decision"], report["old_state"], report["old_differs"]) == (
        "switched",
        "intact",
        [],
    )
    assert report["purged_absent"] == len(purged)
    assert report["purged_replayed"] == len(purged)
    assert report["loads"][0]["written"] == len(roots) - len(purged)
    assert report["loads"][0]["rejected"] == []
    assert report["loads"][0]["purged_remainder"] == 0
    assert report["verification"]["mismatches"] == 0
    after = rebuild_base.dump(engine)
    assert root_rows(after, set()) == root_rows(before, purged)
    kept = {(str(r[0]), int(r[1])) for r in after["roots"]}
    newest = {
        (a, s)
        for a in {a for a, _ in headers}
        for s in sorted(q for b, q in headers if b == a)[-K:]
    }
    assert newest <= kept  # every account's newest K roots, with their proofs
    assert {(str(r[0]), int(r[1])) for r in after["leaves"]} == {
        (str(r[0]), int(r[1])) for r in before["leaves"]
    }


def test_loader_over_an_interleaved_partition_counts_the_purged_remainder(
    settings_factory: SettingsFactory, db_schema: str
) -> None:
    """Partition 1, written by hand (K = 2 per account; alpha has 3 roots, beta 1):

        0 alpha#1 header   1 alpha#1 chunk 0   2 beta#1 header   3 alpha#1 chunk 1
        4 alpha#1 chunk 2  5 beta#1 chunk 0    6..9 alpha#2      10..13 alpha#3

    Kept: alpha#2 (6), alpha#3 (10), beta#1 (2): the purge point is 2, so alpha#1's chunks
    1 and 2 (offsets 3, 4) stay above the log start without their header. A load of a fresh
    schema from there writes beta#1, alpha#2 and alpha#3 equal to the live rows, refuses
    nothing and counts 2 purged-remainder chunks."""
    env = {
        "AOP_PROOF_ROOTS_KEPT": str(K),
        "AOP_PROJECTION_POLL_TIMEOUT_S": "0.2",
        "AOP_SETTLEMENT_TARGET": "channel",
        "AOP_ROOTS_PURGE": "false",
    }
    settings = settings_factory(env)
    upgrade(settings)
    ensure_topics(settings)
    a1, a2, a3 = (sample(s, wallets=5) for s in (1, 2, 3))
    b1 = sample(1, wallets=2, channel="beta")
    ra1, rb1 = a1.records(), b1.records()
    assert (len(ra1), len(rb1)) == (4, 2)
    layout = [ra1[0], ra1[1], rb1[0], ra1[2], ra1[3], rb1[1], *a2.records(), *a3.records()]
    assert len(layout) == 14
    produce(settings, layout)
    alpha1 = (str(ra1[0][1]["channel_config"]), 1)
    topic = settings.topic(EPOCH_ROOTS)
    loaded = settings_factory({**env, "AOP_DATABASE_SCHEMA": f"{db_schema}_load"})
    live = engine_for(settings)
    try:
        run_projector(settings, live, lambda: len(stored_seqs(settings)) == 4)
        plan = purge_roots(settings, live, codec_for(settings))
        assert plan.topics[0].points == {0: 0, 1: 2, 2: 0, 3: 0}
        assert log_bounds(settings, topic, [1])[1].low == 2

        upgrade(loaded)
        engine = engine_for(loaded)
        try:
            result = load_schema(loaded, engine)
            assert (result.written, result.rejected, result.purged_remainder) == (3, [], 2)
            assert result.offsets[topic][1] == 14
            want = root_rows(rebuild_base.dump(live), {alpha1})
            assert len(want["roots"]) == 3
            assert root_rows(rebuild_base.dump(engine), set()) == want
        finally:
            engine.dispose()
    finally:
        with live.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{db_schema}_load" CASCADE'))
        live.dispose()
