"""`aop fold` with AOP_ATTENTION_ENABLED on the real broker: SignalBatches of
aop.attention.signals beside the SlotBatches of aop.chain.events, and every root and marker
of both (EpochRoot, AttentionRoot, LeafChunks, EpochClosed, AttentionClosed) byte-identical
to the reference fold's: uninterrupted, killed at every point of the chunk protocol, two
workers in one group, and on a log where every signal and every record is duplicated."""

from __future__ import annotations

import json
import random
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from aop.core.fold import ReferenceFold
from aop.log.kafka import ensure_topics
from aop.runtime.settings import Settings
from aop.streams.fold.config import fold_config
from tests.integration.fold.support import (
    CODEC,
    FoldWorker,
    Record,
    assert_changelog_routed,
    assert_roots_match,
    dead_letters,
    expected_records,
    fold_workers,
    produce_log,
    read_roots,
)
from tests.integration.fold.test_fold_worker import (
    CRASH_POINTS,
    RESTARTED,
    _free_port,
    _group_members,
)
from tests.support.fold_logs import random_log
from tests.support.signal_logs import HOUR0, random_signals

CHANNELS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"]
#: one minute epochs; a round of signals every 5 s of watermark.
EPOCH_S, STEP_MS = 60, 5000


@pytest.fixture
def attention_env(kafka_bootstrap: str, topic_prefix: str) -> dict[str, str]:
    return {
        "AOP_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "AOP_TOPIC_PREFIX": topic_prefix,
        "AOP_CHAIN_PARTITIONS": "4",
        "AOP_CHANNELS": ",".join(CHANNELS),
        "AOP_GENESIS_SLOT": "20",
        "AOP_EPOCH_SLOTS": "50",
        "AOP_CLAIM_FORMATS": json.dumps({"zeta": "ring-v0"}),
        "AOP_ATTENTION_ENABLED": "true",
        "AOP_ATTENTION_EPOCH_SECONDS": str(EPOCH_S),
        "AOP_ATTENTION_FORMATS": json.dumps({"beta": "ring-v0-legacy"}),
        "AOP_ATTENTION_POLICIES": json.dumps({"gamma": {"mode": "pro-rata", "emission": 10**9}}),
        "AOP_FOLD_BUCKET_ENTRIES": "4",
        "AOP_FOLD_COMMIT_INTERVAL": "0.5",
        "AOP_METRICS_PORT": "0",
        "AOP_LOG_LEVEL": "WARNING",
    }


@pytest.fixture
def attention_settings(
    settings_factory: Callable[..., Settings], attention_env: dict[str, str]
) -> Settings:
    settings = settings_factory(attention_env)
    ensure_topics(settings)
    return settings


@pytest.fixture
def workers(attention_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., FoldWorker]]:
    """Starts `aop fold` subprocesses; kills any left running at the end."""
    with fold_workers(attention_env, tmp_path) as start:
        yield start


def _logs(
    settings: Settings, seed: int, rounds: int = 80
) -> tuple[list[tuple[int, dict[str, Any]]], list[tuple[int, dict[str, Any]]]]:
    config = fold_config(settings)
    chain = random_log(config, seed=seed, batches=30, events_per_batch=5)
    signals = random_signals(
        config, seed=seed, batches=rounds, step_ms=STEP_MS, start_ms=HOUR0 * 1000, users=20
    )
    return chain, signals


def _produce(
    settings: Settings,
    chain: list[tuple[int, dict[str, Any]]],
    signals: list[tuple[int, dict[str, Any]]],
) -> tuple[list[Record], list[Record]]:
    return (
        produce_log(settings, chain),
        produce_log(settings, signals, record_type="SignalBatch"),
    )


def test_uninterrupted_worker_folds_both_topics_like_the_reference(
    attention_settings: Settings, workers: Callable[..., FoldWorker]
) -> None:
    """Roots and markers of both topics, dead letters (late signals included), metrics."""
    config = fold_config(attention_settings)
    chain, signals = _produce(attention_settings, *_logs(attention_settings, seed=1))
    expected = expected_records(chain, config, signals)
    attention_markers = [k for k in expected if k[0].startswith(b"attention:")]
    assert config.attention is not None
    keys = {c.key.encode() for c in config.attention.channels}
    attention_roots = [k for k in expected if k[0] in keys]
    assert len(attention_markers) >= 8 and len(attention_roots) >= 10
    port = _free_port()
    worker = workers(AOP_METRICS_PORT=str(port))
    roots = read_roots(attention_settings, expected)
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
    assert worker.stop() == 0
    for name in (
        b'aop_fold_events_total{event="signal_presence"}',
        b"aop_fold_signal_records_total",
        b'aop_tree_build_seconds_count{format="ring-v0-legacy"}',
        b'aop_dlq_total{reason="late_signal",stage="fold"}',
        b"aop_attention_watermark_seconds{partition=",
        b"aop_fold_signals_lag{partition=",
    ):
        assert name in metrics, name
    assert_roots_match(roots, expected, config)
    assert assert_changelog_routed(attention_settings, config) > 0
    fold = ReferenceFold(config)
    reference = [j for res in fold.feed_all(chain) for j in res.rejections]
    reference += [j for p, o, b in signals for j in fold.feed_signals(p, o, b).rejections]
    letters = dead_letters(attention_settings)
    assert sorted((d["reason"], d["source"]) for d in letters) == sorted(
        (j.reason, j.source) for j in reference
    )
    assert "late_signal" in {d["reason"] for d in letters}


