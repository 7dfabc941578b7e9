"""Benchmark: `aop fold` (one Faust worker) against a bare consume loop, real broker.

Run: .venv/bin/python bench/fold.py [--events 400000] [--events-per-batch 500] [--channels 16]
     [--wallets 2000] [--close-wallets 100000] [--repeat 2]   (Kafka from AOP_KAFKA_BOOTSTRAP,
     default 127.0.0.1:19092)

Input: a staking log of --events events (60% opens, 30% closes, 10% claims) over --channels
channels and 4 partitions, --wallets wallets per channel, --events-per-batch events per
SlotBatch (ChainEvents as the listener writes them, with its encoder: ids, signatures, raw
bytes and the decoded `fields` map as one sized block), spanning 4 epochs (so epoch closes and
roots are part of the run). Produced once, before anything is timed.

Measured, same log, same broker, alternating (best of --repeat; the host is shared):
* fold: `aop fold` as a subprocess (fresh app id, memory store, default settings), from the
  moment its consumer group is stable to the moment its `aop_fold_records_total` metric
  counts every record: consume, decode, fold, roots, changelog writes;
* bare (the baseline): a confluent-kafka consume loop over the same records running the same
  policy code (`aop.log.avro` decode + `core.fold.ReferenceFold`), in-memory state, no Faust.

Then the epoch-close-to-root latency: a channel with --close-wallets staked wallets (in
SlotBatches of 5,000 events); once the worker has folded them, the batch that closes the epoch
is produced and the clock runs until the root's last LeafChunk is read from aop.epoch.roots.
The worker's own `aop_fold_epoch_close_seconds` (closing record taken -> root acknowledged) is
printed too, and the pure fold's close time in-process for comparison.

Goals: fold >= 50,000 events/s (aim 100,000), fold / bare >= 0.5, close-to-root <= 2 s.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_END, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from solders.pubkey import Pubkey

from aop.core.events import (
    ChannelEmergencyUnstaked,
    ChannelStaked,
    ChannelUnstaked,
    CumulativeRewardsClaimed,
    Event,
)
from aop.core.fold import ReferenceFold
from aop.core.fold_config import FoldConfig
from aop.log.avro import AvroCodec
from aop.log.chain_event import RoutedEvent
from aop.log.kafka import CHAIN_EVENTS, EPOCH_ROOTS, consumer_config, ensure_topics, producer_config
from aop.log.slot_batch import SlotBatchDecoder, SlotBatchEncoder
from aop.runtime.settings import Settings, load_settings
from aop.streams.fold.config import fold_app_id, fold_config
from aop.streams.fold.worker import tune_gc

ROOT = Path(__file__).resolve().parent.parent
PARTITIONS = 4
GOAL_RATE = 50_000
GOAL_RATIO = 0.5
GOAL_CLOSE_S = 2.0
CODEC = AvroCodec()


def _pubkey(label: str) -> bytes:
    return bytes(Pubkey.new_unique()) if not label else label.encode().ljust(32, b"\0")[:32]


class LogBuilder:
    """ChainEvents and SlotBatches as the listener writes them."""

    def __init__(self, program_id: str) -> None:
        self.program_id = program_id
        self.serial = 0

    def event(self, event: Event, slot: int) -> dict[str, Any]:
        self.serial += 1
        signature = str(Pubkey.new_unique()) + str(Pubkey.new_unique())[:44]
        fields = {}
        for name, value in vars(event).items():
            fields[name] = str(Pubkey(value)) if isinstance(value, bytes) else str(value)
        return {
            "id": f"{signature}:0",
            "signature": signature,
            "slot": slot,
            "block_time": 1_700_000_000 + slot // 2,
            "event_index": 0,
            "program_id": self.program_id,
            "name": event.NAME,
            "data": event.encode(),
            "fields": fields,
        }


def staking_log(
    config: FoldConfig, *, events: int, per_batch: int, wallets: int, seed: int = 7
) -> list[tuple[int, dict[str, Any]]]:
    """(partition, SlotBatch) in append order; partitions advance together; 4 epochs long."""
    rng = random.Random(seed)
    builder = LogBuilder(str(config.program_id))
    rounds = max(1, events // (per_batch * PARTITIONS))
    epoch_slots = config.clock.epoch_slots
    slots_per_batch = max(1, 4 * epoch_slots // rounds)
    wallet_keys = {
        s.config: [bytes(Pubkey.new_unique()) for _ in range(wallets)] for s in config.channels
    }
    open_positions: dict[bytes, list[tuple[bytes, bytes]]] = {s.config: [] for s in config.channels}
    out: list[tuple[int, dict[str, Any]]] = []
    for i in range(rounds):
        first = config.clock.genesis_slot + i * slots_per_batch
        last = first + slots_per_batch - 1
        for partition in range(PARTITIONS):
            specs = config.channels_of(partition)
            batch_events = []
            for _ in range(per_batch if specs else 0):
                spec = rng.choice(specs)
                slot = rng.randint(first, last)
                positions = open_positions[spec.config]
                roll = rng.random()
                if roll < 0.6 or not positions:
                    wallet, nft = rng.choice(wallet_keys[spec.config]), bytes(Pubkey.new_unique())
                    event: Event = ChannelStaked(
                        user=wallet,
                        channel=spec.config,
                        amount=rng.randint(1, 10**12),
                        nft_mint=nft,
                        lock_duration=0,
                        boost_bps=rng.choice([10_000, 12_500, 15_000, 20_000]),
                        timestamp=0,
                    )
                    positions.append((wallet, nft))
                elif roll < 0.9:
                    wallet, nft = positions.pop(rng.randrange(len(positions)))
                    if rng.random() < 0.7:
                        event = ChannelUnstaked(
                            user=wallet, channel=spec.config, amount=1, nft_mint=nft, timestamp=0
                        )
                    else:
                        event = ChannelEmergencyUnstaked(
                            user=wallet,
                            channel=spec.config,
                            staked_amount=1,
                            penalty_amount=0,
                            returned_amount=1,
                            nft_mint=nft,
                            remaining_lock_slots=0,
                            timestamp=0,
                        )
                else:
                    event = CumulativeRewardsClaimed(
                        channel=spec.config,
                        claimer=rng.choice(wallet_keys[spec.config]),
                        user_amount=1,
                        creator_amount=0,
                        cumulative_total=rng.randint(1, 10**9),
                        root_seq=1,
                    )
                batch_events.append(builder.event(event, slot))
            batch_events.sort(key=lambda e: e["slot"])
            batch = {
                "partition": partition,
                "first_slot": first,
                "last_slot": last,
                "events": batch_events,
                "cursor": None,
            }
            out.append((partition, batch))
    return out


def listener_bytes(encoder: SlotBatchEncoder, partition: int, batch: dict[str, Any]) -> bytes:
    """The SlotBatch record as `aop listen` writes it (its encoder: `fields` as sized blocks)."""
    events = [
        RoutedEvent(
            partition,
            e["slot"],
            e["signature"],
            e["event_index"],
            e["name"],
            e["block_time"],
            e["program_id"],
            e["data"],
            e["fields"],
        )
        for e in batch["events"]
    ]
    first, last = batch["first_slot"], batch["last_slot"]
    return encoder.encode(partition, first, last, events, batch["cursor"])


def produce(settings: Settings, batches: list[tuple[int, dict[str, Any]]]) -> None:
    producer = Producer(producer_config(settings))
    topic = settings.topic(CHAIN_EVENTS)
    encoder = SlotBatchEncoder(CODEC, topic=topic)
    for partition, batch in batches:
        value = listener_bytes(encoder, partition, batch)
        while True:
            try:
                producer.produce(topic, value, partition=partition)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    if producer.flush(120) != 0:
        raise RuntimeError("the log could not be produced")


def bare_run(settings: Settings, config: FoldConfig, records: int) -> tuple[float, float, int]:
    """The baseline: consume every record, decode it, fold it.

    Returns:
        (seconds, CPU seconds of this process, events).
    """
    consumer = Consumer(
        consumer_config(settings, f"{settings.topic_prefix}bare-{uuid.uuid4().hex}")
    )
    topic = settings.topic(CHAIN_EVENTS)
    consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    fold = ReferenceFold(config)
    decoder = SlotBatchDecoder(CODEC)
    seen = events = 0
    started = time.perf_counter()
    cpu_started = time.process_time()
    while seen < records:
        for message in consumer.consume(1000, 1.0):
            if message.error() is not None:
                continue
            batch = decoder.decode(message.value())
            fold.feed(message.partition(), message.offset(), batch)
            events += len(batch["events"])
            seen += 1
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    consumer.close()
    return elapsed, cpu, events


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _metric(port: int, name: str) -> float:
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    except OSError:
        return -1.0
    total = 0.0
    found = False
    for line in text.splitlines():
        if line.startswith(name) and (line[len(name)] in " {"):
            total += float(line.rsplit(" ", 1)[1])
            found = True
    return total if found else -1.0


class Worker:
    """An `aop fold` subprocess with its metrics port."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = _free_port()
        self.log = log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "aop.cli", "fold"],
            env={**os.environ, **env, "AOP_METRICS_PORT": str(self.port)},
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def metric(self, name: str) -> float:
        return _metric(self.port, name)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def _wait_stable(settings: Settings, timeout: float = 60) -> None:
    """Wait until the fold worker of `settings` has its partitions."""
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            [future] = admin.describe_consumer_groups([fold_app_id(settings)]).values()
            description = future.result()
            if description.state.name == "STABLE" and description.members:
                return
        except Exception:  # the group does not exist yet
            pass
        time.sleep(0.05)
    raise RuntimeError("the fold worker never joined its group")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fold_run(
    env: dict[str, str], settings: Settings, records: int, events: int, log: Path
) -> tuple[float, dict[str, float]]:
    """Time one `aop fold` worker over the whole log. Returns (seconds, its metrics)."""
    worker = Worker(env, log)
    try:
        _wait_stable(load_settings(env))
        started = time.perf_counter()
        cpu_started = _cpu_seconds(worker.proc.pid)
        while worker.metric("aop_fold_records_total") < records:
            if worker.proc.poll() is not None:
                raise RuntimeError(f"the worker exited with {worker.proc.returncode}; see {log}")
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        cpu = _cpu_seconds(worker.proc.pid) - cpu_started
        stats = {
            name: worker.metric(name)
            for name in (
                "aop_fold_batch_seconds_sum",
                "aop_fold_batch_seconds_count",
                "aop_fold_roots_total",
                "aop_fold_state_value_max_bytes",
            )
        }
        stats["cpu"] = cpu
    finally:
        worker.stop()
    return elapsed, stats


