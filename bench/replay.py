# ruff: noqa: E402  (sys.path is fixed before the imports, see below)
"""Benchmark: full replay of a 5,000,000-event log (`aop replay --all`), vs a bare consume.

Run: .venv/bin/python bench/replay.py [--events 5000000] [--batch-events 1000] [--keep]
     (Kafka and PostgreSQL from AOP_KAFKA_BOOTSTRAP / AOP_DATABASE_URL, default the local ones)

Set-up (not timed): a fresh topic prefix and schema; SlotBatches of `--batch-events` events
written as the listener writes them (its hand-written Avro encoder, `fields` text included;
~620 bytes per event), every partition advancing together, over 48 channels and 20,000
wallets: 55% ChannelStaked, 30% unstakes (a fifth emergency), 15% CumulativeRewardsClaimed.
Epochs close every ~40 SlotBatches per partition (10 epochs per channel). A warm-up replay
collects the roots; they are written to Postgres with the projections writer.

Timed, same run, same topic (page cache warm for both):
* bare: a `consume(num_messages=N)` loop over every partition up to its end (the replay's own
  reader: assign + seek, no commits), bytes untouched — the floor;
* replay: `run_replay` over every channel, mode all — read, decode, fold (reference fold),
  compare every root with Postgres (fields, every leaf, every tree level);
then each stage's cost per event, measured on an in-memory sample: hand-written decoder,
fastavro decoder (for comparison), the fold alone, and a profile of the fold.

Goal: >= 100,000 events/s and >= 0.5 x the bare consume. Prints events/s and the ratio.
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/projections.py is named like the `projections` package: run as a script, this
# directory would come first on sys.path and shadow it. Put the repository first.
_BENCH_DIR = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH_DIR]
sys.path.insert(0, str(_BENCH_DIR.parent))

import argparse
import cProfile
import pstats
import random
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import psycopg
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from psycopg import sql
from sha3 import keccak_256
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
from aop.core.fold_output import RootOutput
from aop.log.avro import AvroCodec
from aop.log.chain_event import RoutedEvent
from aop.log.kafka import CHAIN_EVENTS, ensure_topics, producer_config
from aop.log.reader import LogReader, ReadRange, log_bounds
from aop.log.slot_batch import SlotBatchDecoder, SlotBatchEncoder
from aop.projections.dataset import decode_root
from aop.projections.db import engine_for, libpq_url, upgrade
from aop.projections.writer import ProjectionWriter
from aop.replay.chain import ChainReader
from aop.replay.engine import ChannelTarget, gc_tuned, replay_partition
from aop.replay.run import channel_targets, run_replay
from aop.replay.stored_roots import RootStore
from aop.runtime.settings import Settings, load_settings
from aop.streams.fold.config import fold_config

GOAL_EVENTS_S = 100_000
GOAL_RATIO = 0.5
CHANNELS = 48
PARTITIONS = 12
SLOTS_PER_BATCH = 10
EPOCH_SLOTS = 400
SAMPLE_RECORDS = 300


def _settings(tag: str) -> Settings:
    names = ",".join(f"bench:ch{i:02d}" for i in range(CHANNELS))
    return load_settings(
        {
            "AOP_TOPIC_PREFIX": f"benchreplay{tag}.",
            "AOP_DATABASE_SCHEMA": f"bench_replay_{tag}",
            "AOP_CHAIN_PARTITIONS": str(PARTITIONS),
            "AOP_CHANNELS": names,
            "AOP_GENESIS_SLOT": "0",
            "AOP_EPOCH_SLOTS": str(EPOCH_SLOTS),
            "AOP_LOG_LEVEL": "WARNING",
        }
    )


class _Workload:
    """Realistic program events for the channels of one partition (fields as the listener
    renders them: pubkeys base58, integers in decimal)."""

    def __init__(self, config: FoldConfig, wallets: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.program_id = str(config.program_id)
        self.wallets = [self.rng.randbytes(32) for _ in range(wallets)]
        self.text = {w: str(Pubkey.from_bytes(w)) for w in self.wallets}
        for spec in config.channels:
            self.text[spec.config] = str(Pubkey.from_bytes(spec.config))
        self.open: dict[bytes, list[tuple[bytes, bytes]]] = {s.config: [] for s in config.channels}
        self.serial = 0
        self.prefix = "5" * 78

    def _b58(self, key: bytes) -> str:
        found = self.text.get(key)
        return found if found is not None else str(Pubkey.from_bytes(key))

    def event(self, partition: int, channel: bytes, slot: int) -> RoutedEvent:
        rng = self.rng
        self.serial += 1
        roll = rng.random()
        positions = self.open[channel]
        event: Event
        if roll < 0.55 or not positions:
            wallet, nft = rng.choice(self.wallets), rng.randbytes(32)
            event = ChannelStaked(
                user=wallet,
                channel=channel,
                amount=rng.randint(1, 10**12),
                nft_mint=nft,
                lock_duration=0,
                boost_bps=rng.choice((10_000, 12_500, 15_000, 20_000)),
                timestamp=1_700_000_000 + slot,
            )
            positions.append((wallet, nft))
        elif roll < 0.85:
            wallet, nft = positions.pop(rng.randrange(len(positions)))
            if rng.random() < 0.8:
                event = ChannelUnstaked(
                    user=wallet, channel=channel, amount=0, nft_mint=nft, timestamp=0
                )
            else:
                event = ChannelEmergencyUnstaked(
                    user=wallet,
                    channel=channel,
                    staked_amount=0,
                    penalty_amount=0,
                    returned_amount=0,
                    nft_mint=nft,
                    remaining_lock_slots=0,
                    timestamp=0,
                )
        else:
            event = CumulativeRewardsClaimed(
                channel=channel,
                claimer=rng.choice(self.wallets),
                user_amount=0,
                creator_amount=0,
                cumulative_total=rng.randint(0, 10**9),
                root_seq=1,
            )
        fields = {
            name: self._b58(value) if isinstance(value, bytes) else str(value)
            for name, value in vars(event).items()
        }
        return RoutedEvent(
            partition,
            slot,
            f"{self.prefix}{self.serial:010d}",
            0,
            event.NAME,
            1_700_000_000 + slot // 2,
            self.program_id,
            event.encode(),
            fields,
        )


def slot_batch_steps(
    config: FoldConfig, topic: str, events: int, batch_events: int
) -> Iterator[list[tuple[int, bytes]]]:
    """The log, step by step: per step (a range of SLOTS_PER_BATCH slots) one encoded
    SlotBatch per partition, `batch_events` events each on partitions with channels, every
    partition advancing together (as the listener writes a range), `events` in all."""
    encoder = SlotBatchEncoder(AvroCodec(), topic=topic)
    workload = _Workload(config, wallets=20_000, seed=1)
    busy = [p for p in range(config.partitions) if config.channels_of(p)]
    steps = -(-events // (batch_events * len(busy)))
    written = 0
    for step in range(steps):
        first, last = step * SLOTS_PER_BATCH, (step + 1) * SLOTS_PER_BATCH - 1
        out = []
        for partition in range(config.partitions):
            specs = config.channels_of(partition)
            batch = []
            if specs and written < events:
                n = min(batch_events, events - written)
                slots = sorted(workload.rng.randint(first, last) for _ in range(n))
                batch = [
                    workload.event(partition, workload.rng.choice(specs).config, s) for s in slots
                ]
                written += n
            out.append((partition, encoder.encode(partition, first, last, batch, None)))
        yield out
        if step % 50 == 0:
            print(f"  produced {written:,} events", file=sys.stderr, end="\r")
    print(file=sys.stderr)


def produce_log(settings: Settings, config: FoldConfig, events: int, batch_events: int) -> int:
    """Write the log; returns the number of SlotBatch records."""
    producer = Producer(producer_config(settings, **{"linger.ms": 20, "batch.size": 4_000_000}))
    topic = settings.topic(CHAIN_EVENTS)
    records = 0
    for step in slot_batch_steps(config, topic, events, batch_events):
        for partition, value in step:
            while True:
                try:
                    producer.produce(topic, value, key=b"p%d" % partition, partition=partition)
                    break
                except BufferError:
                    producer.poll(0.1)
            records += 1
        producer.poll(0)
    if producer.flush(120):
        raise SystemExit("the broker did not acknowledge every record")
    return records


def warm_up(settings: Settings, config: FoldConfig) -> list[RootOutput]:
    """A replay that keeps every root (to store them), and warms the page cache."""
    roots: list[RootOutput] = []
    targets = channel_targets(config, list(config.channels), mode="all")
    by_partition: dict[int, list[ChannelTarget]] = {}
    for target in targets:
        by_partition.setdefault(target.spec.partition, []).append(target)
    for partition, group in sorted(by_partition.items()):
        with gc_tuned():
            replay_partition(
                settings, config, partition, group, on_root=lambda _t, r, _o: roots.append(r)
            )
    return roots


def store_roots(settings: Settings, roots: list[RootOutput]) -> int:
    writer = ProjectionWriter(engine_for(settings), consumer="bench")
    leaves = 0
    for i, root in enumerate(roots):
        decoded = decode_root(root.epoch_root, [c["entries"] for c in root.chunks])
        writer.write_root(decoded, source_partition=root.partition, source_offset=i, offsets=[])
        leaves += len(decoded.entries)
    return leaves


def bare_consume(settings: Settings) -> tuple[float, int, int]:
    """(seconds, records, bytes) of a batched consume of every partition to its end."""
    topic = settings.topic(CHAIN_EVENTS)
    bounds = log_bounds(settings, topic, range(settings.chain_partitions))
    ranges = [ReadRange(topic, p, 0, b.stop) for p, b in bounds.items()]
    started = time.perf_counter()
    records = size = 0
    with LogReader(settings, ranges) as reader:
        for batch in reader.batches():
            records += len(batch)
            size += sum(len(r[3]) for r in batch)
    return time.perf_counter() - started, records, size


def sample(settings: Settings, partition: int) -> list[bytes]:
    topic = settings.topic(CHAIN_EVENTS)
    out: list[bytes] = []
    with LogReader(settings, [ReadRange(topic, partition, 0, SAMPLE_RECORDS)]) as reader:
        for batch in reader.batches():
            out.extend(r[3] for r in batch)
    return out


def stage_costs(settings: Settings, config: FoldConfig) -> dict[str, Any]:
    """µs per event of each stage, on records held in memory (one partition's first ones)."""
    partition = next(p for p in range(config.partitions) if config.channels_of(p))
    values = sample(settings, partition)
    decoder, codec = SlotBatchDecoder(), AvroCodec()
    started = time.perf_counter()
    batches = [decoder.decode(v) for v in values]
    hand = time.perf_counter() - started
    events = sum(len(b["events"]) for b in batches)
    started = time.perf_counter()
    for v in values:
        codec.decode(v)
    fast = time.perf_counter() - started
    fold = ReferenceFold(config)
    started = time.perf_counter()
    for offset, batch in enumerate(batches):
        fold.feed(partition, offset, batch)
    default_gc = time.perf_counter() - started
    fold = ReferenceFold(config)
    builds = 0.0
    with gc_tuned():
        started = time.perf_counter()
        for offset, batch in enumerate(batches):
            for root in fold.feed(partition, offset, batch).roots:
                builds += root.build_seconds
        folded = time.perf_counter() - started
    profiler = cProfile.Profile()
    fold = ReferenceFold(config)
    with gc_tuned():
        profiler.enable()
        for offset, batch in enumerate(batches):
            fold.feed(partition, offset, batch)
        profiler.disable()
    stats = pstats.Stats(profiler)
    own = stats.stats  # type: ignore[attr-defined]  # {func: (cc, nc, own time, cum, callers)}
    total = sum(v[2] for v in own.values())
    top = sorted(own.items(), key=lambda kv: -kv[1][2])[:8]
    profile = [(f"{Path(k[0]).name}:{k[2]}", round(100 * v[2] / total, 1)) for k, v in top]
    per = 1e6 / events
    return {
        "events": events,
        "hand_decode_us": hand * per,
        "fastavro_decode_us": fast * per,
        "fold_us": folded * per,
        "fold_default_gc_us": default_gc * per,
        "fold_tree_build_us": builds * per,
        "fold_profile": profile,
    }


def keccak_permutations(roots: list[RootOutput]) -> int:
    """Keccak-f[1600] permutations the replay's trees need at the least, by any implementation.

    Every node of every tree is one hash of at most 136 bytes (a 131-byte cumulative-v2 leaf
    preimage, a 64-byte pair, ring-v0's shorter leaves): one permutation each. The dataset hash
    absorbs its dataset 136 bytes per permutation.
    """
    nodes = sum(len(level) // 32 for root in roots for level in root.tree.levels)
    dataset = sum(len(root.tree.dataset) // 136 + 1 for root in roots)
    return nodes + dataset


def permutation_seconds() -> float:
    """Seconds per Keccak-f[1600] permutation in C on this host, now: a long message absorbed
    136 bytes per permutation, so no per-call Python cost enters it. Best of three."""
    blocks = 100_000
    data = b"\x5a" * (136 * blocks)
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        keccak_256(data).digest()
        best = min(best, time.perf_counter() - started)
    return best / blocks


def cleanup(settings: Settings) -> None:
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    topics = [
        t for t in admin.list_topics(timeout=10).topics if t.startswith(settings.topic_prefix)
    ]
    if topics:
        for future in admin.delete_topics(topics, operation_timeout=60).values():
            future.result()
    with psycopg.connect(libpq_url(settings), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                sql.Identifier(settings.database_schema)
            )
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--batch-events", type=int, default=1000)
    parser.add_argument(
        "--workers",
        type=lambda text: [int(x) for x in text.split(",")],
        default=[1, 2],
        help="process counts to time, comma-separated (default 1,2)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the topics and schema")
    args = parser.parse_args()
    settings = _settings(uuid.uuid4().hex[:8])
    config = fold_config(settings)
    ensure_topics(settings)
    upgrade(settings)
    try:
        print(f"set-up: producing {args.events:,} events ...", file=sys.stderr)
        started = time.perf_counter()
        records = produce_log(settings, config, args.events, args.batch_events)
        produced = time.perf_counter() - started
        started = time.perf_counter()
        roots = warm_up(settings, config)
        warm = time.perf_counter() - started
        leaves = store_roots(settings, roots)
        permutations = keccak_permutations(roots)
        print(
            f"set-up: {records:,} SlotBatches in {produced:.0f} s; warm-up replay {warm:.0f} s; "
            f"{len(roots)} roots ({leaves:,} leaves) stored",
            file=sys.stderr,
        )

        bare1, bare_records, size = bare_consume(settings)
        targets = channel_targets(config, list(config.channels), mode="all")
        chain = ChainReader(settings.rpc_url, mode="off", commitment="finalized", timeout=1)
        engine = engine_for(settings)
        timed: dict[int, float] = {}
        report = None
        for workers in args.workers:
            started = time.perf_counter()
            result = run_replay(
                settings,
                config,
                targets,
                store=RootStore(engine),
                chain=chain,
                explain=False,
                workers=workers,
            )
            timed[workers] = time.perf_counter() - started
            if not result.ok or result.roots_checked != len(roots):
                raise SystemExit(f"the replay did not match: {result.mismatches} mismatches")
            if workers == 1 or report is None:
                report = result
        bare2, _, _ = bare_consume(settings)
        bare = min(bare1, bare2)
        reads = {id(c.read): c.read for c in report.channels if c.read is not None}.values()
        events = sum(r.events for r in reads)
        times: Counter[str] = Counter()
        for r in reads:
            for name in ("decode", "fold", "tree_build", "compare"):
                times[name] += getattr(r.times, name)
        costs = stage_costs(settings, config)
        per_permutation = permutation_seconds()
    finally:
        if not args.keep:
            cleanup(settings)
    bare_rate = events / bare
    first = 1 if 1 in timed else args.workers[0]
    per = 1e6 / events
    read = timed[first] - times["decode"] - times["fold"] - times["compare"]
    print(f"log: {events:,} events in {bare_records:,} SlotBatches, {size / 1e6:,.0f} MB")
    print(
        f"bare batched consume: {bare:.1f} s = {bare_rate:,.0f} events/s "
        f"({size / 1e6 / bare:,.0f} MB/s; runs {bare1:.1f} s, {bare2:.1f} s)"
    )
    for workers, seconds in timed.items():
        rate = events / seconds
        print(
            f"full replay, {workers} process(es) ({report.roots_checked} roots compared, MATCH): "
            f"{seconds:.1f} s = {rate:,.0f} events/s; ratio to bare consume {rate / bare_rate:.3f}"
        )
    rate = max(events / s for s in timed.values())
    print(
        f"replay time per event ({first} process): "
        f"read {read * per:.2f} us, decode {times['decode'] * per:.2f} us, "
        f"fold {times['fold'] * per:.2f} us (of which tree builds "
        f"{times['tree_build'] * per:.2f} us), compare {times['compare'] * per:.2f} us"
    )
    print(
        f"in-memory sample ({costs['events']:,} events): hand decoder "
        f"{costs['hand_decode_us']:.2f} us/event, fastavro {costs['fastavro_decode_us']:.2f} "
        f"us/event, fold {costs['fold_us']:.2f} us/event (tree builds "
        f"{costs['fold_tree_build_us']:.2f}; with Python's default GC thresholds "
        f"{costs['fold_default_gc_us']:.2f})"
    )
    print("fold profile (own time of the top functions, share of the profiled fold):")
    for name, share in costs["fold_profile"]:
        print(f"  {share:5.1f}%  {name}")
    hashing = permutations * per_permutation
    print(
        f"hashing floor: the trees need {permutations:,} Keccak-f[1600] permutations "
        f"({permutations / events:.2f} per event) at {per_permutation * 1e9:.0f} ns each in C "
        f"= {hashing:.1f} s of one core ({hashing * per:.2f} us/event), vs {bare:.1f} s for the "
        f"bare consume: no implementation on this host exceeds a ratio of "
        f"{bare / hashing:.2f} per core used, before decoding, folding or comparing anything"
    )
    met = rate >= GOAL_EVENTS_S and rate / bare_rate >= GOAL_RATIO
    print(
        f"goal >= {GOAL_EVENTS_S:,} events/s and ratio >= {GOAL_RATIO}: "
        f"{'met' if met else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
