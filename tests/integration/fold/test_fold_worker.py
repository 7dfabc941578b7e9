"""`aop fold` workers on the real broker emit the reference fold's roots byte for byte:
uninterrupted, killed at every point of the chunk protocol, two in one group, and on a log
where every event and every record is duplicated. Every changelog record is in its key's
partition. The hand-over also runs on a replicated three-node cluster (RF 3, min.insync 2;
`slow`), with the leaving worker killed."""

from __future__ import annotations

import json
import random
import socket
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from aop.core.events import ChannelStaked
from aop.core.fold import ReferenceFold, fold_log
from aop.core.fold_output import BatchResult
from aop.log.avro import AvroDecodeError
from aop.log.inspect import describe_topics
from aop.log.kafka import (
    CHAIN_EVENTS,
    admin_config,
    connected_admin,
    ensure_topics,
    producer_config,
)
from aop.log.slot_batch import SlotBatchDecoder
from aop.runtime.settings import Settings
from aop.streams.fold.config import fold_app_id, fold_config
from aop.streams.fold.topics import fold_topic_specs
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
    produce_values,
    read_roots,
)
from tests.support.fold_logs import LogWriter, key, random_log, stake
from tests.support.kafka_nodes import KafkaNodes

CHANNELS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"]


@pytest.fixture
def fold_kafka(request: pytest.FixtureRequest, kafka_bootstrap: str) -> dict[str, str]:
    """The AOP_KAFKA_* settings of the broker the workers use: the shared one, or with the
    indirect parameter "replicated" the session's three-node cluster."""
    if getattr(request, "param", "single") == "replicated":
        cluster: KafkaNodes = request.getfixturevalue("replicated_kafka")
        return cluster.env()
    return {"AOP_KAFKA_BOOTSTRAP": kafka_bootstrap}


@pytest.fixture
def fold_env(fold_kafka: dict[str, str], topic_prefix: str) -> dict[str, str]:
    """The AOP_* variables of the workers and of the test's own settings."""
    return {
        **fold_kafka,
        "AOP_TOPIC_PREFIX": topic_prefix,
        "AOP_CHAIN_PARTITIONS": "4",
        "AOP_CHANNELS": ",".join(CHANNELS),
        "AOP_GENESIS_SLOT": "20",
        "AOP_EPOCH_SLOTS": "50",
        "AOP_EMISSIONS": json.dumps({"beta": 123_456_789, "gamma": 0}),
        "AOP_CLAIM_FORMATS": json.dumps({"zeta": "ring-v0"}),
        "AOP_FIRST_ROOT_SEQ": json.dumps({"alpha": 1707}),
        "AOP_FOLD_BUCKET_ENTRIES": "4",
        "AOP_FOLD_COMMIT_INTERVAL": "0.5",
        "AOP_METRICS_PORT": "0",
        "AOP_LOG_LEVEL": "WARNING",
    }


@pytest.fixture
def fold_settings(settings_factory: Callable[..., Settings], fold_env: dict[str, str]) -> Settings:
    settings = settings_factory(fold_env)
    ensure_topics(settings)
    return settings


@pytest.fixture
def workers(fold_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., FoldWorker]]:
    """Starts `aop fold` subprocesses; kills any left running at the end."""
    with fold_workers(fold_env, tmp_path) as start:
        yield start


def _log(settings: Settings, seed: int, batches: int = 30) -> list[Record]:
    config = fold_config(settings)
    return produce_log(settings, random_log(config, seed=seed, batches=batches, events_per_batch=6))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_uninterrupted_worker_emits_the_reference_roots(
    fold_settings: Settings, workers: Callable[..., FoldWorker]
) -> None:
    """Roots, dead letters and metrics of one clean run."""
    config = fold_config(fold_settings)
    records = _log(fold_settings, seed=1)
    expected = expected_records(records, config)
    assert len(expected) >= 20
    port = _free_port()
    worker = workers(AOP_METRICS_PORT=str(port))
    roots = read_roots(fold_settings, expected)
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
    assert worker.stop() == 0
    for name in (
        b'aop_fold_events_total{event="ChannelStaked"}',
        b"aop_fold_batch_seconds_count",
        b'aop_fold_roots_total{channel="zeta"}',
        b"aop_fold_epoch_close_seconds_count",
        b'aop_tree_build_seconds_count{format="ring-v0"}',
        b'aop_dlq_total{reason="duplicate_position",stage="fold"}',
        b"aop_fold_consumer_lag{partition=",
    ):
        assert name in metrics, name
    assert_roots_match(roots, expected, config)
    assert assert_changelog_routed(fold_settings, config) > 0
    reference = [r for res in ReferenceFold(config).feed_all(records) for r in res.rejections]
    letters = dead_letters(fold_settings)
    assert sorted((d["reason"], d["source"]) for d in letters) == sorted(
        (r.reason, r.source) for r in reference
    )
    assert {d["stage"] for d in letters} <= {"fold"}


