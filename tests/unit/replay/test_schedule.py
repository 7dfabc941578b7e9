"""Partitions go to the replay's process pool the costliest first (`costliest_first`)."""

from __future__ import annotations

from typing import Any

from aop.replay.run import costliest_first


def groups(**channels: int) -> dict[int, list[Any]]:
    """partition -> that many channel targets (only their count matters here)."""
    return {int(p[1:]): [object()] * n for p, n in channels.items()}


def test_more_channels_first_then_more_records_then_the_lower_partition() -> None:
    by_partition = groups(p0=2, p1=1, p2=3, p3=7, p4=3, p5=8, p6=1)
    records = {0: 500, 1: 900, 2: 100, 3: 10, 4: 400, 5: 10, 6: 900}
    assert costliest_first(by_partition, records) == [5, 3, 4, 2, 0, 1, 6]


def test_a_partition_without_a_record_count_counts_as_empty() -> None:
    assert costliest_first(groups(p0=1, p1=1, p2=1), {2: 5}) == [2, 0, 1]


def test_the_pool_with_the_costliest_first_ends_sooner_than_in_partition_order() -> None:
    """Two workers, a job's cost = its channel count: handed out greedily (each job to the
    first free worker), partition order ends at 10, costliest first at 9 (total 18)."""
    by_partition = groups(p0=1, p1=1, p2=1, p3=1, p4=2, p5=3, p6=4, p7=5)

    def makespan(order: list[int]) -> int:
        free = [0, 0]
        for p in order:
            free.sort()
            free[0] += len(by_partition[p])
        return max(free)

    assert makespan(sorted(by_partition)) == 10
    assert makespan(costliest_first(by_partition, {})) == 9
