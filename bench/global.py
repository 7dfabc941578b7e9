"""Benchmark: the global root of 1,000,000 wallets across 8 channels, on the real broker.

Run: .venv/bin/python bench/global.py [--wallets 1000000] [--channels 8] [--repeat 2]

Each wallet is in 1 to 4 channels (uniform), so the channels' cumulative roots hold ~2.5M
entries in all. Seven channels' roots (with the EpochClosed markers of their partitions) go
on aop.epoch.roots first, and `aop combine` takes them in. Then the last channel's root and
the last marker are produced: the clock runs from that produce's flush to the CreateTime of
the global root's last LeafChunk on aop.global.roots (the combiner's producer stamps it; one
machine, one clock).

Baseline, measured in the same run: building the 1,000,000-leaf global-v5 tree alone (the
same parts, `GlobalV5.build_from_parts`), best of --repeat. Ratio = combine latency / tree
build. Memory: the combiner process's peak resident set (VmHWM).

Goals: ratio <= 2.0, combiner peak memory <= 1.5 GiB.
"""

# ruff: noqa: E402  (sys.path is fixed before the imports, see below)
from __future__ import annotations

import argparse
import gc
import os
import random
import struct
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

_BENCH_DIR = Path(__file__).resolve().parent
# `python bench/global.py` puts bench/ first on sys.path; the repository must come first.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH_DIR]
sys.path.insert(0, str(_BENCH_DIR.parent))

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from solders.pubkey import Pubkey

from aop.core.claims import TreeScope, get_global_format
from aop.core.fold_output import LEAF_CHUNK_ENTRIES, EpochClosed
from aop.core.pda import channel_config_address
from aop.log.avro import AvroCodec
from aop.log.kafka import EPOCH_ROOTS, GLOBAL_ROOTS, consumer_config, ensure_topics, producer_config
from aop.runtime.settings import Settings, load_settings

GOAL_RATIO = 2.0
GOAL_PEAK_MIB = 1536
PARTITIONS = 8
CODEC = AvroCodec()


def channel_roots(wallets: int, channels: int, rng: random.Random) -> list[dict[bytes, int]]:
    """Per channel, wallet -> cumulative total; each wallet in 1-4 channels."""
    out: list[dict[bytes, int]] = [{} for _ in range(channels)]
    blob = rng.randbytes(32 * wallets)
    for i in range(wallets):
        wallet = blob[32 * i : 32 * i + 32]
        for c in rng.sample(range(channels), rng.randint(1, 4)):
            out[c][wallet] = rng.randrange(1, 10**12)
    return out


