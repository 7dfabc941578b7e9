"""The newest complete GlobalRoot on aop.global.roots: the combiner's checkpoint, read back
by its recovery (`streams.combiner.recovery`) and by the roots purge (`projections.purge`),
which must keep everything that recovery reads.

The tail is read read_committed (a transaction a killed combiner left open is invisible), a
window at a time from the end, until a GlobalRoot header and all its LeafChunks are in it.
"""

from __future__ import annotations

from aop.log.avro import AvroCodec
from aop.log.kafka import GLOBAL_ROOTS
from aop.log.reader import LogReader, ReadRange, log_bounds
from aop.log.root_assembly import CompleteRoot, RootAssembler
from aop.runtime.settings import Settings

__all__ = ["last_global_root"]

#: records of aop.global.roots read per window from the end (a 1M-wallet root has ~62
#: LeafChunks of 16,384 entries).
_WINDOW = 256


def last_global_root(settings: Settings, codec: AvroCodec) -> CompleteRoot | None:
    """The newest complete GlobalRoot on aop.global.roots (step 1), or None if there is none."""
    topic = settings.topic(GLOBAL_ROOTS)
    bounds = log_bounds(settings, topic, [0])[0]
    stop = bounds.stop
    start = max(bounds.low, stop - _WINDOW)
    while stop > bounds.low:
        found = _last_complete(settings, codec, ReadRange(topic, 0, start, stop))
        if found is not None:
            return found
        if start == bounds.low:
            return None
        start = max(bounds.low, start - _WINDOW * 4)
    return None


def _last_complete(settings: Settings, codec: AvroCodec, window: ReadRange) -> CompleteRoot | None:
    assembler = RootAssembler()
    newest: CompleteRoot | None = None
    with LogReader(settings, [window]) as reader:
        for batch in reader.batches():
            for _, partition, offset, value in batch:
                name, record = codec.decode(value)
                for out in assembler.add(partition, offset, name, record, value):
                    if isinstance(out, CompleteRoot):
                        newest = out
    return newest
