"""Epoch arithmetic: which epoch a slot is in, and an epoch's slot range.

An epoch is `epoch_slots` consecutive slots counted from `genesis_slot`:
epoch(slot) = (slot - genesis_slot) // epoch_slots, so epoch e covers the slots
[genesis + e * epoch_slots, genesis + (e + 1) * epoch_slots - 1]. Slots before genesis belong
to no epoch (the arithmetic gives a negative number): no weight accrues for them (see
`core.policy`).
"""

from __future__ import annotations

from dataclasses import dataclass

from aop.core.errors import InvalidIntegerError

__all__ = ["EpochClock"]


@dataclass(frozen=True, slots=True)
class EpochClock:
    """The epoch calendar of a deployment (`AOP_GENESIS_SLOT`, `AOP_EPOCH_SLOTS`).

    Raises:
        InvalidIntegerError: `genesis_slot` is negative or `epoch_slots` is not positive.
    """

    genesis_slot: int
    epoch_slots: int

    def __post_init__(self) -> None:
        if type(self.genesis_slot) is not int or self.genesis_slot < 0:
            raise InvalidIntegerError(f"genesis_slot must be >= 0 (got {self.genesis_slot!r})")
        if type(self.epoch_slots) is not int or self.epoch_slots < 1:
            raise InvalidIntegerError(f"epoch_slots must be >= 1 (got {self.epoch_slots!r})")

    def epoch_of(self, slot: int) -> int:
        """The epoch of `slot`; negative for a slot before genesis."""
        return (slot - self.genesis_slot) // self.epoch_slots

    def first_slot(self, epoch: int) -> int:
        """The first slot of `epoch`."""
        return self.genesis_slot + epoch * self.epoch_slots

    def last_slot(self, epoch: int) -> int:
        """The last slot of `epoch` (a watermark at or past it closes the epoch)."""
        return self.genesis_slot + (epoch + 1) * self.epoch_slots - 1

    def slots_from(self, slot: int, epoch: int) -> int:
        """How many slots of `epoch` lie at or after `slot`: |[slot, end] ∩ epoch|.

        A position opened at `slot` and still open at the epoch's end holds that many slots
        of the epoch; 0 when `slot` is past the epoch, `epoch_slots` when it is before it.
        """
        start = self.first_slot(epoch)
        end = start + self.epoch_slots  # exclusive
        return max(0, end - max(slot, start))
