"""`aop combine` on the real broker writes the pure combiner's global roots byte for byte:
uninterrupted, killed at each point of its transaction protocol and restarted, and with a
second instance taking over from a killed first one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from aop.core.combine import GlobalCombiner, GlobalOutput
from aop.core.fold import ReferenceFold
from aop.log.avro import AvroCodec
from aop.log.kafka import EPOCH_ROOTS, GLOBAL_ROOTS, ensure_topics, producer_config
from aop.log.reader import LogReader, ReadRange, log_bounds
from aop.log.root_assembly import CompleteRoot, RootAssembler
from aop.runtime.settings import Settings
from aop.streams.combiner.config import combine_config
from aop.streams.fold.config import fold_config
from tests.support.fold_logs import random_log

ROOT = Path(__file__).resolve().parents[2]
CODEC = AvroCodec()
CHANNELS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"]

#: (partition, key, record type, value) of aop.epoch.roots, in the order the fold writes them.
RootsRecord = tuple[int, bytes, str, dict[str, Any]]


@pytest.fixture
def combine_env(kafka_bootstrap: str, topic_prefix: str) -> dict[str, str]:
    return {
        "AOP_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "AOP_TOPIC_PREFIX": topic_prefix,
        "AOP_CHAIN_PARTITIONS": "3",
        "AOP_CHANNELS": ",".join(CHANNELS),
        "AOP_GENESIS_SLOT": "20",
        "AOP_EPOCH_SLOTS": "30",
        "AOP_EMISSIONS": json.dumps({"beta": 123_456_789}),
        "AOP_CLAIM_FORMATS": json.dumps({"zeta": "ring-v0"}),
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
    """What the fold writes to aop.epoch.roots for a random log: roots, chunks, markers."""
    config = fold_config(settings)
    log = random_log(config, seed=seed, batches=60, events_per_batch=6)
    offsets: dict[int, int] = {}
    out: list[RootsRecord] = []
    fold = ReferenceFold(config)
    for partition, batch in log:
        result = fold.feed(partition, offsets.get(partition, 0), batch)
        offsets[partition] = offsets.get(partition, 0) + 1
        for root in result.roots:
            out.append((root.partition, root.key, "EpochRoot", root.epoch_root))
            out += [(root.partition, root.key, "LeafChunk", chunk) for chunk in root.chunks]
        if result.closed is not None:
            marker = result.closed
            out.append((marker.partition, marker.key, "EpochClosed", marker.record))
    return out


def produce(settings: Settings, records: Sequence[RootsRecord]) -> list[tuple[int, int]]:
    """Append `records` to aop.epoch.roots; returns each one's (partition, offset)."""
    topic = settings.topic(EPOCH_ROOTS)
    producer = Producer(producer_config(settings))
    where: dict[int, tuple[int, int]] = {}
    for index, (partition, key, name, value) in enumerate(records):

        def delivered(err: Any, msg: Any, index: int = index) -> None:
            assert err is None, err
            where[index] = (msg.partition(), msg.offset())

        producer.produce(
            topic, CODEC.encode(name, value), key, partition=partition, on_delivery=delivered
        )
    assert producer.flush(30) == 0
    return [where[i] for i in range(len(records))]


def expected_roots(
    settings: Settings, records: Sequence[RootsRecord], placed: Sequence[tuple[int, int]]
) -> list[GlobalOutput]:
    """The pure combiner over the same records at the same offsets."""
    combiner = GlobalCombiner(combine_config(settings))
    assembler = RootAssembler()
    out: list[GlobalOutput] = []
    for (partition, _, name, value), (_, offset) in zip(records, placed, strict=True):
        got: list[Any] = []
        if name == "EpochClosed":
            got = combiner.add_closed(partition, offset, value)
        elif name == "AttentionClosed":
            got = combiner.add_attention_closed(partition, offset, value)
        else:
            for item in assembler.add(partition, offset, name, value, b""):
                assert isinstance(item, CompleteRoot)
                part = "attention_bonus" if item.record_type == "AttentionRoot" else "base_yield"
                got += combiner.add_root(
                    partition, item.offset, item.record, b"".join(item.chunks), part=part
                )
        for output in got:
            assert isinstance(output, GlobalOutput), output
            out.append(output)
    return out


