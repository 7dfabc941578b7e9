"""Benchmark: signals/s one `aop ingest` process accepts in batches of 500, and p99 latency.

Run: .venv/bin/python bench/ingest.py [--duration 10] [--concurrency 8] [--batch 500]
     [--rate 20000] [--repeat 3] [--seen-ids 1000000]   (Kafka from AOP_KAFKA_BOOTSTRAP,
     default 127.0.0.1:19092)

The ingest (timed): `aop ingest` as its own process (uvicorn, uvloop, httptools), 12
partitions, 12 channels, one token; clients in this process (one asyncio loop, httpx) post
`POST /v1/signals` bodies of `--batch` signals, each body built before the clock starts
(fresh ids, the channels in turn, observed now). A 202 comes only after the brokers
acknowledged the transaction holding the request (acks=all, idempotent, transactional).
Two phases per round, each `--duration` s after a 2 s warm-up:

* saturated: `--concurrency` clients post as fast as they are answered: the most signals/s
  one process accepts (and the latency queueing then adds);
* paced: a request every batch / `--rate` seconds whatever the answers (open loop; the
  goal's rate by default): signals/s and the latency of each request (send to answer); also
  the share the ingest itself answered within 50 ms (its aop_ingest_request_seconds
  histogram) and the CPU it used (/proc).

Baseline, same run, same broker: "bare" produces the same records the ingest wrote for the
saturated phase's requests (one SignalBatch per request and partition, Avro-encoded before
the clock starts) with the ingest's producer settings but no transactions, and flushes at
the end (best of 3 passes): Kafka's share alone. For context, "bare, a transaction per
request" does the same with one transaction per request's records, one at a time (what a
writer without group commit would reach).

Goals (issue #20): >= 20,000 signals/s per process in batches of 500, p99 <= 50 ms, reported
as a ratio to bare. Best of --repeat (the host is shared); medians printed too.

`--seen-ids N` also measures the duplicate memory (`api.ingest.dedupe`) per id for N ids, in
this process, with tracemalloc. `BENCH_INGEST_CMD` replaces `-m aop.cli ingest` (e.g. a
wrapper that times GC pauses).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import statistics
import subprocess
import sys
import time
import tracemalloc
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from tempfile import TemporaryDirectory

import httpx
from confluent_kafka import Producer
from prometheus_client.parser import text_string_to_metric_families
from solders.pubkey import Pubkey

from aop.api.ingest.channels import ServedChannels
from aop.api.ingest.dedupe import SeenIds, seen_key
from aop.api.ingest.tokens import mint_token
from aop.log.avro import AvroCodec
from aop.log.kafka import (
    ATTENTION_SIGNALS,
    ensure_topics,
    producer_config,
    transactional_producer_config,
)
from aop.runtime.settings import Settings, load_settings

GOAL_SIGNALS_PER_S = 20_000
GOAL_P99_S = 0.050
PARTITIONS = 12
CHANNELS = tuple(f"bench:{i}" for i in range(12))
WARM_UP_S = 2.0
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class IngestRun:
    signals: int
    seconds: float
    latencies: list[float]
    #: CPU seconds the ingest process used (paced runs), and its own request histogram:
    #: upper bound (s) -> requests at most that long.
    cpu_s: float = 0.0
    server: dict[float, float] = field(default_factory=dict)

    def server_share_within(self, bound_s: float) -> float:
        """The share of requests the ingest answered within `bound_s` (its histogram)."""
        return self.server[bound_s] / self.server[math.inf]

    def transactions_within(self, bound_s: float) -> float:
        """The share of the writer's transactions done within `bound_s`."""
        return self.server[-bound_s] / self.server[-math.inf]

    @property
    def rate(self) -> float:
        return self.signals / self.seconds

    def quantile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def make_bodies(count: int, batch: int, now_ms: int) -> list[list[dict[str, object]]]:
    """`count` requests of `batch` signals, the channels in turn, ids unique."""
    run = uuid.uuid4().hex[:8]
    return [
        [
            {
                "id": f"{run}-{r}-{i}",
                "channel": CHANNELS[(r * batch + i) % len(CHANNELS)],
                "user": f"viewer{(r * 7919 + i) % 50_000}",
                "kind": "chat",
                "value": 1,
                "observed_at": now_ms,
            }
            for i in range(batch)
        ]
        for r in range(count)
    ]


