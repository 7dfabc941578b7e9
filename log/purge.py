"""Move the log start offset of a roots topic (AdminClient `delete_records`).

Only a topic whose spec is `purgeable` (aop.epoch.roots, aop.global.roots): the source of
truth, settlement and the DLQ are refused before anything is sent. The points come from
`log.purge_point`; a point at or below a partition's current log start offset is skipped
(the broker never moves it back).
"""

from __future__ import annotations

from collections.abc import Mapping

from confluent_kafka import KafkaException, TopicPartition

from aop.log.clients import connected_admin
from aop.log.errors import LogReadError
from aop.log.topics import topic_specs
from aop.runtime.errors import AopError
from aop.runtime.settings import Settings

__all__ = ["NotPurgeableError", "delete_below"]


class NotPurgeableError(AopError):
    """Raised when asked to delete records of a topic that must keep them all."""


def delete_below(
    settings: Settings,
    topic: str,
    points: Mapping[int, int],
    *,
    timeout: float = 30.0,
) -> dict[int, int]:
    """Delete the records of each partition of `topic` below its point.

    Args:
        points: partition -> the new log start offset (only partitions that move).
    Returns:
        partition -> the log start offset the broker reports afterwards.
    Raises:
        NotPurgeableError: `topic` is not a purgeable topic of this pipeline.
        LogReadError: the broker refused or did not answer.
    """
    purgeable = {spec.name for spec in topic_specs(settings) if spec.purgeable}
    if topic not in purgeable:
        raise NotPurgeableError(
            f"refusing to delete records of {topic}: only {sorted(purgeable)} are purgeable"
        )
    asks = [TopicPartition(topic, p, offset) for p, offset in sorted(points.items()) if offset > 0]
    if not asks:
        return {}
    admin = connected_admin(settings)
    out = {}
    try:
        for tp, future in admin.delete_records(
            asks, request_timeout=timeout, operation_timeout=timeout
        ).items():
            out[tp.partition] = int(future.result().low_watermark)
    except KafkaException as exc:
        raise LogReadError(f"cannot delete records of {topic} below {dict(points)}: {exc}") from exc
    return out
