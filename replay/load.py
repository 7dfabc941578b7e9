"""Fill a projection schema from the log with the projector's own components.

This is `aop project`'s path without its consumer group and dead-letter producer: records of
aop.epoch.roots go through `RootAssembler`, `decode_root` and `ProjectionWriter.write_root`
(the tree is rebuilt and checked before anything commits, one transaction per root with the
partition's offset); CumulativeRewardsClaimed events of aop.chain.events, found by the
projector's rule (`projections.claims.claims_of`), go through `ProjectionWriter.apply_claims`
(with those partitions' offsets). Offsets are stored under
the projector's consumer name (`projections.projector.CONSUMER_NAME`), so once the schema is
switched in, `aop project` continues exactly where the load stopped.

Records the live projector dead-lettered are refused again here and only reported (they are
already on aop.dlq). A roots partition read from a purged log start (above 0) is started
with `RootAssembler.purged_start`: LeafChunks of a root whose header the purge deleted are
counted in `purged_remainder`, not refused (`log.root_assembly`).

`root_ids` maps (channel_config, root_seq) to the `root_id` a root had in the schema being
replaced; the identity sequence is set before each insert so the root keeps it (the API
caches roots by root_id); roots new to the schema get ids above all of them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, text

from aop.log.avro import AvroDecodeError, codec_for
from aop.log.kafka import CHAIN_EVENTS, EPOCH_ROOTS, GLOBAL_ROOTS
from aop.log.reader import LogReader, ReadRange, log_bounds
from aop.log.root_assembly import CompleteRoot, PurgedRemainder, RejectedRecord, RootAssembler
from aop.log.slot_batch import SlotBatchDecoder
from aop.projections.claims import ClaimUpdate, claims_of
from aop.projections.dataset import decode_root, root_view
from aop.projections.errors import RootRejectedError
from aop.projections.projector import CONSUMER_NAME
from aop.projections.writer import OffsetUpdate, ProjectionWriter
from aop.runtime.settings import Settings

__all__ = ["LoadResult", "load_schema"]

log = logging.getLogger(__name__)


@dataclass
class LoadResult:
    """What a load wrote and refused."""

    written: int = 0
    duplicates: int = 0
    claim_rows: int = 0
    #: (topic/partition/offset, reason, detail) of every refused record or root.
    rejected: list[dict[str, Any]] = field(default_factory=list)
    #: LeafChunks of roots whose header lies below a purged log start (not refused).
    purged_remainder: int = 0
    #: the next offset stored per (topic, partition) when the load finished.
    offsets: dict[str, dict[int, int]] = field(default_factory=dict)


class _Loader:
    def __init__(
        self, settings: Settings, engine: Engine, root_ids: Mapping[tuple[str, int], int]
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.writer = ProjectionWriter(
            engine, consumer=CONSUMER_NAME, proof_roots_kept=settings.proof_roots_kept
        )
        self.codec = codec_for(settings)
        self.decoder = SlotBatchDecoder(self.codec)
        self.root_ids = root_ids
        self.roots_topic = settings.topic(EPOCH_ROOTS)
        self.global_topic = settings.topic(GLOBAL_ROOTS)
        self.events_topic = settings.topic(CHAIN_EVENTS)
        self.global_account = settings.global_root_account
        #: one assembler per roots topic (channel roots; global roots), as the projector.
        self.assemblers = {t: RootAssembler() for t in (self.roots_topic, self.global_topic)}
        self.stored: dict[tuple[str, int], int] = {}
        self.result = LoadResult()
        #: the root_id of the next root that had none before: above every id in use.
        with engine.connect() as conn:
            in_use = conn.execute(text("SELECT coalesce(max(root_id), 0) FROM roots")).scalar_one()
        self.fresh_id = max([int(in_use), *root_ids.values()], default=0) + 1

    def next_root_id(self, value: int) -> None:
        """Make the next `roots` insert take `value` as its root_id."""
        with self.engine.begin() as conn:
            conn.execute(
                text("SELECT setval(pg_get_serial_sequence('roots', 'root_id'), :v, false)"),
                {"v": value},
            )

    def reject(self, where: str, reason: str, detail: str) -> None:
        self.result.rejected.append({"source": where, "reason": reason, "detail": detail})
        log.warning("refused", extra={"source": where, "reason": reason, "detail": detail})

    def root_record(self, topic: str, partition: int, offset: int, value: bytes) -> None:
        where = f"{topic}/{partition}/{offset}"
        try:
            record_type, record = self.codec.decode(value)
        except AvroDecodeError as exc:
            self.reject(where, "undecodable", str(exc))
            return
        view = root_view(record_type, record)
        for item in self.assemblers[topic].add(partition, offset, record_type, view, value):
            if isinstance(item, RejectedRecord):
                self.reject(f"{topic}/{item.partition}/{item.offset}", item.reason, item.detail)
            elif isinstance(item, PurgedRemainder):
                self.result.purged_remainder += 1
            else:
                self.write(topic, item, offset + 1)

    def write(self, topic: str, complete: CompleteRoot, next_offset: int) -> None:
        part = complete.partition
        key = (topic, part)
        where = f"{topic}/{part}/{complete.offset}"
        record = complete.record
        update = OffsetUpdate(
            topic, part, self.stored[key], self.assemblers[topic].safe_offset(part, next_offset)
        )
        try:
            decoded = decode_root(record, complete.chunks)
        except RootRejectedError as exc:
            self.reject(where, exc.reason, exc.detail)
            return
        keep = self.root_ids.get((decoded.channel_config, decoded.root_seq))
        self.next_root_id(keep or self.fresh_id)
        try:
            outcome = self.writer.write_root(
                decoded, source_partition=part, source_offset=complete.offset, offsets=[update]
            )
        except RootRejectedError as exc:
            self.reject(where, exc.reason, exc.detail)
            return
        self.stored[key] = update.next_offset
        if outcome == "written":
            self.result.written += 1
            if keep is None:
                self.fresh_id += 1
        else:
            self.result.duplicates += 1

    def claims(self, records: list[tuple[int, int, bytes]]) -> None:
        claims: list[ClaimUpdate] = []
        last: dict[int, int] = {}
        for partition, offset, value in records:
            last[partition] = offset + 1
            try:
                batch = self.decoder.decode(value)
            except AvroDecodeError as exc:
                self.reject(f"{self.events_topic}/{partition}/{offset}", "undecodable", str(exc))
                continue
            # undecodable claims were dead-lettered by the live projector
            claims.extend(claims_of(batch, global_account=self.global_account).updates)
        updates = [
            OffsetUpdate(self.events_topic, p, self.stored[(self.events_topic, p)], n)
            for p, n in sorted(last.items())
        ]
        self.result.claim_rows += self.writer.apply_claims(claims, updates)
        for update in updates:
            self.stored[(update.topic, update.partition)] = update.next_offset

    def finish(self, read_to: Mapping[tuple[str, int], int]) -> None:
        """Advance every partition past the last record read (refused records included), as
        the projector does."""
        updates = []
        for (topic, part), stop in sorted(read_to.items()):
            target = stop
            if topic in self.assemblers:
                target = self.assemblers[topic].safe_offset(part, stop)
            if target > self.stored[(topic, part)]:
                updates.append(OffsetUpdate(topic, part, self.stored[(topic, part)], target))
        self.writer.commit_offsets(updates)
        self.next_root_id(self.fresh_id)  # `aop project` continues above every id in use
        for update in updates:
            self.stored[(update.topic, update.partition)] = update.next_offset
        for (topic, part), offset in self.stored.items():
            self.result.offsets.setdefault(topic, {})[part] = offset


def load_schema(
    settings: Settings,
    engine: Engine,
    *,
    root_ids: Mapping[tuple[str, int], int] | None = None,
) -> LoadResult:
    """Project the log into the schema of `engine`, from its stored offsets to the topics'
    current ends (last stable offsets); run it again to catch up.

    Raises:
        ReplayError: the broker does not answer.
        OffsetConflictError: another process moved this schema's offsets.
    """
    loader = _Loader(settings, engine, root_ids or {})
    chain_parts = range(settings.chain_partitions)
    topics = [(loader.roots_topic, chain_parts), (loader.global_topic, range(1))]
    if settings.projection_claims:
        topics.append((loader.events_topic, chain_parts))
    ranges = []
    for topic, parts in topics:  # roots first: a root never comes from events after the stop
        bounds = log_bounds(settings, topic, parts)
        for part, start in loader.writer.load_offsets(topic, parts).items():
            loader.stored[(topic, part)] = start
            if topic in loader.assemblers and 0 < bounds[part].low >= start:
                loader.assemblers[topic].purged_start(part)
            ranges.append(ReadRange(topic, part, start, bounds[part].stop))
    with LogReader(settings, ranges) as reader:
        for records in reader.batches():
            events = []
            for topic, part, offset, value in records:
                if topic in loader.assemblers:
                    loader.root_record(topic, part, offset, value)
                else:
                    events.append((part, offset, value))
            if events:
                loader.claims(events)
        read_to = dict(reader.next_offsets)
    loader.finish(read_to)
    return loader.result
