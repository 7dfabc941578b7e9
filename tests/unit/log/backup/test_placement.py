"""The import's offset plan, run on a model of a Kafka partition.

The model counts offsets as the broker does: a record takes one; a commit or an abort puts a
marker on a partition only if its transaction wrote there. Any gap pattern a real log can
have (markers, aborted transactions, several producers interleaved) must put every record at
its offset and end at or at most two past the exported end.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aop.log.backup.placement import OffsetPlanner, Op


class PartitionModel:
    """A partition written by producer A (records) and B (fillers), both transactional."""

    def __init__(self, start: int) -> None:
        self.end = start
        self.a_wrote = False
        self.b_open = False
        self.b_wrote = False

    def run(self, ops: list[Op]) -> None:
        for op in ops:
            if op is Op.COMMIT_A:
                self.end += self.a_wrote
                self.a_wrote = False
            elif op is Op.BEGIN_B:
                assert not self.b_open, "B began twice"
                self.b_open, self.b_wrote = True, False
            elif op is Op.FILL:
                assert self.b_open, "a fill outside a B transaction"
                self.end, self.b_wrote = self.end + 1, True
            else:
                assert self.b_open, "an abort without a B transaction"
                self.end += self.b_wrote
                self.b_open = False

    def write(self) -> int:
        offset, self.end, self.a_wrote = self.end, self.end + 1, True
        return offset


def place(offsets: list[int], end: int, start: int = 0) -> tuple[list[int], int, PartitionModel]:
    planner, model = OffsetPlanner(start), PartitionModel(start)
    placed = []
    for offset in offsets:
        model.run(planner.before(offset))
        placed.append(model.write())
    model.run(planner.finish(end))
    return placed, model.end, model


@st.composite
def exported_partitions(draw: st.DrawFn) -> tuple[list[int], int]:
    gaps = draw(st.lists(st.integers(0, 6), max_size=30))
    offsets, at = [], draw(st.integers(0, 4))
    for gap in gaps:
        offsets.append(at)
        at += 1 + gap
    return offsets, at + draw(st.integers(0, 4))


@given(exported_partitions())
def test_every_record_lands_at_its_exported_offset(partition: tuple[list[int], int]) -> None:
    """Whatever the gaps, each record lands at its offset; both transactions end closed."""
    offsets, end = partition
    placed, final, model = place(offsets, end)
    assert placed == offsets
    assert end <= final <= end + 2
    assert not model.a_wrote and not model.b_open


def test_listener_pattern_commits_after_each_record_and_needs_no_filler() -> None:
    """A record, its commit marker, the next record...: one commit per record, nothing else."""
    planner = OffsetPlanner(0)
    assert planner.before(0) == []
    assert planner.before(2) == [Op.COMMIT_A]
    assert planner.before(4) == [Op.COMMIT_A]
    assert planner.finish(6) == [Op.COMMIT_A]


def test_an_aborted_range_is_spent_by_fillers_and_an_abort() -> None:
    """Record 0, its marker 1, two aborted records 2-3 and their marker 4, record 5."""
    planner = OffsetPlanner(0)
    planner.before(0)
    assert planner.before(5) == [Op.COMMIT_A, Op.BEGIN_B, Op.FILL, Op.FILL, Op.ABORT_B]
    assert place([0, 5], 7)[:2] == ([0, 5], 7)


def test_a_single_invisible_offset_without_open_transaction_leaves_b_open() -> None:
    """Offset 0 invisible (another producer's record, aborted later), record at 1: B opens
    with one filler and its abort spends an offset of the next gap."""
    planner = OffsetPlanner(0)
    assert planner.before(1) == [Op.BEGIN_B, Op.FILL]
    assert planner.b_open
    assert planner.before(3) == [Op.COMMIT_A]
    assert planner.before(5) == [Op.COMMIT_A]
    assert planner.finish(7) == [Op.COMMIT_A, Op.ABORT_B]
    assert place([1, 3, 5], 7)[:2] == ([1, 3, 5], 8)


def test_an_offset_below_the_next_free_one_is_refused() -> None:
    planner = OffsetPlanner(5)
    with pytest.raises(ValueError, match="offset 4 is below the next free offset 5"):
        planner.before(4)


@given(st.lists(exported_partitions(), min_size=1, max_size=4))
def test_one_shared_a_over_several_partitions_puts_every_record_in_place(
    partitions: list[tuple[list[int], int]],
) -> None:
    """Lock-step rounds (each partition writes what needs no gap, then one commit for all, as
    `aop log import` runs a shared A) place every record of every partition."""
    planners = [OffsetPlanner(0) for _ in partitions]
    models = [PartitionModel(0) for _ in partitions]
    cursors = [0] * len(partitions)
    placed: list[list[int]] = [[] for _ in partitions]
    while any(cursors[i] < len(offsets) for i, (offsets, _) in enumerate(partitions)):
        for i, (offsets, _) in enumerate(partitions):
            planner, model = planners[i], models[i]
            if cursors[i] < len(offsets):
                model.run(planner.before(offsets[cursors[i]]))
                placed[i].append(model.write())
                cursors[i] += 1
            while cursors[i] < len(offsets) and planner.gap(offsets[cursors[i]]) == 0:
                model.run(planner.before(offsets[cursors[i]]))
                placed[i].append(model.write())
                cursors[i] += 1
        for planner, model in zip(planners, models, strict=True):  # one commit of A
            if planner.a_open:
                model.run([Op.COMMIT_A])
                planner.committed()
    for i, (offsets, end) in enumerate(partitions):
        models[i].run(planners[i].finish(end))
        assert placed[i] == offsets
        assert end <= models[i].end <= end + 2
