"""The independent legacy aggregator (`tests.support.legacy_aggregator`) fed from a live
pipeline's aop.attention.signals as the ingest writes it, for a parallel run against the
legacy during a run of the whole pipeline (tests/soak/test_day.py).

The legacy saw the collectors' POSTs; the log holds them as SignalBatches, a POST's signals
split by their channel's partition and its bindings written to every partition. So each
partition has an aggregator of its own, fed that partition's records in offset order (its
channels' signals, every binding), and seals an epoch once the partition's watermark shows
it over: epoch `s` of length L is over when `(s + L) * 1000 <= watermark_ms` (the ingest's
watermark is its clock less AOP_ATTENTION_ALLOWED_LATENESS_S, so that is the allowed
lateness the fold closes epochs with). A record's signals are taken before its watermark
seals anything; a signal of an epoch already sealed lands where no seal reads it again, as
in the legacy.

`catch_up` (steps):

1. the last stable offset of each partition now (`log_bounds`, read_committed);
2. every record from where the previous call stopped up to there (`LogReader`), decoded
   with the project's Avro codec;
3. each record to its partition's aggregator (the signals of `channels` only: sealing the
   others would cost the run's CPU for roots nobody asks for), then the epochs its
   watermark closed sealed;
4. the roots sealed by this call: (channel, epoch) -> root, for the legacy table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aop.log.avro import AvroCodec
from aop.log.kafka import ATTENTION_SIGNALS
from aop.log.reader import LogReader, ReadRange, log_bounds
from aop.runtime.settings import Settings
from tests.support.legacy_aggregator import LegacyAggregator

__all__ = ["LegacySignalFeed"]

Roots = dict[tuple[str, int], bytes]


@dataclass
class _Partition:
    aggregator: LegacyAggregator
    next_offset: int = 0
    #: every epoch before it is sealed (None: no record seen yet).
    open_epoch: int | None = None


@dataclass
class LegacySignalFeed:
    """The legacy aggregator over one deployment's signals topic (module docstring)."""

    settings: Settings
    #: the channels whose roots the legacy table gets (the ring-v0-legacy ones: what
    #: `aop parity --legacy-dsn-file` asks for); the others' signals are not fed.
    channels: frozenset[str]
    codec: AvroCodec = field(default_factory=AvroCodec)
    #: records read and epochs sealed so far (for the figures).
    records: int = 0
    sealed_epochs: set[int] = field(default_factory=set)
    _partitions: dict[int, _Partition] = field(default_factory=dict)

    def __post_init__(self) -> None:
        length = self.settings.attention_epoch_seconds
        self._partitions = {
            p: _Partition(LegacyAggregator(epoch_seconds=length))
            for p in range(self.settings.chain_partitions)
        }

    def catch_up(self) -> Roots:
        """Steps 1-4 of the module docstring."""
        topic = self.settings.topic(ATTENTION_SIGNALS)
        bounds = log_bounds(self.settings, topic, self._partitions)
        ranges = [
            ReadRange(topic, p, self._partitions[p].next_offset, b.stop) for p, b in bounds.items()
        ]
        sealed: Roots = {}
        with LogReader(self.settings, ranges) as reader:
            for batch in reader.batches():
                for _topic, partition, offset, value in batch:
                    record = self.codec.decode_as("SignalBatch", value)
                    sealed.update(self._apply(self._partitions[partition], record))
                    self._partitions[partition].next_offset = offset + 1
                    self.records += 1
        for p, b in bounds.items():  # transaction markers end a range without a record
            self._partitions[p].next_offset = max(self._partitions[p].next_offset, b.stop)
        return sealed

    def _apply(self, partition: _Partition, record: dict[str, Any]) -> Roots:
        """Step 3 for one SignalBatch."""
        aggregator = partition.aggregator
        signals = [s for s in record["signals"] if s["channel"] in self.channels]
        aggregator.ingest(record["source"], signals, record["bindings"])
        length = aggregator.epoch_seconds
        opened = record["watermark_ms"] // 1000 // length * length
        previous = partition.open_epoch
        if previous is not None and opened <= previous:
            return {}
        partition.open_epoch = opened
        due = {e for e, _channel, _user in aggregator.rows if e < opened}
        if previous is not None:
            due = {e for e in due if e >= previous}
        sealed: Roots = {}
        for epoch in sorted(due):
            self.sealed_epochs.add(epoch)
            sealed.update({(c, epoch): r for c, r in aggregator.seal(epoch).items()})
        return sealed
