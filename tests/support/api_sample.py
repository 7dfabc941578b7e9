"""Generated roots written through the projections writer, for tests, the bench and demos.

The data is real: trees are built with `core` (`projections.sample.build_sample_root`),
decoded from their log-form chunks (`projections.dataset.decode_root`), and verified and
stored by `ProjectionWriter.write_root` (COPY), exactly as the projector stores the fold's
roots.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from solders.pubkey import Pubkey
from sqlalchemy import Engine

from aop.projections.claims import ClaimUpdate
from aop.projections.dataset import decode_root
from aop.projections.writer import ProjectionWriter
from aop.runtime.settings import DEFAULT_PROOF_ROOTS_KEPT
from tests.support.sample_roots import SampleRoot, build_sample_root

__all__ = ["SAMPLE_CONSUMER", "random_amounts", "write_claimed_total", "write_sample_root"]

#: the consumer_offsets name the sample writer uses (it advances no offsets).
SAMPLE_CONSUMER = "api-sample"


def random_amounts(
    count: int, rng: random.Random, *, low: int = 1, high: int = 10**15
) -> dict[bytes, int]:
    """`count` distinct random 32-byte wallets -> amounts in [low, high]."""
    out: dict[bytes, int] = {}
    while len(out) < count:
        out[rng.randbytes(32)] = rng.randint(low, high)
    return out


def write_sample_root(
    engine: Engine,
    *,
    channel: str,
    root_seq: int,
    amounts: Mapping[bytes, int] | Sequence[tuple[bytes, int]],
    program_id: Pubkey,
    mint: Pubkey,
    epoch: int | None = None,
    format_name: str = "cumulative-v2",
    input_ranges: Sequence[Mapping[str, int]] = (),
    proof_roots_kept: int = DEFAULT_PROOF_ROOTS_KEPT,
) -> SampleRoot:
    """Build the root of `amounts` and store it as the projector would; returns the sample.

    Args:
        engine: a (sync) engine bound to the projection schema (`projections.db.engine_for`).
        proof_roots_kept: the writer's K (AOP_PROOF_ROOTS_KEPT): the channel's roots beyond
            the newest K lose their proofs.
    Raises:
        RootRejectedError: the records do not verify (RootConflictError: another root is
            stored for (channel, root_seq)).
    """
    sample = build_sample_root(
        channel=channel,
        root_seq=root_seq,
        epoch=root_seq if epoch is None else epoch,
        amounts=amounts,
        program_id=program_id,
        mint=mint,
        format_name=format_name,
        closed_at_slot=1000 * root_seq,
        input_ranges=input_ranges,
    )
    decoded = decode_root(sample.root, [bytes(c["entries"]) for c in sample.chunks])
    ProjectionWriter(
        engine, consumer=SAMPLE_CONSUMER, proof_roots_kept=proof_roots_kept
    ).write_root(decoded, source_partition=0, source_offset=root_seq, offsets=())
    return sample


def write_claimed_total(
    engine: Engine, *, channel_config: str, wallet: bytes, claimed_total: int, root_seq: int
) -> None:
    """Record a CumulativeRewardsClaimed outcome, as the projector does (max wins)."""
    update = ClaimUpdate(
        channel_config=channel_config,
        wallet=wallet,
        claimed_total=claimed_total,
        root_seq=root_seq,
        slot=root_seq * 1000 + 1,
        signature=f"sample-claim-{root_seq}",
    )
    ProjectionWriter(engine, consumer=SAMPLE_CONSUMER).apply_claims([update], ())