def test_worker_killed_at_every_point_with_signals_in_the_mix(
    attention_settings: Settings, workers: Callable[..., FoldWorker]
) -> None:
    """SIGKILL at six points of the chunk protocol in turn, then a clean run: the roots and
    markers of both topics are the reference's, none skipped, none differing."""
    config = fold_config(attention_settings)
    chain, signals = _produce(attention_settings, *_logs(attention_settings, seed=2, rounds=120))
    expected = expected_records(chain, config, signals)
    for point in CRASH_POINTS:
        worker = workers(AOP_FOLD_CRASH_AT=point, **RESTARTED)
        assert worker.wait(timeout=60) == -9, f"the worker did not die at {point}"
    workers(**RESTARTED)
    roots = read_roots(attention_settings, expected)
    assert_roots_match(roots, expected, config)
    assert assert_changelog_routed(attention_settings, config) > 0


def test_two_workers_fold_both_topics_like_the_reference(
    attention_settings: Settings, workers: Callable[..., FoldWorker]
) -> None:
    """Two workers share the co-partitioned topics while both logs grow."""
    config = fold_config(attention_settings)
    chain_batches, signal_batches = _logs(attention_settings, seed=3, rounds=90)
    first, second = workers(AOP_LOG_LEVEL="INFO"), workers(AOP_LOG_LEVEL="INFO")
    deadline = time.monotonic() + 60
    while _group_members(attention_settings) != 2:
        assert time.monotonic() < deadline, "the two workers never formed a stable group"
        time.sleep(0.5)
    chain: list[Record] = []
    signals: list[Record] = []
    for third in range(3):
        c = chain_batches[third * len(chain_batches) // 3 : (third + 1) * len(chain_batches) // 3]
        s = signal_batches[
            third * len(signal_batches) // 3 : (third + 1) * len(signal_batches) // 3
        ]
        more_chain, more_signals = _produce(attention_settings, c, s)
        chain += more_chain
        signals += more_signals
        time.sleep(1.0)
    chain.sort(key=lambda r: (r[0], r[1]))
    signals.sort(key=lambda r: (r[0], r[1]))
    expected = expected_records(chain, config, signals)
    roots = read_roots(attention_settings, expected, timeout=90)
    assert first.stop() == 0
    assert second.stop() == 0
    assert_roots_match(roots, expected, config)
    assert assert_changelog_routed(attention_settings, config) > 0
    emitted = [w.log_path.read_text().count('"root emitted"') for w in (first, second)]
    assert all(emitted), f"roots emitted per worker: {emitted}"


def test_every_signal_and_record_duplicated_gives_the_same_attention_roots(
    attention_settings: Settings, workers: Callable[..., FoldWorker]
) -> None:
    """Each signal twice in its batch and each SignalBatch twice on the log: the worker
    matches the reference of that log byte for byte, and the attention roots equal the clean
    log's but for the offsets they name."""
    config = fold_config(attention_settings)
    _, clean = _logs(attention_settings, seed=4)
    doubled: list[tuple[int, dict[str, Any]]] = []
    for partition, batch in clean:
        twice = {**batch, "signals": [s for s in batch["signals"] for _ in (0, 1)]}
        doubled += [(partition, twice), (partition, twice)]
    signals = produce_log(attention_settings, doubled, record_type="SignalBatch")
    expected = expected_records([], config, signals)
    offsets: dict[int, int] = {}
    clean_records = []
    for partition, batch in clean:
        clean_records.append((partition, offsets.get(partition, 0), batch))
        offsets[partition] = offsets.get(partition, 0) + 1
    clean_expected = expected_records([], config, clean_records)

    def without_offsets(values: list[bytes]) -> set[str]:
        out = set()
        for value in values:
            _, record = CODEC.decode(value)
            record.pop("input", None)
            record.pop("source_offset", None)
            out.add(repr(sorted(record.items())))
        return out

    assert {k: without_offsets(v) for k, v in expected.items()} == {
        k: without_offsets(v) for k, v in clean_expected.items()
    }
    worker = workers()
    roots = read_roots(attention_settings, expected)
    assert worker.stop() == 0
    assert_roots_match(roots, expected, config)


@pytest.mark.slow
def test_sigkills_at_random_moments_while_both_logs_grow(
    attention_settings: Settings, workers: Callable[..., FoldWorker]
) -> None:
    """Ten runs, each SIGKILLed 1-4 s after it starts while new SlotBatches and SignalBatches
    keep arriving: the roots and markers of both topics are the reference's."""
    config = fold_config(attention_settings)
    chain_batches, signal_batches = _logs(attention_settings, seed=5, rounds=200)
    rng = random.Random(5)
    chain: list[Record] = []
    signals: list[Record] = []
    for tenth in range(10):
        c = chain_batches[tenth * len(chain_batches) // 10 : (tenth + 1) * len(chain_batches) // 10]
        s = signal_batches[
            tenth * len(signal_batches) // 10 : (tenth + 1) * len(signal_batches) // 10
        ]
        more_chain, more_signals = _produce(attention_settings, c, s)
        chain += more_chain
        signals += more_signals
        worker = workers(**RESTARTED)
        time.sleep(rng.uniform(1.0, 4.0))
        worker.kill()
    chain.sort(key=lambda r: (r[0], r[1]))
    signals.sort(key=lambda r: (r[0], r[1]))
    expected = expected_records(chain, config, signals)
    workers(**RESTARTED)
    roots = read_roots(attention_settings, expected, timeout=120)
    assert_roots_match(roots, expected, config)
    assert assert_changelog_routed(attention_settings, config) > 0
