"""The roots purge: delete the records of aop.epoch.roots and aop.global.roots below the
offset every reader has durably passed and no recovery needs (issue #22).

The rule is `log.purge_point`'s; this module gathers its inputs and applies it. Steps of
`purge_roots`:

1. read the inputs: the projector's committed offsets (`consumer_offsets` under
   `writer.CONSUMER_NAME`, committed with the rows), the header offsets of the roots that
   still hold proofs (`roots.source_partition/source_offset`, NOT proofs_pruned: the newest
   AOP_PROOF_ROOTS_KEPT of each account, and any older root written before retention), and,
   when global roots are expected (AOP_SETTLEMENT_TARGET global-v4/v5, or any GlobalRoot
   stored), the newest GlobalRoot on aop.global.roots (`log.last_root`);
2. compute each partition's point (`purge_points`): aop.epoch.roots = min(committed, kept
   roots, the combiner's recovery); aop.global.roots = min(committed, kept global roots);
3. unless `dry_run`, move each log start offset that is below its point (`log.purge.delete_below`);
   metrics and one INFO line per topic.

The projector runs it at most every AOP_ROOTS_PURGE_EVERY_S seconds after a commit
(AOP_ROOTS_PURGE=false: never); `aop log purge [--dry-run]` runs the same function. Several
projector replicas may run it at once: every input only grows, and so does the point.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from sqlalchemy import Engine, text

from aop.log.avro import AvroCodec
from aop.log.kafka import EPOCH_ROOTS, GLOBAL_ROOTS
from aop.log.last_root import last_global_root
from aop.log.purge import delete_below
from aop.log.purge_point import KeptRoot, combiner_floor, kept_floor, purge_points
from aop.log.reader import log_bounds
from aop.projections import metrics
from aop.projections.writer import CONSUMER_NAME
from aop.runtime.settings import Settings

__all__ = ["PurgePlan", "TopicPurge", "purge_roots"]

log = logging.getLogger(__name__)

_COMMITTED_SQL = text(
    "SELECT partition, next_offset FROM consumer_offsets WHERE consumer = :c AND topic = :t"
)
#: the roots still holding proofs (the partial index ix_roots_channel_config_root_seq_kept).
_KEPT_SQL = text(
    "SELECT r.channel_config, r.root_seq, r.source_partition, r.source_offset, "
    "c.scope = 'global' FROM roots r JOIN channels c USING (channel_config) "
    "WHERE NOT r.proofs_pruned"
)
_ANY_GLOBAL_SQL = text("SELECT EXISTS (SELECT 1 FROM channels WHERE scope = 'global')")


@dataclass(frozen=True)
class TopicPurge:
    """One topic's log start offsets before the purge and the points computed."""

    topic: str
    low: dict[int, int]
    points: dict[int, int]

    @property
    def moves(self) -> dict[int, int]:
        """The partitions whose log start offset moves, with their new start."""
        return {p: point for p, point in self.points.items() if point > self.low.get(p, 0)}

    @property
    def records(self) -> int:
        """Offsets deleted (records, plus transaction markers among them)."""
        return sum(point - self.low.get(p, 0) for p, point in self.moves.items())


@dataclass
class PurgePlan:
    """What a purge computed (and, unless a dry run, did)."""

    topics: list[TopicPurge] = field(default_factory=list)
    #: why aop.epoch.roots is held at its start ('' when it is not).
    held: str = ""


def _global_expected(settings: Settings, engine: Engine) -> bool:
    if settings.settlement_target != "channel":
        return True
    with engine.connect() as conn:
        return bool(conn.execute(_ANY_GLOBAL_SQL).scalar_one())


def plan_roots_purge(settings: Settings, engine: Engine, codec: AvroCodec) -> PurgePlan:
    """Steps 1-2 of the module docstring (nothing is deleted)."""
    epoch_topic, global_topic = settings.topic(EPOCH_ROOTS), settings.topic(GLOBAL_ROOTS)
    epoch_parts, global_parts = range(settings.chain_partitions), [0]
    with engine.connect() as conn:
        committed = {
            topic: {
                int(p): int(o)
                for p, o in conn.execute(_COMMITTED_SQL, {"c": CONSUMER_NAME, "t": topic})
            }
            for topic in (epoch_topic, global_topic)
        }
        rows = conn.execute(_KEPT_SQL).all()
    kept = {
        is_global: kept_floor(
            (KeptRoot(str(c), int(s), int(p), int(o)) for c, s, p, o, g in rows if g == is_global),
            kept=settings.proof_roots_kept,
        )
        for is_global in (False, True)
    }
    plan = PurgePlan()
    combiner = None
    if _global_expected(settings, engine):
        newest = last_global_root(settings, codec)
        if newest is None:
            plan.held = (
                f"global roots are expected (AOP_SETTLEMENT_TARGET={settings.settlement_target}) "
                f"but {global_topic} holds none yet: the combiner would start from offset 0"
            )
        else:
            combiner = combiner_floor(newest.record)
    epoch_points = purge_points(
        epoch_parts,
        committed=committed[epoch_topic],
        kept=kept[False],
        combiner=combiner,
        combiner_pending=bool(plan.held),
    )
    global_points = purge_points(global_parts, committed=committed[global_topic], kept=kept[True])
    for topic, parts, points in (
        (epoch_topic, epoch_parts, epoch_points),
        (global_topic, global_parts, global_points),
    ):
        low = {p: b.low for p, b in log_bounds(settings, topic, parts).items()}
        plan.topics.append(TopicPurge(topic, low, points))
    return plan


def purge_roots(
    settings: Settings, engine: Engine, codec: AvroCodec, *, dry_run: bool = False
) -> PurgePlan:
    """Run steps 1-3 of the module docstring; returns the plan (with the starts before).

    Raises:
        LogReadError: the broker does not answer or refuses the deletion.
        NotPurgeableError: never for the roots topics (the guard of `delete_below`).
    """
    plan = plan_roots_purge(settings, engine, codec)
    if plan.held:
        log.info("roots purge holds aop.epoch.roots", extra={"why": plan.held})
    if dry_run:
        return plan
    for item in plan.topics:
        moved = delete_below(settings, item.topic, item.moves)
        for part, low in {**item.low, **moved}.items():
            metrics.PURGE_LOG_START.labels(item.topic, str(part)).set(low)
        metrics.PURGED_RECORDS.labels(item.topic).inc(item.records)
        log.info(
            "roots purged",
            extra={
                "topic": item.topic,
                "records": item.records,
                "log_start": {str(p): o for p, o in sorted({**item.low, **moved}.items())},
                "points": {str(p): o for p, o in sorted(item.points.items())},
            },
        )
    metrics.PURGE_LAST.set(time.time())
    return plan
