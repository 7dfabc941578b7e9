"""`aop combine` with attention roots in the mix (AOP_ATTENTION_ENABLED) on the real broker:
the pure combiner's global roots byte for byte, with non-zero base_yield and
attention_bonus, uninterrupted, killed at each point of its transaction protocol and
restarted, and with a second instance taking over from a killed first one."""

from __future__ import annotations

import json
import random
import signal
import time
from collections.abc import Callable, Sequence

import pytest

from aop.core.combine import GlobalOutput
from aop.core.fold import ReferenceFold
from aop.log.kafka import ensure_topics
from aop.runtime.settings import Settings
from aop.streams.fold.config import fold_config
from tests.integration.test_combiner import (
    CHANNELS,
    Combiner,
    RootsRecord,
    combiners,  # noqa: F401 (a fixture)
    encoded,
    expected_roots,
    global_records,
    produce,
    wait_for_roots,
)
from tests.support.fold_logs import random_log
from tests.support.signal_logs import HOUR0, random_signals

#: a slot lasts 2 s here: chain epochs of 30 slots = 60 s, attention epochs of 60 s.
SLOT_S, ATTENTION_S = 2, 60


@pytest.fixture
def combine_env(kafka_bootstrap: str, topic_prefix: str) -> dict[str, str]:
    return {
        "AOP_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "AOP_TOPIC_PREFIX": topic_prefix,
        "AOP_CHAIN_PARTITIONS": "3",
        "AOP_CHANNELS": ",".join(CHANNELS),
        "AOP_GENESIS_SLOT": "20",
        "AOP_EPOCH_SLOTS": "30",
        "AOP_CLAIM_FORMATS": json.dumps({"zeta": "ring-v0"}),
        "AOP_ATTENTION_ENABLED": "true",
        "AOP_ATTENTION_EPOCH_SECONDS": str(ATTENTION_S),
        "AOP_ATTENTION_FORMATS": json.dumps({"beta": "ring-v0-legacy"}),
        "AOP_ATTENTION_POLICIES": json.dumps({"gamma": {"mode": "pro-rata", "emission": 10**9}}),
        "AOP_GLOBAL_FIRST_ROOT_SEQ": "1802",
        "AOP_COMBINER_SESSION_TIMEOUT_MS": "6000",
        "AOP_METRICS_PORT": "0",
        "AOP_LOG_LEVEL": "INFO",
    }


@pytest.fixture
def combine_settings(
    settings_factory: Callable[..., Settings], combine_env: dict[str, str]
) -> Settings:
    settings = settings_factory(combine_env)
    ensure_topics(settings)
    return settings


def fold_output(settings: Settings, seed: int) -> list[RootsRecord]:
    """What the fold writes to aop.epoch.roots for a random staking log (with block times)
    and a random signal log over the same 20 minutes, the two topics' records interleaved
    at random on each partition."""
    config = fold_config(settings)
    chain = random_log(config, seed=seed, batches=60, events_per_batch=6)
    for _, batch in chain:
        batch["last_block_time"] = HOUR0 + batch["last_slot"] * SLOT_S
    signals = random_signals(
        config, seed=seed, batches=240, step_ms=5000, start_ms=HOUR0 * 1000, users=20
    )
    fold = ReferenceFold(config)
    rng = random.Random(seed)
    queues = {"chain": list(chain), "signals": list(signals)}
    offsets: dict[tuple[str, int], int] = {}
    out: list[RootsRecord] = []
    while any(queues.values()):
        topic = rng.choice([t for t, q in queues.items() if q])
        partition, batch = queues[topic].pop(0)
        offset = offsets.get((topic, partition), 0)
        offsets[(topic, partition)] = offset + 1
        feed = fold.feed if topic == "chain" else fold.feed_signals
        result = feed(partition, offset, batch)
        for root in result.roots:
            out.append((root.partition, root.key, root.record_type, root.epoch_root))
            out += [(root.partition, root.key, "LeafChunk", chunk) for chunk in root.chunks]
        for marker in (result.closed, result.attention_closed):
            if marker is not None:
                out.append((marker.partition, marker.key, marker.record_type, marker.record))
    return out


def _check_both_parts(expected: Sequence[GlobalOutput]) -> None:
    assert len(expected) >= 4
    assert [o.root_seq for o in expected] == list(range(1802, 1802 + len(expected)))
    last = expected[-1].record
    assert int(last["base_total"]) > 0 and int(last["bonus_total"]) > 0
    parts = {s["part"] for s in last["sources"]}
    assert parts == {"base_yield", "attention_bonus"}
    formats = {s["format"] for s in last["sources"] if s["part"] == "attention_bonus"}
    assert formats == {"cumulative-v2", "ring-v0-legacy"}


def test_uninterrupted_combiner_writes_the_reference_global_roots_with_a_bonus(
    combine_settings: Settings,
    combiners: Callable[..., Combiner],  # noqa: F811
) -> None:
    records = fold_output(combine_settings, seed=21)
    placed = produce(combine_settings, records)
    expected = expected_roots(combine_settings, records, placed)
    _check_both_parts(expected)
    worker = combiners()
    got = wait_for_roots(combine_settings, len(expected))
    assert worker.stop() == 0
    assert got == encoded(expected)


@pytest.mark.parametrize("point", ["before_global", "mid_global", "after_global"])
def test_killed_at_each_point_with_attention_then_restarted_gives_the_same_roots_once(
    combine_settings: Settings,
    combiners: Callable[..., Combiner],  # noqa: F811
    point: str,
) -> None:
    records = fold_output(combine_settings, seed=22)
    placed = produce(combine_settings, records)
    expected = expected_roots(combine_settings, records, placed)
    _check_both_parts(expected)
    first = combiners(AOP_COMBINER_CRASH_AT=f"{point}:2")
    assert first.wait(90) == -signal.SIGKILL
    second = combiners()
    got = wait_for_roots(combine_settings, len(expected))
    time.sleep(1.0)  # nothing more may come
    assert second.stop() == 0
    assert global_records(combine_settings) == got == encoded(expected)


def test_a_second_instance_takes_over_with_attention_pending(
    combine_settings: Settings,
    combiners: Callable[..., Combiner],  # noqa: F811
) -> None:
    records = fold_output(combine_settings, seed=23)
    half = len(records) // 2
    placed = produce(combine_settings, records[:half])
    first = combiners()
    wait_for_roots(combine_settings, 1)
    standby = combiners()
    time.sleep(2.0)  # the standby joins the lease group
    first.kill()
    placed += produce(combine_settings, records[half:])
    expected = expected_roots(combine_settings, records, placed)
    _check_both_parts(expected)
    got = wait_for_roots(combine_settings, len(expected), timeout=120)
    time.sleep(1.0)
    assert standby.stop() == 0
    assert global_records(combine_settings) == got == encoded(expected)
