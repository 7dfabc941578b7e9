"""Drive `aop fold` workers on the real broker and read back what they wrote."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition
from solders.pubkey import Pubkey

from aop.core.fold import ReferenceFold
from aop.core.fold_config import FoldConfig
from aop.log.avro import AvroCodec
from aop.log.kafka import (
    ATTENTION_SIGNALS,
    CHAIN_EVENTS,
    DLQ,
    EPOCH_ROOTS,
    consumer_config,
    producer_config,
)
from aop.runtime.settings import Settings
from aop.streams.fold.app import STATE_TABLE
from aop.streams.fold.config import fold_app_id

ROOT = Path(__file__).resolve().parents[3]
CODEC = AvroCodec()

Record = tuple[int, int, dict[str, Any]]


def produce_log(
    settings: Settings,
    batches: Sequence[tuple[int, dict[str, Any]]],
    *,
    record_type: str = "SlotBatch",
) -> list[Record]:
    """Append SlotBatches (or SignalBatches) (partition, batch) with the pipeline's producer,
    to aop.chain.events (aop.attention.signals); the log as stored."""
    producer = Producer(producer_config(settings))
    topic = settings.topic(CHAIN_EVENTS if record_type == "SlotBatch" else ATTENTION_SIGNALS)
    stored: list[Record] = []
    for partition, batch in batches:

        def delivered(err: Any, msg: Any, batch: dict[str, Any] = batch) -> None:
            assert err is None, err
            stored.append((msg.partition(), msg.offset(), batch))

        producer.produce(
            topic,
            CODEC.encode(record_type, batch),
            key=b"p%d" % partition,
            partition=partition,
            on_delivery=delivered,
        )
        producer.poll(0)
    assert producer.flush(30) == 0
    stored.sort(key=lambda r: (r[0], r[1]))
    return stored


def produce_values(settings: Settings, values: Sequence[tuple[int, bytes]]) -> list[int]:
    """Append raw values (partition, bytes), garbage included, in order; their offsets."""
    producer = Producer(producer_config(settings))
    topic = settings.topic(CHAIN_EVENTS)
    offsets: dict[int, int] = {}
    for index, (partition, value) in enumerate(values):

        def delivered(err: Any, msg: Any, index: int = index) -> None:
            assert err is None, err
            offsets[index] = msg.offset()

        producer.produce(
            topic, value, key=b"p%d" % partition, partition=partition, on_delivery=delivered
        )
        producer.poll(0)
    assert producer.flush(30) == 0
    return [offsets[i] for i in range(len(values))]


def expected_records(
    records: Sequence[Record], config: FoldConfig, signals: Sequence[Record] = ()
) -> dict[tuple[bytes, int], list[bytes]]:
    """(key, root_seq) -> [EpochRoot (AttentionRoot) bytes, LeafChunk bytes...] of the
    reference fold over the SlotBatch `records` and the SignalBatch `signals`, and
    (b"partition:<p>" or b"attention:<p>", epoch) -> [marker bytes] for each of its markers."""
    out = {}
    fold = ReferenceFold(config)
    results = list(fold.feed_all(records))
    results += [fold.feed_signals(p, o, b) for p, o, b in signals]
    for result in results:
        for root in result.roots:
            encoded = [CODEC.encode(root.record_type, root.epoch_root)]
            encoded += [CODEC.encode("LeafChunk", chunk) for chunk in root.chunks]
            out[(root.key, root.root_seq)] = encoded
        for marker in (result.closed, result.attention_closed):
            if marker is not None:
                out[(marker.key, marker.epoch)] = [CODEC.encode(marker.record_type, marker.record)]
    return out


def read_topic(
    settings: Settings, topic: str, *, partitions: int, until: Any = None, timeout: float = 60
) -> list[tuple[int, int, bytes | None, bytes | None]]:
    """(partition, offset, key, value) of a topic from the start, until `until(records)` or idle."""
    consumer = Consumer(
        consumer_config(settings, f"{settings.topic_prefix}reader-{time.time_ns()}")
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    out: list[tuple[int, int, bytes | None, bytes | None]] = []
    deadline = time.monotonic() + timeout
    idle_since = time.monotonic()
    try:
        while time.monotonic() < deadline:
            messages = consumer.consume(500, 0.5)
            for message in messages:
                if message.error() is not None:
                    continue
                out.append((message.partition(), message.offset(), message.key(), message.value()))
            if messages:
                idle_since = time.monotonic()
            if until is not None and until(out):
                break
            if until is None and time.monotonic() - idle_since > 2:
                break
    finally:
        consumer.close()
    return out


@dataclass
class RootsOnTopic:
    """What the roots topic holds, grouped by (key, root_seq)."""

    records: list[tuple[int, int, bytes | None, bytes | None]]
    by_root: dict[tuple[bytes, int], set[bytes]] = field(default_factory=lambda: defaultdict(set))

    def __post_init__(self) -> None:
        for _, _, key, value in self.records:
            assert key is not None and value is not None
            name, record = CODEC.decode(value)
            markers = ("EpochClosed", "AttentionClosed")
            number = record["epoch"] if name in markers else record["root_seq"]
            self.by_root[(key, int(number))].add(value)

    def complete(self, expected: Mapping[tuple[bytes, int], list[bytes]]) -> bool:
        return all(set(v) <= self.by_root.get(k, set()) for k, v in expected.items())


def read_roots(
    settings: Settings, expected: Mapping[tuple[bytes, int], list[bytes]], timeout: float = 90
) -> RootsOnTopic:
    """Read aop.epoch.roots until every expected record is there (or the timeout)."""
    records = read_topic(
        settings,
        settings.topic(EPOCH_ROOTS),
        partitions=settings.chain_partitions,
        until=lambda got: RootsOnTopic(got).complete(expected),
        timeout=timeout,
    )
    return RootsOnTopic(records)


def _content_diff(root_key: tuple[bytes, int], got: set[bytes], want: set[bytes]) -> str:
    """Which records of a root differ, decoded (field by field, leaves summarised)."""

    def shown(values: set[bytes]) -> list[str]:
        out = []
        for value in sorted(values):
            name, record = CODEC.decode(value)
            fields = {k: (v.hex()[:16] if isinstance(v, bytes) else v) for k, v in record.items()}
            out.append(f"{name} {fields}"[:600])
        return out

    return (
        f"content differs for {root_key}: only on the topic {shown(got - want)}; "
        f"only in the reference {shown(want - got)}"
    )


def assert_roots_match(
    roots: RootsOnTopic, expected: Mapping[tuple[bytes, int], list[bytes]], config: FoldConfig
) -> None:
    """Same (key, root_seq) set as the reference, byte-identical content, each root's records
    in order in the channel's partition (EpochRoot, then chunk 0, 1, ...)."""
    assert set(roots.by_root) == set(expected), (
        f"missing {set(expected) - set(roots.by_root)}, extra {set(roots.by_root) - set(expected)}"
    )
    for root_key, values in expected.items():
        assert roots.by_root[root_key] == set(values), _content_diff(
            root_key, roots.by_root[root_key], set(values)
        )
    partitions = {str(Pubkey.from_bytes(s.config)).encode(): s.partition for s in config.channels}
    if config.attention is not None:
        partitions.update({c.key.encode(): c.partition for c in config.attention.channels})
    last_seen: dict[tuple[bytes, int], int] = {}
    for partition, _, key, value in roots.records:
        assert key is not None and value is not None
        name, record = CODEC.decode(value)
        if name in ("EpochClosed", "AttentionClosed"):
            assert partition == record["partition"], f"marker {record} on partition {partition}"
            continue
        root_key = (key, int(record["root_seq"]))
        position = int(record["chunk_index"]) + 1 if name == "LeafChunk" else 0
        assert position in (0, last_seen.get(root_key, -2) + 1), (
            f"{name} {position} of {root_key} does not follow its predecessor"
        )
        last_seen[root_key] = position
        if key in partitions:
            assert partition == partitions[key]


