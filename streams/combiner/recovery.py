"""The combiner's checkpoint, read back from the log: its last GlobalRoot and its sources.

Steps of `recover_state`:

1. Read the tail of aop.global.roots (read_committed: a transaction a killed combiner left
   open is invisible, and the next `init_transactions()` aborts it), a window at a time from
   the end, until a GlobalRoot header and all its LeafChunks are in the window.
2. None: the combiner starts from the beginning of aop.epoch.roots (a fresh state).
3. Else read, for each cumulative source the GlobalRoot names, that root (EpochRoot and its
   LeafChunks) on aop.epoch.roots from its offset (its chunks follow it on its partition,
   maybe after other channels' records), and build `CombinerState.from_global_root`.

Common failure scenarios:

* the broker does not answer: `LogReadError`/`ReadStalledError` (the service retries);
* a source's root is no longer on aop.epoch.roots (deleted, or a different topic prefix):
  `CoreError` from `from_global_root` names it (operator action: restore the topic, or start
  a fresh combiner with a new `AOP_COMBINER_TRANSACTIONAL_ID` over a fresh roots topic).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from aop.core.combine import CombinerState
from aop.log.avro import AvroCodec
from aop.log.kafka import EPOCH_ROOTS, GLOBAL_ROOTS
from aop.log.reader import LogReader, ReadRange, log_bounds
from aop.log.root_assembly import CompleteRoot, RootAssembler
from aop.runtime.settings import Settings

__all__ = ["last_global_root", "read_root", "recover_state"]

log = logging.getLogger(__name__)

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


def read_root(
    settings: Settings, codec: AvroCodec, partition: int, offset: int, key: tuple[str, int]
) -> CompleteRoot:
    """The root `key` = (root account, root_seq) whose header is at `offset` of `partition`
    of aop.epoch.roots, with its chunks (read forward until they are all there).

    Raises:
        LookupError: the header is not there, or the partition ends before the root completes.
    """
    topic = settings.topic(EPOCH_ROOTS)
    bounds = log_bounds(settings, topic, [partition])[partition]
    if not bounds.low <= offset < bounds.stop:
        raise LookupError(f"{topic}[{partition}] has no offset {offset} (holds {bounds.low}..)")
    assembler = RootAssembler()
    with LogReader(settings, [ReadRange(topic, partition, offset, bounds.stop)]) as reader:
        for batch in reader.batches():
            for _, part, at, value in batch:
                name, record = codec.decode(value)
                if at == offset and (
                    name not in ("EpochRoot", "AttentionRoot")
                    or (str(record["channel_config"]), int(record["root_seq"])) != key
                ):
                    raise LookupError(f"{topic}[{partition}] offset {offset} is not {key}")
                for out in assembler.add(part, at, name, record, value):
                    if isinstance(out, CompleteRoot) and out.offset == offset:
                        return out
    raise LookupError(f"{topic}[{partition}]: root {key} from offset {offset} is incomplete")


def recover_state(settings: Settings, codec: AvroCodec) -> CombinerState | None:
    """The state the last GlobalRoot checkpoints (steps 1-3), or None for a fresh start.

    Raises:
        LogReadError, ReadStalledError: the broker does not answer.
        CoreError: a cumulative source's root cannot be read back.
    """
    last = last_global_root(settings, codec)
    if last is None:
        log.info("no global root on the log yet: combining from the start of aop.epoch.roots")
        return None
    record: Mapping[str, Any] = last.record
    datasets: dict[str, bytes] = {}
    for source in record["sources"]:
        key = (str(source["channel_config"]), int(source["root_seq"]))
        try:
            root = read_root(settings, codec, int(source["partition"]), int(source["offset"]), key)
        except LookupError as exc:
            log.error("cannot read back a source of the last global root: %s", exc)
            continue
        datasets[key[0]] = b"".join(root.chunks)
    state = CombinerState.from_global_root(record, b"".join(last.chunks), datasets)
    log.info(
        "resuming after the last global root",
        extra={"root_seq": record["root_seq"], "epoch": record["epoch"]},
    )
    return state
