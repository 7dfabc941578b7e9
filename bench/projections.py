# ruff: noqa: E402  (sys.path is fixed before the imports, see below)
"""Benchmark: EpochRoot on the log -> committed rows in PostgreSQL, for a 1,000,000-wallet root.

Run: .venv/bin/python bench/projections.py [--wallets 1000000] [--repeat 2]
     (Kafka and PostgreSQL from AOP_KAFKA_BOOTSTRAP / AOP_DATABASE_URL, default the local ones)

Pipeline (timed): a real `aop project` process is running and caught up (a warm-up root went
through it); the bench produces the EpochRoot and its LeafChunks (20,000 entries each, as the
fold chunks them) and measures from the broker's acknowledgement of the EpochRoot to the moment
the `roots` row is visible (it commits with every leaf, level, outbox row and offset in one
transaction). Each repeat is a new root_seq of the same channel (every wallet, new leaves).

Baselines, same run, same data, same server:
* build: `ClaimFormat.build` over the same dataset (the tree rebuild the projector must do);
* copy: the same binary COPY payload of the 1M (root_id, leaf_index, wallet, amount) rows
  (encoding included) into a scratch table with the same two indexes as `leaves` (the
  database's share).

Goal: <= 15 s per 1M-wallet root. Prints rows/s (leaves, and every row written).
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is named like the `projections` package it measures: run as a script, its own
# directory would come first on sys.path and shadow the package. Put the repository first.
_BENCH_DIR = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH_DIR]
sys.path.insert(0, str(_BENCH_DIR.parent))

import argparse
import json
import os
import random
import signal
import subprocess
import time
import uuid
from typing import Any

import psycopg
from confluent_kafka import Producer
from solders.pubkey import Pubkey

from aop.core.claims import TreeScope, get_claim_format
from aop.core.program_ids import DEFAULT_PROGRAM_ID
from aop.log.avro import AvroCodec
from aop.log.kafka import EPOCH_ROOTS, ensure_topics, producer_config
from aop.projections._copy import leaves_copy_payload
from aop.projections.db import libpq_options, libpq_url, upgrade
from aop.runtime.settings import Settings, load_settings
from tests.support.sample_roots import build_sample_root

GOAL_S = 15.0
ROOT = Path(__file__).resolve().parent.parent
CHANNEL = "bench_projections"


def _settings() -> Settings:
    tag = uuid.uuid4().hex[:10]
    return load_settings(
        {
            "AOP_TOPIC_PREFIX": f"bench{tag}.",
            "AOP_DATABASE_SCHEMA": f"bench_{tag}",
            "AOP_CHAIN_PARTITIONS": "4",
            "AOP_PROJECTION_CLAIMS": "false",
            "AOP_PROJECTION_POLL_TIMEOUT_S": "0.1",
        }
    )


def _env(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "AOP_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "AOP_DATABASE_URL": settings.database_url,
        "AOP_DATABASE_SCHEMA": settings.database_schema,
        "AOP_TOPIC_PREFIX": settings.topic_prefix,
        "AOP_CHAIN_PARTITIONS": str(settings.chain_partitions),
        "AOP_PROJECTION_CLAIMS": "false",
        "AOP_PROJECTION_POLL_TIMEOUT_S": "0.1",
        "AOP_METRICS_PORT": "0",
        "AOP_LOG_LEVEL": "INFO",
    }


def _produce(settings: Settings, records: list[tuple[str, dict[str, Any]]]) -> float:
    """Produce the records in order; returns the monotonic time the EpochRoot was acked."""
    codec = AvroCodec()
    producer = Producer(producer_config(settings))
    acked: list[float] = []
    topic = settings.topic(EPOCH_ROOTS)
    for i, (record_type, value) in enumerate(records):
        producer.produce(
            topic,
            codec.encode(record_type, value),
            key=str(value["channel_config"]).encode(),
            partition=1,
            on_delivery=(lambda err, _m: acked.append(time.monotonic())) if i == 0 else None,
        )
        producer.poll(0)
    if producer.flush(60):
        raise SystemExit("records not acknowledged by the broker")
    return acked[0]


def _wait_root(conn: psycopg.Connection[Any], root_seq: int, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = conn.execute("SELECT 1 FROM roots WHERE root_seq = %s", (root_seq,)).fetchone()
        if row:
            return time.monotonic()
        time.sleep(0.01)
    raise SystemExit(f"root_seq {root_seq} not committed within {timeout} s")


def _copy_floor(settings: Settings, wallets: list[bytes], amounts: list[int]) -> float:
    with psycopg.connect(libpq_url(settings), options=libpq_options(settings)) as conn:
        conn.execute(
            "CREATE TABLE copy_floor (root_id bigint, leaf_index bigint, wallet bytea, "
            "amount numeric(20), PRIMARY KEY (root_id, leaf_index))"
        )
        conn.execute("CREATE UNIQUE INDEX ON copy_floor (root_id, wallet)")
        conn.commit()
        start = time.perf_counter()
        payload = leaves_copy_payload(1, list(zip(wallets, amounts, strict=True)))
        with (
            conn.cursor() as cursor,
            cursor.copy("COPY copy_floor FROM STDIN (FORMAT BINARY)") as copy,
        ):
            copy.write(payload)
        conn.commit()
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wallets", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()

    settings = _settings()
    upgrade(settings)
    ensure_topics(settings)
    mint = Pubkey.from_string(settings.mint)
    rng = random.Random(7)
    wallets = [rng.randbytes(32) for _ in range(args.wallets)]

    def root_for(seq: int, count: int) -> Any:
        amounts = {w: 1_000_000 * seq + i for i, w in enumerate(wallets[:count])}
        return build_sample_root(
            channel=CHANNEL,
            root_seq=seq,
            epoch=seq,
            amounts=amounts,
            program_id=DEFAULT_PROGRAM_ID,
            mint=mint,
        )

    process = subprocess.Popen(
        [sys.executable, "-m", "aop.cli", "project"],
        cwd=ROOT,
        env=_env(settings),
        stderr=subprocess.PIPE,
        text=True,
    )
    results: list[tuple[float, float]] = []
    try:
        with psycopg.connect(
            libpq_url(settings), options=libpq_options(settings), autocommit=True
        ) as conn:
            _produce(settings, root_for(1, 1000).records())
            _wait_root(conn, 1, 60)
            for seq in range(2, 2 + args.repeat):
                sample = root_for(seq, args.wallets)
                records = sample.records()
                on_log = _produce(settings, records)
                committed = _wait_root(conn, seq, 300)
                results.append((committed - on_log, len(sample.tree.levels)))
                del sample, records
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    internal = [
        (entry["verify_seconds"], entry["seconds"])
        for entry in (json.loads(line) for line in stderr.splitlines() if line.startswith("{"))
        if entry.get("msg") == "root projected"
    ][1:]

    fmt = get_claim_format("cumulative-v2")
    scope = TreeScope(DEFAULT_PROGRAM_ID, mint, CHANNEL, 99, 99)
    inputs = [(w, i + 1, 0) for i, w in enumerate(wallets)]
    start = time.perf_counter()
    tree = fmt.build(scope, inputs)  # type: ignore[arg-type]
    build_s = time.perf_counter() - start
    copy_s = _copy_floor(settings, list(tree.wallets), list(tree.amounts))
    with psycopg.connect(libpq_url(settings), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{settings.database_schema}" CASCADE')

    best, levels = min(results)
    rows = args.wallets + levels + 3  # leaves, tree levels, root + channel + outbox rows
    floor = build_s + copy_s
    verdict = "ok" if best <= GOAL_S else "MISSED"
    print(f"wallets                   {args.wallets}")
    print(f"on log -> committed       {', '.join(f'{s:.2f}' for s, _ in results)} s")
    print(f"best of {args.repeat}                 {best:.2f} s  goal <= {GOAL_S:.0f} s: {verdict}")
    print(
        "projector verify / total  "
        + ", ".join(f"{v:.2f} / {t:.2f}" for v, t in internal)
        + " s (from its log)"
    )
    print(f"leaves/s                  {args.wallets / best:,.0f}")
    print(f"rows/s (all tables)       {rows / best:,.0f}")
    print(f"baseline build            {build_s:.2f} s (ClaimFormat.build, same dataset)")
    print(f"baseline COPY             {copy_s:.2f} s (1M rows, same indexes)")
    print(f"pipeline / (build + COPY) {best / floor:.2f}x")


if __name__ == "__main__":
    main()
