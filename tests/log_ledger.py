"""Audit of the log against the simulator's own ledger: every emitted event id exactly once.

The simulator records every event its program emitted, in chain order, up to the finalized
slot (`sim_emittedEventIds`); it never sees the pipeline, so it is an independent witness.
The log side reads every SlotBatch of `aop.chain.events` with the replay's reader and
decoder (no consumer group, read_committed: what the fold and a replay see).

The ledger is judged up to the slot the log is complete to (its watermark), not up to the
chain's finalized slot: the chain does not stop when the workload pauses (settlement still
lands `GlobalRootPublished` transactions, finalized 31 slots later), so events the chain
finalized after the listener's last range are reported apart (`after_log`), never as lost.
Callers make sure the watermark covers what they judge (the paused tip).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from aop.log.kafka import CHAIN_EVENTS
from aop.log.reader import LogReader, ReadRange, log_bounds
from aop.log.slot_batch import SlotBatchDecoder
from aop.runtime.settings import Settings
from aop.simchain.process import SimChainProcess

__all__ = ["Emitted", "LogAudit", "audit_log", "emitted_events", "log_event_ids", "log_watermark"]

_PAGE = 10_000
#: offsets read at each partition's end to find its newest SlotBatch.
_TAIL = 8


class Emitted(NamedTuple):
    """One event the simulator finalized: its id, its transaction's slot, its name."""

    id: str
    slot: int
    name: str


def emitted_events(sim: SimChainProcess) -> list[Emitted]:
    """Every event the simulator finalized, in chain order (its `sim_emittedEventIds`)."""
    events: list[Emitted] = []
    offset: int | None = 0
    while offset is not None:
        page = sim.control("sim_emittedEventIds", {"offset": offset, "limit": _PAGE}, timeout=60)
        events.extend(Emitted(e["id"], int(e["slot"]), e["name"]) for e in page["events"])
        offset = page["next"]
    return events


def _read_batches(settings: Settings, *, tail: int | None = None) -> list[dict[str, Any]]:
    """The SlotBatches of every partition; with `tail`, only each partition's last `tail`
    offsets (transaction markers take offsets too, so keep a margin)."""
    topic = settings.topic(CHAIN_EVENTS)
    partitions = range(settings.chain_partitions)
    bounds = log_bounds(settings, topic, partitions)
    ranges = [
        ReadRange(topic, p, b.low if tail is None else max(b.low, b.stop - tail), b.stop)
        for p, b in bounds.items()
    ]
    decoder = SlotBatchDecoder()
    batches = []
    with LogReader(settings, ranges) as reader:
        for records in reader.batches():
            batches.extend(decoder.decode(value) for _t, _p, _o, value in records)
    return batches


def log_event_ids(settings: Settings) -> Counter[str]:
    """How many times each event id is on `aop.chain.events` (all partitions, whole log)."""
    return _event_ids(_read_batches(settings))


def log_watermark(settings: Settings) -> int:
    """The slot the whole log is complete up to: min over partitions of the newest SlotBatch's
    `last_slot` (-1 while a partition has none)."""
    return _watermark(_read_batches(settings, tail=_TAIL), settings.chain_partitions)


def _event_ids(batches: Sequence[dict[str, Any]]) -> Counter[str]:
    return Counter(event["id"] for batch in batches for event in batch["events"])


def _watermark(batches: Sequence[dict[str, Any]], partitions: int) -> int:
    newest: dict[int, int] = {}
    for batch in batches:
        newest[batch["partition"]] = max(newest.get(batch["partition"], -1), batch["last_slot"])
    return min((newest.get(p, -1) for p in range(partitions)), default=-1)


@dataclass(frozen=True)
class LogAudit:
    """The log compared with the ledger up to `through_slot`, the log's watermark.

    `emitted` counts the ledger's events at or below it and `lost` those of them not on the
    log; `after_log` counts the events the chain finalized after it (not on the log yet, not
    judged; `after_examples` names a few: id, name and slot). `duplicated` counts extra copies
    on the log; `foreign` the ids on the log that the simulator never emitted."""

    emitted: int
    on_log: int
    lost: int
    duplicated: int
    foreign: int
    examples: tuple[str, ...]
    through_slot: int = -1
    after_log: int = 0
    after_examples: tuple[str, ...] = ()

    @property
    def exact(self) -> bool:
        """Every emitted event on the log once, nothing else."""
        return self.lost == self.duplicated == self.foreign == 0


def audit_log(settings: Settings, emitted: Sequence[Emitted]) -> LogAudit:
    """Compare the whole log with `emitted` (the ledger, `emitted_events`) up to the log's
    watermark (module docstring). Read the ledger once the listener has stopped (or the
    chain's finalized slot no longer moves), so the log cannot pass the ledger read."""
    batches = _read_batches(settings)
    on_log = _event_ids(batches)
    through = _watermark(batches, settings.chain_partitions)
    judged = [e.id for e in emitted if e.slot <= through]
    after = [f"{e.id} ({e.name}, slot {e.slot})" for e in emitted if e.slot > through]
    emitted_set = {e.id for e in emitted}
    lost = [i for i in judged if i not in on_log]
    duplicated = [i for i, n in on_log.items() if n > 1]
    foreign = [i for i in on_log if i not in emitted_set]
    return LogAudit(
        emitted=len(judged),
        on_log=sum(on_log.values()),
        lost=len(lost),
        duplicated=sum(on_log[i] - 1 for i in duplicated),
        foreign=len(foreign),
        examples=tuple((lost + duplicated + foreign)[:5]),
        through_slot=through,
        after_log=len(after),
        after_examples=tuple(after[:5]),
    )