def start_ingest(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {**os.environ, **env, "AOP_INGEST_PORT": str(port)}
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, *os.environ.get("BENCH_INGEST_CMD", "-m aop.cli ingest").split()],
            env=env,
            stdout=out,
            stderr=out,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"aop ingest did not start: {log.read_text()[-2000:]}")


def server_histogram(url: str) -> dict[float, float]:
    """The ingest's aop_ingest_request_seconds buckets of /v1/signals (cumulative counts), and
    its aop_ingest_transaction_seconds buckets (keys negated)."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "aop_ingest_request_seconds_bucket":
                if sample.labels.get("route") == "/v1/signals":
                    out[float(sample.labels["le"])] = sample.value
            elif sample.name == "aop_ingest_transaction_seconds_bucket":
                out[-float(sample.labels["le"])] = sample.value
    return out


def _difference(after: dict[float, float], before: dict[float, float]) -> dict[float, float]:
    return {bound: count - before.get(bound, 0.0) for bound, count in after.items()}


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process `pid` (/proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def load(
    url: str,
    token: str,
    bodies: list[bytes],
    *,
    concurrency: int,
    duration_s: float,
    rate: float | None = None,
) -> IngestRun:
    """Post `bodies` for `duration_s` after a warm-up: from `concurrency` clients as fast as
    they are answered (closed loop), or with `rate` (signals/s) a request every
    batch / rate seconds whatever the answers (open loop, at most `concurrency` * 8 in
    flight)."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    limits = httpx.Limits(
        max_connections=concurrency * 8, max_keepalive_connections=concurrency * 8
    )
    queue = iter(bodies)
    counted: list[tuple[float, float, int]] = []  # (sent, answered, signals)
    started = time.perf_counter()
    stop_at = started + WARM_UP_S + duration_s

    async def post(http: httpx.AsyncClient) -> None:
        body = next(queue, None)
        if body is None:
            raise SystemExit("ran out of bodies")
        sent = time.perf_counter()
        answer = await http.post(f"{url}/v1/signals", content=body, headers=headers)
        answered = time.perf_counter()
        if answer.status_code != 202:
            raise SystemExit(f"{answer.status_code}: {answer.text[:300]}")
        counted.append((sent, answered, answer.json()["accepted"]))

    async def client(http: httpx.AsyncClient) -> None:
        while time.perf_counter() < stop_at:
            await post(http)

    async with httpx.AsyncClient(limits=limits, timeout=30) as http:
        if rate is None:
            await asyncio.gather(*(client(http) for _ in range(concurrency)))
        else:
            period = len(json.loads(bodies[0])["items"]) / rate
            tasks = []
            at = started
            while at < stop_at:
                await asyncio.sleep(max(0.0, at - time.perf_counter()))
                tasks.append(asyncio.create_task(post(http)))
                at += period
            await asyncio.gather(*tasks)
    window_start = started + WARM_UP_S
    inside = [c for c in counted if c[0] >= window_start]
    end = max(answered for _, answered, _ in inside)
    return IngestRun(
        signals=sum(n for *_, n in inside),
        seconds=end - window_start,
        latencies=[answered - sent for sent, answered, _ in inside],
    )


def batch_records(
    settings: Settings, bodies: list[list[dict[str, object]]]
) -> list[tuple[int, bytes]]:
    """The records the ingest writes for `bodies`: one SignalBatch per (request, partition)."""
    codec = AvroCodec()
    channels = ServedChannels(
        CHANNELS,
        program_id=Pubkey.from_string(settings.program_id),
        mint=Pubkey.from_string(settings.mint),
        partitions=PARTITIONS,
    )
    records = []
    for body in bodies:
        by_partition: dict[int, list[dict[str, object]]] = {}
        for item in body:
            partition = channels.partition_of(str(item["channel"]))
            assert partition is not None
            by_partition.setdefault(partition, []).append(
                {
                    "id": item["id"],
                    "channel": item["channel"],
                    "user": item["user"],
                    "kind": item["kind"],
                    "value": item["value"],
                    "observed_at_ms": item["observed_at"],
                    "epoch": None,
                }
            )
        for partition, signals in by_partition.items():
            value = {
                "partition": partition,
                "source": "bench",
                "request_id": uuid.uuid4().hex,
                "received_at_ms": 0,
                "watermark_ms": 0,
                "signals": signals,
                "bindings": [],
            }
            records.append((partition, codec.encode("SignalBatch", value)))
    return records


