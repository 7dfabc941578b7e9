"""Benchmark: the simulated chain's resident memory over a long run, bounded against unbounded.

Run: .venv/bin/python bench/simchain_memory.py [--rate 1300] [--slot-ms 100]
     [--seconds 480] [--warmup 210] [--baseline-seconds 90] [--limit-mib-per-min 2]

Why: the simulator kept every transaction, index entry, account and wallet it ever made, so
a long run (the issue's day of traffic) ran out of memory before it showed anything.

Each run is a real `aop simulate-chain` process (its slot timer, workload, RPC and pubsub
server; no client) at `--rate` events/s asked, sampled every `--every` seconds: RSS (from
/proc, as the soak samples services), CPU time (utime + stime) and the events it finalized.

* baseline, same run: the chain with nothing pruned and no wallet ever leaving
  (`--retain-slots 1000000000 --max-wallets 1000000`, as before the window), for
  `--baseline-seconds` (its memory grows all along: a shorter run shows the slope);
* bounded: the defaults (a window of 150 s of slots, at most 4,096 wallets), for `--seconds`;
  its slope is fitted after `--warmup` seconds (once the window is full).

Prints, for each: events/s achieved, CPU µs per event, RSS at the start and end of the fitted
window, its least-squares slope in MiB/min; then the ratios bounded / baseline (slope and CPU
per event) and whether the bounded slope is within `--limit-mib-per-min`. Exit code 1 when
it is not.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from aop.simchain.process import SimChainProcess, spawn_simchain
from tests.soak.memory import MemoryLog, MemoryTrend

UNBOUNDED = ("--retain-slots", "1000000000", "--max-wallets", "1000000")
#: the soak's chain shape: 6 channels, 5,000 wallets at genesis; no self-published claims.
CHAIN = (*("--channels", "6", "--wallets", "5000", "--claim-channels", "", "--seed", "17"),)


@dataclass(frozen=True)
class Run:
    """What one simulator run did."""

    name: str
    seconds: float
    events: int
    cpu_s: float
    trend: MemoryTrend

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds

    @property
    def cpu_us_per_event(self) -> float:
        return 1e6 * self.cpu_s / max(self.events, 1)


def cpu_seconds(pid: int) -> float:
    """utime + stime of `pid` (fields 14 and 15 of /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def finalized_events(sim: SimChainProcess) -> int:
    return int(sim.control("sim_status", timeout=30)["finalized_events"])


def run(
    name: str,
    extra: tuple[str, ...],
    *,
    rate: float,
    slot_ms: float,
    seconds: float,
    warmup: float,
    every: float,
) -> Run:
    """One simulator process for `seconds`; the trend is fitted from `warmup` seconds on."""
    args = [*CHAIN, "--rate", str(rate), "--slot-ms", str(slot_ms), *extra]
    memory = MemoryLog()
    with spawn_simchain(args, env={"AOP_LOG_LEVEL": "WARNING"}) as sim:
        started = time.monotonic()
        events0, cpu0 = finalized_events(sim), cpu_seconds(sim.pid)
        while (now := time.monotonic() - started) < seconds:
            memory.record(now, {name: sim.pid})
            samples = memory.samples[name]
            rss = samples[-1][2] / 2**20
            events = finalized_events(sim) - events0
            print(f"  {name:9} {now:6.0f} s  {events:>9,} events  RSS {rss:8.1f} MiB", flush=True)
            time.sleep(max(0.0, every - (time.monotonic() - started - now)))
        elapsed = time.monotonic() - started
        events = finalized_events(sim) - events0
        cpu = cpu_seconds(sim.pid) - cpu0
    trend = memory.trend(name, warmup)
    if trend is None:
        raise SystemExit(f"{name}: no sample after the {warmup} s warm-up")
    return Run(name, elapsed, events, cpu, trend)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=1300.0)
    parser.add_argument("--slot-ms", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=480.0)
    parser.add_argument("--warmup", type=float, default=210.0)
    parser.add_argument("--baseline-seconds", type=float, default=90.0)
    parser.add_argument("--every", type=float, default=5.0)
    parser.add_argument("--limit-mib-per-min", type=float, default=2.0)
    args = parser.parse_args()
    common = {"rate": args.rate, "slot_ms": args.slot_ms, "every": args.every}
    print(f"baseline (unbounded), {args.baseline_seconds:.0f} s:")
    baseline = run("unbounded", UNBOUNDED, seconds=args.baseline_seconds, warmup=0, **common)
    print(f"bounded (defaults), {args.seconds:.0f} s, slope fitted after {args.warmup:.0f} s:")
    bounded = run("bounded", (), seconds=args.seconds, warmup=args.warmup, **common)
    print()
    columns = ["run", "seconds", "events/s", "CPU µs/event", "RSS start -> end MiB"]
    columns += ["peak MiB", "slope MiB/min"]
    print("| " + " | ".join(columns) + " |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in (baseline, bounded):
        t = r.trend
        print(
            f"| {r.name} | {r.seconds:.0f} | {r.events_per_s:,.0f} | {r.cpu_us_per_event:.0f} | "
            f"{t.start_mib:,.1f} -> {t.end_mib:,.1f} | {t.peak_mib:,.1f} | "
            f"{t.slope_mib_per_min:+.2f} |"
        )
    slope_ratio = bounded.trend.slope_mib_per_min / baseline.trend.slope_mib_per_min
    cpu_ratio = bounded.cpu_us_per_event / baseline.cpu_us_per_event
    within = bounded.trend.slope_mib_per_min <= args.limit_mib_per_min
    print(
        f"slope bounded / unbounded: {slope_ratio:.4f}; CPU per event bounded / unbounded: "
        f"{cpu_ratio:.2f}; bounded slope {bounded.trend.slope_mib_per_min:+.2f} MiB/min "
        f"{'within' if within else 'OVER'} the limit {args.limit_mib_per_min} MiB/min"
    )
    sys.exit(0 if within else 1)


if __name__ == "__main__":
    main()
