"""Benchmark: how fast the listener catches up on a backlog without websocket logs.

Run: .venv/bin/python bench/listener_catchup.py [--events 20000] [--rate 1400] [--repeat 2]
     (Kafka from AOP_KAFKA_BOOTSTRAP, default 127.0.0.1:19092)

Why: after a restart, or while its websocket is down, the listener has no logs cached for
the transactions above its checkpoint and must fetch them over HTTP; at the fault scenarios'
load this catch-up decided whether it ever recovered (RELIABILITY.md).

Set-up (not timed): the fault scenarios' simulated chain (`aop simulate-chain`: 40 ms slots,
finality 4, 4 channels, 400 wallets, every staking transaction multi-event) runs at --rate
until it has emitted --events events, then its workload pauses (empty slots keep coming) and
the backlog finalizes.

Timed, same run, same backlog: a fresh in-process `Listener` (4 partitions, websocket logs
cache of size 0, so every transaction's logs are fetched) on a fresh topic prefix, from start
until its checkpoint passes the backlog's last slot:

* baseline: `AOP_LISTENER_BLOCK_FETCH_MIN_TXS` so high that every transaction is one
  getTransaction (the listener before getBlock);
* getBlock: the default threshold (a slot missing >= 4 transactions is one getBlock).

Prints events/s of each (best of --repeat, runs alternating) and the ratio getBlock / baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import time
import uuid

from aop.runtime.settings import load_settings
from aop.simchain.process import SimChainProcess, spawn_simchain
from aop.streams.listener import Listener

CHAIN = (
    *("--rate", "0", "--wallets", "400", "--slot-ms", "40", "--finality-depth", "4"),
    *("--claim-channels", "", "--seed", "3"),
    *("--channels", "fault:alpha,fault:beta,fault:gamma,fault:delta"),
)
EVERY_TX_ALONE = "1000000"


def build_backlog(sim: SimChainProcess, *, events: int, rate: float) -> tuple[int, int]:
    """Run the workload until `events` were emitted, pause, wait until all is final.

    Returns:
        (events emitted, the backlog's last slot).
    """
    sim.control("sim_setMultiEventRatio", {"ratio": 1.0})
    sim.control("sim_setRate", {"rate": rate})
    while sim.control("sim_status")["counts"].get("events", 0) < events:
        time.sleep(0.2)
    sim.control("sim_pause")
    tip = int(sim.control("sim_status")["tip"])
    while int(sim.control("sim_status")["finalized"]) < tip:
        time.sleep(0.05)
    return int(sim.control("sim_emittedEventIds", {"limit": 1})["total"]), tip


def catch_up_seconds(sim: SimChainProcess, *, last_slot: int, min_txs: str, audit: str) -> float:
    """Seconds a fresh listener takes to write everything up to `last_slot`."""
    settings = load_settings(
        {
            "AOP_KAFKA_BOOTSTRAP": os.environ.get("AOP_KAFKA_BOOTSTRAP", "127.0.0.1:19092"),
            "AOP_TOPIC_PREFIX": f"benchcu{uuid.uuid4().hex[:8]}.",
            "AOP_AUDIT_DIR": audit,
            "AOP_RPC_URL": sim.http_url,
            "AOP_WS_URL": sim.ws_url,
            "AOP_CHAIN_PARTITIONS": "4",
            "AOP_LISTENER_WS_CACHE_SIZE": "0",
            "AOP_LISTENER_BLOCK_FETCH_MIN_TXS": min_txs,
        }
    )

    async def run() -> float:
        listener = Listener(settings)
        stop = asyncio.Event()
        started = time.monotonic()
        task = asyncio.create_task(listener.run(stop))
        while listener.checkpoint is None or listener.checkpoint.last_slot < last_slot:
            if task.done():
                task.result()  # the listener failed: raise its error
            await asyncio.sleep(0.02)
        took = time.monotonic() - started
        stop.set()
        await task
        return took

    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=1400.0)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    audit = tempfile.mkdtemp(prefix="aop-bench-catchup-")
    try:
        with spawn_simchain(list(CHAIN)) as sim:
            events, last_slot = build_backlog(sim, events=args.events, rate=args.rate)
            print(f"backlog: {events:,} events up to slot {last_slot}")
            best: dict[str, float] = {}
            for round_no in range(1, args.repeat + 1):
                for name, min_txs in (("getTransaction", EVERY_TX_ALONE), ("getBlock", "4")):
                    took = catch_up_seconds(sim, last_slot=last_slot, min_txs=min_txs, audit=audit)
                    rate = events / took
                    best[name] = max(best.get(name, 0.0), rate)
                    print(f"round {round_no} {name:>14}: {took:6.2f} s  {rate:8,.0f} events/s")
    finally:
        shutil.rmtree(audit, ignore_errors=True)
    ratio = best["getBlock"] / best["getTransaction"]
    print(
        f"best: getTransaction {best['getTransaction']:,.0f} events/s, "
        f"getBlock {best['getBlock']:,.0f} events/s; ratio {ratio:.1f}"
    )


if __name__ == "__main__":
    main()