def bare_produce(settings: Settings, records: list[tuple[int, bytes]], *, per: int = 0) -> float:
    """Seconds to produce `records` and flush; with `per`, one transaction per `per` records."""
    topic = settings.topic(ATTENTION_SIGNALS)
    if per:
        producer = Producer(transactional_producer_config(settings, f"bench-{uuid.uuid4().hex}"))
        producer.init_transactions(30)
    else:
        producer = Producer(producer_config(settings))
    started = time.perf_counter()
    for at in range(0, len(records), per or len(records)):
        if per:
            producer.begin_transaction()
        for partition, value in records[at : at + (per or len(records))]:
            while True:
                try:
                    producer.produce(topic, value, partition=partition)
                    break
                except BufferError:
                    producer.poll(0.01)
        if per:
            producer.commit_transaction(30)
    producer.flush(60)
    return time.perf_counter() - started


def seen_bytes_per_id(count: int) -> float:
    """Bytes `SeenIds` holds per id (tracemalloc), ids of 36 characters."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    seen = SeenIds()
    now = time.time_ns() // 1_000_000
    for i in range(count):
        seen.add(
            seen_key("collector", str(uuid.UUID(int=i))), i.to_bytes(8, "big"), now + i % 300_000
        )
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(seen) == count
    return (after - before) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rate", type=float, default=GOAL_SIGNALS_PER_S)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seen-ids", type=int, default=0)
    args = parser.parse_args()

    token = mint_token("bench")
    runs: list[IngestRun] = []
    paced_runs: list[IngestRun] = []
    bare_rates: list[float] = []
    txn_rates: list[float] = []
    with TemporaryDirectory() as tmp:
        tokens = Path(tmp) / "tokens"
        tokens.write_text(token.line + "\n")
        tokens.chmod(0o600)
        for round_ in range(args.repeat):
            env = {
                "AOP_TOPIC_PREFIX": f"bench{uuid.uuid4().hex[:8]}.",
                "AOP_CHAIN_PARTITIONS": str(PARTITIONS),
                "AOP_CHANNELS": ",".join(CHANNELS),
                "AOP_INGEST_TOKENS_FILE": str(tokens),
                "AOP_INGEST_RATE_LIMIT": "10000000",
                "AOP_INGEST_RATE_BURST": "10000000",
                "AOP_LOG_LEVEL": "WARNING",
            }
            settings = load_settings(env)
            ensure_topics(settings)
            # enough bodies for 100,000 signals/s saturated, and for the paced phase
            window_s = args.duration + WARM_UP_S
            now_ms = time.time_ns() // 1_000_000
            bodies = make_bodies(int(window_s * 100_000 / args.batch), args.batch, now_ms)
            encoded = [json.dumps({"items": b}).encode() for b in bodies]
            paced_bodies = make_bodies(
                int(window_s * args.rate * 1.1 / args.batch) + 10, args.batch, now_ms
            )
            paced_encoded = [json.dumps({"items": b}).encode() for b in paced_bodies]
            del paced_bodies
            process, url = start_ingest(env, Path(tmp) / f"ingest-{round_}.log")
            try:
                gc.collect()
                run = asyncio.run(
                    load(
                        url,
                        token.token.reveal(),
                        encoded,
                        concurrency=args.concurrency,
                        duration_s=args.duration,
                    )
                )
                gc.collect()
                histogram_before = server_histogram(url)
                cpu_before = process_cpu_s(process.pid)
                paced = asyncio.run(
                    load(
                        url,
                        token.token.reveal(),
                        paced_encoded,
                        concurrency=args.concurrency,
                        duration_s=args.duration,
                        rate=args.rate,
                    )
                )
                paced.cpu_s = process_cpu_s(process.pid) - cpu_before
                paced.server = _difference(server_histogram(url), histogram_before)
            finally:
                process.terminate()
                process.wait(30)
            runs.append(run)
            paced_runs.append(paced)
            used = bodies[: len(run.latencies)]  # as many requests as the window counted
            records = batch_records(settings, used)
            signals = sum(len(b) for b in used)
            gc.collect()
            bare_rates.append(signals / min(bare_produce(settings, records) for _ in range(3)))
            gc.collect()
            per_request = max(1, round(len(records) / len(used)))
            txn_rates.append(signals / bare_produce(settings, records, per=per_request))
            print(
                f"round {round_ + 1}: saturated {run.rate:,.0f} signals/s (p50 "
                f"{run.quantile(0.5) * 1000:.1f} ms, p99 {run.quantile(0.99) * 1000:.1f} ms, "
                f"{len(run.latencies)} requests); at {args.rate:,.0f}/s offered "
                f"{paced.rate:,.0f} signals/s (p50 {paced.quantile(0.5) * 1000:.1f} ms, p99 "
                f"{paced.quantile(0.99) * 1000:.1f} ms; the ingest answered "
                f"{paced.server_share_within(0.05):.1%} within 50 ms itself, "
                f"{paced.transactions_within(0.025):.1%} of its transactions took at most 25 ms, "
                "and it used "
                f"{paced.cpu_s / paced.seconds:.0%} of a core); bare {bare_rates[-1]:,.0f}, "
                f"bare with a transaction per request {txn_rates[-1]:,.0f} signals/s; load "
                f"average {os.getloadavg()[0]:.1f}",
                flush=True,
            )
    best = max(runs, key=lambda r: r.rate)
    paced = min(paced_runs, key=lambda r: r.quantile(0.99))
    bare = max(bare_rates)
    print(f"batch                    {args.batch} signals per request")
    print(
        f"saturated (best of {args.repeat})  {best.rate:,.0f} signals/s with {args.concurrency} "
        f"clients, p50 {best.quantile(0.5) * 1000:.1f} ms, p99 {best.quantile(0.99) * 1000:.1f} ms"
    )
    print(
        f"at {args.rate:,.0f}/s (best p99)   {paced.rate:,.0f} signals/s, p50 "
        f"{paced.quantile(0.5) * 1000:.1f} ms, p99 {paced.quantile(0.99) * 1000:.1f} ms, "
        f"ingest's own: {paced.server_share_within(0.05):.1%} within 50 ms, "
        f"{paced.cpu_s / paced.seconds:.0%} of a core"
    )
    print(f"bare (same records)      {bare:,.0f} signals/s")
    print(f"bare, txn per request    {max(txn_rates):,.0f} signals/s")
    print(f"ratio saturated / bare   {best.rate / bare:.2f}")
    print(
        f"medians of {args.repeat}             saturated "
        f"{statistics.median(r.rate for r in runs):,.0f} signals/s; at {args.rate:,.0f}/s p99 "
        f"{statistics.median(r.quantile(0.99) for r in paced_runs) * 1000:.1f} ms; bare "
        f"{statistics.median(bare_rates):,.0f}"
    )
    rate_ok = best.rate >= GOAL_SIGNALS_PER_S
    p99_ok = paced.quantile(0.99) <= GOAL_P99_S and paced.rate >= 0.98 * args.rate
    print(
        f"goals                    >= {GOAL_SIGNALS_PER_S:,} signals/s: "
        f"{'met' if rate_ok else 'NOT met'}; p99 <= {GOAL_P99_S * 1000:.0f} ms at "
        f"{args.rate:,.0f}/s: {'met' if p99_ok else 'NOT met'}"
    )
    if args.seen_ids:
        print(
            f"duplicate memory         {seen_bytes_per_id(args.seen_ids):.0f} bytes per id "
            f"({args.seen_ids:,} ids)"
        )


if __name__ == "__main__":
    main()
