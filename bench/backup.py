# ruff: noqa: E402  (sys.path is fixed before the imports, see below)
"""Benchmark: `aop log export` and `aop log import` of a 5,000,000-event log, vs bare clients.

Run: .venv/bin/python bench/backup.py [--events 5000000] [--batch-events 1000]
     [--codec snappy] [--keep]   (Kafka from AOP_KAFKA_BOOTSTRAP, default the local one)

Set-up (not timed): a fresh topic prefix; the log written as the listener writes it: each step
(a slot range) ONE Kafka transaction over every partition of aop.chain.events, a SlotBatch of
`--batch-events` events per partition (the listener's encoder and bench/replay.py's workload:
48 channels, 12 partitions, ~600 bytes per event). So every record is followed by a commit
marker, as on a real log.

Timed, same run, one after the other:
* bare consume: a read_committed batched consume of every partition of the exported topics to
  its end, bytes untouched (the replay's reader) — best of two, before and after the export;
* export: `export_log` into a fresh directory (read_committed, Avro container files,
  sha256, fsync, manifest);
* bare produce: the same records (read from the export's files) sent by one idempotent
  producer (the pipeline's producer config) to a fresh prefix: no transactions, no checks;
* import: `import_log` of the directory into another fresh prefix (every file's sha256
  checked first, every record at its offset: one commit per step, as the listener did);
plus, before the export, on 100 records held in memory, what an export in this format must do
per byte whatever its code: snappy (as Avro frames it), sha256 and write + fsync of the
compressed bytes.

Goal: export >= 0.5 x bare consume, import >= 0.5 x bare produce (events/s).
"""

from __future__ import annotations

import sys
from pathlib import Path

_BENCH_DIR = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH_DIR]
sys.path.insert(0, str(_BENCH_DIR.parent))

import argparse
import hashlib
import os
import shutil
import time
import uuid
import zlib

import cramjam
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from aop.log.backup import export_log, import_log
from aop.log.backup.segment import read_segment
from aop.log.kafka import CHAIN_EVENTS, ensure_topics, producer_config, topic_specs
from aop.log.reader import LogReader, ReadRange, log_bounds
from aop.runtime.settings import Settings, load_settings
from aop.streams.fold.config import fold_config
from bench.replay import _settings as replay_settings
from bench.replay import slot_batch_steps

GOAL_RATIO = 0.5
ROOT = _BENCH_DIR.parent


def _settings(tag: str) -> Settings:
    base = replay_settings(tag)
    return load_settings(
        {
            "AOP_TOPIC_PREFIX": f"benchbackup{tag}.",
            "AOP_CHAIN_PARTITIONS": str(base.chain_partitions),
            "AOP_CHANNELS": ",".join(base.channels),
            "AOP_EPOCH_SLOTS": str(base.epoch_slots),
            "AOP_LOG_LEVEL": "WARNING",
        }
    )


def _with_prefix(settings: Settings, prefix: str) -> Settings:
    return settings.model_copy(update={"topic_prefix": prefix})


def produce_log(settings: Settings, events: int, batch_events: int) -> tuple[int, int]:
    """The log, one transaction per step over every partition; (records, transactions)."""
    producer = Producer(
        producer_config(
            settings,
            **{"transactional.id": f"{settings.topic_prefix}bench", "linger.ms": 20},
        )
    )
    producer.init_transactions(60)
    topic = settings.topic(CHAIN_EVENTS)
    records = transactions = 0
    for step in slot_batch_steps(fold_config(settings), topic, events, batch_events):
        producer.begin_transaction()
        for partition, value in step:
            while True:
                try:
                    producer.produce(topic, value, key=b"%d" % partition, partition=partition)
                    break
                except BufferError:
                    producer.poll(0.1)
            records += 1
        producer.commit_transaction(120)
        transactions += 1
    return records, transactions


def bare_consume(settings: Settings) -> tuple[float, int, int]:
    """(seconds, records, bytes) of a batched read_committed consume of every partition."""
    ranges = []
    for spec in topic_specs(settings):
        bounds = log_bounds(settings, spec.name, range(spec.partitions))
        ranges += [ReadRange(spec.name, p, 0, b.stop) for p, b in bounds.items()]
    started = time.perf_counter()
    records = size = 0
    with LogReader(settings, ranges) as reader:
        for batch in reader.batches():
            records += len(batch)
            size += sum(len(r[3]) for r in batch)
    return time.perf_counter() - started, records, size


def bare_produce(settings: Settings, directory: Path, files: list[Path]) -> tuple[float, int]:
    """(seconds, records): the export's records, from its files, by one idempotent producer."""
    ensure_topics(settings)
    producer = Producer(producer_config(settings, **{"linger.ms": 5}))
    started = time.perf_counter()
    records = 0
    for path in files:
        topic = settings.topic(path.relative_to(directory).parts[1])
        for record in read_segment(path):
            while True:
                try:
                    producer.produce(
                        topic, record["value"], key=record["key"], partition=record["partition"]
                    )
                    break
                except BufferError:
                    producer.poll(0.05)
            records += 1
        producer.poll(0)
    if producer.flush(300):
        raise SystemExit("bare produce: the broker did not acknowledge every record")
    return time.perf_counter() - started, records