#: the same static member each time (no wait for the dead one's session to expire), small chunks.
RESTARTED = {
    "AOP_FOLD_INSTANCE_ID": "worker-0",
    "AOP_FOLD_TAKE_MAX": "6",
    "AOP_FOLD_COMMIT_INTERVAL": "0.1",
}
#: each run dies at its point's n-th arrival; the next one resumes from what is durable.
CRASH_POINTS = [
    "chunk_start:3",
    "before_root:1",
    "mid_root:2",
    "after_root:2",
    "mid_state:4",
    "after_state:6",
]


def test_worker_killed_at_every_point_then_restarted_emits_the_reference_roots(
    fold_settings: Settings, workers: Callable[..., FoldWorker]
) -> None:
    """SIGKILL at six points of the chunk protocol in turn (each run resumes from what the
    previous one committed), then a clean run: same roots, none skipped, none differing."""
    config = fold_config(fold_settings)
    records = _log(fold_settings, seed=2, batches=60)
    expected = expected_records(records, config)
    for point in CRASH_POINTS:
        worker = workers(AOP_FOLD_CRASH_AT=point, **RESTARTED)
        assert worker.wait(timeout=60) == -9, f"the worker did not die at {point}"
    workers(**RESTARTED)
    roots = read_roots(fold_settings, expected)
    assert_roots_match(roots, expected, config)
    assert assert_changelog_routed(fold_settings, config) > 0


def _group_members(settings: Settings) -> int:
    admin = AdminClient(admin_config(settings))
    [future] = admin.describe_consumer_groups([fold_app_id(settings)]).values()
    description = future.result()
    return len(description.members) if description.state.name == "STABLE" else 0


