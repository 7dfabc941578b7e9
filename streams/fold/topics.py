"""The topics Faust keeps for the fold, created by `aop fold` before Faust starts.

Faust would create them itself, with its own replication factor and no
`min.insync.replicas`; created here, they get the pipeline's replication settings and are
checked at every start like the log's topics (`aop.log.topics.ensure_topics`).
"""

from __future__ import annotations

from aop.log.kafka import TopicSpec, replicated
from aop.runtime.settings import Settings
from aop.streams.fold.config import fold_app_id

__all__ = ["CHANGELOG_SEGMENT_BYTES", "STATE_TABLE", "fold_topic_specs"]

#: the fold's table: its changelog topic is `<app id>-fold-state-changelog`.
STATE_TABLE = "fold-state"

#: the changelog's segment size. Compaction cleans closed segments only, and every write of
#: the fold rewrites a whole bucket, so with the broker's default (1 GiB) a partition grows
#: by up to a GiB of superseded buckets before the first cleaning: the day run measured the
#: changelog at 2,529 MiB per million events, uncompacted (RELIABILITY.md "Day"). With 16 MiB
#: segments a partition holds its live buckets plus about one segment and the dirty share
#: the cleaner allows (`min.cleanable.dirty.ratio`, 0.5), and Faust's recovery at start reads
#: that much instead of the history.
CHANGELOG_SEGMENT_BYTES = 16 * 1024 * 1024


def fold_topic_specs(settings: Settings) -> list[TopicSpec]:
    """The state table's changelog (compacted: a key's last value is the state; small
    segments, so the cleaner can run: `CHANGELOG_SEGMENT_BYTES`) and Faust's leader-election
    topic, named as Faust names them."""
    app_id = fold_app_id(settings)
    changelog = replicated(
        settings,
        {
            "cleanup.policy": "compact",
            "max.message.bytes": "4194304",
            "segment.bytes": str(CHANGELOG_SEGMENT_BYTES),
        },
    )
    return [
        TopicSpec(
            f"{app_id}-{STATE_TABLE}-changelog",
            settings.chain_partitions,
            changelog,
            checked=("cleanup.policy",),
        ),
        TopicSpec(f"{app_id}-__assignor-__leader", 1, replicated(settings, {})),
    ]