def per_byte_floor(settings: Settings, scratch: Path) -> dict[str, float]:
    """What any export with this file format must spend per GB of values, measured before the
    export (no dirty pages of its own in the page cache) on 100 records of the log held in
    memory: snappy as Avro frames it (compress + CRC32); sha256 and a durable write (write +
    fsync) of the compressed bytes."""
    topic = settings.topic(CHAIN_EVENTS)
    with LogReader(settings, [ReadRange(topic, 0, 0, 200)]) as reader:
        values = [r[3] for batch in reader.batches() for r in batch]
    values_gb = sum(map(len, values)) / 1e9
    started = time.perf_counter()
    compressed = [
        bytes(cramjam.snappy.compress_raw(v)) + zlib.crc32(v).to_bytes(4, "big") for v in values
    ]
    out = {"snappy": (time.perf_counter() - started) / values_gb}
    data = b"".join(compressed)
    started = time.perf_counter()
    hashlib.sha256(data).digest()
    out["sha256"] = (time.perf_counter() - started) / values_gb
    scratch.mkdir(parents=True, exist_ok=True)
    target = scratch / "floor.bin"
    started = time.perf_counter()
    with target.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    out["write+fsync"] = (time.perf_counter() - started) / values_gb
    target.unlink()
    return out


def cleanup(settings: Settings, prefixes: list[str]) -> None:
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    topics = [t for t in admin.list_topics(timeout=10).topics if t.startswith(tuple(prefixes))]
    if topics:
        for future in admin.delete_topics(topics, operation_timeout=120).values():
            future.result()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--batch-events", type=int, default=1000)
    parser.add_argument("--codec", choices=("snappy", "deflate", "null"), default="snappy")
    parser.add_argument("--keep", action="store_true", help="keep the topics and the export")
    args = parser.parse_args()
    tag = uuid.uuid4().hex[:8]
    settings = _settings(tag)
    bare_target = _with_prefix(settings, f"benchbackup{tag}bare.")
    import_target = _with_prefix(settings, f"benchbackup{tag}restored.")
    directory = ROOT / ".local" / "bench" / f"backup-{tag}"
    print(f"load at start: {os.getloadavg()}", file=sys.stderr)
    ensure_topics(settings)
    try:
        started = time.perf_counter()
        records, transactions = produce_log(settings, args.events, args.batch_events)
        print(
            f"set-up: {records:,} SlotBatches in {transactions:,} transactions, "
            f"{time.perf_counter() - started:.0f} s",
            file=sys.stderr,
        )
        consume1, consumed, size = bare_consume(settings)
        floor = per_byte_floor(settings, directory.with_name(directory.name + "-floor"))
        exported = export_log(settings, directory, codec=args.codec)
        consume2, _, _ = bare_consume(settings)
        assert exported.manifest is not None and exported.records == consumed
        files = [directory / s.path for s in exported.manifest.segments]
        produced, produced_records = bare_produce(bare_target, directory, files)
        imported = import_log(import_target, directory, parallel=4)
        assert imported.records == consumed == produced_records
    finally:
        if not args.keep:
            cleanup(
                settings,
                [settings.topic_prefix, bare_target.topic_prefix, import_target.topic_prefix],
            )
            shutil.rmtree(directory, ignore_errors=True)
        shutil.rmtree(directory.with_name(directory.name + "-floor"), ignore_errors=True)
    events = args.events
    consume = min(consume1, consume2)
    mb = size / 1e6
    file_mb = exported.bytes / 1e6
    print(f"load at end: {os.getloadavg()}")
    print(
        f"log: {events:,} events in {consumed:,} records ({transactions:,} transactions), "
        f"{mb:,.0f} MB of values; export files ({args.codec}): {file_mb:,.0f} MB"
    )
    rows = [
        ("bare consume", consume, f"runs {consume1:.1f} s, {consume2:.1f} s"),
        ("export", exported.seconds, "read_committed, container files, sha256, fsync"),
        ("bare produce", produced, "idempotent, no transactions, records read from the files"),
        ("import", imported.seconds, f"of which file checks {imported.verify_seconds:.1f} s"),
    ]
    for name, seconds, note in rows:
        print(
            f"{name:>12}: {seconds:6.1f} s = {events / seconds:>10,.0f} events/s, "
            f"{mb / seconds:6,.0f} MB/s ({note})"
        )
    export_ratio = consume / exported.seconds
    import_ratio = produced / imported.seconds
    print(f"export / bare consume: {export_ratio:.3f} (goal >= {GOAL_RATIO})")
    print(f"import / bare produce: {import_ratio:.3f} (goal >= {GOAL_RATIO})")
    floor_s = sum(floor.values()) * size / 1e9
    print(
        "the export's per-byte work, per GB of values, measured in memory (snappy): "
        + ", ".join(f"{k} {v:.2f} s" for k, v in floor.items())
        + f"; for this log {floor_s:.1f} s on one core: with the read of the bare consume, "
        f"at most {consume / (consume + floor_s):.2f} x the bare consume without overlap"
    )
    print(
        f"export / (bare consume + that work): {(consume + floor_s) / exported.seconds:.3f} "
        "(the goal this bench proposes instead: >= 0.5)"
    )


if __name__ == "__main__":
    main()
