"""The combiner's checkpoint, read back from the log: its last GlobalRoot and its sources.

Steps of `recover_state`:

1. Read the tail of aop.global.roots (read_committed: a transaction a killed combiner left
   open is invisible, and the next `init_transactions()` aborts it), a window at a time from
   the end, until a GlobalRoot header and all its LeafChunks are in the window.
2. None: the combiner starts from the beginning of aop.epoch.roots (a fresh state), unless
   aop.epoch.roots or aop.global.roots no longer starts at offset 0 (records were purged or
   deleted: a fresh start would combine from the middle): `CombinerRecoveryError`;
3. Else read, for each cumulative source the GlobalRoot names, that root (EpochRoot and its
   LeafChunks) on aop.epoch.roots from its offset (its chunks follow it on its partition,
   maybe after other channels' records), and build `CombinerState.from_global_root`.

Common failure scenarios:

* no GlobalRoot but a roots topic that does not start at 0 (its global roots were deleted,
  or the purge ran before any global root existed): `CombinerRecoveryError` names the topic;
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
from aop.log.last_root import last_global_root
from aop.log.reader import LogReader, ReadRange, log_bounds
from aop.log.root_assembly import CompleteRoot, RootAssembler
from aop.runtime.errors import AopError
from aop.runtime.settings import Settings

__all__ = ["CombinerRecoveryError", "last_global_root", "read_root", "recover_state"]

log = logging.getLogger(__name__)


class CombinerRecoveryError(AopError):
    """Raised when the combiner can neither resume from a GlobalRoot nor start fresh."""


def _refuse_fresh_start(settings: Settings) -> None:
    """Step 2: a fresh start needs both roots topics whole from offset 0."""
    for name, parts in ((EPOCH_ROOTS, range(settings.chain_partitions)), (GLOBAL_ROOTS, [0])):
        topic = settings.topic(name)
        starts = {p: b.low for p, b in log_bounds(settings, topic, parts).items() if b.low > 0}
        if starts:
            where = ", ".join(f"{topic}[{p}] starts at offset {low}" for p, low in starts.items())
            raise CombinerRecoveryError(
                f"no GlobalRoot on {settings.topic(GLOBAL_ROOTS)} to resume from, and {where}: "
                "records were purged or deleted, so a fresh start would combine from the middle; "
                "operator action: restore the roots topics from a backup (`aop log import`), or "
                "rebuild them from the source of truth (a fresh fold and combiner over new topics "
                "with a new AOP_TOPIC_PREFIX), then `aop rebuild`"
            )


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
        CombinerRecoveryError: no GlobalRoot, and a roots topic no longer starts at 0.
    """
    last = last_global_root(settings, codec)
    if last is None:
        _refuse_fresh_start(settings)
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