def test_two_workers_in_one_group_emit_the_reference_roots(
    fold_settings: Settings, workers: Callable[..., FoldWorker]
) -> None:
    """Both workers fold a share of the partitions while the log grows."""
    config = fold_config(fold_settings)
    batches = random_log(config, seed=3, batches=60, events_per_batch=6)
    first = workers(AOP_LOG_LEVEL="INFO")
    second = workers(AOP_LOG_LEVEL="INFO")
    deadline = time.monotonic() + 60
    while _group_members(fold_settings) != 2:
        assert time.monotonic() < deadline, "the two workers never formed a stable group"
        time.sleep(0.5)
    records: list[Record] = []
    for start in range(0, len(batches), len(batches) // 3 + 1):
        records += produce_log(fold_settings, batches[start : start + len(batches) // 3 + 1])
        time.sleep(1.0)
    records.sort(key=lambda r: (r[0], r[1]))
    expected = expected_records(records, config)
    roots = read_roots(fold_settings, expected, timeout=90)
    assert first.stop() == 0
    assert second.stop() == 0
    assert_roots_match(roots, expected, config)
    assert assert_changelog_routed(fold_settings, config) > 0
    emitted = [w.log_path.read_text().count('"root emitted"') for w in (first, second)]
    assert all(emitted), f"roots emitted per worker: {emitted}"


@pytest.mark.parametrize(
    ("fold_kafka", "leave"),
    [("single", "stop"), pytest.param("replicated", "kill", marks=pytest.mark.slow)],
    indirect=["fold_kafka"],
)
def test_a_worker_leaving_mid_run_hands_its_partitions_over_without_loss(
    fold_settings: Settings, workers: Callable[..., FoldWorker], leave: str
) -> None:
    """One of two workers gets SIGTERM ("stop") or SIGKILL ("kill") while the log grows; the
    other takes over and the roots are byte-identical to the reference fold's."""
    config = fold_config(fold_settings)
    batches = random_log(config, seed=3, batches=60, events_per_batch=6)
    first = workers()
    second = workers()
    deadline = time.monotonic() + 60
    while _group_members(fold_settings) != 2:
        assert time.monotonic() < deadline, "the two workers never formed a stable group"
        time.sleep(0.5)
    third = len(batches) // 3
    records = produce_log(fold_settings, batches[:third])
    time.sleep(1.5)
    records += produce_log(fold_settings, batches[third : 2 * third])
    time.sleep(1.5)
    if leave == "stop":
        assert second.stop() == 0
    else:
        second.kill()
    records += produce_log(fold_settings, batches[2 * third :])
    records.sort(key=lambda r: (r[0], r[1]))
    expected = expected_records(records, config)
    roots = read_roots(fold_settings, expected, timeout=120)
    assert first.stop() == 0
    assert_roots_match(roots, expected, config)
    replication = fold_settings.kafka_replication_factor
    if replication > 0:  # Faust's topics were created replicated as asked
        names = [spec.name for spec in fold_topic_specs(fold_settings)]
        states = describe_topics(connected_admin(fold_settings), names)
        assert {
            (s.replication_factor, s.configs["min.insync.replicas"]) for s in states.values()
        } == {(replication, str(fold_settings.kafka_min_insync_replicas))}


def _without_input(values: set[bytes]) -> set[str]:
    out = set()
    for value in values:
        _, record = CODEC.decode(value)
        record.pop("input", None)  # EpochRoot: offsets of the log read
        record.pop("source_offset", None)  # EpochClosed: likewise
        out.add(repr(sorted(record.items())))
    return out


def test_every_event_and_record_duplicated_gives_the_same_roots(
    fold_settings: Settings, workers: Callable[..., FoldWorker]
) -> None:
    """Each event twice in its batch and each batch twice on the log: the worker matches the
    reference of that log byte for byte, and the roots and markers equal the clean log's (but
    for the offsets of the log they name)."""
    config = fold_config(fold_settings)
    clean = random_log(config, seed=4, batches=30, events_per_batch=6)
    doubled: list[tuple[int, dict[str, Any]]] = []
    for partition, batch in clean:
        events = sorted([e for e in batch["events"] for _ in (0, 1)], key=lambda e: e["slot"])
        twice = {**batch, "events": events}
        doubled += [(partition, twice), (partition, twice)]
    records = produce_log(fold_settings, doubled)
    expected = expected_records(records, config)
    offsets: dict[int, int] = {}
    clean_records = []
    for partition, batch in clean:
        clean_records.append((partition, offsets.get(partition, 0), batch))
        offsets[partition] = offsets.get(partition, 0) + 1
    clean_expected = expected_records(clean_records, config)
    assert {k: _without_input(set(v)) for k, v in expected.items()} == {
        k: _without_input(set(v)) for k, v in clean_expected.items()
    }
    worker = workers()
    roots = read_roots(fold_settings, expected)
    assert worker.stop() == 0
    assert_roots_match(roots, expected, config)


def test_records_of_an_aborted_transaction_are_not_folded(
    fold_settings: Settings, workers: Callable[..., FoldWorker]
) -> None:
    """The listener writes each range in a transaction: an aborted range must not count."""
    config = fold_config(fold_settings)
    spec = config.channels[0]
    partition = spec.partition
    log = LogWriter(config.partitions)
    ghost = log.batch(partition, 49, [log.event(stake(key("ghost"), spec.config, key("g"), 5), 30)])
    log.next_slot[partition] = 0
    real = log.batch(partition, 49, [log.event(stake(key("real"), spec.config, key("r"), 5), 30)])
    closing = log.batch(partition, 200)
    producer = Producer(
        producer_config(fold_settings, **{"transactional.id": f"{fold_settings.topic_prefix}tx"})
    )
    producer.init_transactions(30)
    committed: list[Record] = []
    topic = fold_settings.topic(CHAIN_EVENTS)
    for batch, commit in ((ghost, False), (real, True), (closing, True)):
        producer.begin_transaction()

        def delivered(
            err: Any, msg: Any, batch: dict[str, Any] = batch, keep: bool = commit
        ) -> None:
            assert err is None, err
            if keep:
                committed.append((msg.partition(), msg.offset(), batch))

        producer.produce(
            topic, CODEC.encode("SlotBatch", batch), partition=partition, on_delivery=delivered
        )
        producer.flush(30)
        if commit:
            producer.commit_transaction(30)
        else:
            producer.abort_transaction(30)
    expected = expected_records(committed, config)
    assert expected, "the committed log must close an epoch with weight"
    worker = workers()
    roots = read_roots(fold_settings, expected)
    assert worker.stop() == 0
    assert_roots_match(roots, expected, config)
    for root in fold_log(committed, config):
        assert key("ghost") not in root.tree.wallets


@pytest.mark.slow
def test_sigkills_at_random_moments_while_the_log_grows_emit_the_reference_roots(
    fold_settings: Settings, workers: Callable[..., FoldWorker]
) -> None:
    """Ten runs, each SIGKILLed 1-4 s after it starts while new batches keep arriving."""
    config = fold_config(fold_settings)
    batches = random_log(config, seed=5, batches=150, events_per_batch=8)
    rng = random.Random(5)
    records: list[Record] = []
    slice_size = len(batches) // 10 + 1
    for start in range(0, len(batches), slice_size):
        records += produce_log(fold_settings, batches[start : start + slice_size])
        worker = workers(**RESTARTED)
        time.sleep(rng.uniform(1.0, 4.0))
        worker.kill()
    records.sort(key=lambda r: (r[0], r[1]))
    expected = expected_records(records, config)
    workers(**RESTARTED)
    roots = read_roots(fold_settings, expected, timeout=120)
    assert_roots_match(roots, expected, config)
    assert assert_changelog_routed(fold_settings, config) > 0


def test_garbage_records_and_events_go_to_the_dlq_and_the_worker_keeps_folding(
    fold_settings: Settings, workers: Callable[..., FoldWorker]
) -> None:
    """Between two halves of a log: random bytes, a truncated SlotBatch, one with a wrong
    fingerprint, and an event of random bytes after ChannelStaked's discriminator. Each is one
    DLQ record with its reason; the roots are the reference fold's over the same log, byte
    for byte, including the roots that close after the garbage."""
    config = fold_config(fold_settings)
    batches = random_log(config, seed=5, batches=30, events_per_batch=6)
    half = next(i for i in range(len(batches) // 2, len(batches)) if batches[i][1]["events"])
    valid = CODEC.encode("SlotBatch", batches[0][1])
    wrong_fingerprint = valid[:2] + bytes(8) + valid[10:]
    garbage = [(0, bytes(random.Random(5).randbytes(64))), (1, valid[:-3]), (2, wrong_fingerprint)]
    partition, tail = batches[half]
    garbled = {
        **tail["events"][0],
        "id": "garbled:0",
        "data": ChannelStaked.DISCRIMINATOR + b"\x01" * 9,
    }
    tail = {**tail, "events": [*tail["events"], garbled]}
    values = [(p, CODEC.encode("SlotBatch", b)) for p, b in batches[:half]]
    values += [(p, data) for p, data in garbage]
    values += [(partition, CODEC.encode("SlotBatch", tail))]
    values += [(p, CODEC.encode("SlotBatch", b)) for p, b in batches[half + 1 :]]
    offsets = produce_values(fold_settings, values)

    decoder = SlotBatchDecoder(CODEC)
    reference = ReferenceFold(config)
    result_of: dict[int, BatchResult] = {}
    for index in sorted(range(len(values)), key=lambda i: (values[i][0], offsets[i])):
        p, data = values[index]
        try:
            batch = decoder.decode(data)
        except AvroDecodeError as exc:
            result_of[index] = reference.feed_undecodable(p, offsets[index], data, str(exc))
        else:
            result_of[index] = reference.feed(p, offsets[index], batch)
    results = list(result_of.values())
    expected = {
        (root.key, root.root_seq): [
            CODEC.encode("EpochRoot", root.epoch_root),
            *(CODEC.encode("LeafChunk", chunk) for chunk in root.chunks),
        ]
        for result in results
        for root in result.roots
    }
    expected.update(
        {
            (result.closed.key, result.closed.epoch): [
                CODEC.encode("EpochClosed", result.closed.record)
            ]
            for result in results
            if result.closed is not None
        }
    )
    late = [i for i, result in result_of.items() if result.roots and i > half + 2]
    assert len([k for k in expected if not k[0].startswith(b"partition:")]) >= 10 and late, (
        "the log must close roots after the garbage"
    )
    worker = workers()
    roots = read_roots(fold_settings, expected)
    letters = dead_letters(fold_settings)
    assert worker.stop() == 0
    assert_roots_match(roots, expected, config)
    rejections = [r for result in results for r in result.rejections]
    assert sorted((d["reason"], d["source"], d["detail"]) for d in letters) == sorted(
        (r.reason, r.source, r.detail) for r in rejections
    )
    topic = fold_settings.topic(CHAIN_EVENTS)
    garbage_offsets = offsets[half : half + 3]
    mine = [(d["reason"], d["source"], d["payload"]) for d in letters if "garbled" in d["source"]]
    mine += [
        (d["reason"], d["source"], d["payload"])
        for d in letters
        if d["reason"] == "undecodable_batch"
    ]
    assert sorted(mine) == sorted(
        [
            (
                "undecodable_event",
                f"{topic}/{partition}/{offsets[half + 3]}#garbled:0",
                garbled["data"],
            ),
            *(
                ("undecodable_batch", f"{topic}/{p}/{offset}", data)
                for (p, data), offset in zip(garbage, garbage_offsets, strict=True)
            ),
        ]
    )
