"""What a starting writer needs from `aop.attention.signals`: the watermarks already written
and the ids it must still count as duplicates.

Steps of `read_log_state` (after the writer's `init_transactions()`, which aborts whatever
transaction a killed predecessor left open, so read_committed readers see a settled log):

1. Per partition, the first offset whose record was produced at or after `since_ms`
   (Kafka's time index), and the partition's last stable offset. Read from the earlier of
   that offset and a few records before the end (so the newest watermark is read even when
   nothing was written since `since_ms`), to the end.
2. Decode each SignalBatch: the highest `watermark_ms` per partition, and every signal's and
   binding's (source, id), fingerprint and window end into a `SeenIds`.

`since_ms` is how far back an id can matter: an item accepted when the clock read `t` claims
a window ending at most `t + skew + epoch` (a legacy signal naming the current epoch), so
ids produced before `clock - lateness - skew - epoch` have all expired (`api.ingest.dedupe`).
A record's timestamp is its producer's clock; `SINCE_MARGIN_MS` covers clocks that differ a
little between ingest hosts.

Common failure scenarios:

* the broker does not answer: `LogReadError` / `ReadStalledError` / `KafkaConnectError`
  (the service stops with the message; a supervisor restarts it);
* a record that is not a SignalBatch of this pipeline: `AvroDecodeError` names its offset
  (operator action: the topic holds foreign data; find who writes it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from aop.api.ingest.dedupe import SeenIds, seen_key
from aop.api.ingest.items import binding_fingerprint, signal_fingerprint
from aop.core.attention.signals import signal_window_ms
from aop.log.avro import AvroCodec, AvroDecodeError
from aop.log.kafka import ATTENTION_SIGNALS
from aop.log.reader import LogReader, ReadRange, log_bounds, offsets_at
from aop.runtime.settings import Settings

__all__ = ["SINCE_MARGIN_MS", "LogState", "read_log_state", "since_for"]

log = logging.getLogger(__name__)

#: records read before the time-index offset, at least, so the newest watermark is seen (a
#: transaction adds a marker per partition: half of these may be markers).
_TAIL_RECORDS = 16
#: clock differences between ingest hosts the read-back tolerates.
SINCE_MARGIN_MS = 60_000


@dataclass
class LogState:
    """The tail of aop.attention.signals as a starting writer needs it."""

    #: the highest watermark_ms on each partition that has one.
    watermarks: dict[int, int] = field(default_factory=dict)
    seen: SeenIds = field(default_factory=SeenIds)
    #: SignalBatch records read.
    records: int = 0

    @property
    def watermark_ms(self) -> int | None:
        """The highest watermark on any partition, or None on an empty topic."""
        return max(self.watermarks.values(), default=None)


def since_for(settings: Settings, now_ms: int) -> int:
    """How far back the read-back goes (module docstring): clock minus lateness, skew, an
    epoch and `SINCE_MARGIN_MS`."""
    back_s = (
        settings.attention_allowed_lateness_s
        + settings.ingest_clock_skew_s
        + settings.attention_epoch_seconds
    )
    return now_ms - back_s * 1000 - SINCE_MARGIN_MS


def read_log_state(settings: Settings, codec: AvroCodec, *, since_ms: int) -> LogState:
    """Steps 1-2 of the module docstring.

    Raises:
        LogReadError, ReadStalledError, KafkaConnectError: the log could not be read.
        AvroDecodeError: a record that is not one of this pipeline's (its offset named).
    """
    topic = settings.topic(ATTENTION_SIGNALS)
    partitions = range(settings.chain_partitions)
    bounds = log_bounds(settings, topic, partitions)
    by_time = offsets_at(settings, topic, partitions, since_ms)
    ranges = []
    for p, bound in bounds.items():
        first = by_time.get(p)
        start = bound.stop if first is None else first
        start = max(bound.low, min(start, bound.stop - _TAIL_RECORDS))
        ranges.append(ReadRange(topic, p, start, bound.stop))
    state = LogState()
    epoch_seconds = settings.attention_epoch_seconds
    with LogReader(settings, ranges) as reader:
        for batch in reader.batches():
            for _topic, partition, offset, value in batch:
                try:
                    record = codec.decode_as("SignalBatch", value)
                except AvroDecodeError as exc:
                    raise AvroDecodeError(f"{topic}[{partition}] offset {offset}: {exc}") from exc
                state.records += 1
                _remember(state, partition, record, epoch_seconds)
    log.info(
        "read the tail of the signals log",
        extra={
            "records": state.records,
            "ids": len(state.seen),
            "watermark_ms": state.watermark_ms,
            "since_ms": since_ms,
        },
    )
    return state


def _remember(state: LogState, partition: int, batch: dict[str, Any], epoch_seconds: int) -> None:
    watermark = batch["watermark_ms"]
    if watermark > state.watermarks.get(partition, watermark - 1):
        state.watermarks[partition] = watermark
    source = batch["source"]
    for signal in batch["signals"]:
        last_ms = signal_window_ms(signal["observed_at_ms"], signal["epoch"], epoch_seconds)[1]
        state.seen.add(seen_key(source, signal["id"]), signal_fingerprint(signal), last_ms)
    for binding in batch["bindings"]:
        key = seen_key(source, binding["id"])
        state.seen.add(key, binding_fingerprint(binding), binding["observed_at_ms"])
