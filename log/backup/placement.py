"""How an import puts every record back at the offset it had: which transactions to run.

A partition's offsets hold records and, between them, offsets no read_committed reader sees:
transaction markers (one per commit or abort on each partition a transaction wrote) and the
records of aborted transactions. An export keeps the visible records with their offsets. To
put each one back at its offset, an import spends exactly the invisible offsets between them,
with two transactional producers per partition:

* A writes the records; `COMMIT_A` ends its transaction and spends one offset (its marker),
  only when A wrote in it;
* B only spends offsets: `BEGIN_B`, `FILL` (a filler record, one offset) and `ABORT_B` (its
  marker, one offset; the fillers are never visible).

A gap g before a record: commit A if it holds records (1); of what is left, g', with B open:
g' - 1 fills and its abort; with B closed and g' = 1: begin B and fill once, leaving B open
(its abort later spends one offset of another gap, or one past the end); else begin B,
g' - 1 fills and the abort. Any gap is spent exactly, so every record lands at its offset.
After the last record the exported end is reached the same way; closing A and B may then add
up to two offsets past it, where no record follows.

One A may serve many partitions (as the listener's one transaction writes to every partition
of a range): the import then commits A once for all of them, tells each planner so
(`committed`), and asks `before` only afterwards, when A holds nothing of that partition, so
the plan spends the rest of the gap with B alone.

Pure: `tests/unit/log/backup/test_placement.py` runs the plans on a model of a partition.
"""

from __future__ import annotations

from enum import Enum

__all__ = ["OffsetPlanner", "Op"]


class Op(Enum):
    COMMIT_A = "commit_a"
    BEGIN_B = "begin_b"
    FILL = "fill"
    ABORT_B = "abort_b"


class OffsetPlanner:
    """The operations before each record of one partition, and after the last one.

    Args:
        start: the partition's next offset now (its end; 0 for a new topic).
    """

    def __init__(self, start: int) -> None:
        #: the offset the next record or marker takes.
        self.next = start
        #: A's transaction holds records; B's transaction is open (with fillers).
        self.a_open = False
        self.b_open = False

    def before(self, offset: int) -> list[Op]:
        """The operations to run before writing (with A) the record of `offset`.

        Raises:
            ValueError: `offset` is below the next free offset (records out of order, or a
                target that was not empty).
        """
        ops = self._spend(self._gap(offset))
        self.a_open = True
        self.next = offset + 1
        return ops

    def gap(self, offset: int) -> int:
        """Invisible offsets to spend before the record of `offset` (0: write it at once).

        Raises:
            ValueError: `offset` is below the next free offset.
        """
        return self._gap(offset)

    def committed(self) -> None:
        """A's transaction, which holds records of this partition, was committed (its marker
        spent the first offset of the next gap, or one past the end)."""
        if not self.a_open:
            raise ValueError("A holds no record of this partition: its commit spends nothing")
        self.a_open = False
        self.next += 1

    def finish(self, end: int) -> list[Op]:
        """The operations that reach `end` (if a commit did not pass it already), then close
        both transactions."""
        ops = self._spend(max(end - self.next, 0))
        if self.a_open:
            ops.append(Op.COMMIT_A)
            self.a_open = False
            self.next += 1
        if self.b_open:
            ops.append(Op.ABORT_B)
            self.b_open = False
            self.next += 1
        return ops

    def _gap(self, offset: int) -> int:
        if offset < self.next:
            raise ValueError(f"offset {offset} is below the next free offset {self.next}")
        return offset - self.next

    def _spend(self, gap: int) -> list[Op]:
        ops: list[Op] = []
        if gap and self.a_open:
            ops.append(Op.COMMIT_A)
            self.a_open = False
            gap -= 1
        if gap:
            if not self.b_open:
                ops.append(Op.BEGIN_B)
            ops.extend([Op.FILL] * (gap - 1 if self.b_open else max(gap - 1, 1)))
            if self.b_open or gap > 1:
                ops.append(Op.ABORT_B)
                self.b_open = False
            else:
                self.b_open = True
        self.next += sum(op is not Op.BEGIN_B for op in ops)
        return ops
