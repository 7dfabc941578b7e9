"""Fault injection for crash tests: SIGKILL the worker at a named point of the fold.

`AOP_FOLD_CRASH_AT="after_root:2,mid_state:1"` kills the process the 2nd time it reaches
`after_root`, or the 1st time it reaches `mid_state`, whichever comes first. Empty (the
default) never kills. Points, in the order a chunk of records passes them:

* `chunk_start` — a chunk of one partition's records was taken, nothing done yet;
* `before_root` — the chunk closed an epoch: roots computed, nothing sent;
* `mid_root` — an EpochRoot is acknowledged, its LeafChunks not sent yet;
* `after_root` — every root and leaf of the chunk is acknowledged, no state written;
* `mid_state` — half of the chunk's state keys are written AND flushed (durable), the rest
  and the partition meta are not;
* `after_state` — every state key is written and flushed, the source offsets not committed.
"""

from __future__ import annotations

import logging
import os
import signal
from collections import Counter

from aop.runtime.errors import SettingsError

__all__ = ["POINTS", "FaultPlan"]

log = logging.getLogger(__name__)

POINTS = ("chunk_start", "before_root", "mid_root", "after_root", "mid_state", "after_state")


class FaultPlan:
    """Counts arrivals at each point and says when to die."""

    def __init__(
        self, spec: str, *, points: tuple[str, ...] = POINTS, setting: str = "AOP_FOLD_CRASH_AT"
    ) -> None:
        """Parse "point:n,point:n" (`points`: the service's points; `setting`: its variable).

        Raises:
            SettingsError: an unknown point or a count that is not a positive integer.
        """
        self._at: dict[str, int] = {}
        self._seen: Counter[str] = Counter()
        for part in filter(None, (p.strip() for p in spec.split(","))):
            point, _, count = part.partition(":")
            if point not in points or not count.isdigit() or int(count) < 1:
                raise SettingsError(
                    f"{setting}: entries must be <point>:<n> with point one of "
                    f"{', '.join(points)} and n >= 1 (got {part!r})"
                )
            self._at[point] = int(count)

    def __bool__(self) -> bool:
        return bool(self._at)

    def due(self, point: str) -> bool:
        """Count an arrival at `point`; True when this is the arrival to die at."""
        if point not in self._at:
            return False
        self._seen[point] += 1
        return self._seen[point] == self._at[point]

    @staticmethod
    def kill(point: str) -> None:
        """SIGKILL this process (nothing is flushed, nothing runs after)."""
        log.warning("fault injection: SIGKILL at %s", point)
        os.kill(os.getpid(), signal.SIGKILL)