def changelog_topic(settings: Settings) -> str:
    return f"{fold_app_id(settings)}-{STATE_TABLE}-changelog"


def assert_changelog_routed(settings: Settings, config: FoldConfig) -> int:
    """Every changelog record is in its key's partition; returns how many were checked."""
    by_config = {str(Pubkey.from_bytes(s.config)): s.partition for s in config.channels}
    records = read_topic(settings, changelog_topic(settings), partitions=settings.chain_partitions)
    for partition, offset, key, _ in records:
        assert key is not None
        kind, _, rest = key.decode().partition("|")
        first = rest.split("|")[0]
        # p|, ap|, ah|, ag|, as| name the partition; c|, w|, n|, ac|, at|, au| the channel
        expected = int(first) if kind in ("p", "ap", "ah", "ag", "as") else by_config[first]
        assert partition == expected, f"changelog {key!r} at {partition}/{offset}, want {expected}"
    return len(records)


def dead_letters(settings: Settings) -> list[dict[str, Any]]:
    return [
        CODEC.decode_as("DeadLetter", value)
        for _, _, _, value in read_topic(settings, settings.topic(DLQ), partitions=1)
        if value is not None
    ]


@contextmanager
def fold_workers(env: Mapping[str, str], directory: Path) -> Iterator[Callable[..., FoldWorker]]:
    """Starts `aop fold` subprocesses with `env` (and per-call extras), their output in
    `directory`; kills any left running at the end."""
    started: list[FoldWorker] = []

    def start(**extra: str) -> FoldWorker:
        path = directory / f"worker{len(started)}.log"
        worker = FoldWorker(dict(env), path).start(**extra)
        started.append(worker)
        return worker

    try:
        yield start
    finally:
        for worker in started:
            worker.kill()


@dataclass
class FoldWorker:
    """An `aop fold` subprocess with the test's settings (as AOP_* variables)."""

    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self, **extra: str) -> FoldWorker:
        env = {**os.environ, **self.env, **extra}
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "aop.cli", "fold"],
            env=env,
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        return self

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        finally:
            self._log.close()

    def kill(self) -> None:
        """SIGKILL (nothing flushed, nothing committed), then reap the process."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        if not self._log.closed:
            self._log.close()

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM and wait for the graceful shutdown; SIGKILL if it hangs."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