def global_records(settings: Settings) -> list[tuple[str, bytes]]:
    """Every committed record of aop.global.roots: (type, value bytes)."""
    topic = settings.topic(GLOBAL_ROOTS)
    bounds = log_bounds(settings, topic, [0])[0]
    out = []
    with LogReader(settings, [ReadRange(topic, 0, bounds.low, bounds.stop)]) as reader:
        for batch in reader.batches():
            for _, _, _, value in batch:
                out.append((CODEC.decode(value)[0], value))
    return out


def encoded(outputs: Sequence[GlobalOutput]) -> list[tuple[str, bytes]]:
    out = []
    for o in outputs:
        out.append(("GlobalRoot", CODEC.encode("GlobalRoot", o.record)))
        out += [("LeafChunk", CODEC.encode("LeafChunk", c)) for c in o.chunks]
    return out


@dataclass
class Combiner:
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self, **extra: str) -> Combiner:
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "aop.cli", "combine"],
            env={**os.environ, **self.env, **extra},
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        return self

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(30)
        finally:
            self._log.close()


@pytest.fixture
def combiners(combine_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., Combiner]]:
    started: list[Combiner] = []

    def start(**extra: str) -> Combiner:
        c = Combiner(dict(combine_env), tmp_path / f"combiner{len(started)}.log").start(**extra)
        started.append(c)
        return c

    yield start
    for c in started:
        c.kill()
        # shown by pytest only when the test failed: what each combiner said
        print(f"== {c.log_path.name}\n" + c.log_path.read_text(errors="replace")[-6000:])


def wait_for_roots(settings: Settings, count: int, timeout: float = 90) -> list[tuple[str, bytes]]:
    deadline = time.monotonic() + timeout
    while True:
        got = global_records(settings)
        if sum(1 for name, _ in got if name == "GlobalRoot") >= count:
            return got
        assert time.monotonic() < deadline, f"{count} global roots not written in {timeout} s"
        time.sleep(0.5)


def test_uninterrupted_combiner_writes_the_reference_global_roots(
    combine_settings: Settings, combiners: Callable[..., Combiner]
) -> None:
    records = fold_output(combine_settings, seed=11)
    placed = produce(combine_settings, records)
    expected = expected_roots(combine_settings, records, placed)
    assert len(expected) >= 4
    assert [o.root_seq for o in expected] == list(range(1802, 1802 + len(expected)))
    worker = combiners()
    got = wait_for_roots(combine_settings, len(expected))
    assert worker.stop() == 0
    assert got == encoded(expected)


@pytest.mark.parametrize("point", ["before_global", "mid_global", "after_global"])
def test_killed_at_each_point_then_restarted_gives_the_same_roots_once(
    combine_settings: Settings, combiners: Callable[..., Combiner], point: str
) -> None:
    records = fold_output(combine_settings, seed=12)
    placed = produce(combine_settings, records)
    expected = expected_roots(combine_settings, records, placed)
    first = combiners(AOP_COMBINER_CRASH_AT=f"{point}:2")
    assert first.wait(90) == -signal.SIGKILL
    second = combiners()
    got = wait_for_roots(combine_settings, len(expected))
    time.sleep(1.0)  # nothing more may come
    assert second.stop() == 0
    assert global_records(combine_settings) == got == encoded(expected)


def test_a_second_instance_takes_over_from_a_killed_first(
    combine_settings: Settings, combiners: Callable[..., Combiner]
) -> None:
    records = fold_output(combine_settings, seed=13)
    half = len(records) // 2
    placed = produce(combine_settings, records[:half])
    first = combiners()
    wait_for_roots(combine_settings, 1)
    standby = combiners()
    time.sleep(2.0)  # the standby joins the lease group
    first.kill()
    placed += produce(combine_settings, records[half:])
    expected = expected_roots(combine_settings, records, placed)
    got = wait_for_roots(combine_settings, len(expected), timeout=120)
    time.sleep(1.0)
    assert standby.stop() == 0
    assert global_records(combine_settings) == got == encoded(expected)
