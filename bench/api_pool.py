"""Benchmark: the API's connection pool (psycopg-pool, api/db.py) against the hand-written pool
it replaced (bench/_hand_pool.py), same run, same database.

Run: .venv/bin/python bench/api_pool.py [--wallets 100000] [--duration 5] [--tasks 32]
     [--rounds 3]   (PostgreSQL from AOP_DATABASE_URL; schema AOP_BENCH_SCHEMA, default
     bench_api_pool, kept and reused)

Both pools are built with the API's own options (`Database.from_settings`: AOP_API_POOL_SIZE
connections, autocommit, statement_timeout, generic plans) and driven the way the API drives
them, in one event loop (uvloop, as `aop api` runs), by `--tasks` concurrent tasks for
`--duration` seconds each:

* `select1`: `async with db.connection()` + `SELECT 1`: the pool's own cost per checkout;
* `claim`: `db.fetchone` of a wallet's leaf of a `--wallets`-leaf root (random wallets), the
  index probe a cold claim makes.

Rounds alternate hand-written / psycopg-pool (the host is shared); printed per round: requests
per second and the bench process's CPU per request; then, per workload, the median ratio
psycopg-pool / hand-written of the same rounds and the spread of each pool's own rounds (the
noise): psycopg-pool is kept unless it is slower by more than that noise.
"""

from __future__ import annotations

import sys
from pathlib import Path

# this file is bench/api_pool.py: keep its folder off sys.path, or `import api` finds bench/
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse  # noqa: E402
import asyncio  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402
from solders.pubkey import Pubkey  # noqa: E402

from aop.api.db import Database  # noqa: E402
from aop.projections.db import engine_for, libpq_url, upgrade  # noqa: E402
from aop.runtime.settings import Settings, load_settings  # noqa: E402
from bench._hand_pool import HandPool  # noqa: E402
from tests.support.api_sample import random_amounts, write_sample_root  # noqa: E402

CHANNEL = "bench-pool"
CLAIM_SQL = "SELECT leaf_index, amount FROM leaves WHERE root_id = %s AND wallet = %s"


def prepare(settings: Settings, wallets: int) -> tuple[int, list[bytes]]:
    """A `wallets`-leaf root in the bench schema (built once); its root_id and wallets."""
    with psycopg.connect(libpq_url(settings), autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                sql.Identifier(settings.database_schema)
            )
        )
    upgrade(settings)
    engine = engine_for(settings)
    try:
        with engine.connect() as conn:
            row = conn.exec_driver_sql(
                "SELECT r.root_id, r.leaf_count FROM roots r JOIN channels c "
                "USING (channel_config) WHERE c.name = %(name)s",
                {"name": CHANNEL},
            ).first()
        if row is not None and int(row[1]) != wallets:
            raise SystemExit(f"schema holds a {row[1]}-leaf root; drop the schema to rebuild it")
        if row is None:
            write_sample_root(
                engine,
                channel=CHANNEL,
                root_seq=1,
                amounts=random_amounts(wallets, random.Random(1)),
                program_id=Pubkey.from_string(settings.program_id),
                mint=Pubkey.from_string(settings.mint),
            )
            with engine.connect() as conn:
                conn.exec_driver_sql("ANALYZE")
        with engine.connect() as conn:
            root_id = int(
                conn.exec_driver_sql(
                    "SELECT r.root_id FROM roots r JOIN channels c USING (channel_config) "
                    "WHERE c.name = %(name)s",
                    {"name": CHANNEL},
                ).scalar_one()
            )
            picked = conn.exec_driver_sql(
                "SELECT wallet FROM leaves WHERE root_id = %(r)s AND leaf_index %% 7 = 3",
                {"r": root_id},
            ).all()
    finally:
        engine.dispose()
    return root_id, [bytes(w[0]) for w in picked]


async def drive(
    db: Any, workload: str, args: argparse.Namespace, root_id: int, wallets: list[bytes]
) -> tuple[float, float]:
    """(requests per second, bench CPU microseconds per request) of one timed round."""
    done = 0
    rng = random.Random(5)
    deadline = 0.0

    async def task() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            if workload == "select1":
                async with db.connection() as conn:
                    await conn.execute("SELECT 1")
            else:
                row = await db.fetchone(CLAIM_SQL, (root_id, rng.choice(wallets)))
                if row is None:
                    raise SystemExit("a wallet of the root has no leaf")
            done += 1

    for _ in range(200):  # warm: every connection opened, statements prepared
        await db.fetchone(CLAIM_SQL, (root_id, wallets[0]))
    started, cpu = time.perf_counter(), time.process_time()
    deadline = started + args.duration
    await asyncio.gather(*(task() for _ in range(args.tasks)))
    elapsed, spent = time.perf_counter() - started, time.process_time() - cpu
    return done / elapsed, spent * 1e6 / max(done, 1)


async def main_async(args: argparse.Namespace) -> int:
    settings = load_settings(
        {"AOP_DATABASE_SCHEMA": os.environ.get("AOP_BENCH_SCHEMA", "bench_api_pool")}
    )
    root_id, wallets = prepare(settings, args.wallets)
    pools = {
        "hand-written": HandPool.from_settings(settings),
        "psycopg-pool": Database.from_settings(settings),
    }
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    try:
        for round_no in range(1, args.rounds + 1):
            for workload in ("select1", "claim"):
                for name, db in pools.items():
                    rps, cpu_us = await drive(db, workload, args, root_id, wallets)
                    results.setdefault((workload, name), []).append((rps, cpu_us))
                    print(
                        f"round {round_no} {workload:<8} {name:<13} {rps:>9,.0f} req/s "
                        f"{cpu_us:>7.0f} us CPU/req  load {os.getloadavg()[0]:.1f}",
                        flush=True,
                    )
    finally:
        for db in pools.values():
            await db.close()
    print(
        f"\nAPI pool bench: pool size {settings.api_pool_size}, {args.tasks} tasks, "
        f"{args.duration} s rounds x {args.rounds}, {len(wallets):,} wallets probed of a "
        f"{args.wallets:,}-leaf root"
    )
    for workload in ("select1", "claim"):
        hand = results[(workload, "hand-written")]
        pool = results[(workload, "psycopg-pool")]
        ratios = [p[0] / h[0] for h, p in zip(hand, pool, strict=True)]
        spread = {
            name: (max(r[0] for r in rows) - min(r[0] for r in rows))
            / statistics.median(r[0] for r in rows)
            for name, rows in (("hand-written", hand), ("psycopg-pool", pool))
        }
        print(
            f"{workload:<8} hand-written median {statistics.median(r[0] for r in hand):,.0f} "
            f"req/s ({statistics.median(r[1] for r in hand):.0f} us CPU), psycopg-pool median "
            f"{statistics.median(r[0] for r in pool):,.0f} req/s "
            f"({statistics.median(r[1] for r in pool):.0f} us CPU); ratio psycopg-pool / "
            f"hand-written per round {', '.join(f'{r:.2f}' for r in ratios)} (median "
            f"{statistics.median(ratios):.2f}); own spread hand-written "
            f"{spread['hand-written']:.0%}, psycopg-pool {spread['psycopg-pool']:.0%}"
        )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--wallets", type=int, default=100_000)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--tasks", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    try:
        import uvloop

        return uvloop.run(main_async(args))
    except ImportError:
        return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
