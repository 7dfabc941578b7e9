"""The day run's clock: a day's epoch count over the events asked, in fast-forward.

The deployment's chain epoch is AOP_EPOCH_SLOTS 9,000 slots (1 hour) and its attention epoch
AOP_ATTENTION_EPOCH_SECONDS 3,600: a day makes 24 of each. The day run emits AOP_DAY_EVENTS
events and keeps the day's count by shortening both epochs to 1/24 of the run:

* chain epochs are counted in slots, and the simulator puts Poisson(rate asked x slot
  length) events in each slot (`simchain.workload`), whatever it achieves: when it cannot
  keep up (asked 2,600 events/s it achieved ~1,000 on this 2-core box) its slots
  take longer, not fewer events. So epoch_slots = ceil(events / 24 / (AOP_DAY_RATE x
  slot_ms / 1000)) makes 24 epochs of the events asked;
* attention epochs are wall-clock windows: the run lasts events / AOP_DAY_EXPECTED_RATE
  seconds (the rate achieved), so one is 1/24 of that, in whole seconds.

Every root rewrites every wallet (cumulative totals), so five days of roots in one day of
events would measure five days of roots storage: the count matters, and the run reports it
beside a limit (`DAY_EPOCHS_RANGE`), attention epochs too (a rate achieved far off the
expected one makes more or fewer of them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

__all__ = ["DAY_EPOCHS", "DAY_EPOCHS_RANGE", "MIN_EPOCH_SLOTS", "DayClock", "day_clock"]

#: epochs in a day: AOP_EPOCH_SLOTS 9,000 of 400 ms slots, AOP_ATTENTION_EPOCH_SECONDS 3,600.
DAY_EPOCHS: Final = 24
#: the epochs a run may make and still be called a day's (the run fails visibly outside it,
#: rather than measure another day).
DAY_EPOCHS_RANGE: Final = (12, 48)
#: the shortest chain epoch, in slots, whatever the events: longer than the simulator's
#: finality depth (31 slots), so an epoch's slots are final before the next one ends.
MIN_EPOCH_SLOTS: Final = 32
#: a day's allowed lateness (AOP_ATTENTION_ALLOWED_LATENESS_S 300) per epoch (3,600 s).
LATENESS_PER_EPOCH: Final = 300 / 3600
#: the ingest refuses a signal whose window ended over the lateness ago; collectors post
#: every half second: no lateness below this.
MIN_LATENESS_S: Final = 2


@dataclass(frozen=True)
class DayClock:
    """The epochs of one day run (`day_clock`)."""

    #: AOP_EPOCH_SLOTS.
    epoch_slots: int
    #: a chain epoch's expected wall-clock seconds (its events at the expected rate).
    epoch_s: float
    #: AOP_ATTENTION_EPOCH_SECONDS: the chain epoch's expected wall duration, whole seconds.
    attention_epoch_s: int
    #: AOP_ATTENTION_ALLOWED_LATENESS_S: a day's 300 s per 3,600 s epoch, scaled.
    lateness_s: int

    @property
    def legacy_grace_s(self) -> int:
        """`aop parity --grace`: a root one side lacks is PENDING this long after its epoch
        ended: the lateness (the epoch closes then), two epochs and a minute for the fold and
        the projector to land its roots and for the parity run to start after the legacy
        table was filled (the table holds every epoch closed on the log then; ours may
        have closed more by the time parity reads it)."""
        return self.lateness_s + 2 * self.attention_epoch_s + 60


def day_clock(events: int, rate: float, expected_rate: float, slot_ms: float) -> DayClock:
    """24 epochs over `events` (module docstring): `rate` is the simulator's asked rate
    (events/s; a slot holds rate x slot_ms / 1000 of them on average), `expected_rate` the
    rate it achieves (events/s of wall clock); the chain epoch at least MIN_EPOCH_SLOTS, the
    attention epoch at least 1 s, the allowed lateness a day's proportion of it (at least
    MIN_LATENESS_S).

    Raises:
        ValueError: events, a rate or slot_ms not positive.
    """
    if min(events, rate, expected_rate, slot_ms) <= 0:
        raise ValueError(
            "AOP_DAY_EVENTS, AOP_DAY_RATE, AOP_DAY_EXPECTED_RATE and the slot length must be "
            f"> 0 (got {events}, {rate}, {expected_rate}, {slot_ms})"
        )
    events_per_slot = rate * slot_ms / 1000
    slots = max(MIN_EPOCH_SLOTS, math.ceil(events / DAY_EPOCHS / events_per_slot))
    epoch_s = slots * events_per_slot / expected_rate
    attention = max(1, round(epoch_s))
    lateness = max(MIN_LATENESS_S, math.ceil(attention * LATENESS_PER_EPOCH))
    return DayClock(slots, round(epoch_s, 2), attention, lateness)
