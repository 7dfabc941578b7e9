"""The roots purge rule (`log.purge_point`) on exact cases: every expected point is worked out
by hand from the offsets in the case."""

from __future__ import annotations

import pytest

from aop.log.purge_point import KeptRoot, combiner_floor, kept_floor, purge_points

# partition 0: account A roots 1..4 at headers 0, 10, 20, 30 (each 1 header + chunks);
# partition 1: account B roots 7, 8 at headers 5, 15.
ROOTS = [
    KeptRoot("A", 1, 0, 0),
    KeptRoot("A", 3, 0, 20),
    KeptRoot("A", 2, 0, 10),
    KeptRoot("A", 4, 0, 30),
    KeptRoot("B", 7, 1, 5),
    KeptRoot("B", 8, 1, 15),
]


def test_kept_floor_is_the_header_of_the_kth_newest_root_of_each_account() -> None:
    assert kept_floor(ROOTS, kept=2) == {0: 20, 1: 5}
    assert kept_floor(ROOTS, kept=1) == {0: 30, 1: 15}
    # fewer roots than K: every root is kept, the oldest header bounds the partition
    assert kept_floor(ROOTS, kept=10) == {0: 0, 1: 5}


def test_kept_floor_takes_the_lowest_account_on_a_shared_partition() -> None:
    shared = [*ROOTS, KeptRoot("C", 1, 0, 12), KeptRoot("C", 2, 0, 40)]
    assert kept_floor(shared, kept=2) == {0: 12, 1: 5}


def test_kept_floor_refuses_k_below_one() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        kept_floor(ROOTS, kept=0)


def test_combiner_floor_is_the_smallest_source_or_resume_offset_per_partition() -> None:
    record = {
        "sources": [
            {"partition": 0, "offset": 20},
            {"partition": 1, "offset": 15},
            {"partition": 0, "offset": 30},
        ],
        "resume": [
            {"partition": 0, "first_offset": 41, "last_offset": 40},
            {"partition": 1, "first_offset": 9, "last_offset": 8},
            {"partition": 2, "first_offset": 3, "last_offset": 2},
        ],
    }
    assert combiner_floor(record) == {0: 20, 1: 9, 2: 3}


def test_no_global_roots_in_use_the_projector_and_the_kept_roots_bound() -> None:
    points = purge_points(range(3), committed={0: 42, 1: 16, 2: 7}, kept={0: 20, 1: 5})
    # partition 2 holds only markers: the committed offset alone
    assert points == {0: 20, 1: 5, 2: 7}


def test_projector_behind_the_kept_roots() -> None:
    points = purge_points(range(2), committed={0: 10, 1: 0}, kept={0: 20, 1: 5})
    assert points == {0: 10, 1: 0}


def test_a_partition_never_committed_is_not_purged() -> None:
    assert purge_points(range(2), committed={0: 42}, kept={}) == {0: 42, 1: 0}


def test_combiner_behind() -> None:
    points = purge_points(
        range(3), committed={0: 42, 1: 16, 2: 7}, kept={0: 20, 1: 5}, combiner={0: 12, 2: 3}
    )
    assert points == {0: 12, 1: 5, 2: 3}


def test_global_roots_expected_but_none_yet_nothing_goes() -> None:
    points = purge_points(
        range(2), committed={0: 42, 1: 16}, kept={0: 20, 1: 5}, combiner_pending=True
    )
    assert points == {0: 0, 1: 0}
