"""`aop log export` / `aop log import` against the real broker: faithful, incremental, safe.

The source log is written as the pipeline writes it (tests.support.kafka_log): the listener's
ranges as transactions over every partition (some aborted), roots and settlement results
without. Its ledger (offsets from the delivery reports) is what a restored log must hold.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from aop.log.backup import (
    ChecksumError,
    CutTimeoutError,
    ForeignManifestError,
    LogGapError,
    NonEmptyTopicError,
    export_log,
    import_log,
    latest_manifest,
)
from aop.log.backup.cut import OffsetReader
from aop.log.kafka import (
    CHAIN_EVENTS,
    DLQ,
    EPOCH_ROOTS,
    SETTLEMENT,
    ensure_topics,
    producer_config,
    topic_specs,
)
from aop.runtime.settings import Settings
from tests.conftest import new_topic_prefix
from tests.support.kafka_log import PipelineLikeWriter, read_partition

TOPICS = (CHAIN_EVENTS, EPOCH_ROOTS, SETTLEMENT, DLQ)


def _write(writer: PipelineLikeWriter, ranges: int) -> None:
    for i in range(ranges):
        writer.listener_range(dead=i % 3, abort=i % 5 == 4, per_partition=1 + i % 2)
        if i % 4 == 0:
            writer.root(i % writer.settings.chain_partitions)
            writer.settlement()
    writer.close()


def _assert_restored(source: PipelineLikeWriter, target: Settings) -> None:
    for topic in TOPICS:
        for p in range(4 if topic in (CHAIN_EVENTS, EPOCH_ROOTS) else 1):
            expected = source.ledger.get(topic, {}).get(p, [])
            got, end = read_partition(target, topic, p)
            assert got == expected, f"{topic}[{p}]"
            _, source_end = read_partition(source.settings, topic, p)
            assert source_end <= end <= source_end + 2, f"{topic}[{p}] ends at {end}"


def test_export_twice_then_import_restores_every_record_at_its_offset(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    """Two exports (the second incremental) restore into an empty prefix: same records, same
    offsets, keys, headers and timestamps; aborted records and markers stay invisible."""
    source = settings_factory()
    writer = PipelineLikeWriter(source)
    _write(writer, 12)
    first = export_log(source, tmp_path)
    assert first.written and first.manifest is not None and first.manifest.seq == 1
    first_files = {s.path: s.sha256 for s in first.manifest.segments}
    _write(writer, 9)
    second = export_log(source, tmp_path)
    assert second.manifest is not None and second.manifest.seq == 2
    # incremental: the first run's files unchanged, new files start where it ended
    second_files = {s.path: s.sha256 for s in second.manifest.segments}
    assert second_files.items() >= first_files.items()
    assert len(second_files) > len(first_files)
    for path, sha256 in first_files.items():
        assert hashlib.sha256((tmp_path / path).read_bytes()).hexdigest() == sha256
    ends = {(t.name, c.partition): c.end for t in first.manifest.topics for c in t.coverage}
    for r in second.ranges:
        assert r.start == ends[(r.topic, r.partition)]
    committed = sum(len(v) for parts in writer.ledger.values() for v in parts.values())
    assert second.manifest.records == committed
    assert first.records + second.records == committed
    again = export_log(source, tmp_path)
    assert not again.written and again.manifest is not None and again.manifest.seq == 2

    target = settings_factory(env={"AOP_TOPIC_PREFIX": new_topic_prefix()})
    result = import_log(target, tmp_path)
    assert result.records == committed
    modes = {(p.topic, p.partition): p.mode for p in result.partitions}
    assert modes[(target.topic(CHAIN_EVENTS), 0)] == "transactional"
    assert modes[(target.topic(EPOCH_ROOTS), 0)] == "plain"
    _assert_restored(writer, target)


def test_import_refuses_a_file_with_a_flipped_byte_before_writing_anything(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    """One flipped byte: ChecksumError naming the file; no target topic is even created."""
    source = settings_factory()
    _write(PipelineLikeWriter(source), 4)
    manifest = export_log(source, tmp_path).manifest
    assert manifest is not None
    victim = tmp_path / manifest.segments[-1].path
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    target = settings_factory(env={"AOP_TOPIC_PREFIX": new_topic_prefix()})
    with pytest.raises(
        ChecksumError, match=f"{victim} is corrupt: sha256 {hashlib.sha256(data).hexdigest()}"
    ):
        import_log(target, tmp_path)
    with OffsetReader(target) as reader:
        assert not {s.name for s in topic_specs(target)} & reader.topics()


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("AOP_MINT", "So11111111111111111111111111111111111111112"),
        ("AOP_PROGRAM_ID", "11111111111111111111111111111111"),
    ],
)
def test_import_refuses_a_manifest_of_another_pipeline(
    settings_factory: Callable[..., Settings], tmp_path: Path, setting: str, value: str
) -> None:
    """Another mint or program id: ForeignManifestError naming both values; nothing written."""
    source = settings_factory()
    _write(PipelineLikeWriter(source), 2)
    export_log(source, tmp_path)
    target = settings_factory(env={"AOP_TOPIC_PREFIX": new_topic_prefix(), setting: value})
    field = "mint" if setting == "AOP_MINT" else "program_id"
    with pytest.raises(
        ForeignManifestError, match=f"its {field} is .* this pipeline's is '{value}'"
    ):
        import_log(target, tmp_path)
    with OffsetReader(target) as reader:
        assert not {s.name for s in topic_specs(target)} & reader.topics()
    with pytest.raises(ForeignManifestError):
        export_log(target, tmp_path)  # nor may another pipeline extend the export


def test_import_refuses_a_non_empty_topic_unless_told_to_append(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    """A record already in the target: refused; with allow_non_empty the records follow it."""
    source = settings_factory()
    writer = PipelineLikeWriter(source)
    _write(writer, 3)
    export_log(source, tmp_path)
    target = settings_factory(env={"AOP_TOPIC_PREFIX": new_topic_prefix()})
    before = PipelineLikeWriter(target)
    before.settlement()
    with pytest.raises(NonEmptyTopicError, match=rf"{target.topic(SETTLEMENT)}\[0\] is not empty"):
        import_log(target, tmp_path)
    assert read_partition(target, CHAIN_EVENTS, 0) == ([], 0)
    import_log(target, tmp_path, allow_non_empty=True)
    got, _ = read_partition(target, SETTLEMENT, 0)
    expected = before.ledger[SETTLEMENT][0] + writer.ledger[SETTLEMENT][0]
    assert [(r.key, r.value, r.headers) for r in got] == [
        (r.key, r.value, r.headers) for r in expected
    ]


def test_export_removes_leftovers_of_an_interrupted_run_and_keeps_the_manifest(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    """A crash between segment files and manifest leaves unreferenced files: the next run
    deletes them (and any .tmp) and writes a manifest that covers the range again."""
    source = settings_factory()
    writer = PipelineLikeWriter(source)
    _write(writer, 3)
    first = export_log(source, tmp_path)
    assert first.manifest is not None
    orphan = tmp_path / "topics" / CHAIN_EVENTS / "0" / f"{9:020d}-{99:020d}.avro"
    orphan.write_bytes(b"half an export")
    tmp_file = tmp_path / "manifests" / "00000002.json.tmp"
    tmp_file.write_bytes(b"{")
    found = latest_manifest(tmp_path)
    assert found is not None and found[1] == first.manifest
    _write(writer, 2)
    second = export_log(source, tmp_path)
    assert not orphan.exists() and not tmp_file.exists()
    assert second.manifest is not None and second.manifest.seq == 2


def test_export_waits_for_an_open_listener_transaction_and_never_cuts_through_it(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    """An open transaction on aop.chain.events: the cut waits, then gives up naming the
    partition; once it commits, the export has all of it."""
    source = settings_factory()
    _write(PipelineLikeWriter(source), 2)
    producer = Producer(producer_config(source, **{"transactional.id": "t-open"}))
    producer.init_transactions(30)
    producer.begin_transaction()
    producer.produce(source.topic(CHAIN_EVENTS), b"open", partition=2)
    producer.flush(30)
    with pytest.raises(CutTimeoutError, match=rf"{source.topic(CHAIN_EVENTS)}\[2\]"):
        export_log(source, tmp_path, cut_timeout_s=1.0)
    assert latest_manifest(tmp_path) is None
    producer.commit_transaction(30)
    manifest = export_log(source, tmp_path).manifest
    assert manifest is not None
    chain = manifest.topic(CHAIN_EVENTS)
    assert chain is not None
    got, end = read_partition(source, CHAIN_EVENTS, 2)
    assert got[-1].value == b"open"
    assert chain.coverage[2].end == end and chain.coverage[2].records == len(got)


def test_interleaved_transactions_of_two_producers_come_back_at_their_offsets(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    """Two producers' transactions interleaved on aop.dlq (the listener's and another's): the
    gaps between records (two markers after two records, an aborted record) are re-created."""
    source = settings_factory()
    writer = PipelineLikeWriter(source)
    writer.close()
    topic = source.topic(DLQ)
    x = Producer(producer_config(source, **{"transactional.id": "t-x"}))
    y = Producer(producer_config(source, **{"transactional.id": "t-y"}))
    for p in (x, y):
        p.init_transactions(30)
    x.begin_transaction()
    x.produce(topic, b"x1", partition=0)  # offset 0
    x.flush(30)
    y.begin_transaction()
    y.produce(topic, b"y1", partition=0)  # offset 1
    y.flush(30)
    y.commit_transaction(30)
    x.commit_transaction(30)  # markers at 2 and 3
    y.begin_transaction()
    y.produce(topic, b"aborted", partition=0)
    y.flush(30)
    y.abort_transaction(30)  # 4, marker 5
    x.begin_transaction()
    x.produce(topic, b"x2", partition=0)  # offset 6
    x.commit_transaction(30)
    expected, end = read_partition(source, DLQ, 0)
    assert [(r.offset, r.value) for r in expected] == [(0, b"x1"), (1, b"y1"), (6, b"x2")]
    export_log(source, tmp_path)
    target = settings_factory(env={"AOP_TOPIC_PREFIX": new_topic_prefix()})
    import_log(target, tmp_path)
    got, target_end = read_partition(target, DLQ, 0)
    assert got == expected
    assert end <= target_end <= end + 2


def test_export_refuses_a_deleted_or_recreated_topic_and_keeps_the_manifest(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    """After `rpk topic delete` of an exported topic the export fails naming it; once the
    topic is recreated empty, it fails again (its offsets went back to 0)."""
    source = settings_factory()
    _write(PipelineLikeWriter(source), 4)
    first = export_log(source, tmp_path).manifest
    assert first is not None
    covered = first.topic(SETTLEMENT)
    assert covered is not None and covered.coverage[0].end == 1  # one settlement result
    name = source.topic(SETTLEMENT)
    admin = AdminClient({"bootstrap.servers": source.kafka_bootstrap})
    admin.delete_topics([name], operation_timeout=30)[name].result()
    deadline = time.monotonic() + 30
    while name in admin.list_topics(timeout=10).topics and time.monotonic() < deadline:
        time.sleep(0.2)
    with pytest.raises(LogGapError, match=rf"{name} does not exist any more, .* up to 1:"):
        export_log(source, tmp_path)
    ensure_topics(source)
    with pytest.raises(
        LogGapError, match=rf"{name}\[0\] ends at offset 0 but the export covers it up to 1:"
    ):
        export_log(source, tmp_path)
    assert latest_manifest(tmp_path) == (tmp_path / "manifests" / "00000001.json", first)