def root_records(
    settings: Settings, index: int, totals: dict[bytes, int]
) -> list[tuple[int, bytes, str, dict[str, Any]]]:
    """The fold's records of channel `index`'s root at epoch 0 (partition = index)."""
    name = f"bench:{index}"
    account = str(
        channel_config_address(
            program_id=Pubkey.from_string(settings.program_id),
            mint=Pubkey.from_string(settings.mint),
            channel=name,
        ).address
    )
    pack = struct.Struct("<32sQ").pack
    dataset = b"".join(pack(w, totals[w]) for w in sorted(totals))
    size = 40
    count = -(-len(totals) // LEAF_CHUNK_ENTRIES)
    total = sum(totals.values())
    header = {
        "channel": name,
        "channel_config": account,
        "program_id": settings.program_id,
        "mint": settings.mint,
        "format": "cumulative-v2",
        "epoch": 0,
        "root_seq": 1,
        "root": bytes(32),  # the combiner takes the dataset; the projector checks trees
        "dataset_hash": bytes(32),
        "leaf_count": len(totals),
        "total": str(total),
        "emission": str(total),
        "chunk_count": count,
        "closed_at_slot": 99,
        "input": [{"partition": index, "first_offset": 0, "last_offset": 0}],
    }
    key = account.encode()
    records = [(index, key, "EpochRoot", header)]
    for c in range(count):
        lo, hi = c * LEAF_CHUNK_ENTRIES, min((c + 1) * LEAF_CHUNK_ENTRIES, len(totals))
        chunk = {
            "channel_config": account,
            "root_seq": 1,
            "chunk_index": c,
            "chunk_count": count,
            "first_leaf": lo,
            "entries": dataset[lo * size : hi * size],
        }
        records.append((index, key, "LeafChunk", chunk))
    marker = EpochClosed(index, 0, 99, 0)
    records.append((index, marker.key, "EpochClosed", marker.record))
    return records


def produce(settings: Settings, records: list[tuple[int, bytes, str, dict[str, Any]]]) -> None:
    topic = settings.topic(EPOCH_ROOTS)
    producer = Producer(producer_config(settings, **{"linger.ms": 20}))
    for partition, key, name, value in records:
        producer.produce(topic, CODEC.encode(name, value), key, partition=partition)
        producer.poll(0)
    assert producer.flush(60) == 0


def last_chunk_time(settings: Settings, chunks: int, timeout: float) -> float:
    """CreateTime (s) of the last LeafChunk of the first global root, read_committed."""
    consumer = Consumer(consumer_config(settings, f"bench-{uuid.uuid4().hex[:8]}"))
    consumer.assign([TopicPartition(settings.topic(GLOBAL_ROOTS), 0, 0)])
    deadline = time.monotonic() + timeout
    expected = None
    seen = 0
    try:
        while time.monotonic() < deadline:
            for message in consumer.consume(100, 0.5):
                if message.error() is not None:
                    continue
                name, record = CODEC.decode(message.value())
                if name == "GlobalRoot":
                    expected = int(record["chunk_count"])
                else:
                    seen += 1
                if expected is not None and seen == expected:
                    return float(message.timestamp()[1]) / 1000.0
    finally:
        consumer.close()
    raise RuntimeError(f"no complete global root within {timeout} s")


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def tree_baseline(settings: Settings, roots: list[dict[bytes, int]], repeat: int) -> float:
    parts: dict[bytes, list[int]] = {}
    for totals in roots:
        for wallet, total in totals.items():
            entry = parts.get(wallet)
            if entry is None:
                parts[wallet] = [total, 0]
            else:
                entry[0] += total
    fmt = get_global_format("global-v5")
    scope = TreeScope(
        Pubkey.from_string(settings.program_id), Pubkey.from_string(settings.mint), None, 1, 0
    )
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        fmt.build_from_parts(scope, parts)
        best = min(best, time.perf_counter() - started)
    return best


def run_once(args: argparse.Namespace, roots: list[dict[bytes, int]]) -> tuple[float, float]:
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    env = {
        "AOP_KAFKA_BOOTSTRAP": args.bootstrap,
        "AOP_TOPIC_PREFIX": prefix,
        "AOP_CHAIN_PARTITIONS": str(PARTITIONS),
        "AOP_METRICS_PORT": "0",
        "AOP_LOG_LEVEL": "WARNING",
    }
    settings = load_settings(env)
    ensure_topics(settings)
    records = [root_records(settings, i, totals) for i, totals in enumerate(roots)]
    for p in range(len(roots), PARTITIONS):  # partitions without a channel close epoch 0 too
        marker = EpochClosed(p, 0, 99, 0)
        records.append([(p, marker.key, "EpochClosed", marker.record)])
    last = records.pop(len(roots) - 1)
    produce(settings, [r for rs in records for r in rs])
    combiner = subprocess.Popen(
        [sys.executable, "-m", "aop.cli", "combine"],
        env={**os.environ, **env},
        cwd=_BENCH_DIR.parent,
    )
    try:
        time.sleep(args.settle)  # the combiner takes the first seven roots in
        produce(settings, last)
        flushed = time.time()
        done = last_chunk_time(settings, 0, timeout=300)
        peak = peak_rss_mib(combiner.pid)
    finally:
        combiner.terminate()
        combiner.wait(30)
        admin = AdminClient({"bootstrap.servers": args.bootstrap})
        names = [t for t in admin.list_topics(timeout=10).topics if t.startswith(prefix)]
        if names:
            admin.delete_topics(names)
    return done - flushed, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wallets", type=int, default=1_000_000)
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--settle", type=float, default=30.0, help="seconds before the last root")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--bootstrap", default=os.environ.get("AOP_KAFKA_BOOTSTRAP", "127.0.0.1:19092")
    )
    args = parser.parse_args()
    if args.channels > PARTITIONS:
        parser.error(f"--channels must be <= {PARTITIONS}")
    rng = random.Random(args.seed)
    roots = channel_roots(args.wallets, args.channels, rng)
    entries = sum(len(r) for r in roots)
    print(f"{args.wallets:,} wallets, {args.channels} channels, {entries:,} channel entries")
    latencies, peaks = [], []
    for _ in range(args.repeat):
        latency, peak = run_once(args, roots)
        latencies.append(latency)
        peaks.append(peak)
        print(
            f"  combine: last root on the log -> last global chunk on the log {latency:.2f} s, "
            f"combiner peak RSS {peak:.0f} MiB"
        )
    build = tree_baseline(load_settings({}), roots, args.repeat)
    best = min(latencies)
    ratio = best / build
    print(f"tree build alone (1 global-v5 tree of {args.wallets:,} leaves, best): {build:.2f} s")
    print(f"ratio (best combine / tree build): {ratio:.2f} (goal <= {GOAL_RATIO})")
    print(f"combiner peak RSS (max): {max(peaks):.0f} MiB (goal <= {GOAL_PEAK_MIB})")
    ok = ratio <= GOAL_RATIO and max(peaks) <= GOAL_PEAK_MIB
    print("goals met" if ok else "goals NOT met")


if __name__ == "__main__":
    main()
