"""The dead letters on `aop.dlq`, read back for an operator (`aop dlq`).

The topic is read from its first stored offset to its last stable one with `LogReader`
(assign and seek, never commit: the read leaves no consumer-group state), each record decoded
as a `DeadLetter` in either framing. Filters (stage, reason, a time window on the record's
`at_ms`) are applied while reading.

Re-driving a dead letter (putting its payload back on its source topic) is deliberately not
offered: the log is the source of truth and replays must give the same roots, so a record
appended later, at another offset, behind newer watermarks, would not be what the source stage
refused and could be counted out of order; the fix for a refused input is upstream (a new
decoder, a corrected root), after which the stage reads the log again.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from aop.log.avro import AvroDecodeError, codec_for
from aop.log.kafka import DLQ
from aop.log.reader import LogReader, ReadRange, log_bounds
from aop.runtime.settings import Settings

__all__ = ["DeadLetter", "DeadLetterFilter", "read_dead_letters"]


@dataclass(frozen=True)
class DeadLetterFilter:
    """Which dead letters to keep: each set field must match (None: any)."""

    stage: str | None = None
    reason: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None
    offset: int | None = None

    def keeps(self, letter: DeadLetter) -> bool:
        return (
            (self.stage is None or letter.stage == self.stage)
            and (self.reason is None or letter.reason == self.reason)
            and (self.since_ms is None or letter.at_ms >= self.since_ms)
            and (self.until_ms is None or letter.at_ms < self.until_ms)
            and (self.offset is None or letter.offset == self.offset)
        )


@dataclass(frozen=True)
class DeadLetter:
    """One record of aop.dlq: where it is, and the DeadLetter fields."""

    partition: int
    offset: int
    stage: str
    reason: str
    detail: str
    source: str
    payload: bytes
    at_ms: int

    def payload_record(self, settings: Settings) -> dict[str, Any] | None:
        """The payload decoded as one of the pipeline's Avro records ({"type", "value"}), or
        None when it is not one (raw event bytes, a transaction signature, ...)."""
        try:
            name, value = codec_for(settings).decode(self.payload)
        except AvroDecodeError:
            return None
        return {"type": name, "value": value}

    def as_json(self) -> dict[str, Any]:
        return {
            "partition": self.partition,
            "offset": self.offset,
            "at_ms": self.at_ms,
            "stage": self.stage,
            "reason": self.reason,
            "source": self.source,
            "detail": self.detail,
            "payload_bytes": len(self.payload),
            "payload_base64": base64.b64encode(self.payload).decode(),
        }


def read_dead_letters(
    settings: Settings, keep: DeadLetterFilter | None = None
) -> Iterator[DeadLetter]:
    """Every dead letter now on aop.dlq that `keep` keeps, in offset order per partition.

    Raises:
        LogReadError: the broker does not answer, or the topic does not exist.
        AvroDecodeError: a record of aop.dlq is not a DeadLetter (its offset is named).
    """
    keep = keep or DeadLetterFilter()
    topic = settings.topic(DLQ)
    bounds = log_bounds(settings, topic, [0])
    ranges = [ReadRange(topic, p, b.low, b.stop) for p, b in bounds.items()]
    codec = codec_for(settings)
    with LogReader(settings, ranges) as reader:
        for batch in reader.batches():
            for _topic, partition, offset, value in batch:
                try:
                    fields = codec.decode_as("DeadLetter", value)
                except AvroDecodeError as exc:
                    where = f"{topic} partition {partition} offset {offset}"
                    raise AvroDecodeError(f"{where}: {exc}") from exc
                letter = DeadLetter(
                    partition,
                    offset,
                    str(fields["stage"]),
                    str(fields["reason"]),
                    str(fields["detail"]),
                    str(fields["source"]),
                    bytes(fields["payload"]),
                    int(fields["at_ms"]),
                )
                if keep.keeps(letter):
                    yield letter