def close_latency(
    base_env: dict[str, str], wallets: int, log: Path
) -> tuple[float, float, float, int]:
    """(close -> last leaf chunk read, worker's close metric, in-process close, leaves)."""
    prefix = f"benchclose{uuid.uuid4().hex[:8]}."
    env = {
        **base_env,
        "AOP_TOPIC_PREFIX": prefix,
        "AOP_CHANNELS": "whale",
        "AOP_FOLD_APP_ID": "close",
    }
    settings = load_settings(env)
    ensure_topics(settings)
    try:
        return _close_latency(env, settings, wallets, log)
    finally:
        _drop_topics(settings.kafka_bootstrap, [prefix])


def _close_latency(
    env: dict[str, str], settings: Settings, wallets: int, log: Path
) -> tuple[float, float, float, int]:
    config = fold_config(settings)
    prefix = settings.topic_prefix
    [spec] = config.channels
    builder = LogBuilder(str(config.program_id))
    clock = config.clock
    per_batch = 5000
    stakes = []
    for i in range(0, wallets, per_batch):
        events = [
            builder.event(
                ChannelStaked(
                    user=bytes(Pubkey.new_unique()),
                    channel=spec.config,
                    amount=10**9 + j,
                    nft_mint=bytes(Pubkey.new_unique()),
                    lock_duration=0,
                    boost_bps=10_000,
                    timestamp=0,
                ),
                clock.genesis_slot + i // per_batch,
            )
            for j in range(min(per_batch, wallets - i))
        ]
        slot = clock.genesis_slot + i // per_batch
        stakes.append(
            (
                spec.partition,
                {
                    "partition": spec.partition,
                    "first_slot": slot,
                    "last_slot": slot,
                    "events": events,
                    "cursor": None,
                },
            )
        )
    closing_slot = clock.last_slot(0)
    closing = {
        "partition": spec.partition,
        "first_slot": stakes[-1][1]["last_slot"] + 1,
        "last_slot": closing_slot,
        "events": [],
        "cursor": None,
    }
    produce(settings, stakes)
    # the same stakes folded in-process: the close alone, without Kafka
    fold = ReferenceFold(config)
    for offset, (partition, batch) in enumerate(stakes):
        fold.feed(partition, offset, batch)
    started = time.perf_counter()
    fold.feed(spec.partition, len(stakes), closing)
    in_process = time.perf_counter() - started

    worker = Worker(env, log)
    roots_topic = settings.topic(EPOCH_ROOTS)
    reader = Consumer(consumer_config(settings, f"{prefix}reader"))
    try:
        _wait_stable(settings)
        while worker.metric("aop_fold_records_total") < len(stakes):
            time.sleep(0.05)
        reader.assign([TopicPartition(roots_topic, spec.partition, OFFSET_END)])
        reader.consume(1, 1.0)  # join the partition's end before the close
        producer = Producer(producer_config(settings))
        topic = settings.topic(CHAIN_EVENTS)
        encoder = SlotBatchEncoder(CODEC, topic=topic)
        producer.produce(
            topic, listener_bytes(encoder, spec.partition, closing), partition=spec.partition
        )
        producer.flush(10)
        sent = time.perf_counter()
        chunk_count = leaves = -1
        chunks_seen = 0
        while chunk_count < 0 or chunks_seen < chunk_count:
            for message in reader.consume(100, 0.5):
                if message.error() is not None:
                    continue
                name, record = CODEC.decode(message.value())
                if name == "EpochRoot":
                    chunk_count, leaves = record["chunk_count"], record["leaf_count"]
                else:
                    chunks_seen += 1
            if time.perf_counter() - sent > 120:
                raise RuntimeError("no root within 120 s")
        latency = time.perf_counter() - sent
        time.sleep(0.3)
        worker_close = worker.metric("aop_fold_epoch_close_seconds_sum")
    finally:
        reader.close()
        worker.stop()
    return latency, worker_close, in_process, leaves


