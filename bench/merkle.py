"""Benchmark: build a cumulative-v2 tree of N random wallets and cut proofs from its levels.

Run: .venv/bin/python bench/merkle.py [--wallets 1000000] [--proofs 10000] [--repeat 3]

The baseline is the keccak floor, measured in the same run: a bare loop of as many keccak
calls as the build makes (one per leaf on 131-byte inputs, one per inner node on 64-byte
inputs), over as many distinct pre-made inputs (the build, too, reads each input once from
memory). A "hot" floor over 1024 inputs reused from cache is printed as well. Builds and
floors alternate and the best of --repeat runs of each counts (the machine is shared). The
build includes input
validation, the canonical sort, leaf hashing, the dataset hash and every tree level.

Memory: the tracemalloc peak of one more, untimed build (Python allocations made by the build
itself; tracemalloc slows it down, so it is not timed), and the process's ru_maxrss.

Goals: build <= 2x floor, proof extraction <= 20 us/proof, build peak memory <= 1 GiB.
"""

from __future__ import annotations

import argparse
import gc
import random
import resource
import time
import tracemalloc
from collections.abc import Callable
from functools import partial
from typing import TypeVar

from sha3 import keccak_256
from solders.pubkey import Pubkey

from aop.core.claims import ClaimInput, TreeScope, get_claim_format
from aop.core.merkle import NODE_LEN, proof_from_levels
from aop.core.program_ids import DEFAULT_PROGRAM_ID

MINT = Pubkey.from_string("Dxk8mAb3C7AM8JN6tAJfVuSja5yidhZM5sEKW3SRX2BM")
GOAL_RATIO = 2.0
GOAL_PROOF_US = 20.0
GOAL_PEAK_MIB = 1024

T = TypeVar("T")


def random_inputs(count: int, rng: random.Random) -> list[ClaimInput]:
    blob = rng.randbytes(32 * count)
    return [ClaimInput(blob[i : i + 32], rng.randrange(1, 10**15)) for i in range(0, len(blob), 32)]


def timed(run: Callable[[], T]) -> tuple[float, T]:
    """(seconds, result) of one call, garbage collected before the clock starts."""
    gc.collect()
    start = time.perf_counter()
    result = run()
    return time.perf_counter() - start, result


def keccak_loop(feeds: list[list[bytes]]) -> None:
    keccak = keccak_256
    for feed in feeds:
        for data in feed:
            keccak(data).digest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wallets", type=int, default=1_000_000)
    parser.add_argument("--proofs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    fmt = get_claim_format("cumulative-v2")
    scope = TreeScope(DEFAULT_PROGRAM_ID, MINT, "youtube_lofi", root_seq=1, epoch=0)
    _ = scope.channel_config  # derive the PDA outside the timed region
    inputs = random_inputs(args.wallets, rng)

    # The first build tells the floor how many keccak calls to make; then builds and floors
    # alternate, so that a noisy neighbour slows both alike, and the best of each is kept.
    build_s, tree = timed(partial(fmt.build, scope, inputs))
    leaf_count = tree.leaf_count
    inner_nodes = sum(len(level) // NODE_LEN for level in tree.levels[1:])
    distinct = [
        [rng.randbytes(131) for _ in range(leaf_count)],
        [rng.randbytes(64) for _ in range(inner_nodes)],
    ]
    hot = [
        ([rng.randbytes(131) for _ in range(1024)] * (leaf_count // 1024 + 1))[:leaf_count],
        ([rng.randbytes(64) for _ in range(1024)] * (inner_nodes // 1024 + 1))[:inner_nodes],
    ]
    floor_s = hot_s = float("inf")
    for round_no in range(args.repeat):
        if round_no:
            del tree
            seconds, tree = timed(partial(fmt.build, scope, inputs))
            build_s = min(build_s, seconds)
        floor_s = min(floor_s, timed(partial(keccak_loop, distinct))[0])
        hot_s = min(hot_s, timed(partial(keccak_loop, hot))[0])
    del distinct, hot

    levels = tree.levels
    indices = [rng.randrange(leaf_count) for _ in range(args.proofs)]
    start = time.perf_counter()
    for index in indices:
        proof_from_levels(levels, index)
    proof_us = (time.perf_counter() - start) / max(args.proofs, 1) * 1e6

    root = tree.root
    del tree, levels
    gc.collect()
    tracemalloc.start()
    fmt.build(scope, inputs)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    maxrss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    peak_mib = peak / 2**20

    def verdict(ok: bool) -> str:
        return "ok" if ok else "MISSED"

    ratio, hot_ratio = build_s / floor_s, build_s / hot_s
    print(f"wallets                  {args.wallets} (root {root.hex()[:16]}...)")
    print(f"keccak calls             {leaf_count} leaves (131 B) + {inner_nodes} nodes (64 B)")
    print(f"build (best of {args.repeat})        {build_s:.3f} s")
    print(f"keccak floor             {floor_s:.3f} s distinct inputs, {hot_s:.3f} s hot cache")
    print(
        f"build / floor            {ratio:.2f}x ({hot_ratio:.2f}x vs hot cache)  "
        f"goal <= {GOAL_RATIO:.1f}x: {verdict(ratio <= GOAL_RATIO)}"
    )
    print(
        f"proof from levels        {proof_us:.2f} us/proof over {args.proofs}  "
        f"goal <= {GOAL_PROOF_US:.0f} us: {verdict(proof_us <= GOAL_PROOF_US)}"
    )
    print(
        f"build peak (tracemalloc) {peak_mib:.0f} MiB  "
        f"goal <= {GOAL_PEAK_MIB} MiB: {verdict(peak_mib <= GOAL_PEAK_MIB)}"
    )
    print(f"process ru_maxrss        {maxrss_mib:.0f} MiB (inputs, tree and floor inputs)")


if __name__ == "__main__":
    main()
