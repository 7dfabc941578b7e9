"""Audit of the log against the simulator's own ledger: every emitted event id exactly once.

The simulator records every event its program emitted, in chain order, up to the finalized
slot (`sim_emittedEventIds`); it never sees the pipeline, so it is an independent witness.
The log side reads every SlotBatch of `aop.chain.events` with the replay's reader and
decoder (no consumer group, read_committed: what the fold and a replay see).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aop.log.kafka import CHAIN_EVENTS
from aop.log.reader import LogReader, ReadRange, log_bounds
from aop.log.slot_batch import SlotBatchDecoder
from aop.runtime.settings import Settings
from aop.simchain.process import SimChainProcess

__all__ = ["LogAudit", "audit_log", "emitted_event_ids", "log_event_ids", "log_watermark"]

_PAGE = 10_000
#: offsets read at each partition's end to find its newest SlotBatch.
_TAIL = 8


def emitted_event_ids(sim: SimChainProcess) -> list[str]:
    """Every event id the simulator finalized, in chain order (its `sim_emittedEventIds`)."""
    ids: list[str] = []
    offset: int | None = 0
    while offset is not None:
        page = sim.control("sim_emittedEventIds", {"offset": offset, "limit": _PAGE}, timeout=60)
        ids.extend(event["id"] for event in page["events"])
        offset = page["next"]
    return ids


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
    return Counter(event["id"] for batch in _read_batches(settings) for event in batch["events"])


def log_watermark(settings: Settings) -> int:
    """The slot the whole log is complete up to: min over partitions of the newest SlotBatch's
    `last_slot` (-1 while a partition has none)."""
    newest: dict[int, int] = {}
    for batch in _read_batches(settings, tail=_TAIL):
        newest[batch["partition"]] = max(newest.get(batch["partition"], -1), batch["last_slot"])
    return min((newest.get(p, -1) for p in range(settings.chain_partitions)), default=-1)


@dataclass(frozen=True)
class LogAudit:
    """The log compared with the ledger. `lost` and `duplicated` count event ids; `foreign`
    counts ids on the log that the simulator never emitted."""

    emitted: int
    on_log: int
    lost: int
    duplicated: int
    foreign: int
    examples: tuple[str, ...]

    @property
    def exact(self) -> bool:
        """Every emitted event on the log once, nothing else."""
        return self.lost == self.duplicated == self.foreign == 0


def audit_log(settings: Settings, emitted: Sequence[str]) -> LogAudit:
    """Compare the whole log with `emitted` (the ledger's ids, `emitted_event_ids`; read the
    ledger after the log has caught up with it, or recent events count as lost)."""
    on_log = log_event_ids(settings)
    emitted_set = set(emitted)
    lost = [i for i in emitted if i not in on_log]
    duplicated = [i for i, n in on_log.items() if n > 1]
    foreign = [i for i in on_log if i not in emitted_set]
    return LogAudit(
        emitted=len(emitted),
        on_log=sum(on_log.values()),
        lost=len(lost),
        duplicated=sum(on_log[i] - 1 for i in duplicated),
        foreign=len(foreign),
        examples=tuple((lost + duplicated + foreign)[:5]),
    )
