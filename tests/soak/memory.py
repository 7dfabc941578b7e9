"""Resident memory of running processes, sampled from /proc, and its trend over a window.

RSS is what the kernel charges a service (Python heap, allocator slack, librdkafka's and
RocksDB's native buffers alike), so it is what must stay flat for a service to run for
weeks. A process's children count with it. The trend is a least-squares slope over every
sample of the window: one end sample caught mid-GC or mid-batch moves it little, unlike
end minus start.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["MIB", "MemoryLog", "MemoryTrend", "rss_bytes", "slope"]

MIB = 1024 * 1024
PROC = Path("/proc")


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in (PROC / str(pid) / "task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue  # the thread ended
    return found


def rss_bytes(pid: int) -> int | None:
    """VmRSS of `pid` and all its descendants; None when `pid` is gone."""
    total = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            status = (PROC / str(current) / "status").read_text()
        except OSError:
            if current == pid:
                return None
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
                break
        pending += _children(current)
    return total


def slope(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of (x, y) points (0 for fewer than two distinct x)."""
    n = len(points)
    if n < 2:
        return 0.0
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    if spread == 0:
        return 0.0
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread


@dataclass(frozen=True)
class MemoryTrend:
    """One process's RSS over the measured window, in MiB (slope in MiB per minute)."""

    start_mib: float
    end_mib: float
    peak_mib: float
    slope_mib_per_min: float
    samples: int

    @property
    def growth_mib(self) -> float:
        return self.end_mib - self.start_mib


@dataclass
class MemoryLog:
    """RSS samples per named process: (seconds since the log began, pid, bytes)."""

    samples: dict[str, list[tuple[float, int, int]]] = field(default_factory=dict)

    def record(self, at: float, pids: Mapping[str, int | None]) -> None:
        for name, pid in pids.items():
            rss = rss_bytes(pid) if pid is not None else None
            if pid is not None and rss is not None:
                self.samples.setdefault(name, []).append((at, pid, rss))

    def judged_life(self, name: str, warmup_s: float) -> tuple[int, float] | None:
        """The life of `name` to judge and when its judging starts: each life (pid) is
        judged from `warmup_s` after its first sample, or after `warmup_s` into the load if
        that is later (a restarted process fills its imports, pools and caches again); the
        life with the longest judged span wins. None without a sample in any judged span."""
        spans: dict[int, tuple[float, float]] = {}
        born: dict[int, float] = {}
        for at, pid, _ in self.samples.get(name, []):
            born.setdefault(pid, at)
            since = max(warmup_s, born[pid] + warmup_s)
            if at >= since:
                spans[pid] = (spans.get(pid, (at, at))[0], at)
        if not spans:
            return None
        pid = max(spans, key=lambda p: spans[p][1] - spans[p][0])
        return pid, max(warmup_s, born[pid] + warmup_s)

    def pids(self, name: str) -> set[int]:
        """Every pid seen under `name` (more than one: the process was restarted)."""
        return {pid for _, pid, _ in self.samples.get(name, [])}

    def trend(self, name: str, since: float, pid: int | None = None) -> MemoryTrend | None:
        """The trend of samples taken at or after `since` seconds, of `pid` only when given
        (one life of a process that was restarted); None without any."""
        window = [
            (at, rss / MIB)
            for at, sampled, rss in self.samples.get(name, [])
            if at >= since and pid in (None, sampled)
        ]
        if not window:
            return None
        return MemoryTrend(
            start_mib=window[0][1],
            end_mib=window[-1][1],
            peak_mib=max(mib for _, mib in window),
            slope_mib_per_min=slope(window) * 60,
            samples=len(window),
        )
