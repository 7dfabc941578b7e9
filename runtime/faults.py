"""Fault injection for crash tests: SIGKILL this process at a named fault point.

One mechanism for every service. A setting lists the points to die at, each with the arrival
to die on: "point:n,point:n" kills the process the n-th time it reaches `point`, whichever
entry comes first; "point" alone means "point:1"; empty (the default) never kills. The code
marks each point with `FaultPlan.hit(point)` (or `due` then `kill` where something must be
made durable first, so that the crash lands exactly after it).

AOP_FOLD_CRASH_AT (`FOLD_POINTS`), in the order a chunk of records passes them:

* `chunk_start` — a chunk of one partition's records was taken, nothing done yet;
* `before_root` — the chunk closed an epoch: roots computed, nothing sent;
* `mid_root` — an EpochRoot is acknowledged, its LeafChunks not sent yet;
* `after_root` — every root and leaf of the chunk is acknowledged, no state written;
* `mid_state` — half of the chunk's state keys are written AND flushed (durable), the rest
  and the partition meta are not;
* `after_state` — every state key is written and flushed, the source offsets not committed.

AOP_PROJECTION_CRASH_AT (`PROJECTION_POINTS`), inside a root's write transaction:

* `after_copy` — the leaves are copied and the tree levels inserted, no outbox row yet;
* `before_commit` — every row is written, the transaction not committed.

AOP_SETTLEMENT_CRASH_AT (`SETTLEMENT_POINTS`), around a freshly signed transaction:

* `before_send` — its intent is recorded and committed, nothing sent;
* `after_send` — it was sent once, the outcome not recorded.

AOP_COMBINER_CRASH_AT (`COMBINER_POINTS`), around a global root's Kafka transaction:

* `before_global` — the global root is computed, nothing written;
* `mid_global` — its GlobalRoot record is flushed inside the open transaction, the chunks
  and the commit not;
* `after_global` — the transaction is committed, the next record not read.

AOP_INGEST_CRASH_AT (`INGEST_POINTS`), around a transaction of the ingest's writer:

* `mid_transaction` — its records are flushed to the brokers inside the open transaction,
  not committed;
* `after_commit` — it is committed, its requests not answered.
"""

from __future__ import annotations

import logging
import os
import signal
from collections import Counter
from collections.abc import Sequence
from typing import Literal

from aop.runtime.errors import SettingsError
from aop.runtime.settings import Settings

__all__ = [
    "COMBINER_POINTS",
    "FOLD_POINTS",
    "INGEST_POINTS",
    "PROJECTION_POINTS",
    "SETTLEMENT_POINTS",
    "FaultPlan",
    "Service",
]

log = logging.getLogger(__name__)

FOLD_POINTS = ("chunk_start", "before_root", "mid_root", "after_root", "mid_state", "after_state")
PROJECTION_POINTS = ("after_copy", "before_commit")
SETTLEMENT_POINTS = ("before_send", "after_send")
COMBINER_POINTS = ("before_global", "mid_global", "after_global")
INGEST_POINTS = ("mid_transaction", "after_commit")
Service = Literal["fold", "projection", "settlement", "combiner", "ingest"]
#: each service's points and the Settings field that plans them.
_SERVICES: dict[Service, tuple[Sequence[str], str]] = {
    "fold": (FOLD_POINTS, "fold_crash_at"),
    "projection": (PROJECTION_POINTS, "projection_crash_at"),
    "settlement": (SETTLEMENT_POINTS, "settlement_crash_at"),
    "combiner": (COMBINER_POINTS, "combiner_crash_at"),
    "ingest": (INGEST_POINTS, "ingest_crash_at"),
}


class FaultPlan:
    """Counts arrivals at each point and kills the process at the planned one."""

    def __init__(self, spec: str, *, points: Sequence[str], setting: str) -> None:
        """Parse "point[:n],...".

        Args:
            spec: the setting's value.
            points: the points the service marks.
            setting: the environment variable, named in errors.

        Raises:
            SettingsError: an unknown point or a count that is not a positive integer.
        """
        self._at: dict[str, int] = {}
        self._seen: Counter[str] = Counter()
        for part in filter(None, (p.strip() for p in spec.split(","))):
            point, colon, count = part.partition(":")
            if point not in points or (colon and (not count.isdigit() or int(count) < 1)):
                raise SettingsError(
                    f"{setting}: entries must be <point> or <point>:<n> with point one of "
                    f"{', '.join(points)} and n >= 1 (got {part!r})"
                )
            self._at[point] = int(count) if colon else 1

    @classmethod
    def never(cls) -> FaultPlan:
        """A plan that never kills."""
        return cls("", points=(), setting="")

    @classmethod
    def for_service(cls, settings: Settings, service: Service) -> FaultPlan:
        """The plan of `service` from its setting (AOP_<SERVICE>_CRASH_AT)."""
        points, field = _SERVICES[service]
        return cls(getattr(settings, field), points=points, setting=f"AOP_{field.upper()}")

    def __bool__(self) -> bool:
        return bool(self._at)

    def due(self, point: str) -> bool:
        """Count an arrival at `point`; True when this is the arrival to die at."""
        if point not in self._at:
            return False
        self._seen[point] += 1
        return self._seen[point] == self._at[point]

    def hit(self, point: str) -> None:
        """Count an arrival at `point` and kill the process if it is the planned one."""
        if self.due(point):
            self.kill(point)

    @staticmethod
    def kill(point: str) -> None:
        """SIGKILL this process (nothing is flushed, nothing runs after)."""
        log.warning("fault injection: SIGKILL at %s", point)
        os.kill(os.getpid(), signal.SIGKILL)