def _drop_topics(bootstrap: str, prefixes: list[str]) -> None:
    """Delete the benchmark's topics (log, roots, changelogs): they hold hundreds of MB."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    names = [t for t in admin.list_topics(timeout=10).topics if t.startswith(tuple(prefixes))]
    if names:
        for future in admin.delete_topics(names, operation_timeout=30).values():
            try:
                future.result()
            except Exception as exc:  # already gone: fine
                print(f"  (could not delete a topic: {exc})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=400_000)
    parser.add_argument("--events-per-batch", type=int, default=500)
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--wallets", type=int, default=2000)
    parser.add_argument("--close-wallets", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--only", choices=["throughput", "close"], default=None)
    args = parser.parse_args()

    logs = ROOT / ".local" / "bench-fold"
    logs.mkdir(parents=True, exist_ok=True)
    prefix = f"benchfold{uuid.uuid4().hex[:8]}."
    try:
        _run(args, prefix, logs)
    finally:
        _drop_topics(os.environ.get("AOP_KAFKA_BOOTSTRAP", "127.0.0.1:19092"), [prefix])


def _run(args: argparse.Namespace, prefix: str, logs: Path) -> None:
    env = {
        "AOP_KAFKA_BOOTSTRAP": os.environ.get("AOP_KAFKA_BOOTSTRAP", "127.0.0.1:19092"),
        "AOP_TOPIC_PREFIX": prefix,
        "AOP_CHAIN_PARTITIONS": str(PARTITIONS),
        "AOP_CHANNELS": ",".join(f"channel{i}" for i in range(args.channels)),
        "AOP_GENESIS_SLOT": "1000",
        "AOP_EPOCH_SLOTS": "9000",
        "AOP_LOG_LEVEL": os.environ.get("AOP_LOG_LEVEL", "WARNING"),
        "AOP_METRICS_HOST": "127.0.0.1",
    }
    settings = load_settings(env)
    ensure_topics(settings)
    config = fold_config(settings)
    tune_gc()  # the bare loop gets the worker's collector settings

    if args.only == "close":
        latency, worker_close, in_process, leaves = close_latency(
            env, args.close_wallets, logs / "close.log"
        )
        print(
            f"close -> last leaf chunk read, {leaves:,} leaves: {latency:.2f} s; worker "
            f"{worker_close:.2f} s; pure fold in-process {in_process:.2f} s"
        )
        return
    started = time.perf_counter()
    batches = staking_log(
        config, events=args.events, per_batch=args.events_per_batch, wallets=args.wallets
    )
    records = len(batches)
    events = sum(len(b["events"]) for _, b in batches)
    produce(settings, batches)
    print(
        f"log: {events:,} events in {records:,} SlotBatches over {args.channels} channels, "
        f"{PARTITIONS} partitions (built and produced in {time.perf_counter() - started:.1f} s)"
    )

    fold_times: list[float] = []
    bare_times: list[float] = []
    fold_cpu: list[float] = []
    bare_cpu: list[float] = []
    stats: dict[str, float] = {}
    for i in range(args.repeat):
        elapsed, cpu, bare_events = bare_run(settings, config, records)
        bare_times.append(elapsed)
        bare_cpu.append(cpu)
        print(
            f"  bare run {i + 1}: {elapsed:.2f} s, {bare_events / elapsed:,.0f} events/s "
            f"(CPU {cpu:.2f} s: {bare_events / cpu:,.0f} events per CPU-second)"
        )
        fold_env = {**env, "AOP_FOLD_APP_ID": f"bench-{i}"}
        elapsed, stats = fold_run(fold_env, settings, records, events, logs / f"fold-{i}.log")
        fold_times.append(elapsed)
        fold_cpu.append(stats["cpu"])
        print(
            f"  fold run {i + 1}: {elapsed:.2f} s, {events / elapsed:,.0f} events/s "
            f"(CPU {stats['cpu']:.2f} s: {events / stats['cpu']:,.0f} events per CPU-second; "
            f"in chunks {stats['aop_fold_batch_seconds_sum']:.2f} s over "
            f"{stats['aop_fold_batch_seconds_count']:.0f} chunks, "
            f"{stats['aop_fold_roots_total']:.0f} roots, largest state value "
            f"{stats['aop_fold_state_value_max_bytes']:,.0f} B)"
        )
    fold_rate = events / min(fold_times)
    bare_rate = events / min(bare_times)
    if args.only == "throughput":
        print(
            f"fold {fold_rate:,.0f} events/s, bare {bare_rate:,.0f}, "
            f"ratio {fold_rate / bare_rate:.2f}"
        )
        return

    latency, worker_close, in_process, leaves = close_latency(
        env, args.close_wallets, logs / "close.log"
    )
    print()
    print(
        f"fold (best of {args.repeat}): {fold_rate:,.0f} events/s   goal >= {GOAL_RATE:,}: "
        f"{'met' if fold_rate >= GOAL_RATE else 'NOT met'}"
    )
    print(f"bare (best of {args.repeat}): {bare_rate:,.0f} events/s")
    print(
        f"fold / bare: {fold_rate / bare_rate:.2f}   goal >= {GOAL_RATIO}: "
        f"{'met' if fold_rate / bare_rate >= GOAL_RATIO else 'NOT met'}"
    )
    print(
        f"close -> last leaf chunk read, {leaves:,} leaves: {latency:.2f} s   goal <= "
        f"{GOAL_CLOSE_S} s: {'met' if latency <= GOAL_CLOSE_S else 'NOT met'}"
    )
    print(
        f"  worker aop_fold_epoch_close_seconds: {worker_close:.2f} s; "
        f"pure fold close in-process: {in_process:.2f} s"
    )


if __name__ == "__main__":
    main()
