# ruff: noqa: E402  (sys.path is fixed before the imports, see below)
"""Benchmark: `ProjectionWriter.write_root` with proof retention pruning vs without.

Run: .venv/bin/python bench/prune.py [--wallets 100000] [--roots 6]
     (PostgreSQL from AOP_DATABASE_URL, default the local one)

Set-up (not timed): `--roots` roots of one channel, `--wallets` wallets each (every root holds
every wallet, new amounts: cumulative totals), built with `core` and decoded as the projector
decodes them. Each mode writes the same roots, in order, into a fresh schema:

* keep-all: AOP_PROOF_ROOTS_KEPT above the root count: nothing is ever pruned (the baseline);
* prune: AOP_PROOF_ROOTS_KEPT=1: from the second root on, each write also deletes the
  previous root's leaves (`--wallets` rows) and tree levels and flags it, in the same
  transaction (`projections.retention`).

Timed: each `write_root` call (verify + COPY + levels + outbox + prune + commit). The first
root of each mode prunes nothing and is left out of the medians. Goal: prune <= 2 x keep-all.
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
import random
import statistics
import time
import uuid

import psycopg
from psycopg import sql
from solders.pubkey import Pubkey

from aop.core.program_ids import DEFAULT_PROGRAM_ID
from aop.projections.dataset import DecodedRoot, decode_root
from aop.projections.db import engine_for, libpq_url, upgrade
from aop.projections.writer import ProjectionWriter
from aop.runtime.settings import CCM_MINT, Settings, load_settings
from tests.support.sample_roots import build_sample_root

GOAL_RATIO = 2.0


def _roots(wallets: int, count: int) -> list[DecodedRoot]:
    rng = random.Random(22)
    base = {rng.randbytes(32): rng.randint(1, 10**9) for _ in range(wallets)}
    out = []
    for seq in range(1, count + 1):
        sample = build_sample_root(
            channel="bench_prune",
            root_seq=seq,
            epoch=seq,
            amounts={w: a * seq for w, a in base.items()},
            program_id=DEFAULT_PROGRAM_ID,
            mint=Pubkey.from_string(CCM_MINT),
        )
        out.append(decode_root(sample.root, [bytes(c["entries"]) for c in sample.chunks]))
    return out


def _run(kept: int, roots: list[DecodedRoot]) -> list[float]:
    """Seconds per write_root, in a fresh schema dropped afterwards."""
    settings: Settings = load_settings(
        {"AOP_DATABASE_SCHEMA": f"bench_prune_{uuid.uuid4().hex[:10]}"}
    )
    upgrade(settings)
    engine = engine_for(settings)
    writer = ProjectionWriter(engine, consumer="bench", proof_roots_kept=kept)
    times = []
    try:
        for offset, decoded in enumerate(roots):
            started = time.perf_counter()
            writer.write_root(decoded, source_partition=0, source_offset=offset, offsets=())
            times.append(time.perf_counter() - started)
    finally:
        engine.dispose()
        with psycopg.connect(libpq_url(settings), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(settings.database_schema))
            )
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wallets", type=int, default=100_000)
    parser.add_argument("--roots", type=int, default=6)
    args = parser.parse_args()
    if args.roots < 2:
        parser.error("--roots must be at least 2 (the first root prunes nothing)")
    roots = _roots(args.wallets, args.roots)
    results = {}
    for mode, kept in (("keep-all", args.roots + 1), ("prune", 1), ("keep-all", args.roots + 1)):
        times = _run(kept, roots)
        results.setdefault(mode, []).extend(times[1:])
        shown = ", ".join(f"{t * 1000:.0f}" for t in times)
        print(f"{mode:9} (K={kept}): write_root ms per root: {shown}")
    base = statistics.median(results["keep-all"])
    pruned = statistics.median(results["prune"])
    ratio = pruned / base
    print(
        f"median write_root, {args.wallets:,} leaves: keep-all {base * 1000:.0f} ms, prune "
        f"{pruned * 1000:.0f} ms; ratio {ratio:.2f} (goal <= {GOAL_RATIO})"
    )
    if ratio > GOAL_RATIO:
        sys.exit(1)


if __name__ == "__main__":
    main()
